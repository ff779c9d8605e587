#!/usr/bin/env bash
# Executes the TypeScript notebooks headless on the tslab kernel with Debian's jupyter-nbconvert.
#   scripts/run-notebooks.sh            execute notebooks/*.ipynb in place (the stored outputs)
#   scripts/run-notebooks.sh --out DIR  write executed copies to DIR, leave notebooks/ untouched
# Notebooks import the compiled package (../dist), so this builds it first. The tslab kernel spec is
# installed into .cache/jupyter (project-local, nothing global), pointing at node_modules/.bin/tslab.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT=""
if [ "${1:-}" = "--out" ]; then OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2; fi
command -v jupyter-nbconvert >/dev/null || { echo "run-notebooks: jupyter-nbconvert missing (apt-get install jupyter-nbconvert python3-ipykernel)" >&2; exit 1; }

KPREFIX="$ROOT/.cache/jupyter"
# (re)install when missing or when it points at another checkout (kernel.json holds an absolute path)
if ! grep -qF "$ROOT/node_modules/.bin/tslab" "$KPREFIX/share/jupyter/kernels/tslab/kernel.json" 2>/dev/null; then
  node_modules/.bin/tslab install --python=/usr/bin/python3 --binary="$ROOT/node_modules/.bin/tslab" --prefix="$KPREFIX" >/dev/null
fi
export JUPYTER_PATH="$KPREFIX/share/jupyter"
npm run --silent build

status=0
for nb in notebooks/*.ipynb; do
  [ -e "$nb" ] || continue
  name="$(basename "$nb")"
  t0=$SECONDS
  if [ -n "$OUT" ]; then
    args=(--output-dir "$OUT" --output "$name")
  else
    args=(--inplace)
  fi
  if (cd notebooks && jupyter-nbconvert --to notebook --execute --ExecutePreprocessor.timeout=900 "${args[@]}" "$name" 2>/tmp/nbconvert-$$.log); then
    echo "run-notebooks: $name ok ($((SECONDS - t0)) s)"
  else
    echo "run-notebooks: $name FAILED" >&2; tail -n 30 /tmp/nbconvert-$$.log >&2; status=1
  fi
done
rm -f /tmp/nbconvert-$$.log
exit $status
