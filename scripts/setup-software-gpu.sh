#!/usr/bin/env bash
# A software GPU for the test suite: Mesa's lavapipe (Vulkan on the CPU, LLVM-compiled shaders) from
# Debian bookworm-backports, unpacked into .cache/vulkan-sw (nothing is installed system-wide but the
# few shared libraries it links, from Debian's main archive). Dawn (the `webgpu` npm package) accepts
# Mesa 25's lavapipe; Debian 12's own Mesa 22.3 is refused ("shaderUniform*ArrayDynamicIndexing
# required"). With it, `npm test` runs the webgpu training backend's real WGSL kernels on any Linux
# machine. Only tests use it: automatic backend selection never picks a software adapter.
#
#   bash scripts/setup-software-gpu.sh          (idempotent; called by scripts/setup.sh)
#   eval "$(bash scripts/setup-software-gpu.sh --env)"   # LD_LIBRARY_PATH and VK_ICD_FILENAMES for a shell
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="$PWD/.cache/vulkan-sw"
LIB="$DEST/root/usr/lib/x86_64-linux-gnu"
ICD="$DEST/lvp_icd.json"

if [ "${1:-}" = "--env" ]; then
  [ -f "$DEST/ok" ] || { echo "setup-software-gpu: not set up; run: bash scripts/setup-software-gpu.sh" >&2; exit 1; }
  echo "export LD_LIBRARY_PATH=\"$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\" VK_ICD_FILENAMES=\"$ICD\""
  exit 0
fi

if [ -f "$DEST/ok" ]; then
  echo "setup-software-gpu: present in $DEST"
  exit 0
fi
if [ "$(uname -m)" != "x86_64" ] || ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "setup-software-gpu: skipped (needs x86_64 Debian/Ubuntu with apt); the webgpu tests will be skipped" >&2
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lists/partial" "$WORK/debs"
cat > "$WORK/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm-backports main
deb http://deb.debian.org/debian bookworm main
EOF
APT=(-o "Dir::Etc::SourceList=$WORK/sources.list" -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::State::Lists=$WORK/lists"
     -o "Dir::Cache::archives=$WORK/debs" -o "APT::Sandbox::User=root")
echo "setup-software-gpu: downloading Mesa lavapipe (bookworm-backports) and the Vulkan loader"
apt-get "${APT[@]}" update -qq
(cd "$WORK/debs" && apt-get "${APT[@]}" download -qq \
  mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports libvulkan1/bookworm)

rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp/root"
for f in "$WORK"/debs/*.deb; do dpkg -x "$f" "$DEST.tmp/root"; done
TMPLIB="$DEST.tmp/root/usr/lib/x86_64-linux-gnu"
[ -f "$TMPLIB/libvulkan_lvp.so" ] || { echo "setup-software-gpu: libvulkan_lvp.so missing from the unpacked packages" >&2; exit 1; }

# The libraries lavapipe links that the machine lacks come from Debian's main archive (as root).
missing=$(LD_LIBRARY_PATH="$TMPLIB" ldd "$TMPLIB/libvulkan_lvp.so" | awk '/not found/ {print $1}' || true)
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-software-gpu: lavapipe needs libraries this machine lacks ($missing); run as root" >&2
    exit 1
  fi
  pkgs=$(dpkg-deb -f "$WORK"/debs/mesa-vulkan-drivers_*.deb Depends | tr ',' '\n' | sed 's/[ (].*//; s/^ *//' | grep -v '^libdrm\|^libvulkan1\|^libc6$\|^libgcc-s1$\|^libstdc++6$' | sort -u)
  echo "setup-software-gpu: installing lavapipe's libraries: $pkgs"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
if LD_LIBRARY_PATH="$TMPLIB" ldd "$TMPLIB/libvulkan_lvp.so" | grep -q "not found"; then
  echo "setup-software-gpu: still unresolved: $(LD_LIBRARY_PATH="$TMPLIB" ldd "$TMPLIB/libvulkan_lvp.so" | grep 'not found')" >&2
  exit 1
fi

# The ICD manifest names the driver by absolute path (the unpacked one, not a system copy).
cat > "$DEST.tmp/lvp_icd.json" <<EOF
{ "file_format_version": "1.0.0", "ICD": { "library_path": "$LIB/libvulkan_lvp.so", "api_version": "1.4.305" } }
EOF
ls "$WORK"/debs/*.deb | xargs -n1 basename > "$DEST.tmp/packages.txt"
touch "$DEST.tmp/ok"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "setup-software-gpu: lavapipe ready in $DEST ($(tr '\n' ' ' < "$DEST/packages.txt"))"
