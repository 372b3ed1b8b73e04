#!/usr/bin/env bash
# Installs what the tests need (when missing) and runs every check CI runs:
# formatting, clippy with warnings as errors, the whole test suite, and the ARM builds'
# tests under qemu (scripts/cross.sh test).
# Works on a fresh Debian machine with only Rust installed; needs root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use as real parts (a broker, a pseudo-terminal, a browser,
# the dygraphs the pages copy, and openssl for the TLS tests' certificates).
. scripts/lib.sh
ensure_debs mosquitto mosquitto-clients socat chromium libjs-dygraphs openssl

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The build without the embedded broker (for boxes that use mosquitto) must keep compiling.
cargo clippy --all-targets --locked --no-default-features -- -D warnings
cargo test --locked
# The release build, as the README's first command makes it. build.rs links it with the
# functions `linkymon run` executes gathered (link/hot-text.ld), and it must not need libm:
# either slip costs every process hundreds of kB of RSS (README, "Figures").
cargo build --release --locked
release=${CARGO_TARGET_DIR:-target}/release/linkymon
hot_size=$(readelf -SW "$release" | sed -n 's/.* \.text\.hot *PROGBITS *[0-9a-f]* [0-9a-f]* \([0-9a-f]*\) .*/\1/p')
if ((16#${hot_size:-0} < 400 * 1024)); then
  echo "$release: $((16#${hot_size:-0} / 1024)) kB of gathered hot code (.text.hot); see scripts/hot-text.sh" >&2
  exit 1
fi
if readelf -d "$release" | grep -q 'NEEDED.*libm\.so'; then
  echo "$release: needs libm again, 330 kB more RSS (no exp, sin, powf: src/simulate.rs)" >&2
  exit 1
fi
# The Pis' builds (ARMv6, arm64): their unit tests and commands under qemu.
./scripts/cross.sh test
