#!/usr/bin/env bash
# Reproduces the shipped default models (src/assets/models/dpr-pubmedqa and cross-encoder-pubmedqa) from
# the PubMedQA dataset in BEIR layout (MIT licence), with the project's own training scripts. The DPR
# fine-tuning reads the TRAIN split only (qrels/train.tsv); the cross-encoder reads the corpus only. The
# test questions (the bundled src/assets/pubmedqa set) are never read by any training step.
#
#   bash scripts/train-default-models.sh <pubmedqa BEIR folder> [work folder] [--install] [--no-cross-encoder]
#
#   <pubmedqa BEIR folder>  corpus.jsonl, queries.jsonl, qrels/train.tsv (1,000 abstracts, 500 train questions)
#   [work folder]           runs and logs (default runs/default-models)
#   --install               copy the resulting model folders into src/assets/models/
#   --no-cross-encoder      skip step 4 (the cross-encoder)
#
# Recipe (TF.js wasm backend, 1 thread; on a shared 2-core machine about 4 + 2 + 1 minutes for the DPR model,
# 17 + 13 + 6 + 11 for the cross-encoder):
#   1. DPR: lexical initialisation (--init lexical: token vectors whose dot products give IDF-weighted term
#      matching before any update) of a BERT shape (hidden 128, 2 layers, 4 heads, FFN 512, 128 positions,
#      one encoder shared by questions and passages, mean pooling, WordPiece vocabulary learnt on the corpus),
#      then 8 epochs of ICT pretraining (inverse cloze task) on the corpus alone;
#   2. DPR fine-tuning from (1) on 400 train questions (in-batch negatives), the other 100 train questions
#      held out as the dev set that picks the best epoch;
#   3. hybrid fusion tuned on those same 100 held-out train questions and stored in the model's
#      dpr_config.json (HybridRetriever's default for this model);
#   4. cross-encoder (unchanged recipe): 4a. ICT pretraining from scratch, 8 + 8 epochs (random start, seeds
#      42 and 43); 4b. from that encoder, with a lexical match head (--match-head), span matching: an exact
#      word span from an abstract's start -> that abstract (8,000 pairs, 64 tokens); 4c. the cross-encoder of
#      (4b) on inverse-cloze pairs of the corpus (4,000 pairs, 128 tokens);
#   5. evaluation on the bundled test set (src/assets/pubmedqa) with scripts/evaluate.ts.
# Earlier versions started the DPR model from the ICT encoder of (4a) (random start, 16 ICT epochs):
# test nDCG@10 0.679 against this recipe's figure in src/assets/models/dpr-pubmedqa/SOURCE.md.
set -euo pipefail

DATA="${1:?usage: bash scripts/train-default-models.sh <pubmedqa BEIR folder> [work folder] [--install] [--no-cross-encoder]}"
WORK="${2:-runs/default-models}"
INSTALL="no"
CROSS_ENCODER="yes"
for arg in "$@"; do
  [[ "$arg" == "--install" ]] && INSTALL="yes"
  [[ "$arg" == "--no-cross-encoder" ]] && CROSS_ENCODER="no"
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

echo "== 1. DPR: lexical initialisation, then ICT pretraining on the corpus" >&2
npx tsx scripts/pretrain-dpr.ts --data "$DATA" --init lexical --out "$WORK/lex-ict" "${MODEL_SHAPE[@]}" --vocab-size 8192 \
  --batch 32 --lr 2e-4 --warmup-ratio 0.06 --epochs 8 --seed "$SEED" --checkpoint-every 20 --no-progress

echo "== 2. DPR fine-tuning on the train questions" >&2
npx tsx scripts/train-dpr.ts --data "$DATA" --split train --dev-fraction 0.2 --init "$WORK/lex-ict/model" --out "$WORK/dpr" \
  --shared --pooling mean --q-len 32 --p-len 128 --batch 32 --lr 1e-4 --warmup-ratio 0.1 --epochs 6 \
  --seed "$SEED" --no-progress

echo "== 3. hybrid fusion tuned on the 100 held-out train questions, stored in dpr_config.json" >&2
npx tsx scripts/evaluate.ts --dataset "$DATA" --split train --dpr "$WORK/dpr/model" --methods hybrid \
  --tune-fusion --dev-split train --dev-fraction 0.2 --dev-seed "$SEED" --write-fusion --out "$WORK/fusion" --quiet

if [[ "$CROSS_ENCODER" == "yes" ]]; then
echo "== 4a. cross-encoder: ICT pretraining from scratch, 8 + 8 epochs" >&2
npx tsx scripts/pretrain-dpr.ts --data "$DATA" --out "$WORK/ict" "${MODEL_SHAPE[@]}" \
  --batch 32 --lr 1e-3 --warmup-ratio 0.06 --epochs 8 --seed "$SEED" --checkpoint-every 20 --no-progress
npx tsx scripts/pretrain-dpr.ts --data "$DATA" --init "$WORK/ict/model" --out "$WORK/ict2" --shared --pooling mean \
  --q-len 32 --p-len 128 --batch 32 --lr 5e-4 --warmup-ratio 0.03 --epochs 8 --seed 43 --checkpoint-every 20 --no-progress

echo "== 4b. cross-encoder: span matching, from the ICT encoder with a lexical match head" >&2
npx tsx scripts/train-cross-encoder.ts --data "$DATA" --mode span --draws 8 --init "$WORK/ict2/model" --match-head \
  --out "$WORK/ce-span" --max-length 64 --lr 3e-4 --warmup-ratio 0.03 --max-steps 600 --epochs 1 --negatives 3 --batch 8 \
  --seed "$SEED" --no-progress

echo "== 4c. cross-encoder: inverse-cloze pairs of the corpus" >&2
npx tsx scripts/train-cross-encoder.ts --data "$DATA" --mode ict --draws 4 --init "$WORK/ce-span/model" \
  --out "$WORK/cross-encoder" --max-length 128 --lr 2e-4 --warmup-ratio 0.05 --max-steps 600 --epochs 1 --negatives 3 \
  --batch 8 --seed "$SEED" --no-progress
cp "$WORK/ce-span/model/training.json" "$WORK/cross-encoder/model/training-stage1.json"
fi

echo "== 5. evaluation on the bundled test set" >&2
RERANK=()
[[ "$CROSS_ENCODER" == "yes" ]] && RERANK=(--cross-encoder "$WORK/cross-encoder/model")
npx tsx scripts/evaluate.ts --dataset src/assets/pubmedqa --split test --dpr "$WORK/dpr/model" "${RERANK[@]}" \
  --rerank-depth 100 --out "$WORK/eval" --quiet
npx tsx scripts/evaluate.ts --dataset src/assets/pubmedqa --split test --dpr "$WORK/dpr/model" --methods hybrid \
  --hybrid rrf --out "$WORK/eval-rrf" --quiet

if [[ "$INSTALL" == "yes" ]]; then
  PAIRS=("dpr/model:dpr-pubmedqa")
  [[ "$CROSS_ENCODER" == "yes" ]] && PAIRS+=("cross-encoder/model:cross-encoder-pubmedqa")
  for pair in "${PAIRS[@]}"; do
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
