#!/usr/bin/env bash
# Builds every native part of langchain-dpr against the system faiss (Debian libfaiss-dev 1.7.3,
# static) and OpenBLAS, from a checkout installed with `npm ci --ignore-scripts`:
#   1. faiss-node 0.5.1 from its own npm source (node_modules/faiss-node/src/faiss.cc) with our
#      binding.gyp (src/native/faiss-node/): node-addon-api 8 + C++ exceptions, so faiss errors are
#      JavaScript Errors instead of process aborts. Users keep faiss-node's API and index format.
#   2. our addon src/native/faiss_dpr.cc → src/native/build/Release/faiss_dpr.node (FaissDPRStore's
#      engine: Float32Array zero-copy, async workers, per-query nprobe/efSearch, ids, remove, merge).
# Idempotent and fast: a part is rebuilt only when its inputs (sources, gyp files, node version,
# libfaiss) changed; a stamp file next to each .node records the inputs' hash. FORCE=1 rebuilds.
# Offline: node-gyp uses the headers installed with node (/usr/include/node) via --nodedir.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

log() { echo "build-native: $*"; }
die() { echo "build-native: error: $*" >&2; exit 1; }

LIBFAISS="${LIBFAISS:-/usr/lib/x86_64-linux-gnu/libfaiss.a}"
[ -f /usr/include/faiss/index_factory.h ] || die "faiss headers not found (/usr/include/faiss); install libfaiss-dev"
[ -d node_modules/node-addon-api ] || die "node_modules/node-addon-api missing; run npm ci --ignore-scripts first"

NODE_GYP="$ROOT/node_modules/node-gyp/bin/node-gyp.js"
if [ ! -f "$NODE_GYP" ]; then
  NODE_GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
fi
[ -f "$NODE_GYP" ] || die "node-gyp not found (dev dependency or npm's bundled copy)"

# Node headers: prefer the ones installed with node (no download needed offline).
NODEDIR_ARGS=()
NODE_PREFIX="$(dirname "$(dirname "$(command -v node)")")"
if [ -f "$NODE_PREFIX/include/node/node_api.h" ]; then
  NODEDIR_ARGS=(--nodedir="$NODE_PREFIX")
fi

export LANGCHAIN_DPR_NAPI_INCLUDE="$ROOT/node_modules/node-addon-api"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

# hash of everything that determines a build
inputs_hash() {
  {
    node --version
    stat -c '%s %Y' "$LIBFAISS" 2>/dev/null || echo "no-libfaiss-stat"
    cat "$@"
  } | sha256sum | cut -d' ' -f1
}

# build_part <name> <dir with binding.gyp> <expected .node> <input files...>
build_part() {
  local name="$1" dir="$2" out="$3"; shift 3
  local stamp="$out.inputs"
  local hash; hash="$(inputs_hash "$@")"
  if [ "${FORCE:-0}" != 1 ] && [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    log "$name up to date"
    return 0
  fi
  log "building $name"
  local t0=$SECONDS
  (cd "$dir" && node "$NODE_GYP" rebuild -j "$JOBS" "${NODEDIR_ARGS[@]}" --loglevel=warn) \
    || die "$name: node-gyp failed (see output above)"
  [ -f "$out" ] || die "$name: build finished but $out is missing"
  echo "$hash" > "$stamp"
  log "$name built in $((SECONDS - t0)) s"
}

# 1. faiss-node from its npm source
FN="$ROOT/node_modules/faiss-node"
[ -f "$FN/src/faiss.cc" ] || die "node_modules/faiss-node/src/faiss.cc missing; run npm ci --ignore-scripts first"
cp "$ROOT/src/native/faiss-node/binding.gyp" "$ROOT/src/native/faiss-node/faiss-compat.h" "$FN/"
build_part faiss-node "$FN" "$FN/build/Release/faiss-node.node" \
  "$FN/src/faiss.cc" "$FN/binding.gyp" "$FN/faiss-compat.h"

# 2. our addon
build_part faiss_dpr "$ROOT/src/native" "$ROOT/src/native/build/Release/faiss_dpr.node" \
  "$ROOT/src/native/faiss_dpr.cc" "$ROOT/src/native/binding.gyp"

# smoke check: both load and one faiss error is catchable
node -e "
const fn = require('$FN');
const idx = new fn.IndexFlatIP(4);
try { idx.search([0,0,0,1], 0); } catch (e) { /* a JS error, not an abort */ }
require('$ROOT/src/native/build/Release/faiss_dpr.node');
console.log('build-native: faiss-node and faiss_dpr load');
"
