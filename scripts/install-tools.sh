#!/usr/bin/env bash
# Installs what building and testing Herald needs, skipping whatever is already present.
# Works offline against the package registries only (see shared TOOLCHAIN notes in the README).
#   scripts/install-tools.sh build   -> wasm target, wasm-bindgen-cli, wasm-opt and Playwright (npm)
#   scripts/install-tools.sh extras  -> what only the tests need: Debian's Chromium and Go,
#                                       schemathesis, and PostgreSQL's server when no
#                                       HERALD_TEST_POSTGRES_URL is given and none is installed
#   scripts/install-tools.sh test    -> both
# `build` and `extras` touch different things (rustup, cargo, npm / apt, a Python venv), so
# scripts/test.sh runs `extras` while the compilers run.
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-build}"
case "$want" in
  build) build=1 extras=0 ;;
  extras) build=0 extras=1 ;;
  test) build=1 extras=1 ;;
  *) echo "usage: $0 [build|extras|test]" >&2; exit 2 ;;
esac

BINDGEN_VERSION=0.2.130
log() { printf '[setup] %s\n' "$*" >&2; }

# cargo install --locked fails for wasm-bindgen-cli (its lockfile pins a crate the registry cannot
# serve); unpack the source, pin that crate back, and install from the path. (cargo-leptos is not
# needed: scripts/build-site.sh does its job, which saves compiling it: 13 minutes on 2 cores.)
install_from_source() {
  local crate=$1 version=$2 pin=$3 pin_version=$4; shift 4
  local src
  src=$(ls -d "$HOME"/.cargo/registry/src/*/"$crate-$version" 2>/dev/null | head -n1 || true)
  if [ -z "$src" ]; then
    # The locked install fails after unpacking the source, which is all we want from it.
    cargo install "$crate" --version "$version" --locked "$@" >/dev/null 2>&1 || true
    src=$(ls -d "$HOME"/.cargo/registry/src/*/"$crate-$version" 2>/dev/null | head -n1 || true)
  fi
  [ -n "$src" ] || { log "could not fetch $crate $version from crates.io"; exit 1; }
  local work
  work=$(mktemp -d)
  cp -r "$src" "$work/"
  (
    cd "$work/$crate-$version"
    cargo update -p "$pin" --precise "$pin_version"
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      cargo install --path . --locked "$@"
  )
  rm -rf "$work"
}

if [ "$build" = 1 ] && ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$build" = 1 ] && ! wasm-bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $BINDGEN_VERSION (about 2 minutes)"
  install_from_source wasm-bindgen-cli "$BINDGEN_VERSION" webpki-roots 1.0.10
fi

# wasm-opt (run by every release build) and Playwright come from end2end/package.json.
if [ "$build" = 1 ] && { [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ ! -d end2end/node_modules/@playwright/test ]; }; then
  log "installing npm packages in end2end/"
  (cd end2end && npm ci --no-audit --no-fund)
fi

# Debian's chromium drives the console tests; Go builds and runs the Go verification snippets
# (server/tests/snippets.rs; Python and Node.js are on the machine already).
missing=()
[ "$extras" = 1 ] && ! command -v chromium >/dev/null 2>&1 && missing+=(chromium)
[ "$extras" = 1 ] && ! command -v go >/dev/null 2>&1 && missing+=(golang-go)
# scripts/test.sh starts a throwaway cluster when no HERALD_TEST_POSTGRES_URL is given.
[ "$extras" = 1 ] && [ -z "${HERALD_TEST_POSTGRES_URL:-}" ] && ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 \
  && missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian's ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# schemathesis (PyPI) fuzzes the REST API against its OpenAPI document (server/tests/fuzz.rs).
SCHEMATHESIS_VERSION=4.32.5
if [ "$extras" = 1 ] && ! .tools/venv/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION in .tools/venv"
  python3 -m venv .tools/venv
  .tools/venv/bin/pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
log "tools ready"
