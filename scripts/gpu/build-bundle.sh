#!/usr/bin/env bash
# Packs the GPU check for a GPU machine that has a GPU driver but no Node.js, no npm and no network
# (our H200 machine: CUDA and Python only; at most 64 MiB of files reach it, this repo included):
#
#   node.xz            this machine's Node.js binary, stripped and xz-compressed
#   webgpu/            the `webgpu` package's index.js, package.json and dawn.node (xz): Dawn, Vulkan backend
#   gpu-check.mjs.xz   esbuild bundle of scripts/gpu-check.ts (TF.js, tfjs-backend-webgpu, the trainer)
#   data.tar.xz        the BEIR folder given (corpus.jsonl, queries.jsonl, qrels/) for the e2e stage
#   debs/              the Vulkan loader and GLVND as Debian .deb files, unpacked there only if missing
#   run.sh             what runs there (scripts/gpu/run.sh)
#
#   bash scripts/gpu/build-bundle.sh --data /path/to/scifact [--out .gpu-bundle] [--no-debs]
# Then, on the machine: bash .gpu-bundle/run.sh [gpu-check flags]; results in $OUT (or ./gpu-out).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=.gpu-bundle
DATA=""
DEBS=1
XZ_LEVEL="${XZ_LEVEL:-6}"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --out) OUTDIR="$2"; shift 2 ;;
    --no-debs) DEBS=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-bundle: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || { echo "build-bundle: builds a linux-x64 bundle; this is $(uname -s)-$(uname -m)" >&2; exit 1; }
DAWN=node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$DAWN" ] || { echo "build-bundle: $DAWN is missing; install the optional packages: npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0" >&2; exit 1; }
if [ -n "$DATA" ]; then
  for f in corpus.jsonl queries.jsonl qrels/train.tsv qrels/test.tsv; do
    [ -f "$DATA/$f" ] || { echo "build-bundle: --data $DATA has no $f (a BEIR folder with train and test splits is needed)" >&2; exit 1; }
  done
fi

rm -rf "$OUTDIR.tmp"
mkdir -p "$OUTDIR.tmp/webgpu" "$OUTDIR.tmp/debs"
T="$OUTDIR.tmp"

echo "build-bundle: esbuild bundle of scripts/gpu-check.ts"
npx esbuild scripts/gpu-check.ts --bundle --platform=node --format=esm --target=node20 --log-level=error \
  --outfile="$T/gpu-check.mjs" --external:webgpu --external:onnxruntime-node \
  --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --banner:js="import { createRequire as __langchainDprRequire } from 'node:module'; const require = __langchainDprRequire(import.meta.url);"
xz -T0 -9 "$T/gpu-check.mjs"

echo "build-bundle: Node.js $(node --version) binary (stripped, xz -$XZ_LEVEL)"
cp "$(readlink -f "$(command -v node)")" "$T/node"
if command -v strip >/dev/null; then strip "$T/node"; fi
xz -T0 "-$XZ_LEVEL" "$T/node"

echo "build-bundle: webgpu $(node -p 'require("./node_modules/webgpu/package.json").version') (dawn.node, xz)"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$T/webgpu/"
xz -T0 -9 -c "$DAWN" > "$T/webgpu/dawn.node.xz"

if [ -n "$DATA" ]; then
  echo "build-bundle: data from $DATA"
  tar -C "$DATA" -cf - corpus.jsonl queries.jsonl qrels | xz -T0 -9 > "$T/data.tar.xz"
fi

if [ "$DEBS" = 1 ]; then
  echo "build-bundle: Vulkan loader and GLVND .debs (Debian bookworm)"
  LISTS="$(mktemp -d)"
  trap 'rm -rf "$LISTS"' EXIT
  mkdir -p "$LISTS/lists/partial"
  echo "deb http://deb.debian.org/debian bookworm main" > "$LISTS/sources.list"
  APT=(-o "Dir::Etc::SourceList=$LISTS/sources.list" -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::State::Lists=$LISTS/lists" -o "APT::Sandbox::User=root")
  apt-get "${APT[@]}" update -qq
  (cd "$T/debs" && apt-get "${APT[@]}" download -qq libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libx11-6 libx11-data libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 libxext6)
fi

cp scripts/gpu/run.sh "$T/run.sh"
cat > "$T/MANIFEST.txt" <<EOM
built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD 2>/dev/null || echo "?")$(git diff --quiet 2>/dev/null || echo " (with uncommitted changes)")
node $(node --version), webgpu $(node -p 'require("./node_modules/webgpu/package.json").version'), tfjs $(node -p 'require("./node_modules/@tensorflow/tfjs-core/package.json").version')
data: ${DATA:-none}
EOM
rm -rf "$OUTDIR"
mv "$T" "$OUTDIR"

bundle=$(du -sb "$OUTDIR" | cut -f1)
tracked=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((bundle + tracked))
limit=$((64 * 1024 * 1024))
awk -v d="$OUTDIR" -v b="$bundle" -v t="$tracked" 'BEGIN { printf "build-bundle: %s is %.1f MiB; with the working tree (%.1f MiB) %.1f MiB of the 64 MiB a device call carries\n", d, b/1048576, t/1048576, (b+t)/1048576 }'
if [ "$total" -gt "$limit" ]; then echo "build-bundle: over 64 MiB: the device call would be refused" >&2; exit 1; fi
