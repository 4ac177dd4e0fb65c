#!/usr/bin/env bash
# Installs mpdet's build and test dependencies from Debian 12 packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  cmake ninja-build g++ pkg-config git ca-certificates \
  libopencv-dev nlohmann-json3-dev libcli11-dev libpugixml-dev libgtest-dev \
  python3 python3-matplotlib g++-aarch64-linux-gnu qemu-user \
  libvulkan-dev glslang-tools mesa-vulkan-drivers vulkan-validationlayers \
  >/dev/null
echo "mpdet dependencies installed"
