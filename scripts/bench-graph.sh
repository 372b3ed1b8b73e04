#!/usr/bin/env bash
# Benchmarks `linkymon graph` over a generated year of daily logs (365 days, a line every
# 10 s): builds in release mode, generates the logs once into a scratch directory, then times
# the page build. Usage: scripts/bench-graph.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-${TMPDIR:-/tmp}/linkymon-bench-graph}"
cargo build --release --quiet --bin linkymon --example gen_logs
target="${CARGO_TARGET_DIR:-target}/release"
if [ ! -f "$dir/logs/2021-12-31.log" ]; then
  "$target/examples/gen_logs" "$dir/logs" 365 10
fi
printf 'logger:\n  pages_dir: %s/pages\nprices:\n  sets:\n    - {from: 2000-01-01, kwh: {hn: 0.1386, pm: 0.7524}}\n' "$dir" >"$dir/config.yaml"
rm -rf "$dir/pages"
echo "logs: $(ls "$dir"/logs/*.log | wc -l) files, $(cat "$dir"/logs/*.log | wc -l) lines, $(du -sh "$dir/logs" | cut -f1)"
start=$(date +%s.%N)
"$target/linkymon" graph -c "$dir/config.yaml" "$dir"/logs/*.log
end=$(date +%s.%N)
echo "linkymon graph: $(echo "$end - $start" | bc) s; pages: $(du -sh "$dir/pages" | cut -f1)"
