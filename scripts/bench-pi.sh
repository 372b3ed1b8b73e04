#!/usr/bin/env bash
# The footprint on the Pis, measured (a report, not a test):
#  1. stripped sizes of the release binaries, this machine's and the Pis' (scripts/cross.sh),
#     with and without the embedded broker;
#  2. peak RSS and CPU time per frame of `linkymon run` on a long replay (a capture repeated,
#     as fast as it goes) with the png screen, publishing to a mosquitto, natively and under
#     qemu (the ARMv6 build on the Pi Zero's CPU, the arm64 one).
# Under qemu-user the RSS is qemu's process: linkymon plus qemu itself (its code and the cache
# of translated code), so it is above what the Pi would see; the native figure is linkymon
# alone. CPU times under qemu are this machine's, emulating: not a Pi's.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_debs time mosquitto
target_dir=${CARGO_TARGET_DIR:-target}
out=$(mktemp -d)
targets=(arm-unknown-linux-gnueabi aarch64-unknown-linux-gnu)

echo "== stripped release binaries (bytes)"
for features in --no-default-features ""; do
  # shellcheck disable=SC2086 # an empty $features is no argument
  cargo build --release --locked -q $features
  cp "$target_dir/release/linkymon" "$out/x86_64${features:+-nobroker}"
  for target in "${targets[@]}"; do
    # shellcheck disable=SC2086
    CROSS_TARGETS=$target scripts/cross.sh build -q $features >/dev/null
    cp "$target_dir/$target/release/linkymon" "$out/${target%%-*}${features:+-nobroker}"
  done
done
for bin in x86_64 aarch64 arm; do
  printf '%-8s with the broker %9d   without %9d\n' "$bin" \
    "$(stat -c %s "$out/$bin")" "$(stat -c %s "$out/$bin-nobroker")"
done

# A long replay: the noisiest capture, 40 times (about 3,000 frames).
for _ in $(seq 40); do cat tests/fixtures/captures/hist-3p-base-stm32-evening-noisy.tic; done \
  >"$out/long.tic"
frames=$("$out/x86_64" decode "$out/long.tic" 2>&1 >/dev/null | sed -n 's/^frames ok \([0-9]*\),.*/\1/p')

port=$((20000 + RANDOM % 40000))
mosquitto -p "$port" >/dev/null 2>&1 &
broker=$!
trap 'kill $broker' EXIT
cat >"$out/config.yaml" <<EOF
meter:
  port: replay:$out/long.tic
  replay_speed: 0
mqtt:
  port: $port
  spool_dir: $out/spool
display:
  driver: png
  png_path: $out/screen.png
EOF
sleep 1

echo "== linkymon run, $frames frames, png screen, mosquitto"
measure() {
  local name=$1
  shift
  /usr/bin/time -f '%M %U %S' -o "$out/time" "$@" run -c "$out/config.yaml" 2>/dev/null
  awk -v name="$name" -v frames="$frames" '{
    printf "%-28s peak RSS %6d kB   CPU %6.2f s = %5.0f µs per frame\n",
      name, $1, $2 + $3, ($2 + $3) * 1e6 / frames }' "$out/time"
}
measure "x86_64 (native)" "$out/x86_64"
measure "arm64 (qemu)" qemu-aarch64-static -L /usr/aarch64-linux-gnu "$out/aarch64"
measure "ARMv6 (qemu -cpu arm1176)" qemu-arm-static -cpu arm1176 "$out/arm"
measure "ARMv6, no broker (qemu)" qemu-arm-static -cpu arm1176 "$out/arm-nobroker"
rm -rf "$out"
