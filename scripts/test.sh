#!/usr/bin/env bash
# Installs what the tests need (when missing) and runs every check CI runs:
# formatting, clippy with warnings as errors, the whole test suite, and the ARM builds'
# tests under qemu (scripts/cross.sh test).
# Works on a fresh Debian machine with only Rust installed; needs root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use as real parts (a broker, a pseudo-terminal, a browser,
# the dygraphs the pages copy, and openssl for the TLS tests' certificates, PostgreSQL for the fleet tests).
. scripts/lib.sh
ensure_debs mosquitto mosquitto-clients socat chromium libjs-dygraphs openssl postgresql
# systemd-analyze (tests/integration/kit.rs verifies the units); Node.js for Node-RED.
ensure_debs systemd nodejs
command -v npm >/dev/null || ensure_debs npm
# Node-RED for tests/integration/node_red.rs: pinned, installed once into a cache directory
# outside the repository (where the test looks for it), shared by every checkout.
node_red_version=4.1.8
node_red_dir="${XDG_CACHE_HOME:-$HOME/.cache}/linkymon-node-red"
if [ "$(node -p "require('$node_red_dir/node_modules/node-red/package.json').version" 2>/dev/null)" != "$node_red_version" ]; then
  echo "installing: node-red@$node_red_version into $node_red_dir"
  mkdir -p "$node_red_dir"
  npm install --prefix "$node_red_dir" --no-audit --no-fund --omit=dev --loglevel=error \
    "node-red@$node_red_version" >/dev/null
fi
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
