#!/usr/bin/env bash
# What an admin's operations on a deep backlog cost, on a database filled by SQL in seconds (the
# README's figures for bulk replay and for switching a webhook on come from here):
#   replay  - N dead letters, every other one a second webhook's; times a bulk replay job over
#             the first webhook's (POST /deliveries/replay), polling its progress every 5 s
#   switch  - N deliveries held for a switched-off webhook (and their events); switches it on
#             (PATCH /webhooks/{id}) while a probe posts an event every 20 ms, and prints the
#             switch's time and the probe's latencies (how long the program's ingest waited)
#   lists   - the same held backlog, left switched off: times the Webhooks list (which counts
#             the hold) and the deliveries list a page at a time, 20 reads each, and a walk of
#             20 pages of 500 by their cursors
# DATABASE is a new, empty database: postgres://… or sqlite://FILE?mode=rwc. Needs psql or
# sqlite3, curl, and a release build (scripts/build-site.sh release).
#   scripts/backlog-ops.sh replay|switch DATABASE [N] [BINARY]
set -euo pipefail
mode=${1:?replay, switch or lists}
db=${2:?a new, empty database url}
n=${3:-1000000}
bin=${4:-./target/release/herald}
port=3300
export HERALD_SECRET_KEY=${HERALD_SECRET_KEY:-$(openssl rand -hex 32)}

if [[ $db == postgres* ]]; then
  q() { psql -qAt "$db" -c "$1"; }
  rows="generate_series(1, $n) AS s(i)"
  ago() { echo "now() - make_interval(secs => ($n - i) / $1)"; }
  held="'9999-01-01 00:00:00+00'"
  padded="'dlv_' || lpad(to_hex(i), 32, '0')"
else
  file=${db#sqlite://}
  q() { sqlite3 "${file%%\?*}" "$1"; }
  rows="(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $n) SELECT i FROM s)"
  ago() { echo "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (($n - i) / $1) || ' seconds')"; }
  held="'9999-01-01T00:00:00+00:00'"
  padded="printf('dlv_%032x', i)"
fi

"$bin" seed --database-url "$db" --program Backlog --webhooks 2 --attempts 0 >/dev/null
key=$("$bin" api-key create --database-url "$db" --program Backlog --name backlog-ops 2>/dev/null | tail -1)
program=$(q "SELECT id FROM programs WHERE name = 'Backlog'")
first=$(q "SELECT id FROM webhooks WHERE program_id = '$program' ORDER BY name LIMIT 1")
second=$(q "SELECT id FROM webhooks WHERE program_id = '$program' ORDER BY name DESC LIMIT 1")
api() { curl -s -H "authorization: Bearer $key" -H 'content-type: application/json' "$@"; }

receiver=
if [[ $mode == replay ]]; then
  q "UPDATE webhooks SET enabled = FALSE" >/dev/null
  q "INSERT INTO deliveries (id, program_id, webhook_id, event_id, trigger, status, tries, \
     next_attempt_at, created_at, updated_at) SELECT $padded, '$program', \
     CASE WHEN i % 2 = 0 THEN '$second' ELSE '$first' END, 'evt_' || i, 'event', 'failed', 5, \
     $(ago 10.0), $(ago 10.0), $(ago 10.0) FROM $rows" >/dev/null
else
  "$bin" listen --port 3399 >/dev/null 2>&1 &
  receiver=$!
  q "UPDATE webhooks SET enabled = FALSE, url = 'http://127.0.0.1:3399/ok' WHERE id = '$first'" >/dev/null
  q "INSERT INTO events (program_id, id, event_type, event_timestamp, body, created_at) \
     SELECT '$program', 'evt_' || i, 'user.created', $(ago 100.0), \
     '{\"event_type\":\"user.created\",\"data\":{}}', $(ago 100.0) FROM $rows" >/dev/null
  q "INSERT INTO deliveries (id, program_id, webhook_id, event_id, trigger, status, tries, \
     next_attempt_at, created_at, updated_at) SELECT $padded, '$program', '$first', 'evt_' || i, \
     'event', 'pending', 0, $held, $(ago 100.0), $(ago 100.0) FROM $rows" >/dev/null
fi
if [[ $db == postgres* ]]; then q "VACUUM ANALYZE" >/dev/null; fi

HERALD_ALLOW_PRIVATE_TARGETS=true "$bin" serve --database-url "$db" --addr "127.0.0.1:$port" \
  >/tmp/backlog-ops-serve.log 2>&1 &
server=$!
trap 'kill $server $receiver 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

if [[ $mode == replay ]]; then
  started=$(date +%s.%N)
  job=$(api -d "{\"webhook_id\":\"$first\"}" "http://127.0.0.1:$port/api/v1/deliveries/replay" |
    grep -o '"id":"rpl_[^"]*"' | cut -d'"' -f4)
  while true; do
    state=$(api "http://127.0.0.1:$port/api/v1/replay-jobs/$job")
    elapsed=$(echo "$(date +%s.%N) - $started" | bc)
    echo "$elapsed s: $(echo "$state" | grep -o '"replayed":[0-9]*') of $(echo "$state" | grep -o '"total":[0-9]*')"
    [[ $state == *'"status":"done"'* ]] && break
    sleep 5
  done
elif [[ $mode == lists ]]; then
  timed() { # LABEL URL: 20 reads, their median and worst
    for _ in $(seq 20); do api -o /dev/null -w '%{time_total}\n' "$2"; done | sort -n |
      awk -v l="$1" '{ a[NR] = $1 } END { printf "%s: median %.1f ms, max %.1f ms\n", l, a[10] * 1000, a[NR] * 1000 }'
  }
  base="http://127.0.0.1:$port/api/v1"
  timed "webhooks list (one holds $n)" "$base/webhooks"
  timed "deliveries, first page of 100" "$base/deliveries?status=pending"
  cursor=
  started=$(date +%s.%N)
  for _ in $(seq 20); do
    page=$(api "$base/deliveries?status=pending&limit=500${cursor:+&cursor=$cursor}")
    cursor=$(echo "$page" | grep -o '"next_cursor":"[^"]*"' | cut -d'"' -f4)
  done
  echo "20 pages of 500 by cursor: $(echo "($(date +%s.%N) - $started) * 1000 / 20" | bc) ms a page"
  timed "deliveries, the page after 10,000" "$base/deliveries?status=pending&cursor=$cursor"
else
  latencies=$(mktemp)
  (
    end=$((SECONDS + 35))
    i=0
    while ((SECONDS < end)); do
      i=$((i + 1))
      api -o /dev/null -w '%{time_total}\n' -d "{\"event_type\":\"badge.awarded\",\"data\":{\"user_id\":\"u_$i\"}}" \
        "http://127.0.0.1:$port/api/v1/events" >>"$latencies"
      sleep 0.02
    done
  ) &
  probe=$!
  sleep 3
  echo "switch on: $(api -o /dev/null -w '%{http_code} in %{time_total} s' -X PATCH -d '{"enabled":true}' \
    "http://127.0.0.1:$port/api/v1/webhooks/$first")"
  wait $probe
  sort -n "$latencies" | awk '{ a[NR] = $1 } END { printf "probe: %d events posted, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", NR, a[int(NR * 0.5)] * 1000, a[int(NR * 0.99)] * 1000, a[NR] * 1000 }'
  rm -f "$latencies"
fi
echo "server peak RSS: $(grep VmHWM /proc/$server/status | awk '{ printf "%.0f MiB", $2 / 1024 }')"
