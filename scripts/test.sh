#!/usr/bin/env bash
# Runs the whole test suite: unit tests, plugin tests and the end-to-end suite
# against a real Redis on 127.0.0.1:6379 (started if nothing answers there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
exec cargo test --workspace --locked
