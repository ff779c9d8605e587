/**
 * Gradients of the DPR loss for a dual encoder, in one pass (plain) or with gradient caching
 * (GradCache, Gao et al. 2021) for large batches in small memory:
 *
 * 1. embed every question and passage in chunks of `chunkSize` rows without keeping the graph;
 * 2. compute the loss on all embeddings and its gradient with respect to each embedding;
 * 3. for each chunk again, forward with the graph and back-propagate that chunk's embedding
 *    gradient (the gradient of `sum(E_chunk ⊙ dL/dE_chunk)`), summing the weight gradients.
 *
 * Memory then holds one chunk's activations at a time; the loss and gradients equal the plain ones
 * (same dropout masks: each chunk's masks are seeded the same way in steps 1 and 3).
 */
import "@tensorflow/tfjs"; // registers TF.js's gradient functions (not part of tfjs-core)
import * as tf from "@tensorflow/tfjs-core";
import { l2Normalize, type BertEncoderTF, type BertInputsTF, type PoolingTF } from "./bert-tf.js";
import { dprLoss, type DistillationTarget } from "./loss.js";
import { SeededRandom } from "./random.js";

/** The two encoders of a DPR model (the same object twice when shared). */
export interface DualEncoderTF {
  question: BertEncoderTF;
  passage: BertEncoderTF;
}

/** Whether both sides are one encoder. */
export function isShared(enc: DualEncoderTF): boolean {
  return enc.question === enc.passage;
}

/**
 * The trainable variables under trainer names: `encoder/<name>` when shared, else
 * `question/<name>` and `passage/<name>` (canonical Hugging Face names, Linear weights `[in, out]`).
 */
export function namedTrainableVariables(enc: DualEncoderTF): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  const sides: [string, BertEncoderTF][] = isShared(enc)
    ? [["encoder", enc.question]]
    : [
        ["question", enc.question],
        ["passage", enc.passage],
      ];
  for (const [prefix, e] of sides) for (const [name, v] of e.namedVariables) out.set(`${prefix}/${name}`, v);
  return out;
}

/** Rows `[start, end)` of a tokenised batch. */
export function sliceRows(inputs: BertInputsTF, start: number, end: number): BertInputsTF {
  const rows = (m: BertInputsTF["inputIds"] | undefined) => {
    if (m === undefined) return undefined;
    if (!Array.isArray(m)) throw new Error("sliceRows: expected nested arrays, got a tensor");
    return m.slice(start, end);
  };
  const out: BertInputsTF = { inputIds: rows(inputs.inputIds)!, attentionMask: rows(inputs.attentionMask)! };
  if (inputs.tokenTypeIds !== undefined) out.tokenTypeIds = rows(inputs.tokenTypeIds);
  return out;
}

function rowCount(inputs: BertInputsTF): number {
  return Array.isArray(inputs.inputIds) ? inputs.inputIds.length : inputs.inputIds.shape[0];
}

/** Arguments of {@link computeDprGradients}. */
export interface DprGradientParams {
  encoders: DualEncoderTF;
  questions: BertInputsTF;
  /** B positives (row i for question i) then shared hard negatives. */
  passages: BertInputsTF;
  pooling?: PoolingTF;
  temperature?: number;
  /** Dropout on (default true). */
  training?: boolean;
  /** GradCache chunk size in rows; omit (or ≥ every side's rows) for one plain pass. */
  chunkSize?: number;
  /** Seed of this step's dropout masks (each side and chunk derives its own); random when omitted. */
  dropoutSeed?: number;
  /** L2-normalise the pooled vectors before the loss (a model that scores by cosine; use a temperature). */
  normalize?: boolean;
  /** A teacher's scores of this batch, for listwise distillation ({@link DistillationTarget}). */
  teacher?: DistillationTarget;
}

/**
 * The loss and the gradient of every trainable variable (keys of {@link namedTrainableVariables}).
 * Both stay on the device (no read stalls a GPU): read the loss with `await loss.data()` (or
 * `readScalars`); the caller disposes every tensor.
 */
export interface DprGradients {
  loss: tf.Scalar;
  grads: Map<string, tf.Tensor>;
}

function wrapOutOfMemory(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  if (tf.getBackend() === "wasm" && /Aborted|out of memory|memory access out of bounds/i.test(message)) {
    throw new Error(
      `computeDprGradients: the wasm backend ran out of its 4 GiB heap (${message.split("\n")[0]}); ` +
        `use a smaller batch or a GradCache chunk size (--grad-cache). The wasm backend cannot be used again in this process.`,
    );
  }
  throw err;
}

/**
 * Loss and gradients of one DPR batch (see the module documentation). The caller owns (and disposes)
 * the returned tensors and checks that the loss is finite.
 * @throws Error when the wasm heap is exhausted (with advice).
 */
export function computeDprGradients(params: DprGradientParams): DprGradients {
  const { encoders } = params;
  const pooling = params.pooling ?? "cls";
  const training = params.training ?? true;
  const fast = encoders.question.fastPaths.fastDense;
  const lossOpts = { temperature: params.temperature, fast, teacher: params.teacher };
  const named = namedTrainableVariables(encoders);
  const byVarName = new Map<string, string>();
  for (const [name, v] of named) byVarName.set(v.name, name);
  const varList = [...named.values()];
  const seedFor = (side: number, chunk: number): number | undefined =>
    params.dropoutSeed === undefined ? undefined : SeededRandom.mix(params.dropoutSeed, side, chunk);
  const encodeChunk = (side: 0 | 1, inputs: BertInputsTF, chunk: number): tf.Tensor2D => {
    const enc = side === 0 ? encoders.question : encoders.passage;
    enc.reseedDropout(seedFor(side, chunk));
    const v = enc.encode(inputs, { training, pooling });
    return params.normalize ? l2Normalize(v) : v;
  };
  const toNamed = (grads: tf.NamedTensorMap): Map<string, tf.Tensor> => {
    const out = new Map<string, tf.Tensor>();
    for (const [varName, g] of Object.entries(grads)) {
      const name = byVarName.get(varName);
      if (name === undefined) {
        g.dispose();
        continue;
      }
      out.set(name, g);
    }
    return out;
  };
  const nq = rowCount(params.questions);
  const np = rowCount(params.passages);
  const chunk = params.chunkSize;
  if (chunk !== undefined && (!Number.isInteger(chunk) || chunk < 1)) {
    throw new Error(`computeDprGradients: chunkSize must be an integer >= 1, got ${chunk}`);
  }
  try {
    if (chunk === undefined || (chunk >= nq && chunk >= np)) {
      const { value, grads } = tf.variableGrads(
        () => dprLoss(encodeChunk(0, params.questions, 0), encodeChunk(1, params.passages, 0), lossOpts),
        varList,
      );
      return { loss: value as tf.Scalar, grads: toNamed(grads) };
    }
    // 1. Embeddings of every chunk, without graph.
    const ranges = (n: number): [number, number][] => {
      const out: [number, number][] = [];
      for (let s = 0; s < n; s += chunk) out.push([s, Math.min(n, s + chunk)]);
      return out;
    };
    const qRanges = ranges(nq);
    const pRanges = ranges(np);
    const embedAll = (side: 0 | 1, inputs: BertInputsTF, rs: [number, number][]): tf.Tensor2D =>
      tf.tidy(
        () =>
          tf.concat(
            rs.map(([s, e], i) => encodeChunk(side, sliceRows(inputs, s, e), i)),
            0,
          ) as tf.Tensor2D,
      );
    const qEmb = embedAll(0, params.questions, qRanges);
    const pEmb = embedAll(1, params.passages, pRanges);
    // 2. Loss and its gradient with respect to every embedding.
    const { value, grads: embGrads } = tf.valueAndGrads((q: tf.Tensor, p: tf.Tensor) =>
      dprLoss(q as tf.Tensor2D, p as tf.Tensor2D, lossOpts),
    )([qEmb, pEmb]);
    qEmb.dispose();
    pEmb.dispose();
    const loss = value as tf.Scalar;
    const [dq, dp] = embGrads as [tf.Tensor2D, tf.Tensor2D];
    // 3. Back-propagate each chunk's embedding gradient, summing the weight gradients.
    const acc = new Map<string, tf.Tensor>();
    const backward = (side: 0 | 1, inputs: BertInputsTF, rs: [number, number][], d: tf.Tensor2D) => {
      rs.forEach(([s, e], i) => {
        const dChunk = tf.slice(d, [s, 0], [e - s, d.shape[1]]);
        const { value: surrogate, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(encodeChunk(side, sliceRows(inputs, s, e), i), dChunk)) as tf.Scalar,
          varList,
        );
        surrogate.dispose();
        dChunk.dispose();
        for (const [name, g] of toNamed(grads)) {
          const prev = acc.get(name);
          if (prev === undefined) acc.set(name, g);
          else {
            acc.set(name, tf.add(prev, g));
            prev.dispose();
            g.dispose();
          }
        }
      });
    };
    try {
      backward(0, params.questions, qRanges, dq);
      backward(1, params.passages, pRanges, dp);
    } catch (err) {
      loss.dispose();
      for (const g of acc.values()) g.dispose();
      throw err;
    } finally {
      dq.dispose();
      dp.dispose();
    }
    return { loss, grads: acc };
  } catch (err) {
    return wrapOutOfMemory(err);
  }
}
