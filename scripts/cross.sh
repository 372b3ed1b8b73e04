#!/usr/bin/env bash
# Builds linkymon for the Raspberry Pis and tests those builds under qemu-user.
#
#   scripts/cross.sh build [CARGO_ARGS...]  release binaries in target/<triple>/release/
#                                           (--no-default-features: without the broker)
#   scripts/cross.sh test                   under qemu, for each target: the library's unit
#                                           tests, `linkymon decode` on a capture, and a
#                                           short `linkymon run` on a replay with the png
#                                           screen and the embedded broker, ended by SIGTERM
#
# The targets (CROSS_TARGETS, space separated; default both):
#   arm-unknown-linux-gnueabi  ARMv6: Pi Zero / Zero W / Pi 1. The C runtime is linked in
#                              (+crt-static): Debian's armhf runtime is ARMv7 code that
#                              crashes on ARMv6, and Raspberry Pi OS has no armel one.
#   aarch64-unknown-linux-gnu  the 64-bit Pis (Zero 2, 3, 4, 5 with a 64-bit OS).
#
# Installs what it needs when missing: Debian's cross gcc and C libraries (the linkers, and
# the C compilers for ring), qemu-user-static, and rustup's rust-src for a target rustup has
# no standard library for (it is then built from source). Nothing else is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

read -ra targets <<<"${CROSS_TARGETS:-arm-unknown-linux-gnueabi aarch64-unknown-linux-gnu}"
target_dir=${CARGO_TARGET_DIR:-target}

# Sets, for target $1, what cargo and the cc crate read (linker, C compiler, archiver, flags,
# the qemu runner), and `std_args`: the flags that build the standard library from source
# when rustup has none for the target.
setup_target() {
  local target=$1 gnu var
  case "$target" in
    arm-unknown-linux-gnueabi)
      gnu=arm-linux-gnueabi
      # The Pi Zero's CPU (ARM1176JZF-S), so an ARMv7 instruction would fail here too.
      runner="qemu-arm-static -cpu arm1176"
      rustflags="-C target-feature=+crt-static"
      ;;
    aarch64-unknown-linux-gnu)
      gnu=aarch64-linux-gnu
      # Dynamically linked: -L is where qemu finds the arm64 loader and C library.
      runner="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
      rustflags=
      ;;
    *)
      echo "cross.sh: unknown target $target" >&2
      exit 2
      ;;
  esac
  var=${target^^}
  var=${var//-/_}
  export "CARGO_TARGET_${var}_LINKER=$gnu-gcc" "CARGO_TARGET_${var}_RUNNER=$runner"
  [ -z "$rustflags" ] || export "CARGO_TARGET_${var}_RUSTFLAGS=$rustflags"
  export "CC_${target//-/_}=$gnu-gcc" "AR_${target//-/_}=$gnu-ar"
  std_args=()
  if ! rustup target list --installed | grep -qx "$target" &&
    ! rustup target add "$target" 2>/dev/null; then
    echo "rustup has no standard library for $target: building it from source"
    rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
    std_args=(-Zbuild-std)
  fi
}

# cargo SUBCOMMAND ARGS..., with the standard library built from source when needed.
cross_cargo() {
  if ((${#std_args[@]})); then
    # -Zbuild-std is unstable; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept it. Only
    # here, and only for a target without a prebuilt standard library (rustup's
    # arm-unknown-linux-gnueabi download is missing on this toolchain's channel).
    RUSTC_BOOTSTRAP=1 cargo "$1" "${std_args[@]}" "${@:2}"
  else
    cargo "$@"
  fi
}

# A TCP port nothing listens on, for the embedded broker of the `run` check.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
  echo "$port"
}

# Waits up to $2 seconds for `test $1 $3`; fails saying what did not come.
wait_for() {
  local what=$1 seconds=$2 path=$3
  for ((i = 0; i < seconds * 10; i++)); do
    test "$what" "$path" && return 0
    sleep 0.1
  done
  echo "cross.sh: no $path after $seconds s" >&2
  return 1
}

# `linkymon decode` and `linkymon run` of binary $1 under qemu, checked like a user would.
check_commands() {
  local bin=$1 dir port pid status
  dir=$(mktemp -d)
  local golden=tests/fixtures/golden/hist-3p-base-ticdecodecpp.tic
  echo "decode: one JSON object per frame, the same as on the build machine"
  $runner "$bin" decode tests/fixtures/captures/hist-3p-base-ticdecodecpp.tic \
    >"$dir/decode.jsonl" 2>"$dir/decode.err"
  diff -u "$golden.jsonl" "$dir/decode.jsonl"
  diff -u "$golden.summary" "$dir/decode.err"

  echo "run: a replay at the line's pace, the png screen, the embedded broker; SIGTERM"
  port=$(free_port)
  cat >"$dir/config.yaml" <<EOF
meter:
  port: replay:$PWD/tests/fixtures/captures/hist-3p-base-stm32-evening-noisy.tic
mqtt:
  port: $port
  embedded_broker: true
  spool_dir: $dir/spool
publish:
  interval: 0
display:
  driver: png
  png_path: $dir/screen.png
EOF
  $runner "$bin" run -c "$dir/config.yaml" 2>"$dir/run.err" &
  pid=$!
  # The png comes with the first frame; by then the broker listens. `linky/bridge/state`
  # matches the filter too: left out (-T).
  if ! wait_for -s 120 "$dir/screen.png" ||
    ! mosquitto_sub -p "$port" -t 'linky/+/state' -T 'linky/bridge/state' -C 1 -W 60 >"$dir/state.json"; then
    kill -KILL "$pid" 2>/dev/null || true
    cat "$dir/run.err" >&2
    return 1
  fi
  grep -q '"meter":"' "$dir/state.json"
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  if [ "$status" != 0 ] || ! head -c 8 "$dir/screen.png" | grep -q PNG; then
    echo "cross.sh: run ended with status $status, screen: $(ls -l "$dir/screen.png")" >&2
    cat "$dir/run.err" >&2
    return 1
  fi
  rm -rf "$dir"
}

test_target() {
  local target=$1 start=$SECONDS
  setup_target "$target"
  # The binary comes from a test build (the integration tests need it): built by
  # `cargo build`, it would have other features (no dev-dependencies) and rebuild most crates.
  cross_cargo test --locked --profile emulated --target "$target" --lib --test integration --no-run
  echo "== $target: unit tests under $runner"
  # All of them pass under qemu-user: none opens a serial port (qemu-user lacks some of the
  # serial ioctls; the integration tests, with their pseudo-terminals, are not run here).
  # Fewer property-test cases: here they check the code on the CPU, the host runs them all.
  PROPTEST_CASES=32 cross_cargo test --locked --profile emulated --target "$target" --lib
  check_commands "$target_dir/$target/emulated/linkymon"
  echo "== $target: tested under emulation in $((SECONDS - start)) s"
}

build_target() {
  local target=$1
  shift
  setup_target "$target"
  cross_cargo build --locked --release --target "$target" "$@"
  ls -l "$target_dir/$target/release/linkymon"
}

ensure_debs gcc-arm-linux-gnueabi libc6-dev-armel-cross gcc-aarch64-linux-gnu \
  libc6-dev-arm64-cross qemu-user-static mosquitto-clients

case "${1:-}" in
  build)
    shift
    for target in "${targets[@]}"; do build_target "$target" "$@"; done
    ;;
  test)
    for target in "${targets[@]}"; do test_target "$target"; done
    ;;
  *)
    echo "usage: scripts/cross.sh build [CARGO_ARGS...] | test" >&2
    exit 2
    ;;
esac
