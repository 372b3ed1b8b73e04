#!/usr/bin/env bash
# Measures what `linkymon logger` writes in a day: a simulated day of `state` messages (one
# every 10 s, as the daemon publishes them by default) is fed through mosquitto 288 times
# faster than real time, with `pages_interval: 1s` standing for the default 5 min, so today's
# page is rebuilt as many times as in a real day. Prints the logger's /proc I/O counters:
# wchar (bytes handed to write) and write_bytes (bytes that reached the block device).
# Needs mosquitto, mosquitto_pub and python3. Usage: scripts/bench-logger-disk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin linkymon --example gen_states
target="${CARGO_TARGET_DIR:-target}/release"
dir=$(mktemp -d)
trap 'kill $logger $broker 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$dir/mosquitto.conf"
printf 'mqtt:\n  host: 127.0.0.1\n  port: %s\nlogger:\n  dir: %s/logs\n  pages_dir: %s/pages\n  pages_interval: 1s\nprices:\n  sets:\n    - {from: 2000-01-01, kwh: {hn: 0.1386, pm: 0.7524}}\n' \
  "$port" "$dir" "$dir" >"$dir/config.yaml"
"$target/examples/gen_states" "$(TZ=Europe/Paris date +%F)" 10 >"$dir/states.jsonl"
# dygraphs is copied once per installation, not per day: copy it before measuring.
mkdir -p "$dir/pages/assets"
cp /usr/share/javascript/dygraphs/dygraph.min.{js,css} "$dir/pages/assets/" 2>/dev/null || true
mosquitto -c "$dir/mosquitto.conf" >/dev/null 2>&1 & broker=$!
sleep 0.5
"$target/linkymon" logger -c "$dir/config.yaml" 2>"$dir/logger.err" & logger=$!
sleep 1.5
python3 - "$dir/states.jsonl" <<'PY' | mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -l -t linky/021728123456/state
import sys, time
t0 = time.time()
for i, line in enumerate(open(sys.argv[1])):
    sys.stdout.write(line); sys.stdout.flush()
    delay = t0 + (i + 1) / 30.0 - time.time()
    if delay > 0: time.sleep(delay)
PY
sleep 3
echo "log: $(cat "$dir"/logs/*.log | wc -l) lines, $(cat "$dir"/logs/*.log | wc -c) bytes; today's page: $(wc -c <"$dir"/pages/*-*.html) bytes"
grep -E '^(wchar|write_bytes)' "/proc/$logger/io"
