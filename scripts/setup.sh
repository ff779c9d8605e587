#!/usr/bin/env bash
# One command that installs everything langchain-dpr needs on a fresh Debian/Ubuntu machine:
#   1. system packages (apt, when run as root): libfaiss-dev, OpenBLAS (OpenMP build), build tools,
#      Jupyter's nbconvert for the notebooks;
#   2. npm dependencies exactly as locked, with onnxruntime-node's CUDA download skipped and no
#      install scripts (faiss-node's would download a prebuilt binary and fail offline);
#   3. the native parts, compiled here against the system faiss (scripts/build-native.sh);
#   4. a software GPU for the tests of the webgpu training backend: Mesa's lavapipe from Debian
#      bookworm-backports, unpacked into .cache/vulkan-sw (scripts/setup-software-gpu.sh).
# Safe to run again: each step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libfaiss-dev libopenblas0-openmp libopenblas-openmp-dev build-essential python3 jupyter-nbconvert python3-ipykernel)

source scripts/apt-packages.sh
ensure_apt_packages setup "${APT_PACKAGES[@]}"

echo "setup: npm dependencies"
ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts --no-audit --no-fund

echo "setup: native parts"
bash scripts/build-native.sh

echo "setup: software GPU for the webgpu tests"
bash scripts/setup-software-gpu.sh

echo "setup: done"
