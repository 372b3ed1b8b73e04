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
ensure_debs python3-jinja2

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The build without the embedded broker (for boxes that use mosquitto) must keep compiling.
cargo clippy --all-targets --locked --no-default-features -- -D warnings
cargo test --locked
# The release build, as the README's first command makes it.
cargo build --release --locked
# The Pis' builds (ARMv6, arm64): their unit tests and commands under qemu.
./scripts/cross.sh test
