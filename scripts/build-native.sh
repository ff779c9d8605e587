#!/usr/bin/env bash
# Builds the native parts of langchain-dpr against the system faiss (Debian libfaiss-dev 1.7.3,
# static) and OpenBLAS. Works in the repository (after `npm ci --ignore-scripts`) and inside an
# installed package (`npx langchain-dpr build-native`, for machines the prebuilt addon in prebuilds/
# does not fit): every path is relative to the package root (the folder above this script).
#   1. our addon src/native/faiss_dpr.cc → src/native/build/Release/faiss_dpr.node (FaissDPRStore's
#      engine: Float32Array zero-copy, async workers, per-query nprobe/efSearch, ids, remove, merge).
#      The loader (src/native/faiss-index.ts) uses it when no prebuilt for this platform loads.
#   2. only when the package's own node_modules/faiss-node exists (a development checkout; faiss-node
#      is a benchmark baseline and interop test, never a user dependency): faiss-node 0.5.1 from its
#      npm source (node_modules/faiss-node/src/faiss.cc) with our binding.gyp (src/native/faiss-node/):
#      node-addon-api 8 + C++ exceptions, so faiss errors are JavaScript Errors instead of aborts.
# Needs: libfaiss-dev, OpenBLAS, a C++ toolchain, python3 (node-gyp), node-addon-api (resolved from
# the package root as Node resolves it) and node-gyp (the package's, else npm's bundled copy).
# Idempotent and fast: a part is rebuilt only when its inputs (sources, gyp files, node version,
# libfaiss) changed; a stamp file next to each .node records the inputs' hash. FORCE=1 rebuilds.
# Offline: node-gyp uses the headers installed with node (<prefix>/include/node) via --nodedir.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "build-native: $*"; }
die() { echo "build-native: error: $*" >&2; exit 1; }

LIBFAISS="${LIBFAISS:-/usr/lib/x86_64-linux-gnu/libfaiss.a}"
[ -f /usr/include/faiss/index_factory.h ] || die "faiss headers not found (/usr/include/faiss); install libfaiss-dev"
[ -f src/native/faiss_dpr.cc ] && [ -f src/native/binding.gyp ] || die "src/native/faiss_dpr.cc or binding.gyp missing in $ROOT"

# Resolves a module file from the package root the way Node does (own node_modules, then the
# app's node_modules above it when the package is installed); empty when not found.
resolve_module() {
  node -e 'try { console.log(require.resolve(process.argv[1], { paths: [process.argv[2]] })) } catch {}' "$1" "$ROOT"
}

NAPI_PKG="$(resolve_module node-addon-api/package.json)"
[ -n "$NAPI_PKG" ] || die "node-addon-api not found from $ROOT (in a checkout: npm ci --ignore-scripts; in an app: npm install node-addon-api@8)"
NAPI_DIR="$(dirname "$NAPI_PKG")"

NODE_GYP="$(resolve_module node-gyp/bin/node-gyp.js)"
if [ -z "$NODE_GYP" ]; then
  # npm's bundled copy: next to the npm on PATH, or in the global root
  NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  for c in "$NPM_DIR/node_modules/node-gyp/bin/node-gyp.js" "$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"; do
    if [ -f "$c" ]; then NODE_GYP="$c"; break; fi
  done
fi
[ -n "$NODE_GYP" ] && [ -f "$NODE_GYP" ] || die "node-gyp not found (the package's dev dependency or npm's bundled copy)"

# Node headers: prefer the ones installed with node (no download needed offline).
NODEDIR_ARGS=()
NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ -f "$NODE_PREFIX/include/node/node_api.h" ]; then
  NODEDIR_ARGS=(--nodedir="$NODE_PREFIX")
fi

export LANGCHAIN_DPR_NAPI_INCLUDE="$NAPI_DIR"
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

# 1. our addon
build_part faiss_dpr "$ROOT/src/native" "$ROOT/src/native/build/Release/faiss_dpr.node" \
  "$ROOT/src/native/faiss_dpr.cc" "$ROOT/src/native/binding.gyp"

# 2. faiss-node from its npm source, only in a checkout that has it (the package's own node_modules)
FN="$ROOT/node_modules/faiss-node"
if [ -f "$FN/src/faiss.cc" ] && [ -f "$ROOT/src/native/faiss-node/binding.gyp" ]; then
  cp "$ROOT/src/native/faiss-node/binding.gyp" "$ROOT/src/native/faiss-node/faiss-compat.h" "$FN/"
  build_part faiss-node "$FN" "$FN/build/Release/faiss-node.node" \
    "$FN/src/faiss.cc" "$FN/binding.gyp" "$FN/faiss-compat.h"
else
  FN=""
  log "faiss-node not in $ROOT/node_modules: skipped (only the benchmark baseline and one interop test use it)"
fi

# smoke check: the addon loads and a faiss error is a JavaScript Error (faiss-node too, when built)
node -e "
const [addon, fn] = process.argv.slice(1);
const a = require(addon);
try { new a.FaissIndex(4, 'NotAnIndexType'); process.exit(3); } catch (e) { /* a JS error, not an abort */ }
if (fn) {
  const idx = new (require(fn).IndexFlatIP)(4);
  try { idx.search([0,0,0,1], 0); } catch (e) { /* a JS error, not an abort */ }
}
console.log('build-native: faiss_dpr' + (fn ? ' and faiss-node' : '') + ' load');
" "$ROOT/src/native/build/Release/faiss_dpr.node" "$FN"
