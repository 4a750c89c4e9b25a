#!/usr/bin/env bash
# Installs what building and testing Herald needs, skipping whatever is already present.
# Works offline against the package registries only (see shared TOOLCHAIN notes in the README).
#   scripts/install-tools.sh build   -> wasm target, herald-bindgen, wasm-opt and Playwright (npm)
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

# The version scripts/bindgen is at: that of the `wasm-bindgen` the workspace pins.
BINDGEN_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' scripts/bindgen/Cargo.toml | head -n1)
log() { printf '[setup] %s\n' "$*" >&2; }

if [ "$build" = 1 ] && ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The wasm-bindgen step is our own small program over `wasm-bindgen-cli-support`
# (scripts/bindgen): 48 crates to compile instead of wasm-bindgen-cli's 185, which brought its test
# runner's server, an HTTP client, TLS and brotli along. Locked to the versions in its own
# Cargo.lock (all on crates.io), and never downloads anything at build time.
if [ "$build" = 1 ] && ! herald-bindgen --version 2>/dev/null | grep -qx "herald-bindgen $BINDGEN_VERSION"; then
  log "installing herald-bindgen $BINDGEN_VERSION (scripts/bindgen, about a minute)"
  cargo install --path scripts/bindgen --locked --target-dir target/bindgen --quiet
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
