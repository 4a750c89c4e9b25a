#!/usr/bin/env bash
# Runs every test: unit and integration tests of all crates (the storage conformance suite on
# SQLite and PostgreSQL: HERALD_TEST_POSTGRES_URL, or a throwaway cluster), then the Playwright suite in real
# Chromium against a freshly built debug server and console.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step="setting up"
banner() { step="$*"; printf '\n==== %s ====\n' "$*"; }
# The last lines of a failed run say which step failed and how much disk was left (a full disk
# makes a build fail with little else to go on).
trap 'rc=$?; stop_own_pg; [ $rc -eq 0 ] || { printf "\n==== FAILED (exit %s) at: %s ====\n" "$rc" "$step"; df -h . /tmp 2>/dev/null | sed "s/^/  /"; }' EXIT

# Without HERALD_TEST_POSTGRES_URL the PostgreSQL suites run against a throwaway cluster of our
# own: Debian's server (installed if missing), initdb in a temporary directory, a free port on
# 127.0.0.1, trust auth; stopped and removed when the tests end, whatever the outcome.
own_pg=""
stop_own_pg() {
  [ -n "$own_pg" ] || return 0
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$own_pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$own_pg"
}
start_own_pg() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$pg_bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    printf '[setup] installing Debian'"'"'s postgresql for the PostgreSQL suites\n' >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  fi
  [ -n "$pg_bin" ] || return 1
  own_pg=$(mktemp -d /tmp/herald-pg.XXXXXX)
  pg_as=()
  # initdb refuses to run as root; the package's postgres user owns the cluster then.
  if [ "$(id -u)" = 0 ]; then chown postgres "$own_pg"; pg_as=(runuser -u postgres --); fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${pg_as[@]}" "$pg_bin/initdb" -D "$own_pg/data" -U postgres -A trust >"$own_pg/initdb.log" 2>&1 || return 1
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$own_pg/data" -l "$own_pg/server.log" -w \
    -o "-p $port -k $own_pg -c listen_addresses=127.0.0.1" start >/dev/null || return 1
  "${pg_as[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test || return 1
  export HERALD_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/test"
  printf '[setup] a throwaway PostgreSQL cluster for the tests: %s (in %s)\n' "$HERALD_TEST_POSTGRES_URL" "$own_pg" >&2
}

# What only the tests need (Chromium, Go, schemathesis; PostgreSQL's server if a throwaway
# cluster will be needed) installs while the compilers run: apt and pip wait on the network and
# the disk, the compilers on the cores.
banner "installing what the tests need (alongside the build)"
scripts/install-tools.sh extras &
extras=$!

# The Playwright suite needs a console and a server built from these sources. When `make run`
# built the release ones (target/site, target/release/herald) and no source changed since, it uses
# them and nothing is compiled for the browser. Otherwise it builds the console as it ships (the
# optimised wasm, after wasm-opt) into target/site-e2e while the tests compile, and serves it with
# the debug server the test build makes anyway (the API tests run target/debug/herald); the
# release site `make run` built still serves from ./target/release/herald afterwards. Only the
# shipped wasm is tested: a debug console passed every spec while the optimised one trapped as it
# hydrated (README, The console). (Compiling the tests in release to reuse `make run`'s build was
# tried: the optimised test binaries alone took over 20 minutes on two cores.)
release_is_current() {
  local site=target/site/pkg/herald.wasm bin=target/release/herald
  [ -f "$site" ] && [ -x "$bin" ] || return 1
  local older=$site
  [ "$bin" -ot "$site" ] && older=$bin
  [ -z "$(find src app server/src server/Cargo.toml style public migrations Cargo.toml Cargo.lock \
    -type f -newer "$older" -print -quit 2>/dev/null)" ]
}
console=""
if release_is_current; then
  banner "compiling the tests (the release console and server are current: Playwright uses them)"
  e2e_site=target/site e2e_bin=target/release/herald
  scripts/install-tools.sh build
else
  banner "compiling the tests, and the release console beside them"
  e2e_site=target/site-e2e e2e_bin=target/debug/herald
  LEPTOS_SITE_ROOT=$e2e_site scripts/build-site.sh release --no-server &
  console=$!
fi

export RUSTFLAGS="--cfg erase_components"
export LEPTOS_OUTPUT_NAME=herald LEPTOS_SITE_ROOT=target/site-debug LEPTOS_SITE_PKG_DIR=pkg LEPTOS_HASH_FILES=false

nextest=0
command -v cargo-nextest >/dev/null 2>&1 && nextest=1
if [ "$nextest" = 1 ]; then
  cargo nextest run --workspace --features herald/server --no-run
else
  cargo test --workspace --features herald/server --no-run
fi
if [ -n "$console" ]; then
  step="building the release console"
  wait "$console"
fi
step="installing what the tests need"
wait "$extras"

if [ -z "${HERALD_TEST_POSTGRES_URL:-}" ] && ! start_own_pg; then
  stop_own_pg
  own_pg=""
  cat >&2 <<'MSG'

  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
  !!  No PostgreSQL: HERALD_TEST_POSTGRES_URL is not set and no throwaway cluster      !!
  !!  could be started, so the PostgreSQL half of the suites will be SKIPPED. Set it:   !!
  !!    HERALD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test make test       !!
  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

MSG
elif command -v psql >/dev/null 2>&1; then
  # Tests create one database each (herald_t_*); drop those earlier runs left behind.
  for db in $(psql "$HERALD_TEST_POSTGRES_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'herald\_t\_%'" 2>/dev/null); do
    psql "$HERALD_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
fi

banner "tests (unit, storage conformance, API and engine)"
if [ "$nextest" = 1 ]; then
  # One process per test, in parallel; a hanging test is ended (see .config/nextest.toml).
  cargo nextest run --workspace --features herald/server
else
  cargo test --workspace --features herald/server
fi

banner "Playwright (Chromium)"
mkdir -p end2end/screenshots
(cd end2end && LEPTOS_SITE_ROOT="$e2e_site" HERALD_BIN="$e2e_bin" npx playwright test)
