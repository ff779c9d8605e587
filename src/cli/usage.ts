/**
 * The usage text of every `langchain-dpr` command, in a module that imports nothing, so that
 * `langchain-dpr <command> --help` works without the command's optional peers (TF.js, fastify).
 * The command modules print the same texts.
 *
 * @module
 */

/** The training backends, in selection order (equal to `BACKEND_ORDER` of src/training/backend.ts; tested). */
export const BACKEND_NAMES = "tfjs-node-gpu | webgpu | tfjs-node | wasm | cpu";

const TRAIN_OPTIONS = `Data
  --data PATH            BEIR folder (corpus.jsonl, queries.jsonl, qrels/), DPR JSON, or JSONL pairs
  --split NAME           BEIR split to train on (default train)
  --mode M               supervised (default) | ict | crop  (ict/crop: pairs from the corpus alone)
  --dev-split NAME       BEIR split evaluated after each epoch (selects model/)
  --dev-fraction F       hold out this fraction of the training queries as the dev set (BEIR)
  --negatives FILE       DPR JSON (e.g. from langchain-dpr mine) whose hard_negative_ctxs are
                         attached to the training examples with the same question text
Model
  --init PATH|ID         model folder of ours, a Hugging Face BERT/DPR/sentence-transformers folder or hub id
                         (e.g. BAAI/bge-small-en-v1.5; safetensors or pytorch_model.bin), or a weights file
  --init lexical         the shape flags below with weights that rank like IDF-weighted term matching before any
                         update (needs --pooling mean, the default with it): --idf-power X (2),
                         --lexical-scale X (calibrated on the training pairs), --residual-std X (1e-3)
  --init-only            write the starting model to <out>/model without training (to measure it)
  --hidden N --layers N --heads N --ffn N --max-len N --vocab-size N   from scratch (vocabulary from the corpus)
  --shared               one encoder for questions and passages (default: two)
  --pooling cls|mean|max --title-join pair|space|none --normalize --query-prompt TEXT --passage-prompt TEXT
                         (default: the --init model's settings, else cls, pair, raw dot products, no prompts)
Recipe
  --epochs N (1) --max-steps N --batch N (32) --lr X (2e-5) --warmup-ratio X (0.1) --warmup-steps N
  --weight-decay X (0.01) --clip X (2.0) --temperature X (1) --hard-negatives N (1) --dropout X
  --q-len N (64) --p-len N (256) --seed N (42) --grad-cache N (GradCache chunk rows)
  --distill bm25         listwise distillation from BM25 over the BEIR corpus: loss = (1 − W)·NLL + W·KL(teacher
                         softmax ‖ model softmax) over each question's row of the batch; --distill-weight W (0.5),
                         --distill-temperature T (1; BM25 scores are divided by T)
                         --max-steps N: exactly N updates, overriding --epochs (as Hugging Face's max_steps)
Run
  --checkpoint-every N   checkpoint every N updates (always at each epoch's end)
  --max-minutes X        stop after X minutes (the epoch's dev evaluation and the export still run)
  --dev-eval onnx|backend  dev evaluation by the exported ONNX model or the TF.js encoders (default: backend on webgpu)
  --resume               continue from <out>/checkpoint
  --quantize             also write int8 ONNX   --select-metric NAME (ndcg@10)
  --backend B            ${BACKEND_NAMES} (default: best available)   --threads N (wasm)
  --no-progress          --throttle-ms N (sleep after each update)
`;

/** `langchain-dpr train` (scripts/train-dpr.ts). */
export const TRAIN_USAGE = `Usage: langchain-dpr train --data <BEIR folder | dpr.json | pairs.jsonl> --out <folder> [options]

${TRAIN_OPTIONS}`;

/** `langchain-dpr pretrain` (scripts/pretrain-dpr.ts): train with --mode ict by default. */
export const PRETRAIN_USAGE = `Usage: langchain-dpr pretrain --data <BEIR folder> --out <folder> [options]

Unsupervised domain pretraining on a corpus alone: the options of langchain-dpr train, with --mode ict
(inverse cloze task) by default; --mode crop for a corpus without sentence punctuation.

${TRAIN_OPTIONS}`;

/** `langchain-dpr mine` (scripts/mine-hard-negatives.ts). */
export const MINE_USAGE = `usage: langchain-dpr mine --dataset <BEIR folder> --out <file.json> [options]

  --dataset DIR        BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)   (required)
  --split NAME         qrels split whose questions are mined (default train)
  --out FILE           DPR JSON to write (required)
  --method bm25|dense  first-stage retriever (default bm25)
  --model DIR          DPR model folder (required for --method dense)
  --skip-top N         never take ranks 1..N (default 0)
  --depth D            deepest rank considered (default 100)
  --margin M           drop candidates within M of (or above) the best positive's score:
                       relative for bm25 (score >= s+ * (1 - M) dropped, M in [0, 1)),
                       absolute for dense (score >= s+ - M dropped)
  --per-question N     hard negatives per question (default 10)
  --sample top|random  best-ranked survivors, or a seeded random sample of them (default top)
  --seed S             seed of --sample random (default 42)
  --batch-size N       dense: texts per onnxruntime batch (default 64)
  --stats FILE         also write the run's counts and timings as JSON
  --quiet              no progress on stderr
  --help               this text
`;

/** `langchain-dpr train-cross-encoder` (scripts/train-cross-encoder.ts). */
export const CROSS_ENCODER_USAGE = `usage: langchain-dpr train-cross-encoder --data <dpr.json | BEIR folder> --out <folder> [options]

Data
  --data PATH            DPR JSON with hard_negative_ctxs, or a BEIR folder (negatives mined on the fly)
  --split NAME           BEIR split to train on (default train)
  --mode M               supervised (default) | ict | span: ict and span make pairs from a BEIR folder's
                         corpus alone (ict: a sentence → the rest of its passage; span: an exact word span
                         from a passage's start → the passage); negatives are other passages
  --draws N              pairs per passage for ict/span, each a new draw (default 1)
  --mine bm25|dense      how a BEIR folder's negatives are mined (default bm25)
  --mine-model DIR       DPR model folder for --mine dense
  --skip-top N (0) --depth D (100) --margin M --mine-per-question N (10)   mining rules
Model
  --init PATH            model folder of ours, HF BERT/DPR folder, cross-encoder folder, or model.safetensors
  --init-side passage|question   which encoder of a DPR folder starts the cross-encoder (default passage)
  --hidden N --layers N --heads N --ffn N --max-len N --vocab-size N
                         from scratch: vocabulary learnt from --corpus (a BEIR folder; default: --data when
                         it is one, else the passages of the DPR JSON)
  --corpus DIR           BEIR folder whose passages train the vocabulary
  --match-head           turn head 0 of layer 0 into a lexical match head first (for models without a
                         pretrained language model: from scratch or from our DPR encoders)
Recipe
  --loss listwise|binary (listwise)   --negatives N (3)   --batch N questions per update (8)
  --epochs N (1) --max-steps N --lr X (2e-5) --warmup-ratio X (0.1) --warmup-steps N
  --weight-decay X (0.01) --clip X (1.0) --max-length N (256) --dropout X --seed N (42)
                         --max-steps N: exactly N updates, overriding --epochs (as Hugging Face's max_steps)
Run
  --checkpoint-every N   checkpoint every N updates (always at each epoch's end)
  --resume               continue from <out>/checkpoint (weights, AdamW moments, data position)
  --max-minutes X        stop after the update that crosses X minutes (the export still runs)
  --throttle-ms N        sleep N ms after each update
  --quantize             also write model_quantized.onnx (int8)
  --backend B            ${BACKEND_NAMES} (default: best available)   --threads N (wasm)
  --no-progress --quiet --help
`;

/** `langchain-dpr evaluate` (scripts/evaluate.ts). */
export const EVALUATE_USAGE = `usage: langchain-dpr evaluate --dataset <BEIR folder> [options]

  --dataset DIR          BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)   (required)
  --split NAME           qrels split (default test)
  --dpr DIR              DPR model folder: enables dpr, hybrid (and their +rerank variants)
  --cross-encoder DIR    cross-encoder folder: enables the +rerank methods
  --methods LIST         comma-separated: bm25,dpr,hybrid,bm25+rerank,dpr+rerank,hybrid+rerank
                         (default: every method the given models allow)
  --max-query-length N   question token cap (default: the model's dpr_config.json)
  --max-passage-length N passage token cap (default: the model's dpr_config.json)
  --index FACTORY        faiss index_factory string (default Flat)
  --faiss-threads N      OpenMP threads for faiss (default: one per core)
  --hybrid rrf|linear    hybrid fusion (default: the fusion stored in the model's dpr_config.json, else rrf)
  --alpha X              linear fusion weight of the dense side, in [0, 1] (default 0.5; needs --hybrid linear)
  --rrf-k N              RRF constant (default 60)
  --tune-fusion          choose the hybrid fusion on dev questions first (grid: RRF dense weight 0..1 step 0.1,
                         linear alpha 0..1 step 0.05 min-max and z-score), then run hybrid with it; needs --dpr
                         and one of (or both):
    --dev-split NAME       tune on the judged questions of another qrels split (e.g. dev; preferred)
    --dev-fraction F       tune on a seeded share F of the --split questions, left out of every method's figures;
                           with --dev-split NAME: the share of NAME that train --dev-fraction F --seed S held out
    --dev-seed N           seed of the --dev-fraction draw (default 42, train's default --seed)
  --tune-metric M@K      tuning metric: ndcg, recall, mrr, map or precision at K (default ndcg@10)
  --write-fusion         store the tuned fusion in the model's dpr_config.json (other keys kept), so that
                         HybridRetriever uses it by default; always written: <out>/fusion-tuning.json
  --depth N              results per query and first stage (default 100)
  --rerank-depth N       candidates the cross-encoder rescores (default min(100, depth))
  --max-queries N        evaluate only the first N judged queries
  --out DIR              output folder (default eval-results/<dataset>-<split>)
  --trec-runs            also write one TREC run file per method (<method>.trec)
  --quiet                no progress on stderr
  --help                 this text

The SVG plots need the optional packages vega and vega-lite; without them the report is written
without its plots, and says so.
`;

/** `langchain-dpr serve` (scripts/serve.ts). */
export const SERVE_USAGE = `Usage: langchain-dpr serve --model <dpr model dir> (--index <FaissDPRStore dir> | --pgvector <table>) [options]

  --pgvector <table>         search a PostgreSQL + pgvector table (DPRPGVectorStore) instead of --index; the
                             connection comes from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE; replicas can share it

  --bm25 <dir>               BM25Index folder: serve hybrid dense + BM25 (no query cache in this mode)
  --reranker <dir>           cross-encoder folder: requests may rerank the top --fetch-k (default on)
  --fusion rrf|linear        hybrid fusion (default: the fusion stored in the model's dpr_config.json, else rrf);
                             --alpha <0..1> dense weight for --fusion linear (0.5)
  --host <addr>              default 127.0.0.1
  --port <n>                 default 8080 (0 = any free port)
  --k <n>                    default k (10); --max-k <n> largest k a request may ask (100)
  --fetch-k <n>              candidates for the reranker (100)
  --max-query-length <n>     characters (1000)
  --max-concurrent <n>       retrievals at once (4); --max-queue <n> waiting (16); beyond: 503
  --timeout-ms <n>           deadline per retrieval, queue wait included (10000); past it: 504
  --no-cache                 disable the query cache; --cache-size <n> (1000) --cache-ttl-ms <n> (300000)
  --threads <n>              onnxruntime intra-op threads
  --quantized                use model_quantized.onnx
  --drain-timeout-ms <n>     on SIGTERM, exit 1 if in-flight requests take longer (30000)
  --extra-latency-ms <n>     testing aid: sleep n ms inside each retrieval (to exercise 503/shutdown)
  --log                      fastify request logging to stdout
  --allowed-hosts <list|all> Host names answered besides localhost, 127.0.0.1, [::1] (.example.com = with
                             subdomains); default: those only on a loopback --host, no check on others; all = off
  --token-file <file>        require Authorization: Bearer <token> (file's content) on all routes but /health;
                             or set DPR_SERVER_TOKEN (never on the command line: ps shows it)
  --public-metrics           with a token, leave /metrics open (a Prometheus scraper on a private network)
  --cors-origins <list>      origins whose pages may read answers (e.g. http://localhost:5173); default none
`;

/** The stages of the GPU check, in order. */
export const GPU_CHECK_STAGES = ["env", "agree", "speed", "e2e"] as const;

/** `langchain-dpr gpu-check` (scripts/gpu-check.ts). */
export const GPU_CHECK_USAGE = `Usage: langchain-dpr gpu-check --out DIR [options]

  --out DIR              where report.json (and the e2e runs) go               (required)
  --stages LIST          any of ${GPU_CHECK_STAGES.join(",")} (default all)
  --backend B            ${BACKEND_NAMES} (default webgpu)
  --agree-shapes LIST    agree: tiny,h256 (default tiny)
  --shapes LIST          speed: tiny,h256,base (default all)   --batches LIST (default 32,64,128)
  --q-len N --p-len N    speed: tokens per question / passage (default 32 / 128)
  --steps N              speed: timed updates per row (default 5, after 2 untimed)
  --warm N               speed: untimed updates first (default 2)
  --grad-cache N         speed: GradCache chunk rows (wasm's 4 GiB heap needs it for BERT-base)
  --shared               speed: one encoder for questions and passages (default two, as DPR)
  --data DIR             e2e: a BEIR folder with train and test splits (e.g. SciFact)
  --e2e-minutes X        e2e: minutes of training in all (default 4; 45% pretraining, 55% fine-tuning)
  --e2e-shape S          e2e: h256 (hidden 256 x 4 layers, default) or tiny (128 x 2)
  --budget-seconds S     skip what would not finish inside S seconds from the start (default none)
  --help
Exit codes: 0 every stage run passed, 1 a stage failed (see report.json), 2 usage error.
`;

/** `langchain-dpr demo` (scripts/demo.ts, `npm start`). */
export const DEMO_USAGE = `Usage: langchain-dpr demo [options]

Indexes the bundled PubMedQA corpus (1,000 abstracts, MIT) with the default DPR model, answers a few
questions (top passages, encode / search / rerank milliseconds) and prints BM25 vs DPR vs hybrid
(vs reranked) on the 500 bundled test questions.

  --dpr DIR              DPR model folder (default: the shipped model)
  --cross-encoder DIR    cross-encoder folder (default: the shipped one)
  --questions N          questions answered in full (default 3)
  --top N                passages shown per question (default 3)
  --help                 this text
`;

/** `langchain-dpr export`: a safetensors checkpoint → an ONNX model folder. */
export const EXPORT_USAGE = `Usage: langchain-dpr export --from <checkpoint folder> [--out <folder>] [options]

Writes model.onnx (+ model.onnx.data) from BERT weights in safetensors. --from is one of:
  an encoder folder      config.json + model.safetensors: a Hugging Face BERT or DPR encoder
                         (e.g. facebook/dpr-question_encoder-single-nq-base) or one of ours
  a DPR model folder     question_encoder/ + passage_encoder/ (or ctx_encoder/), or encoder/, each
                         with config.json + model.safetensors (what langchain-dpr train writes)
With --out, the model folder is written there: the ONNX graphs beside copies of config.json, the
tokenizer files and dpr_config.json (model.safetensors stays in --from); without --out, the graphs
are written into the --from folder.

  --from DIR             checkpoint folder                                       (required)
  --out DIR              output folder (default: --from)
  --quantize             also write model_quantized.onnx (int8 weights)
  --pooler cls|bert|none pooler_output: the CLS vector (default), BERT's tanh(dense(CLS)), or none
  --classifier           add the sequence-classification head (logits; cross-encoders); the default
                         when config.json's architectures name a ...ForSequenceClassification model
  --fused                onnxruntime contrib ops (com.microsoft) instead of standard-op subgraphs
  --help                 this text
`;

/** `langchain-dpr make-random-model` (scripts/make-random-model.ts). */
export const MAKE_RANDOM_MODEL_USAGE = `Usage: langchain-dpr make-random-model --out DIR [options]

Writes a randomly initialised DPR model folder (tests, benchmarks, pipeline checks): a WordPiece
vocabulary learnt from --vocab-from, two encoders (or one with --shared), ONNX + safetensors.

  --out DIR              model folder to write                                    (required)
  --shape S              bert-base | minilm | tiny (default tiny)
  --seed N               weight seed (default 42)
  --vocab-from FILE      a text file (one text per line) or a BEIR corpus.jsonl (title + text)
                         (default: PubMedQA passages: the test fixture in a clone, else the bundled corpus)
  --vocab-size N         WordPiece vocabulary size (default 30522; tiny: 2000)
  --quantize             also write model_quantized.onnx (int8)
  --shared               one encoder for questions and passages
  --no-safetensors       ONNX only
  --help                 this text
`;

/** `langchain-dpr build-native`. */
export const BUILD_NATIVE_USAGE = `Usage: langchain-dpr build-native

Builds the native parts (faiss-node from its npm source and the FaissDPRStore addon) against the
system faiss (Debian: libfaiss-dev libopenblas0-openmp build-essential python3) by running the
package's scripts/build-native.sh with bash; its exit code is passed through.
Environment: FORCE=1 rebuilds everything; JOBS=N parallel compile jobs; LIBFAISS=path of libfaiss.a.
`;

/** `langchain-dpr encode-shard` (scripts/encode-shard.ts). */
export const ENCODE_SHARD_USAGE = `Usage: langchain-dpr encode-shard --model <DPR folder> --corpus <BEIR folder | corpus.jsonl>
         --shard I --shards N --out <folder> [options]

Encodes shard I of N of the corpus with the model's passage encoder (DPR's generate_dense_embeddings:
shard size ceil(passages / N), shard I starts at I × size), so N processes or machines sharing --out
can encode in parallel; langchain-dpr build-index then builds one index from the shards.
Writes <out>/shard-I-of-N.vectors (256-byte header, then float32 rows) and <out>/shard-I-of-N.ids.jsonl.
Resumable: work goes to <out>/shard-I-of-N.partial/ in chunks (progress.json after each); rerun the same
command after a kill. A finished shard is checked and skipped.

  --model DIR            DPR model folder                                          (required)
  --corpus PATH          BEIR folder (corpus.jsonl) or a BEIR-format corpus.jsonl  (required)
  --shard I              this shard, 0 <= I < N                                    (required)
  --shards N             number of shards                                          (required)
  --out DIR              output folder, shared by all shards                       (required)
  --batch-size N         passages per onnxruntime batch (default 64)
  --chunk-rows N         passages per chunk, the unit of resume (default 1024)
  --threads N            onnxruntime intra-op threads (default: one per core)
  --quantized            run model_quantized.onnx
  --throttle-ms N        sleep N ms after each chunk
  --no-progress          no progress line on stderr
  --help                 this text
`;

/** `langchain-dpr build-index` (scripts/build-index.ts). */
export const BUILD_INDEX_USAGE = `Usage: langchain-dpr build-index --shards <folder> --corpus <BEIR folder | corpus.jsonl>
         (--out <store folder> | --pgvector <table>) [options]

Checks every shard written by langchain-dpr encode-shard (all N present, one N, one dims, one model, the
corpus they came from, file sizes and digests), trains the index on a seeded random sample of rows when
the factory needs it, adds the vectors shard by shard with their corpus documents (id, text,
metadata.title) and saves a FaissDPRStore folder (FaissDPRStore.load opens it).

  --shards DIR           folder of shard-<i>-of-<n>.vectors + .ids.jsonl           (required)
  --corpus PATH          the corpus the shards were encoded from                   (required)
  --out DIR              store folder to write (or --pgvector)
  --pgvector TABLE       load into a PostgreSQL + pgvector table instead (DPRPGVectorStore; connection from
                         PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE); every shard is read through once
                         before a row is written; rerun after a failure: stored batches are skipped
  --pg-index SPEC        with --pgvector: hnsw[:M[:efConstruction]], ivfflat:<lists> or none (default)
  --factory F            faiss index_factory string: Flat (default), HNSW32, IVF4096,Flat,
                         IVF4096,PQ64, OPQ64,IVF4096,PQ64, IVF4096,SQ8, ...
  --train-sample N       rows to train on (default max(39 × centroids, 100000), at most the corpus)
  --seed N               seed of the training sample (default 42)
  --model DIR            also check that the shards come from this DPR model's passage encoder
  --quantized            with --model: its model_quantized.onnx
  --nprobe N             default IVF nprobe saved with the store
  --ef-search N          default HNSW efSearch saved with the store
  --threads N            faiss OpenMP threads
  --add-batch N          rows per add (default 10000; with --pgvector, rows read per step, default 5000)
  --no-progress          no progress line on stderr
  --help                 this text
`;
