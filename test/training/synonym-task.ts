/** A synthetic BEIR folder that lexical matching alone cannot solve (for the lexical-init tests). */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeDprJson } from "../../src/data/dpr.js";
import type { Passage, TrainingExample } from "../../src/data/types.js";
import { seededUniform } from "../../src/utils/random.js";

/**
 * Passages come in pairs sharing a made-up key word and differing in an organ adjective ("cardiac" vs
 * "renal"); a question names the key and the organ by a plain-English synonym ("heart") that no passage
 * uses for it. Lexically both passages of a pair match the question equally (the synonyms sit in a
 * footer every passage carries, so they are in the vocabulary but carry no IDF); a model that learns
 * "heart" ≈ "cardiac" from the training keys ranks the right one first for held-out keys too.
 * `<root>/negatives.json` (DPR JSON) gives each training question its pair's other passage as a hard
 * negative: in-batch negatives alone never hold it, so they teach nothing here.
 */
const ORGANS: [string, string][] = [
  ["cardiac", "heart"],
  ["renal", "kidney"],
  ["hepatic", "liver"],
  ["pulmonary", "lung"],
  ["neural", "brain"],
  ["dermal", "skin"],
];
export async function writeSynonymTask(root: string, keys: number, devKeys: number): Promise<void> {
  const r = seededUniform(11);
  const syl = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pu"];
  const footer = ORGANS.map(([, s]) => s).join(" ");
  const corpus: { _id: string; title: string; text: string }[] = [];
  const negatives: TrainingExample[] = [];
  const queries: { _id: string; text: string }[] = [];
  const train: string[] = [];
  const dev: string[] = [];
  const used = new Set<string>();
  for (let i = 0; i < keys; i++) {
    let key = "";
    while (key === "" || used.has(key)) key = [0, 1, 2].map(() => syl[Math.floor(r() * syl.length)]).join("");
    used.add(key);
    const a = Math.floor(r() * ORGANS.length);
    const b = (a + 1 + Math.floor(r() * (ORGANS.length - 1))) % ORGANS.length;
    for (const [j, o] of [a, b].entries()) {
      corpus.push({ _id: `d${i}-${j}`, title: "", text: `study of ${key} in ${ORGANS[o]![0]} tissue . ${footer}` });
    }
    const target = r() < 0.5 ? 0 : 1;
    queries.push({ _id: `q${i}`, text: `${key} ${ORGANS[[a, b][target]!]![1]}` });
    (i < keys - devKeys ? train : dev).push(`q${i}\td${i}-${target}\t1`);
    const other = corpus[corpus.length - 1 - target]!;
    const hard: Passage = { id: other._id, title: other.title, text: other.text };
    if (i < keys - devKeys) negatives.push({ question: queries[i]!.text, positives: [], negatives: [], hardNegatives: [hard] });
  }
  await mkdir(join(root, "qrels"), { recursive: true });
  await writeFile(join(root, "corpus.jsonl"), corpus.map((x) => JSON.stringify(x)).join("\n") + "\n");
  await writeFile(join(root, "queries.jsonl"), queries.map((x) => JSON.stringify(x)).join("\n") + "\n");
  await writeFile(join(root, "qrels", "train.tsv"), "query-id\tcorpus-id\tscore\n" + train.join("\n") + "\n");
  await writeDprJson(join(root, "negatives.json"), negatives);
  await writeFile(join(root, "qrels", "dev.tsv"), "query-id\tcorpus-id\tscore\n" + dev.join("\n") + "\n");
}
