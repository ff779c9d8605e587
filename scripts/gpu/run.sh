#!/usr/bin/env bash
# Runs the GPU check from a bundle made by scripts/gpu/build-bundle.sh, on a Linux x86-64 machine with
# a GPU driver and no Node.js: unpacks Node, Dawn and the bundled check into a temporary folder, finds
# the Vulkan loader (the system's, else the bundled .debs unpacked privately: nothing is installed) and
# the GPU's Vulkan driver, runs the check, and leaves in $OUT (default ./gpu-out):
#   report.json  every stage's result      log.txt  what the check printed
#   nvidia-smi.txt (when there is one)     model.tar.xz.part-*  the e2e model folder, in 15 MiB parts
#
#   bash .gpu-bundle/run.sh [gpu-check flags, e.g. --stages env,agree,speed --e2e-minutes 4]
# Environment: GPU_CHECK_TIMEOUT (seconds, default 540), VK_ICD_FILENAMES (kept when set).
set -uo pipefail
B="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
W="$(mktemp -d /tmp/gpu-check.XXXXXX)"
say() { echo "run.sh: $*" | tee -a "$OUT/log.txt" >&2; }

xz -dc "$B/node.xz" > "$W/node" && chmod +x "$W/node" || { say "cannot unpack node"; exit 1; }
"$W/node" --version >/dev/null || { say "the bundled node does not run here: $("$W/node" --version 2>&1 | head -1)"; exit 1; }
mkdir -p "$W/app/node_modules/webgpu/dist/linux-x64"
cp "$B/webgpu/index.js" "$B/webgpu/package.json" "$W/app/node_modules/webgpu/"
xz -dc "$B/webgpu/dawn.node.xz" > "$W/app/node_modules/webgpu/dist/linux-x64/dawn.node"
xz -dc "$B/gpu-check.mjs.xz" > "$W/app/gpu-check.mjs"
DATA_ARGS=()
if [ -f "$B/data.tar.xz" ]; then
  mkdir -p "$W/data" && tar -C "$W/data" -xJf "$B/data.tar.xz" && DATA_ARGS=(--data "$W/data")
fi

# The Vulkan loader: the system's, else the bundled one (unpacked into $W, never into /).
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
  for d in "$B"/debs/*.deb; do [ -f "$d" ] && dpkg-deb -x "$d" "$W/vk"; done
  if [ -d "$W/vk/usr/lib/x86_64-linux-gnu" ]; then
    export LD_LIBRARY_PATH="$W/vk/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "Vulkan loader: bundled ($(ls "$B"/debs | tr '\n' ' '))"
  else
    say "no Vulkan loader on this machine and none bundled"
  fi
else
  say "Vulkan loader: the system's"
fi
# The GPU's Vulkan driver (NVIDIA ships its ICD manifest with the driver; container images often
# mount the driver under /usr/local/nvidia).
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
           /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json \
           /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    if [ -f "$f" ]; then export VK_ICD_FILENAMES="$f" VK_DRIVER_FILES="$f"; break; fi
  done
fi
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  f=$(find /usr /etc /opt -maxdepth 7 -name 'nvidia_icd*.json' 2>/dev/null | head -1)
  if [ -n "$f" ]; then
    export VK_ICD_FILENAMES="$f" VK_DRIVER_FILES="$f"
  else
    # No manifest, but the driver library that holds NVIDIA's Vulkan driver: describe it ourselves.
    lib=$( (ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0 / {print $NF; exit}'); ls /usr/local/nvidia/lib64/libGLX_nvidia.so.0 2>/dev/null) 
    lib=$(echo "$lib" | head -1)
    if [ -n "$lib" ]; then
      echo "{ \"file_format_version\": \"1.0.0\", \"ICD\": { \"library_path\": \"$lib\", \"api_version\": \"1.3.0\" } }" > "$W/nvidia_icd.json"
      export VK_ICD_FILENAMES="$W/nvidia_icd.json" VK_DRIVER_FILES="$W/nvidia_icd.json"
    fi
  fi
fi
say "Vulkan driver manifest: ${VK_ICD_FILENAMES:-none found (Dawn will report no adapter)}"
[ -n "${VK_ICD_FILENAMES:-}" ] && [ -f "$VK_ICD_FILENAMES" ] && cat "$VK_ICD_FILENAMES" >> "$OUT/log.txt"
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
cat "$B/MANIFEST.txt" >> "$OUT/log.txt" 2>/dev/null
uname -a >> "$OUT/log.txt"

LIMIT="${GPU_CHECK_TIMEOUT:-540}"
say "running the check (at most ${LIMIT} s)"
timeout --signal=TERM --kill-after=15 "$LIMIT" "$W/node" "$W/app/gpu-check.mjs" --out "$W/result" \
  --budget-seconds "$((LIMIT - 30))" "${DATA_ARGS[@]}" "$@" >> "$OUT/log.txt" 2>&1
code=$?
say "gpu-check exited $code"
[ -f "$W/result/report.json" ] && cp "$W/result/report.json" "$OUT/"
if [ -d "$W/result/e2e/ft/model" ]; then
  tar -C "$W/result/e2e/ft" -cf - model | xz -T0 -6 | split -b 15m - "$OUT/model.tar.xz.part-"
  say "model folder: $(du -sh "$W/result/e2e/ft/model" | cut -f1), in $(ls "$OUT"/model.tar.xz.part-* | wc -l) part(s)"
fi
exit "$code"
