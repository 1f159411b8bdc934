#!/usr/bin/env bash
# Starts the gateway locally with its built-in defaults (API on 127.0.0.1:8080,
# Redis on 127.0.0.1:6379, started if nothing answers there). Extra settings come
# from GATEWAY_* variables; see the README's configuration reference.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
exec cargo run --release --locked -p gateway --bin gateway -- "$@"
