#!/usr/bin/env bash
# Builds the console and the herald binary: what `cargo leptos build` did, without compiling
# cargo-leptos itself (13 minutes on two cores, once per machine).
#   scripts/build-site.sh release   -> target/site (precompressed) and target/release/herald
#   scripts/build-site.sh debug     -> target/site-debug and target/debug/herald
#   add --no-server to build only the console (scripts/test.sh: the test build compiles the
#   debug server itself, with the features the tests unify, so building it here would be twice)
# Steps: the browser half (crate `app`, feature `hydrate`) to wasm32 in target/front, wasm-bindgen
# (scripts/bindgen, of the exact version in Cargo.lock) into <site>/pkg, wasm-opt on release builds, the
# stylesheet and public/ assets, brotli and gzip copies on release builds. The server half is
# compiled at the same time as the wasm, so neither core idles while the other links.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"

mode="${1:-release}"
server=1
[ "${2:-}" = --no-server ] && server=0
case "$mode" in
  release) site="${LEPTOS_SITE_ROOT:-target/site}"; front_profile=wasm-release; server_args=(--release) ;;
  debug) site="${LEPTOS_SITE_ROOT:-target/site-debug}"; front_profile=dev; server_args=() ;;
  *) echo "usage: $0 [release|debug]" >&2; exit 2 ;;
esac
front_dir=$([ "$front_profile" = dev ] && echo debug || echo "$front_profile")
log() { printf '[site] %s\n' "$*" >&2; }

# Read by leptos at compile time (the file names the page links) and at run time (where the
# files are). Components return type-erased views in every build (smaller wasm; the server renders
# the same HTML the browser hydrates), and both halves use the same flags so the tests reuse the
# server's compiled dependencies.
export LEPTOS_OUTPUT_NAME=herald LEPTOS_SITE_ROOT="$site" LEPTOS_SITE_PKG_DIR=pkg LEPTOS_HASH_FILES=false
export RUSTFLAGS="--cfg erase_components"

started=$SECONDS
# The wasm target is needed to compile; herald-bindgen and wasm-opt only afterwards, so on a
# fresh machine they are installed while the compilers run (scripts/install-tools.sh skips what
# is present, in about a second).
if ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
scripts/install-tools.sh build &
tools=$!
if [ "$server" = 1 ]; then
  log "compiling the console (wasm, $front_profile) and the server ($mode) in parallel"
else
  log "compiling the console (wasm, $front_profile)"
fi
# `app` is an rlib only: as a cdylib too, every native build of it (the release server, the test
# build) also linked it as a shared library and held back the crates after it until it was done.
# The browser half asks for the cdylib here, where it is needed.
cargo rustc -p app --lib --crate-type cdylib --target wasm32-unknown-unknown --no-default-features \
  --features hydrate --target-dir target/front --profile "$front_profile" &
front=$!
server_rc=0
if [ "$server" = 1 ]; then
  cargo build -p server --bin herald --no-default-features "${server_args[@]}" || server_rc=$?
fi
front_rc=0
wait "$front" || front_rc=$?
tools_rc=0
wait "$tools" || tools_rc=$?
[ "$front_rc" -eq 0 ] || { log "the console (wasm) failed to compile"; exit "$front_rc"; }
[ "$server_rc" -eq 0 ] || { log "the server failed to compile"; exit "$server_rc"; }
[ "$tools_rc" -eq 0 ] || { log "installing herald-bindgen or wasm-opt failed"; exit "$tools_rc"; }

wasm="target/front/wasm32-unknown-unknown/$front_dir/app.wasm"
pkg="$site/pkg"
mkdir -p "$pkg"
# Only when the wasm changed: bindgen, wasm-opt and brotli at its highest level take a minute.
if [ ! -f "$pkg/herald.wasm" ] || [ "$wasm" -nt "$pkg/herald.wasm" ]; then
  log "wasm-bindgen"
  rm -f "$pkg"/herald.js "$pkg"/herald.wasm "$pkg"/herald_bg.wasm "$pkg"/*.br "$pkg"/*.gz
  herald-bindgen "$wasm" "$pkg"
  # leptos' hydration script loads <name>.wasm when LEPTOS_OUTPUT_NAME was set at compile time.
  mv "$pkg/herald_bg.wasm" "$pkg/herald.wasm"
  if [ "$mode" = release ]; then
    log "wasm-opt -Oz"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$pkg/herald.wasm" -o "$pkg/herald.wasm"
  fi
fi
cp style/main.css "$pkg/herald.css"
cp -r public/. "$site/"

if [ "$mode" = release ]; then
  log "brotli and gzip copies"
  for f in "$pkg/herald.js" "$pkg/herald.wasm" "$pkg/herald.css"; do
    if [ ! -f "$f.br" ] || [ "$f" -nt "$f.br" ]; then
      node -e '
        const fs = require("fs"), zlib = require("zlib"), f = process.argv[1], data = fs.readFileSync(f);
        fs.writeFileSync(f + ".br", zlib.brotliCompressSync(data, { params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } }));
        fs.writeFileSync(f + ".gz", zlib.gzipSync(data, { level: 9 }));' "$f"
    fi
  done
fi
log "done in $((SECONDS - started)) s: $site (wasm $(stat -c %s "$pkg/herald.wasm") bytes)$([ "$server" = 1 ] && echo ", target/$([ "$mode" = release ] && echo release || echo debug)/herald")"
