#!/usr/bin/env bash
# Reproduces the shipped default DPR model (src/assets/models/dpr-pubmedqa) from the PubMedQA dataset
# in BEIR layout (MIT licence),
# with the project's own training scripts, on the TRAIN split only (qrels/train.tsv). The test
# questions (the bundled src/assets/pubmedqa set) are never read by any step below.
#
#   bash scripts/train-default-models.sh <pubmedqa BEIR folder> [work folder] [--install] [--cross-encoder]
#
#   <pubmedqa BEIR folder>  corpus.jsonl, queries.jsonl, qrels/train.tsv (1,000 abstracts, 500 train questions)
#   [work folder]           runs, logs and mined negatives (default runs/default-models)
#   --install               copy the resulting DPR model folder into src/assets/models/dpr-pubmedqa
#   --cross-encoder         also run steps 2 and 4 (a cross-encoder; NOT shipped and not installed: the
#                           one this recipe gives does not generalise to the test questions, see
#                           src/assets/models/dpr-pubmedqa/SOURCE.md)
#
# Recipe (TF.js wasm backend, 1 thread; on a shared 2-core machine about 17 + 13 + 2 + 15 minutes):
#   1. ICT pretraining (inverse cloze task) on the corpus alone: a scratch BERT (hidden 128, 2 layers,
#      4 heads, FFN 512, 128 positions, one encoder shared by questions and passages, mean pooling),
#      WordPiece vocabulary learnt on the corpus, 8 epochs; 1b. 8 more ICT epochs from (1) (seed 43, lr 5e-4);
#   2. BM25 negatives for the 500 train questions for the cross-encoder: 5 per question, drawn at random
#      from BM25 ranks 11..200 over the 500 TRAIN abstracts only (with the whole corpus, positives are
#      always train abstracts and half the negatives test abstracts: a model then learns "train abstract
#      or not", which ranks test answers last);
#   3. DPR fine-tuning from (1b) on 400 train questions (in-batch negatives), the other 100 train
#      questions held out as the dev set that picks the best epoch;
#   4. cross-encoder from the ICT encoder of (1b): listwise loss over the positive + 3 negatives of (2);
#   5. evaluation on the bundled test set (src/assets/pubmedqa) with scripts/evaluate.ts.
set -euo pipefail

DATA="${1:?usage: bash scripts/train-default-models.sh <pubmedqa BEIR folder> [work folder] [--install]}"
WORK="${2:-runs/default-models}"
INSTALL="no"
CROSS_ENCODER="no"
for arg in "$@"; do
  [[ "$arg" == "--install" ]] && INSTALL="yes"
  [[ "$arg" == "--cross-encoder" ]] && CROSS_ENCODER="yes"
done
[[ "$WORK" == --* ]] && WORK="runs/default-models"
SEED=42

for f in corpus.jsonl queries.jsonl qrels/train.tsv; do
  [[ -f "$DATA/$f" ]] || { echo "train-default-models: $DATA/$f is missing (expected the PubMedQA BEIR folder)" >&2; exit 1; }
done
mkdir -p "$WORK"
DATA="$(cd "$DATA" && pwd)"; WORK="$(cd "$WORK" && pwd)"
cd "$(dirname "$0")/.."

MODEL_SHAPE=(--shared --pooling mean --hidden 128 --layers 2 --heads 4 --ffn 512 --max-len 128 --q-len 32 --p-len 128)

echo "== 1. ICT pretraining on the corpus" >&2
npx tsx scripts/pretrain-dpr.ts --data "$DATA" --out "$WORK/ict" "${MODEL_SHAPE[@]}" \
  --batch 32 --lr 1e-3 --warmup-ratio 0.06 --epochs 8 --seed "$SEED" --checkpoint-every 20 --no-progress

echo "== 1b. more ICT epochs" >&2
npx tsx scripts/pretrain-dpr.ts --data "$DATA" --init "$WORK/ict/model" --out "$WORK/ict2" --shared --pooling mean \
  --q-len 32 --p-len 128 --batch 32 --lr 5e-4 --warmup-ratio 0.03 --epochs 8 --seed 43 --checkpoint-every 20 --no-progress

if [[ "$CROSS_ENCODER" == "yes" ]]; then
echo "== 2. BM25 negatives for the train questions (cross-encoder), from the train abstracts only" >&2
mkdir -p "$WORK/train-only/qrels"
node --input-type=module -e '
import { readFileSync, writeFileSync, copyFileSync } from "node:fs";
const [src, dst] = process.argv.slice(1);
const ids = new Set(readFileSync(`${src}/qrels/train.tsv`, "utf8").trim().split("\n").slice(1).map((l) => l.split("\t")[1]));
const corpus = readFileSync(`${src}/corpus.jsonl`, "utf8").split("\n").filter((l) => l.trim() && ids.has(JSON.parse(l)._id));
writeFileSync(`${dst}/corpus.jsonl`, corpus.join("\n") + "\n");
copyFileSync(`${src}/queries.jsonl`, `${dst}/queries.jsonl`);
copyFileSync(`${src}/qrels/train.tsv`, `${dst}/qrels/train.tsv`);
' "$DATA" "$WORK/train-only"
npx tsx scripts/mine-hard-negatives.ts --dataset "$WORK/train-only" --split train --out "$WORK/bm25-negatives.json" \
  --method bm25 --skip-top 10 --depth 200 --per-question 5 --sample random --seed "$SEED" \
  --stats "$WORK/bm25-negatives.stats.json" --quiet

fi

echo "== 3. DPR fine-tuning on the train questions" >&2
npx tsx scripts/train-dpr.ts --data "$DATA" --split train --dev-fraction 0.2 --init "$WORK/ict2/model" --out "$WORK/dpr" \
  --shared --pooling mean --q-len 32 --p-len 128 --batch 32 --lr 1e-4 --warmup-ratio 0.1 --epochs 3 \
  --seed "$SEED" --no-progress

if [[ "$CROSS_ENCODER" == "yes" ]]; then
echo "== 4. cross-encoder on the train questions" >&2
npx tsx scripts/train-cross-encoder.ts --data "$WORK/bm25-negatives.json" --init "$WORK/ict2/model" --out "$WORK/cross-encoder" \
  --loss listwise --negatives 3 --batch 8 --epochs 6 --lr 3e-4 --warmup-ratio 0.05 --max-length 96 --seed "$SEED" \
  --quantize --no-progress

fi

echo "== 5. evaluation on the bundled test set" >&2
RERANK=()
[[ "$CROSS_ENCODER" == "yes" ]] && RERANK=(--cross-encoder "$WORK/cross-encoder/model")
npx tsx scripts/evaluate.ts --dataset src/assets/pubmedqa --split test --dpr "$WORK/dpr/model" "${RERANK[@]}" \
  --out "$WORK/eval" --quiet
npx tsx scripts/evaluate.ts --dataset src/assets/pubmedqa --split test --dpr "$WORK/dpr/model" --methods hybrid \
  --hybrid linear --alpha 0.2 --out "$WORK/eval-linear" --quiet

if [[ "$INSTALL" == "yes" ]]; then
  for pair in "dpr/model:dpr-pubmedqa"; do
    src="$WORK/${pair%%:*}"; dst="src/assets/models/${pair##*:}"
    mkdir -p src/assets/models
    # Keep SOURCE.md; replace the rest atomically (copy beside, then swap).
    rm -rf "$dst.new"; cp -r "$src" "$dst.new"
    [[ -f "$dst/SOURCE.md" ]] && cp "$dst/SOURCE.md" "$dst.new/SOURCE.md"
    rm -rf "$dst.old"; [[ -d "$dst" ]] && mv "$dst" "$dst.old"; mv "$dst.new" "$dst"; rm -rf "$dst.old"
  done
  echo "installed into src/assets/models/" >&2
fi
echo "report: $WORK/eval/report.md" >&2
