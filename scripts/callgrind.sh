#!/usr/bin/env bash
# Instructions per delivery, by part of the hot path, counted by callgrind: a figure that does not
# drift with the machine's load, so two builds can be compared in one sitting on a shared machine
# (README, Benchmarks, twenty-ninth sitting).
#
#   scripts/callgrind.sh [small] [large] [herald bench options...]
#
# Runs `herald bench` twice under callgrind (its server child too), with `small` and `large`
# events (default 2,000 and 6,000), and divides the difference of the server's counts by the
# difference of events, so start-up and shutdown cancel out. HERALD_BIN picks the binary (default
# target/release/herald); HERALD_CALLGRIND_KEEP=1 keeps the profiles. Counts are instructions, not
# time: under valgrind SHA-256 runs without the CPU's SHA extensions, so signing counts several
# times what it costs natively, and threads run one at a time, so write batches differ from a
# native run. On PostgreSQL the database server's own work is not counted. With `--floor` the
# server is `herald relay-floor` (thirty-third sitting): the parts it has no function for print -.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HERALD_BIN:-target/release/herald}
small=${1:-2000}
large=${2:-6000}
shift $(($# < 2 ? $# : 2))
command -v valgrind > /dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[ "$large" -gt "$small" ] || { echo "large ($large) must be more than small ($small)" >&2; exit 1; }
dir=$(mktemp -d)
[ "${HERALD_CALLGRIND_KEEP:-0}" = 1 ] || trap 'rm -rf "$dir"' EXIT

for n in "$small" "$large"; do
  echo "[callgrind] herald bench --events $n under callgrind (about $((n / 150 + 10)) s)" >&2
  valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg-$n.%p" \
    "$bin" bench --events "$n" --deadline-secs 900 "$@" > "$dir/bench-$n.log" 2>&1 \
    || { cat "$dir/bench-$n.log" >&2; exit 1; }
  server=$(grep -lE '^cmd: .* (serve|relay-floor) ' "$dir"/cg-"$n".* | head -1)
  [ -n "$server" ] || { echo "no profile of the server in $dir" >&2; exit 1; }
  callgrind_annotate --inclusive=yes "$server" > "$dir/inclusive-$n.txt" 2> /dev/null
  callgrind_annotate --tree=caller "$server" > "$dir/callers-$n.txt" 2> /dev/null
  { grep -E 'transactions/s' "$dir/bench-$n.log" || true; } | sed "s/^ */[callgrind] $n events: /" >&2
done

# Each part: a label, then a fixed string that picks its function out of the inclusive listing.
parts=(
  "everything"                                         "PROGRAM TOTALS"
  "HTTP in (hyper, axum, the ingest handler)"          "axum::serve::handle_connection::{{closure}}::{{closure}} ["
  "  API key check"                                    "Caller as axum_core::extract::FromRequestParts<server::api::ApiState>>::from_request_parts::{{closure}} ["
  "  JSON body read and parsed"                        "server::api::extract::read_body ["
  "  event enveloped, subscribers found"               "store_events::{{closure}} ["
  "group commit: statements built, answers read"       "herald::delivery::ingest::start_batcher::{{closure}} ["
  "  of which SQL text and binds (sqlx)"               "::push_values ["
  "SQLite running the statements (writer thread)"      "ExecuteIter as core::iter::traits::iterator::Iterator>::next ["
  "  of which commits"                                 "sqlite3VdbeHalt ["
  "  WAL checkpoints"                                  "sqlite3WalCheckpoint ["
  "delivery: sign, send, read the reply"               "deliver_in_lane::{{closure}} ["
  "  signature headers (HMAC)"                         "herald::delivery::dispatch::headers ["
  "  secrets opened"                                   "WebhookSecrets::open ["
  "  reqwest request sent (headers, body)"             "reqwest::async_impl::request::RequestBuilder::send ["
  "outgoing HTTP connection (hyper client)"            "hyper::client::conn::http1::upgrades::UpgradeableConnection<I,B> as core::future::future::Future>::poll ["
)
count() { # file, fixed string: the first inclusive count of a line that holds it, or nothing
  { grep -F -m1 -- "$2" "$1" || true; } | awk '{ gsub(",", "", $1); print $1 }'
}
events=$((large - small))
printf '%-52s %14s\n' "part of the path" "instr/delivery"
for ((i = 0; i < ${#parts[@]}; i += 2)); do
  a=$(count "$dir/inclusive-$small.txt" "${parts[i + 1]}")
  b=$(count "$dir/inclusive-$large.txt" "${parts[i + 1]}")
  printf '%-52s %14s\n' "${parts[i]}" "$([ -n "$a" ] && [ -n "$b" ] && echo $(((b - a) / events)) || echo -)"
done
# WAL frames written per delivery: every frame a commit writes is a dirty page of some B-tree,
# and two write calls (thirty-third sitting). The calls of `walWriteOneFrame`: the sum of the
# caller lines (`< caller (Nx)`) just above its own line in the caller tree.
frames() { # file: how many times walWriteOneFrame was called, or nothing
  awk '/^ *[0-9,]+ .*< / { if (match($0, /\(([0-9,]+)x\)/)) { c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c); sum += c } ; next }
       /\*  .*walWriteOneFrame/ { print sum; exit }
       { sum = 0 }' "$1"
}
a=$(frames "$dir/callers-$small.txt")
b=$(frames "$dir/callers-$large.txt")
printf '%-52s %14s\n' "WAL frames written (per delivery)" \
  "$([ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" -v e="$events" 'BEGIN { printf "%.2f", (b - a) / e }' || echo -)"
[ "${HERALD_CALLGRIND_KEEP:-0}" = 1 ] && echo "[callgrind] profiles kept in $dir" >&2
exit 0
