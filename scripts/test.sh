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

# The debug console and server (scripts/build-site.sh debug) go to target/site-debug and
# target/debug, so the release site `make run` built in target/site still serves from
# ./target/release/herald afterwards. The tests are compiled with the same profile and flags as
# that debug server, so they reuse its compiled dependencies. (Compiling the tests in release to
# reuse `make run`'s build was tried: the optimised test binaries alone took over 20 minutes on
# two cores, longer than a debug build of everything.)
banner "building the console and the server (debug)"
scripts/build-site.sh debug

export RUSTFLAGS="--cfg erase_components"
export LEPTOS_OUTPUT_NAME=herald LEPTOS_SITE_ROOT=target/site-debug
export HERALD_BIN=target/debug/herald

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
