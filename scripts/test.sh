#!/usr/bin/env bash
# Installs what the tests need (when missing) and runs every check CI runs:
# formatting, clippy with warnings as errors, and the whole test suite.
# Works on a fresh Debian machine with only Rust installed; needs root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use as real parts (a broker, a pseudo-terminal, a browser,
# the dygraphs the pages copy, and openssl for the TLS tests' certificates).
packages=(mosquitto mosquitto-clients socat chromium libjs-dygraphs openssl)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The build without the embedded broker (for boxes that use mosquitto) must keep compiling.
cargo clippy --all-targets --locked --no-default-features -- -D warnings
cargo test --locked
