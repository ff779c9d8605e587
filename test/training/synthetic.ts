/**
 * A small synthetic retrieval task for trainer tests, written as a BEIR folder: each passage has a
 * title and a text built from two made-up "key" words and filler words shared by every passage; its
 * query repeats the key words among other filler. A model learns to match keys within a few dozen
 * updates, while a random one ranks close to chance.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { seededUniform } from "../../src/utils/random.js";

const SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pu", "da", "gi", "bo", "fe", "hu", "ja"];
const FILLER = [
  "the",
  "study",
  "of",
  "cells",
  "and",
  "results",
  "show",
  "that",
  "in",
  "patients",
  "with",
  "a",
  "new",
  "method",
  "for",
  "data",
];

export interface SyntheticTask {
  corpus: { _id: string; title: string; text: string }[];
  queries: { _id: string; text: string }[];
  /** query id → passage id, every query has one relevant passage. */
  qrels: [string, string][];
}

export function syntheticTask(numPassages: number, seed = 1): SyntheticTask {
  const r = seededUniform(seed);
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const word = () => pick(SYLLABLES) + pick(SYLLABLES) + pick(SYLLABLES);
  const used = new Set<string>();
  const key = () => {
    for (;;) {
      const w = word();
      if (!used.has(w)) {
        used.add(w);
        return w;
      }
    }
  };
  const filler = (n: number) => Array.from({ length: n }, () => pick(FILLER)).join(" ");
  const corpus: SyntheticTask["corpus"] = [];
  const queries: SyntheticTask["queries"] = [];
  const qrels: [string, string][] = [];
  for (let i = 0; i < numPassages; i++) {
    const [k1, k2] = [key(), key()];
    corpus.push({ _id: `d${i}`, title: `${k1} report`, text: `${filler(4)} ${k1} ${filler(3)} ${k2} ${filler(4)}` });
    queries.push({ _id: `q${i}`, text: `${filler(2)} ${k2} ${filler(1)} ${k1}` });
    qrels.push([`q${i}`, `d${i}`]);
  }
  return { corpus, queries, qrels };
}

/** Writes the task as a BEIR folder with a `train` split (all queries) and a `dev` split (the first `dev`). */
export async function writeSyntheticBeir(dir: string, task: SyntheticTask, dev = task.queries.length): Promise<void> {
  await mkdir(join(dir, "qrels"), { recursive: true });
  await writeFile(join(dir, "corpus.jsonl"), task.corpus.map((p) => JSON.stringify(p)).join("\n") + "\n");
  await writeFile(join(dir, "queries.jsonl"), task.queries.map((q) => JSON.stringify(q)).join("\n") + "\n");
  const tsv = (rows: [string, string][]) => "query-id\tcorpus-id\tscore\n" + rows.map(([q, d]) => `${q}\t${d}\t1`).join("\n") + "\n";
  await writeFile(join(dir, "qrels", "train.tsv"), tsv(task.qrels));
  await writeFile(join(dir, "qrels", "dev.tsv"), tsv(task.qrels.slice(0, dev)));
}
