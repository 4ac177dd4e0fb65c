#!/usr/bin/env bash
# Installs what the aarch64 cross build (cmake/aarch64-linux-gnu.cmake) needs on a Debian 12 host:
# the cross compiler and qemu-user from Debian, and an arm64 root holding the target's libraries
# (OpenCV, pugixml, GoogleTest, nlohmann_json, CLI11) with their headers and CMake files.
#
# Why a separate root and not Debian multiarch (`dpkg --add-architecture arm64`): libopencv-dev
# and libgdal32 are not "Multi-Arch: same", so installing libopencv-dev:arm64 (or the imgcodecs /
# videoio libraries, through gdal) removes the amd64 OpenCV that the native build needs.
# mmdebstrap --variant=extract unpacks the arm64 packages and their dependencies into a directory
# without running them, next to the untouched host packages.
#
# Idempotent: the root is rebuilt only when missing or made from another package list.
# MPDET_ARM_ROOT chooses the directory (default /opt/mpdet-arm64-root, outside the repository).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
ROOT="${MPDET_ARM_ROOT:-/opt/mpdet-arm64-root}"
PACKAGES="libopencv-dev,libpugixml-dev,libgtest-dev,nlohmann-json3-dev,libcli11-dev"
MIRROR="${MPDET_DEBIAN_MIRROR:-http://deb.debian.org}"

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  cmake ninja-build pkg-config python3 ca-certificates \
  g++-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user mmdebstrap \
  >/dev/null

stamp="$ROOT/.mpdet-packages"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PACKAGES" ]; then
  echo "arm64 root $ROOT is up to date"
else
  $SUDO rm -rf "$ROOT"
  $SUDO mmdebstrap --quiet --variant=extract --architectures=arm64 --include="$PACKAGES" bookworm "$ROOT" \
    "deb $MIRROR/debian bookworm main" \
    "deb $MIRROR/debian bookworm-updates main" \
    "deb $MIRROR/debian-security bookworm-security main"
  echo "$PACKAGES" | $SUDO tee "$stamp" >/dev/null
  echo "arm64 root written to $ROOT"
fi
echo "mpdet aarch64 dependencies installed"
