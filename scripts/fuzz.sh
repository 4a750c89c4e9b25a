#!/usr/bin/env bash
# The long schemathesis run over the REST API (the short one runs in `make test`):
#   scripts/fuzz.sh [examples per operation, default 500]
# A fresh random seed each time; a failure prints schemathesis's report with the case to replay.
# It runs on SQLite and, when HERALD_TEST_POSTGRES_URL names a server, on PostgreSQL beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTFLAGS="--cfg erase_components" LEPTOS_OUTPUT_NAME=herald
scripts/install-tools.sh test
HERALD_FUZZ_EXAMPLES="${1:-500}" HERALD_FUZZ_SEED="" \
  cargo test -p server --features herald/server --test integration -- fuzz:: --nocapture
