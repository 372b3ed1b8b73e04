#!/usr/bin/env bash
# Regenerates link/hot-text.ld: the functions `linkymon run` executes, which build.rs has the
# linker gather at the start of the code (release builds).
#
# Why: the kernel maps a binary's code 64 kB around every page a process touches, and the
# functions `run` executes (about 600 kB) are otherwise spread over all 3 MB of code, so most
# of it ends up resident. Gathered, the rest stays on disk: about 1 MB less RSS (README,
# "Figures").
#
# How: two builds with their symbols, the release one and the one `cargo bench` measures,
# run under valgrind's callgrind as a user runs them: on a pseudo-terminal (socat) fed with a
# historic capture (with every key of config.example.yaml) and then a standard one (with a
# minimal configuration), publishing to a real mosquitto that goes away and comes back,
# past the first one-minute `diag`, until SIGTERM.
# Every function callgrind saw run in a binary becomes a pattern of the script, without the
# parts of its symbol that change from build to build (hashes, crate disambiguators), so the
# script also fits the ARM builds and survives small code changes: a function missing from
# it only costs a few resident pages. The most called come first, so that a wake-up at the
# line rate touches few pages. Rerun this after larger changes to what `run` does;
# `cargo bench --bench daemon` shows the RSS.
#
#   scripts/hot-text.sh [SECONDS]   each run's length (default 70: the first diag is at 60)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_debs valgrind mosquitto socat
seconds=${1:-70}
captures=(tests/fixtures/captures/hist-1p-tempo-pyteleinfo.tic
  tests/fixtures/captures/std-1p-prod-hc-teleinfo2mqtt.tic)
target_dir=${CARGO_TARGET_DIR:-target}/hot-text
work=$(mktemp -d)
pids=()
cleanup() {
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The release build with its symbols, which callgrind names functions by, and the one
# `cargo bench --bench daemon` measures (bench profile): the two inline a few functions
# differently, and a function left out costs a 64 kB block. Given as a rustc flag (added to
# .cargo/config.toml's), `strip=none` leaves the code as in the stripped builds.
binaries=()
for build in "build --release" "bench --bench daemon --no-run"; do
  # shellcheck disable=SC2086 # $build is the cargo subcommand and its arguments
  env -u RUSTFLAGS CARGO_TARGET_DIR="$target_dir" \
    cargo $build --locked -q --config 'build.rustflags=["-C", "strip=none"]'
  binaries+=("$work/linkymon-${build%% *}")
  cp "$target_dir/release/linkymon" "${binaries[-1]}"
done

port=$((20000 + RANDOM % 20000))
mosquitto -p "$port" >/dev/null 2>&1 &
pids+=($!)
socat "pty,raw,echo=0,link=$work/meter" "pty,raw,echo=0,link=$work/feed" 2>/dev/null &
pids+=($!)
until [ -e "$work/meter" ] && [ -e "$work/feed" ]; do sleep 0.1; done
# Two configurations: every key of config.example.yaml, so parsing each kind of value is
# profiled, with an environment variable as containers set them (historic capture); and the
# few keys most users write, with every frame published (standard capture).
sed -e "s|^  port: /dev/ttyAMA0|  port: $work/meter|" -e "s|^  port: 1883|  port: $port|" \
  -e "s|^  spool_dir: .*|  spool_dir: $work/spool|" -e "s|^  prices: {}|  prices: {HN: 0.1386, PM: 0.7524}|" \
  config.example.yaml >"$work/hist-1p-tempo-pyteleinfo.yaml"
cat >"$work/std-1p-prod-hc-teleinfo2mqtt.yaml" <<EOF
meter:
  port: $work/meter
  mode: standard
mqtt:
  host: 127.0.0.1
  port: $port
  spool_dir: $work/spool
publish:
  interval: 0
EOF

for binary in "${binaries[@]}"; do
  for capture in "${captures[@]}"; do
    echo "profiling \`$(basename "$binary") run\` on $capture for ${seconds}s"
    rm -rf "$work/spool"
    name=$(basename "$capture" .tic)
    [[ $name == hist-* ]] && host=(LINKYMON_MQTT__HOST=127.0.0.1) || host=()
    env -u RUST_BACKTRACE "${host[@]}" valgrind --tool=callgrind --demangle=no \
      --callgrind-out-file="$work/$(basename "$binary")-$name.out" "$binary" run -c "$work/$name.yaml" 2>"$work/daemon.log" &
    daemon=$!
    sleep 5
    # At about the line's pace (9600 baud), in small writes as a USB adapter delivers them.
    # Halfway, the broker goes away for a while (the spool keeps the states) and comes back.
    size=$(stat -c %s "$capture")
    for ((block = 0; block * 96 < size; block++)); do
      dd if="$capture" bs=96 skip=$block count=1 status=none >"$work/feed"
      sleep 0.1
      if ((block == size / 96 / 2)); then
        kill "${pids[0]}"
      fi
    done
    mosquitto -p "$port" >/dev/null 2>&1 &
    pids[0]=$!
    sleep "$seconds"
    kill -TERM "$daemon"
    wait "$daemon" || { cat "$work/daemon.log" >&2; exit 1; }
  done
done

# Every function run in the binaries, with how many times it was called in all the runs:
# callgrind names a function once per file, `fn=(id) name`, then by id only, in fn= and cfn=
# lines alike, and a `cfn=` line names the callee of the `calls=N` line after it. Which object
# a function is in, callgrind does not always know (`ob=(2) ???`), so a name counts when a
# binary defines it as code.
executed() {
  awk '
    FNR == 1 { delete names }
    /^c?fn=\(/ {
      rest = substr($0, index($0, "(") + 1)
      id = substr(rest, 1, index(rest, ")") - 1)
      name = substr(rest, index(rest, ")") + 2)
      if (name != "") names[id] = name
      if ($0 ~ /^fn=/) ran[names[id]] = 1
      else callee = names[id]
    }
    /^calls=/ { split(substr($0, 7), n, " "); count[callee] += n[1] }
    END { for (f in ran) print count[f] + 0 "\t" f }' "$work"/*.out | sed "s/'[0-9]*\$//" \
    | awk -F '\t' 'NR == FNR { code[$0] = 1; next } $2 in code' <(for binary in "${binaries[@]}"; do
      nm --defined-only "$binary"
    done | awk '$2 ~ /^[tT]$/ { print $3 }') -
}

# Patterns without what changes between builds: the v0 symbols' crate disambiguators
# (Cs<hash>_), which differ between targets and profiles, and back-references (B<offset>_),
# whose offsets follow them; LLVM's suffixes on local copies (.llvm.N, .N); the crate a
# generic function was instantiated in (its copies are the same code); legacy symbols'
# hashes (17h<hash>E), for a build made with RUSTFLAGS of its own, which replace
# .cargo/config.toml's.
generalise() {
  sed -e 's/Cs[0-9A-Za-z]*_/Cs*_/g' -e 's/B[0-9A-Za-z]*_/B*_/g' \
    -e 's/\.llvm\.[0-9]*$//' -e 's/\.[0-9]*$//' -e 's/E\(Cs\*_[0-9]*[0-9A-Za-z_]*\|B\*_\)$/E*/' \
    -e 's/17h[0-9a-f]\{16\}E.*$/17h*/'
}

# The most called first: what runs for every frame and every wake-up then sits in a few
# pages, which a wake-up after a quiet 100 ms finds cold. Start-up code comes last.
patterns=$(executed | generalise | awk -F '\t' '
    !($2 in most) || $1 + 0 > most[$2] { most[$2] = $1 + 0 }
    END { for (p in most) print most[p] "\t" p }' \
  | LC_ALL=C sort -t "$(printf '\t')" -k1,1nr -k2,2 | cut -f2)

{
  echo "/* Generated by scripts/hot-text.sh from callgrind runs of \`linkymon run\`: do not edit."
  echo "   The functions it executes, gathered before the rest of the code (build.rs). */"
  echo "SECTIONS {"
  echo "  .text.hot : {"
  while read -r pattern; do
    echo "    *(.text.$pattern .text.$pattern.* .text.unlikely.$pattern .text.unlikely.$pattern.*)"
  done <<<"$patterns"
  echo "  }"
  echo "}"
  echo "INSERT BEFORE .text;"
} >link/hot-text.ld
echo "link/hot-text.ld: $(wc -l <<<"$patterns") patterns"
