#!/usr/bin/env bash
# The long reliability runs whose figures the README reports (a few minutes each):
#   kill soak   - 3 minutes of steady load, SIGKILL at 10 random moments, restart each time
#   SIGTERM     - a graceful stop at 500 events/s
#   PostgreSQL  - three processes on one database; the database going away mid-load
# SQLite always; PostgreSQL when HERALD_TEST_POSTGRES_URL is set. Every run prints one line of
# figures (SOAK, SIGTERM, THREE PROCESSES, POSTGRES AWAY).
#   scripts/soak.sh [seconds] [kills]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTFLAGS="--cfg erase_components" LEPTOS_OUTPUT_NAME=herald
export HERALD_SOAK_SECONDS="${1:-180}" HERALD_SOAK_KILLS="${2:-10}"
cargo test -p server --features herald/server --test integration -- soak:: postgres_ops:: \
  --nocapture --test-threads 1 2>&1 | grep --line-buffered -E 'SOAK|SIGTERM|THREE|POSTGRES|SKIPPED|test result|FAILED|panicked|sent twice'
