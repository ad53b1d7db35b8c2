#!/usr/bin/env bash
# Reproduces the README's performance table on one machine: builds the release binaries, starts
# a Redis of its own and the server on it (rate limits off, no trace export), runs
# burnbox-bench with the arguments given (default: 20000 requests per scenario, 64 clients),
# and reports the server's peak memory. Usage: crates/bench/run.sh [burnbox-bench args...]
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --quiet --release -p burnbox-server -p burnbox-bench
work=$(mktemp -d)
redis_pid=""
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --logfile "$work/redis.log" --daemonize no &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

http_port=$(free_port)
grpc_port=$(free_port)
BURNBOX_HTTP_ADDR="127.0.0.1:$http_port" BURNBOX_GRPC_ADDR="127.0.0.1:$grpc_port" \
  BURNBOX_ADMIN_ADDR=127.0.0.1:0 BURNBOX_REDIS_URL="redis://127.0.0.1:$redis_port/" \
  BURNBOX_MASTER_KEY=$(openssl rand -base64 32) BURNBOX_RATE_LIMIT_CREATE=0 BURNBOX_RATE_LIMIT_REVEAL=0 \
  BURNBOX_LOG=warn ./target/release/burnbox > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && break
  sleep 0.1
done

./target/release/burnbox-bench --http "http://127.0.0.1:$http_port" --grpc "http://127.0.0.1:$grpc_port" \
  --redis "redis://127.0.0.1:$redis_port/" --server-pid "$server_pid" "$@"
