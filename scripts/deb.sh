#!/usr/bin/env bash
# Builds linkymon's Debian packages with cargo-deb (installed from crates.io when missing),
# and checks the maintainer scripts by installing the amd64 package here.
#
#   scripts/deb.sh build [ARCH...]  amd64, arm64, armel (default: all three); the ARM
#                                   binaries come from scripts/cross.sh build. Prints the
#                                   paths of the packages.
#   scripts/deb.sh check            builds the amd64 package, then on this machine: dpkg -i,
#                                   then -r, then -P, checking the user, the configuration
#                                   (a conffile) and the units at each step. Needs root or
#                                   sudo, and refuses to run where linkymon is installed.
#                                   It leaves the linkymon user and the gpio and i2c groups.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

target_dir=${CARGO_TARGET_DIR:-target}
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

# dpkg-shlibdeps (in dpkg-dev) finds the C library version the binary needs.
ensure_debs dpkg-dev
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

# Builds the package for Debian architecture $1 and prints its path.
build_deb() {
  local arch=$1 target=""
  case "$arch" in
    amd64) ;; # this machine's
    arm64) target=aarch64-unknown-linux-gnu ;;
    # ARMv6 with its C runtime linked in: it runs on Raspberry Pi OS (armhf) too.
    armel) target=arm-unknown-linux-gnueabi ;;
    *)
      echo "deb.sh: unknown architecture $arch (amd64, arm64, armel)" >&2
      exit 2
      ;;
  esac
  local args=(--no-build --no-strip --output "$target_dir/debian/")
  if [ -z "$target" ]; then
    cargo build --release --locked >&2
  else
    CROSS_TARGETS=$target scripts/cross.sh build >&2
    args+=(--target "$target")
  fi
  # --no-build: cross.sh knows how to build for ARM; --no-strip: the profile strips.
  cargo deb "${args[@]}" | tail -n1
}

# Fails with $1 unless the rest of the arguments, run, succeed.
expect() {
  local what=$1
  shift
  "$@" || {
    echo "deb.sh: $what" >&2
    exit 1
  }
}

# dpkg -i, -r and -P of package $1, checking what each leaves.
check_deb() {
  local deb=$1 log
  log=$(mktemp)
  if dpkg-query -W -f='${Status}' linkymon 2>/dev/null | grep -q installed; then
    echo "deb.sh: linkymon is installed on this machine; the check would replace it" >&2
    exit 1
  fi

  echo "== dpkg -i $deb"
  $sudo dpkg -i "$deb" 2>&1 | tee "$log"
  expect "dpkg -i said something is wrong" bash -c "! grep -qiE 'error|warning' '$log'"
  expect "no linkymon system user with home /var/lib/linkymon" \
    bash -c "getent passwd linkymon | grep -q ':/var/lib/linkymon:/usr/sbin/nologin$'"
  for group in dialout gpio i2c; do
    expect "linkymon is not in $group" bash -c "id -nG linkymon | grep -qw $group"
  done
  expect "the configuration is not root:linkymon 640" \
    test "$(stat -c '%U:%G %a' /etc/linkymon/config.yaml)" = "root:linkymon 640"
  expect "the configuration is not a conffile" \
    bash -c "dpkg-query -W -f='\${Conffiles}' linkymon | grep -q /etc/linkymon/config.yaml"
  for unit in linkymon.service linkymon-logger.service; do
    expect "$unit is not installed" bash -c "dpkg -L linkymon | grep -q 'systemd/system/$unit$'"
  done
  expect "dygraphs is not recommended" \
    bash -c "dpkg-query -W -f='\${Recommends}' linkymon | grep -q libjs-dygraphs"
  expect "the installed linkymon does not decode" bash -c \
    "linkymon decode tests/fixtures/captures/hist-3p-base-ticdecodecpp.tic 2>/dev/null | grep -q '\"meter\"'"
  # The state directory the services would fill.
  $sudo touch /var/lib/linkymon/screen.png

  echo "== dpkg -r linkymon"
  $sudo dpkg -r linkymon 2>&1 | tee "$log"
  expect "dpkg -r said something is wrong" bash -c "! grep -qiE 'error|warning' '$log'"
  expect "remove left /usr/bin/linkymon" test ! -e /usr/bin/linkymon
  expect "remove left the units" bash -c "! ls /{usr/,}lib/systemd/system/linkymon*.service 2>/dev/null"
  expect "remove took the configuration" test -f /etc/linkymon/config.yaml
  expect "remove took the data" test -f /var/lib/linkymon/screen.png

  echo "== dpkg -P linkymon"
  $sudo dpkg -P linkymon 2>&1 | tee "$log"
  expect "dpkg -P said something is wrong" bash -c "! grep -qiE 'error|warning' '$log'"
  expect "purge left /etc/linkymon" test ! -e /etc/linkymon
  expect "purge left /var/lib/linkymon" test ! -e /var/lib/linkymon
  expect "purge left the package known to dpkg" \
    bash -c "! dpkg-query -W -f='\${Status}' linkymon 2>/dev/null | grep -q ."
  rm -f "$log"
  echo "deb.sh: install, remove and purge behave"
}

case "${1:-}" in
  build)
    shift
    (($#)) || set -- amd64 arm64 armel
    for arch in "$@"; do
      deb=$(build_deb "$arch")
      ls -l "$deb"
    done
    ;;
  check)
    check_deb "$(build_deb amd64)"
    ;;
  *)
    echo "usage: scripts/deb.sh build [amd64|arm64|armel...] | check" >&2
    exit 2
    ;;
esac
