#!/usr/bin/env bash
# Builds the self-contained prebuilt faiss addon that ships inside the npm package:
#
#   prebuilds/linux-x64/faiss_dpr.napi.glibc.node   src/native/faiss_dpr.cc + faiss + OpenBLAS, static
#   prebuilds/linux-x64/libgomp.so.1                GCC's OpenMP runtime, found through RUNPATH $ORIGIN
#
# The names follow prebuildify's convention, which node-gyp-build (the loader in
# src/native/faiss-index.ts) resolves: N-API (any Node ≥ 20 on the platform), glibc only (on musl
# node-gyp-build skips it and the loader falls back to a local build).
#
# What is linked how (Debian 12, amd64):
#   - faiss 1.7.3: libfaiss.a from libfaiss-dev (PIC), static.
#   - BLAS + LAPACK: OpenBLAS 0.3.21, the OpenMP build, static (libopenblas.a from
#     libopenblas-openmp-dev, PIC, DYNAMIC_ARCH: kernels for every x86-64 CPU, picked at load time).
#     The OpenMP build, not the pthread one, because faiss needs OpenMP anyway: OpenBLAS then runs on
#     the same libgomp thread pool (one runtime, no oversubscription when faiss calls sgemm inside its
#     own parallel loops), and FaissIndex.setNumThreads governs both, as it does with the system build.
#   - libgfortran: OpenBLAS's LAPACK (Fortran) needs exactly one libgfortran function,
#     _gfortran_concat_string (string concatenation for ILAENV's option argument). Debian's
#     libgfortran.a is not PIC (local-exec TLS), so instead of bundling libgfortran.so.5 and
#     libquadmath.so.0 (3 MB) the script compiles that function from a 12-line C file (same semantics
#     as libgfortran's). Should a future OpenBLAS need more of libgfortran, the undefined-symbol check
#     below fails the build and names the symbols.
#   - libgomp: GCC ships no PIC libgomp.a (and a static OpenMP runtime inside a dlopen'ed object is
#     fragile), so libgomp.so.1 is copied beside the addon, which finds it through RUNPATH $ORIGIN:
#     what auditwheel does for manylinux wheels. Its own dependencies are libc and the loader.
#   - libstdc++, libgcc_s, libm, libc: dynamic, from the system (Node itself needs them).
#   All symbols from the static archives are hidden (--exclude-libs,ALL), so the addon never clashes
#   with another faiss or OpenBLAS in the same process (faiss-node, numpy through a bridge, ...).
#
# Checks (always run, also when nothing was rebuilt): `ldd` of every file in prebuilds/linux-x64 may
# list only linux-vdso, the loader, libc, libm, libpthread, libdl, librt, libstdc++, libgcc_s, and
# the bundled files resolved to the copies in the folder; no symbol may stay unresolved except
# Node's own (napi_*); the addon must load in a child node with LD_LIBRARY_PATH empty, create, fill
# and search an index, and turn a faiss error into a JavaScript Error. Any failure exits non-zero.
#
# Idempotent: rebuilds only when an input changed (this script, faiss_dpr.cc, the static archives,
# libgomp, the compiler, the N-API headers); the inputs' hash is kept in .cache/prebuild/. FORCE=1
# rebuilds. A rebuild takes about 15 s on 2 cores (compile ~10 s, link ~2 s), a check about 1 s.
# Installs the missing Debian packages with apt when run as root (as scripts/setup.sh does).
#
#   bash scripts/prebuild.sh        # npm run prebuild (run by prepack)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
cd "$ROOT"

log() { echo "prebuild: $*"; }
die() { echo "prebuild: error: $*" >&2; exit 1; }

PLATFORM="linux-x64"
ADDON_NAME="faiss_dpr.napi.glibc.node"
OUT_DIR="$ROOT/prebuilds/$PLATFORM"
WORK="$ROOT/.cache/prebuild/$PLATFORM"
# Shared libraries copied beside the addon (everything else must be static or allow-listed).
BUNDLED=(libgomp.so.1)
# What Node itself links against: a prebuilt may depend on these and nothing else.
ALLOWED_RE='^(linux-vdso\.so\.1|ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1)$'

[ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] || die "builds $PLATFORM only (this is $(uname -s) $(uname -m))"
getconf GNU_LIBC_VERSION >/dev/null 2>&1 || die "needs glibc (this libc is not glibc)"

# --- system packages ----------------------------------------------------------------------------
APT_PACKAGES=(libfaiss-dev libopenblas-openmp-dev g++)
source "$ROOT/scripts/apt-packages.sh"
ensure_apt_packages prebuild "${APT_PACKAGES[@]}" || exit 1

MULTIARCH=/usr/lib/x86_64-linux-gnu
LIBFAISS="${LIBFAISS:-$MULTIARCH/libfaiss.a}"
LIBOPENBLAS="${LIBOPENBLAS:-$MULTIARCH/openblas-openmp/libopenblas.a}"
[ -f "$LIBFAISS" ] || die "$LIBFAISS missing (libfaiss-dev)"
[ -f "$LIBOPENBLAS" ] || die "$LIBOPENBLAS missing (libopenblas-openmp-dev)"
[ -f /usr/include/faiss/index_factory.h ] || die "faiss headers missing (/usr/include/faiss; libfaiss-dev)"
CXX="${CXX:-g++}"
CC="${CC:-gcc}"
LIBGOMP="$(readlink -f "$("$CXX" -print-file-name=libgomp.so.1)")"
[ -f "$LIBGOMP" ] || die "libgomp.so.1 not found by $CXX (libgomp1 / libgcc-12-dev)"

# N-API headers: the ones installed with node (node-gyp's --nodedir), node-addon-api from node_modules.
NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
NODE_INCLUDE="${NODE_INCLUDE:-$NODE_PREFIX/include/node}"
[ -f "$NODE_INCLUDE/node_api.h" ] || die "node_api.h not found in $NODE_INCLUDE (set NODE_INCLUDE to Node's include/node)"
NAPI_INCLUDE="$(cd "$ROOT" && node -p "require('path').dirname(require.resolve('node-addon-api/package.json'))" 2>/dev/null)" \
  || die "node-addon-api not installed (npm ci --ignore-scripts)"

# --- build (skipped when the inputs are unchanged) ----------------------------------------------
inputs_hash() {
  {
    cat "$ROOT/scripts/prebuild.sh" "$ROOT/src/native/faiss_dpr.cc" "$NODE_INCLUDE/node_api.h" "$NAPI_INCLUDE/napi.h"
    "$CXX" --version | head -1
    stat -L -c '%n %s %Y' "$LIBFAISS" "$LIBOPENBLAS" "$LIBGOMP"
  } | sha256sum | cut -d' ' -f1
}
HASH="$(inputs_hash)"
STAMP="$WORK/inputs.sha256"

up_to_date() {
  [ "${FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] || return 1
  [ -f "$OUT_DIR/$ADDON_NAME" ] || return 1
  for lib in "${BUNDLED[@]}"; do [ -f "$OUT_DIR/$lib" ] || return 1; done
}

if up_to_date; then
  log "prebuilds/$PLATFORM up to date"
else
  log "building prebuilds/$PLATFORM/$ADDON_NAME"
  t0=$SECONDS
  mkdir -p "$WORK"
  rm -f "$STAMP"

  # Same defines and flags as src/native/binding.gyp (node-gyp's Release settings), plus hidden
  # visibility: the addon exports only napi_register_module_v1.
  "$CXX" -c -o "$WORK/faiss_dpr.o" "$ROOT/src/native/faiss_dpr.cc" \
    -DNODE_GYP_MODULE_NAME=faiss_dpr -DBUILDING_NODE_EXTENSION -DNAPI_VERSION=8 \
    -DNODE_ADDON_API_CPP_EXCEPTIONS -DNODE_ADDON_API_CPP_EXCEPTIONS_ALL \
    -D_GLIBCXX_USE_CXX11_ABI=1 -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE \
    -I"$NODE_INCLUDE" -I"$NAPI_INCLUDE" \
    -std=c++17 -O3 -fPIC -pthread -fopenmp -fexceptions -frtti -fno-omit-frame-pointer \
    -fvisibility=hidden -fvisibility-inlines-hidden -Wall -Wextra -Wno-unused-parameter \
    || die "compiling faiss_dpr.cc failed"

  # libgfortran's _gfortran_concat_string (gcc/libgfortran/intrinsics/string_intrinsics.c), the only
  # libgfortran symbol OpenBLAS's LAPACK needs: dest = s1 // s2, truncated or blank-padded to destlen.
  cat > "$WORK/gfortran_concat.c" <<'EOF'
#include <stddef.h>
#include <string.h>
__attribute__((visibility("hidden")))
void _gfortran_concat_string(size_t destlen, char *dest, size_t len1, const char *s1,
                             size_t len2, const char *s2) {
  if (len1 >= destlen) { memcpy(dest, s1, destlen); return; }
  memcpy(dest, s1, len1); dest += len1; destlen -= len1;
  if (len2 >= destlen) { memcpy(dest, s2, destlen); return; }
  memcpy(dest, s2, len2);
  memset(dest + len2, ' ', destlen - len2);
}
EOF
  "$CC" -c -O2 -fPIC -o "$WORK/gfortran_concat.o" "$WORK/gfortran_concat.c" || die "compiling the libgfortran shim failed"

  STAGE="$WORK/stage"
  rm -rf "$STAGE" && mkdir -p "$STAGE"
  # -s: no symbol tables (30 MB → 29 MB; the size is OpenBLAS's per-CPU kernels).
  "$CXX" -shared -o "$STAGE/$ADDON_NAME" "$WORK/faiss_dpr.o" "$WORK/gfortran_concat.o" \
    -Wl,--exclude-libs,ALL -Wl,--as-needed -Wl,-s -Wl,-rpath,'$ORIGIN' \
    "$LIBFAISS" "$LIBOPENBLAS" -fopenmp -pthread -lm \
    || die "linking the addon failed"
  for lib in "${BUNDLED[@]}"; do
    case "$lib" in
      libgomp.so.1) cp "$LIBGOMP" "$STAGE/$lib" ;;
      *) die "no source for bundled $lib" ;;
    esac
    chmod 0644 "$STAGE/$lib"
  done
  # Swap the folder in whole (other platforms' folders under prebuilds/ are left alone).
  mkdir -p "$ROOT/prebuilds"
  rm -rf "$OUT_DIR.old"
  [ -d "$OUT_DIR" ] && mv "$OUT_DIR" "$OUT_DIR.old"
  mv "$STAGE" "$OUT_DIR"
  rm -rf "$OUT_DIR.old"
  log "built in $((SECONDS - t0)) s"
fi

# --- checks -------------------------------------------------------------------------------------
fail=0
log "files:"
for f in "$OUT_DIR"/*; do
  printf '  %10s  %s\n' "$(stat -c %s "$f")" "prebuilds/$PLATFORM/$(basename "$f")"
done
for f in "$OUT_DIR"/*; do
  [ -f "$f" ] || continue
  name="$(basename "$f")"
  out="$(env LD_LIBRARY_PATH= ldd "$f" 2>&1)" || { echo "$out"; die "ldd failed on $name"; }
  log "ldd prebuilds/$PLATFORM/$name:"
  echo "$out" | sed 's/ (0x[0-9a-f]*)$//; s/^[[:space:]]*/    /'
  while read -r line; do
    [ -n "$line" ] || continue
    dep="${line%% *}"
    resolved=""
    case "$line" in *" => "*) resolved="$(echo "$line" | sed -E 's/^.* => ([^ ]+).*$/\1/')" ;; esac
    base="$(basename "$dep")"
    if [ "$resolved" = "not" ]; then
      echo "prebuild: $name: $base not found" >&2; fail=1
    elif [[ "$base" =~ $ALLOWED_RE ]]; then
      :
    elif printf '%s\n' "${BUNDLED[@]}" | grep -qx "$base" && [ "$resolved" = "$OUT_DIR/$base" ]; then
      :
    else
      echo "prebuild: $name depends on $base (${resolved:-?}): not in the allow-list and not bundled" >&2; fail=1
    fi
  done <<< "$out"
  # Unresolved symbols other than Node's own N-API functions (the addon gets those from node).
  undef="$(env LD_LIBRARY_PATH= ldd -r "$f" 2>&1 | grep -E '^undefined symbol' | grep -vE 'undefined symbol: napi_' || true)"
  if [ -n "$undef" ]; then
    echo "$undef" | head -20 >&2
    echo "prebuild: $name has unresolved symbols (above)" >&2; fail=1
  fi
  # Oldest system this runs on: the highest glibc / libstdc++ symbol versions it needs.
  vers="$(objdump -T "$f" | grep -oE '\b(GLIBC|GLIBCXX)_[0-9.]+' | sort -u -V)"
  log "  needs $(echo "$vers" | grep '^GLIBC_' | tail -1 || true) $(echo "$vers" | grep '^GLIBCXX_' | tail -1 || true)"
done
[ "$fail" = 0 ] || die "prebuilds/$PLATFORM is not self-contained (see above)"

# Loads in a clean child: no LD_LIBRARY_PATH, the addon by absolute path; index, add, search, error.
env LD_LIBRARY_PATH= node -e '
const a = require(process.argv[1]);
const idx = new a.FaissIndex(2, "Flat");
idx.add(new Float32Array([1, 0, 0, 1, 3, 4]), new BigInt64Array([10n, 11n, 12n])).then(async () => {
  const r = await idx.search(new Float32Array([1, 2]), 2);
  if (r.labels[0] !== 12n || r.distances[0] !== 11 || r.labels[1] !== 11n || r.distances[1] !== 2)
    throw new Error("wrong search result " + r.labels + " " + r.distances);
  let threw = false;
  try { new a.FaissIndex(4, "NotAnIndexType"); } catch (e) { threw = e instanceof Error; }
  if (!threw) throw new Error("a faiss error did not become a JavaScript Error");
  console.log("prebuild: loads without LD_LIBRARY_PATH; Flat search ok; faiss errors are JS errors; simd " + a.simd);
}).catch((e) => { console.error(e); process.exit(1); });
' "$OUT_DIR/$ADDON_NAME" || die "the prebuilt addon failed its load test"

echo "$HASH" > "$STAMP"
log "ok: prebuilds/$PLATFORM is self-contained"
