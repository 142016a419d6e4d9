#!/usr/bin/env bash
# Load test of `convkit serve` on 127.0.0.1 with wrk (Debian package `wrk`): CONNS connections
# for SECS seconds on each of the page, /api/explain, /api/shape and /api/filter, in turn.
# Prints wrk's latency distribution and throughput per endpoint, any non-2xx answers, and the
# server's peak resident memory (VmHWM) at the end.
#   scripts/serve-load.sh [SECS=60] [CONNS=64] [THREADS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
conns=${2:-64}
threads=${3:-2}
command -v wrk >/dev/null || { echo "serve-load: wrk not installed (apt-get install wrk)" >&2; exit 3; }
bin=target/release/convkit
[ -x "$bin" ] || cargo build --release -p convkit-cli
tmp=$(mktemp -d)
"$bin" serve --port 0 >"$tmp/url" 2>"$tmp/err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do grep -q http "$tmp/url" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^convkit serve: //p' "$tmp/url")
url=${url%/}
post() { # path body-file
  cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$2", "rb"); wrk.body = f:read("*a"); f:close()
LUA
  echo "$tmp/post.lua"
}
echo '{"input": "1,2,0,-1,3,1;0,1,2,3,1,0;2,0,1,1,0,2", "weight": "1,0;0,-1", "padding": "1", "stride": "1"}' >"$tmp/explain.json"
echo '{"input": "1,3,224,224", "layers": "conv 64 k7 s2 p3; bn; relu; maxpool k3 s2 p1; res(conv 64 k3 p1; bn; relu; conv 64 k3 p1 | ); conv 128 k3 s2 p1"}' >"$tmp/shape.json"
echo '{"kernel": "sobel"}' >"$tmp/filter.json"
run() { # name path [lua]
  echo "== $1: wrk -t$threads -c$conns -d${secs}s --latency $url$2"
  if [ -n "${3:-}" ]; then
    wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$3" "$url$2"
  else
    wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s --latency "$url$2"
  fi
}
run page /
run explain /api/explain "$(post /api/explain "$tmp/explain.json")"
run shape /api/shape "$(post /api/shape "$tmp/shape.json")"
run filter /api/filter "$(post /api/filter "$tmp/filter.json")"
echo "== server peak resident memory: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
kill -0 $pid && echo "== server still running"
