#!/usr/bin/env bash
# Installs every Debian package that building, testing and benchmarking thaw needs.
# Safe to run repeatedly; skips apt when everything is already present.
set -euo pipefail
PKGS=(
  build-essential make pkg-config clang libclang-rt-14-dev llvm
  musl-tools cpio
  libcmocka-dev libjansson-dev liburing-dev libmicrohttpd-dev
  python3.11 python3-pyaes python3-chameleon python3-png
  python3-numpy python3-pil python3-scipy python3-sklearn python3-torch python3-opencv
  libpng-dev zlib1g-dev
  libseccomp-dev libarchive-dev libcurl4-openssl-dev libxxhash-dev nettle-dev liblz4-dev
  prometheus hey wrk gnuplot-nox python3-matplotlib
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
