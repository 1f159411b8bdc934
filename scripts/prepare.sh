#!/usr/bin/env bash
# Makes sure what the gateway and its tests need is here, on a fresh machine too:
#  - the wasm32-unknown-unknown target (plugins are built for it during the normal build)
#    and wasm32-wasip2 (the tests build a WASI plugin to check that uploads refuse it);
#  - a C compiler (ring and mimalloc build C code), installed with apt-get if missing;
#  - Debian's redis-server binary, even when some Redis already answers: the
#    restart tests start private redis-server processes of their own;
#  - a Redis answering on 127.0.0.1:6379 (started if nothing answers there);
#  - Redis 7 or newer, both the one answering and the redis-server binary.
# Safe to run again: it only does what is missing.
set -euo pipefail

REDIS_HOST=127.0.0.1
REDIS_PORT=6379

log() { echo "prepare: $*" >&2; }

ensure_wasm_target() {
  if ! command -v rustup >/dev/null 2>&1; then
    log "rustup not found; assuming the toolchain already has wasm32-unknown-unknown"
    return
  fi
  local target
  for target in wasm32-unknown-unknown wasm32-wasip2; do
    if ! rustup target list --installed | grep -qx "$target"; then
      log "installing the $target target"
      rustup target add "$target"
    fi
  done
}

redis_answers() {
  # A raw PING over bash's /dev/tcp, so that no client needs to be installed.
  local reply
  reply=$( (exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" && printf 'PING\r\n' >&3 && timeout 2 head -c 7 <&3) 2>/dev/null || true)
  [[ "$reply" == "+PONG"* ]]
}

apt_install() {
  log "installing Debian's $*"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_c_compiler() {
  if ! command -v cc >/dev/null 2>&1; then
    apt_install gcc libc6-dev
  fi
}

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
  fi
  if redis_answers; then
    return
  fi
  log "starting redis-server on $REDIS_HOST:$REDIS_PORT"
  local dir="${TMPDIR:-/tmp}/gateway-redis"
  mkdir -p "$dir"
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
    --dir "$dir" --save "" --appendonly no --logfile "$dir/redis.log"
  for _ in $(seq 1 100); do
    if redis_answers; then return; fi
    sleep 0.1
  done
  log "redis did not answer on $REDIS_HOST:$REDIS_PORT; see $dir/redis.log"
  exit 1
}

# The gateway's scripts and the tests need Redis 7 or newer (XINFO's entries-added,
# CLIENT PAUSE WRITE): say so plainly instead of failing tests one by one.
MIN_REDIS_MAJOR=7

major_of() { sed -n 's/^\([0-9][0-9]*\)\..*/\1/p'; }

check_redis_versions() {
  local served installed
  served=$( (exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" && printf 'INFO server\r\n' >&3 \
    && timeout 2 grep -a -m1 '^redis_version:' <&3) 2>/dev/null | tr -d '\r' | cut -d: -f2 || true)
  installed=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
  if [ -n "$served" ] && [ "$(echo "$served" | major_of)" -lt "$MIN_REDIS_MAJOR" ]; then
    log "the Redis answering on $REDIS_HOST:$REDIS_PORT is $served; $MIN_REDIS_MAJOR.0 or newer is needed"
    exit 1
  fi
  if [ -n "$installed" ] && [ "$(echo "$installed" | major_of)" -lt "$MIN_REDIS_MAJOR" ]; then
    log "redis-server on PATH is $installed (the tests start private ones); $MIN_REDIS_MAJOR.0 or newer is needed"
    exit 1
  fi
}

ensure_wasm_target
ensure_c_compiler
ensure_redis
check_redis_versions
