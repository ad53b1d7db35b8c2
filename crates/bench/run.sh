#!/usr/bin/env bash
# Reproduces the performance figures on one machine: builds the release binaries, starts a Redis
# of its own and three servers, and runs burnbox-bench against them with the arguments given
# (default: 20000 requests per scenario, 50 clients, bytes per secret over 100000 secrets; add
# --flat-with-size for reveals with 10k then 1M secrets stored). The servers:
# - tuned, on that Redis: rate limits off, BURNBOX_LOG=warn, no trace export;
# - as deployed, on the same Redis with the same master key: the defaults (logging at info in the
#   default format, written to a file as a collector would read it), rate limits on but set too
#   high to trip;
# - memory store: no Redis, rate limits off, for the memory store's bytes per secret.
# Usage: crates/bench/run.sh [burnbox-bench args...]
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --quiet --release -p burnbox-server -p burnbox-bench
work=$(mktemp -d)
redis_pid=""
server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
  # They write their last lines as they stop: let them, before their directory goes.
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --logfile "$work/redis.log" --daemonize no &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

master_key=$(openssl rand -base64 32)

# start_server NAME [VAR=value...]: starts the server on free ports with the settings given
# (and none of the caller's BURNBOX_* logging settings), its output in $work/NAME.log; sets
# http_port, grpc_port and server_pid, and waits until both ports accept connections.
start_server() {
  local name=$1
  shift
  http_port=$(free_port)
  grpc_port=$(free_port)
  env -u BURNBOX_LOG -u BURNBOX_LOG_FORMAT -u RUST_LOG \
    BURNBOX_HTTP_ADDR="127.0.0.1:$http_port" BURNBOX_GRPC_ADDR="127.0.0.1:$grpc_port" \
    BURNBOX_ADMIN_ADDR=127.0.0.1:0 "$@" ./target/release/burnbox > "$work/$name.log" 2>&1 &
  server_pid=$!
  server_pids+=("$server_pid")
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null \
        && (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  cat "$work/$name.log" >&2
  echo "run.sh: the $name server did not start" >&2
  exit 1
}

redis_url="redis://127.0.0.1:$redis_port/"
start_server tuned BURNBOX_REDIS_URL="$redis_url" BURNBOX_MASTER_KEY="$master_key" \
  BURNBOX_RATE_LIMIT_CREATE=0 BURNBOX_RATE_LIMIT_REVEAL=0 BURNBOX_LOG=warn
tuned_http=$http_port tuned_grpc=$grpc_port tuned_pid=$server_pid
start_server deployed BURNBOX_REDIS_URL="$redis_url" BURNBOX_MASTER_KEY="$master_key" \
  BURNBOX_RATE_LIMIT_CREATE=1000000000 BURNBOX_RATE_LIMIT_REVEAL=1000000000
deployed_http=$http_port deployed_grpc=$grpc_port deployed_pid=$server_pid
start_server memory BURNBOX_RATE_LIMIT_CREATE=0 BURNBOX_RATE_LIMIT_REVEAL=0 BURNBOX_LOG=warn
memory_grpc=$grpc_port memory_pid=$server_pid

status=0
./target/release/burnbox-bench \
  --http "http://127.0.0.1:$tuned_http" --grpc "http://127.0.0.1:$tuned_grpc" \
  --redis "$redis_url" --server-pid "$tuned_pid" \
  --deployed-http "http://127.0.0.1:$deployed_http" --deployed-grpc "http://127.0.0.1:$deployed_grpc" \
  --deployed-pid "$deployed_pid" \
  --memory-grpc "http://127.0.0.1:$memory_grpc" --memory-pid "$memory_pid" \
  "$@" || status=$?
# What the deployed server logged, as a check that it logged as deployed (a line per operation).
echo "run.sh: the server as deployed wrote $(wc -l < "$work/deployed.log") log lines ($(du -h "$work/deployed.log" | cut -f1))" >&2
exit "$status"
