#!/usr/bin/env bash
# Runs every test: unit and integration tests of all crates (the storage conformance suite on
# SQLite and, when HERALD_TEST_POSTGRES_URL is set, PostgreSQL), then the Playwright suite in real
# Chromium against a freshly built debug server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step="setting up"
banner() { step="$*"; printf '\n==== %s ====\n' "$*"; }
# The last lines of a failed run say which step failed and how much disk was left (a full disk
# makes a build fail with little else to go on).
trap 'rc=$?; [ $rc -eq 0 ] || { printf "\n==== FAILED (exit %s) at: %s ====\n" "$rc" "$step"; df -h . /tmp 2>/dev/null | sed "s/^/  /"; }' EXIT

if [ -z "${HERALD_TEST_POSTGRES_URL:-}" ]; then
  cat >&2 <<'MSG'

  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
  !!  HERALD_TEST_POSTGRES_URL is not set: the PostgreSQL half of the storage and API  !!
  !!  suites will be SKIPPED. Set it, e.g.                                               !!
  !!    HERALD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test make test       !!
  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

MSG
elif command -v psql >/dev/null 2>&1; then
  # Tests create one database each (herald_t_*); drop those earlier runs left behind.
  for db in $(psql "$HERALD_TEST_POSTGRES_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'herald\_t\_%'" 2>/dev/null); do
    psql "$HERALD_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
fi

# The debug console goes to a site root of its own, so the release site `make run` built in
# target/site stays servable by ./target/release/herald after the tests.
export LEPTOS_SITE_ROOT=target/site-debug

banner "building the console (debug)"
cargo leptos build

# Same flags as cargo-leptos's debug build, so the tests reuse its compiled dependencies.
export RUSTFLAGS="--cfg erase_components"
export LEPTOS_OUTPUT_NAME=herald

banner "tests (unit, storage conformance, API and engine)"
if command -v cargo-nextest >/dev/null 2>&1; then
  # One process per test, in parallel; a hanging test is ended (see .config/nextest.toml).
  cargo nextest run --workspace --features herald/server
else
  cargo test --workspace --features herald/server
fi

banner "Playwright (Chromium)"
mkdir -p end2end/screenshots
(cd end2end && npx playwright test)
