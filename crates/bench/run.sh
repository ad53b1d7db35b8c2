#!/usr/bin/env bash
# Reproduces the performance figures on one machine: builds the release binaries, starts a Redis
# of its own and the servers below, and runs burnbox-bench against them with the arguments given
# (default: 20000 requests per scenario, 50 clients, bytes per secret over 100000 secrets; add
# --flat-with-size for reveals with 10k and 1M secrets stored). The servers:
# - tuned, on that Redis: rate limits off, BURNBOX_LOG=warn, no trace export;
# - as deployed, on the same Redis with the same master key: the defaults (logging at info in the
#   default format, written to a file as a collector would read it), rate limits on but set too
#   high to trip;
# - memory store: no Redis, rate limits off, for the memory store's bytes per secret;
# - with --flat-with-size, small and large: two more tuned servers (same settings, same master
#   key), each on a Redis of its own, one holding the few secrets and one the many (the tuned
#   server's Redis stays fresh for bytes per secret).
# A floor: if BURNBOX_BENCH_FLOOR names an executable, it is started as
# `REDIS=<redis url> ADDR=127.0.0.1:<port> "$BURNBOX_BENCH_FLOOR"` and REST reveals are measured
# on it against the tuned server. A floor is a bare server the operator provides that answers
# `POST /api/v1/secret/{key}` with `GETDEL key` on that Redis, 200 `{"value":"…"}` or 404, and
# does nothing else (no auth, no crypto).
# Usage: [BURNBOX_BENCH_FLOOR=path] crates/bench/run.sh [burnbox-bench args...]
set -euo pipefail
cd "$(dirname "$0")/../.."

floor=${BURNBOX_BENCH_FLOOR:-}
if [ -n "$floor" ] && [ ! -x "$floor" ]; then
  echo "run.sh: BURNBOX_BENCH_FLOOR=$floor is not an executable" >&2
  exit 1
fi
flat_with_size=""
for arg in "$@"; do
  if [ "$arg" = --flat-with-size ]; then flat_with_size=yes; fi
done

cargo build --quiet --release -p burnbox-server -p burnbox-bench
work=$(mktemp -d)
redis_pids=()
server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${redis_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # They write their last lines as they stop: let them, before their directory goes.
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_ports NAME PORT...: waits until every port accepts connections; fails with NAME's log.
wait_ports() {
  local name=$1
  shift
  for _ in $(seq 100); do
    local up=yes port
    for port in "$@"; do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { up=""; break; }
    done
    if [ -n "$up" ]; then return 0; fi
    sleep 0.1
  done
  cat "$work/$name.log" >&2
  echo "run.sh: the $name server did not start" >&2
  exit 1
}

# start_redis NAME: starts a Redis on a free port, its log in $work/NAME.log and its data
# directory $work/NAME; sets redis_url and waits until it answers.
start_redis() {
  local name=$1 port
  port=$(free_port)
  mkdir "$work/$name"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/$name" \
    --logfile "$work/$name.log" --daemonize no &
  redis_pids+=("$!")
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis_url="redis://127.0.0.1:$port/"
}

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
  wait_ports "$name" "$grpc_port" "$http_port"
}

start_redis redis
tuned_redis=$redis_url
tuned_settings=(BURNBOX_MASTER_KEY="$master_key" BURNBOX_RATE_LIMIT_CREATE=0
  BURNBOX_RATE_LIMIT_REVEAL=0 BURNBOX_LOG=warn)
start_server tuned BURNBOX_REDIS_URL="$tuned_redis" "${tuned_settings[@]}"
tuned_http=$http_port tuned_grpc=$grpc_port tuned_pid=$server_pid
start_server deployed BURNBOX_REDIS_URL="$tuned_redis" BURNBOX_MASTER_KEY="$master_key" \
  BURNBOX_RATE_LIMIT_CREATE=1000000000 BURNBOX_RATE_LIMIT_REVEAL=1000000000
deployed_http=$http_port deployed_grpc=$grpc_port deployed_pid=$server_pid
start_server memory BURNBOX_RATE_LIMIT_CREATE=0 BURNBOX_RATE_LIMIT_REVEAL=0 BURNBOX_LOG=warn
memory_grpc=$grpc_port memory_pid=$server_pid

more=()
if [ -n "$flat_with_size" ]; then
  start_redis small-redis
  start_server small BURNBOX_REDIS_URL="$redis_url" "${tuned_settings[@]}"
  more+=(--small-http "http://127.0.0.1:$http_port" --small-grpc "http://127.0.0.1:$grpc_port"
    --small-pid "$server_pid" --small-redis "$redis_url")
  start_redis large-redis
  start_server large BURNBOX_REDIS_URL="$redis_url" "${tuned_settings[@]}"
  more+=(--large-http "http://127.0.0.1:$http_port" --large-grpc "http://127.0.0.1:$grpc_port"
    --large-pid "$server_pid" --large-redis "$redis_url")
fi
if [ -n "$floor" ]; then
  floor_port=$(free_port)
  REDIS="$tuned_redis" ADDR="127.0.0.1:$floor_port" "$floor" > "$work/floor.log" 2>&1 &
  floor_pid=$!
  server_pids+=("$floor_pid")
  wait_ports floor "$floor_port"
  more+=(--floor-http "http://127.0.0.1:$floor_port" --floor-pid "$floor_pid")
fi

status=0
./target/release/burnbox-bench \
  --http "http://127.0.0.1:$tuned_http" --grpc "http://127.0.0.1:$tuned_grpc" \
  --redis "$tuned_redis" --server-pid "$tuned_pid" \
  --deployed-http "http://127.0.0.1:$deployed_http" --deployed-grpc "http://127.0.0.1:$deployed_grpc" \
  --deployed-pid "$deployed_pid" \
  --memory-grpc "http://127.0.0.1:$memory_grpc" --memory-pid "$memory_pid" \
  "${more[@]}" "$@" || status=$?
# What the deployed server logged, as a check that it logged as deployed (a line per operation).
echo "run.sh: the server as deployed wrote $(wc -l < "$work/deployed.log") log lines ($(du -h "$work/deployed.log" | cut -f1))" >&2
exit "$status"
