/**
 * Child process for the kill-during-save test (run with `node --import tsx`):
 *   1. saves a small Flat store (1,000 documents) to the folder and prints "saved-first";
 *   2. adds 150,000 more vectors (d=128, ~75 MiB) and prints "saving-second", then saves again.
 * The parent kills it with SIGKILL while the second save is writing.
 */
import { Document } from "@langchain/core/documents";
import { FaissDPRStore } from "../../src/vectorstores/faiss-dpr-store.js";
import { HashEmbeddings } from "./helpers.js";

const dir = process.argv[2]!;
const d = 128;
const store = new FaissDPRStore(new HashEmbeddings(d), { dimensions: d, addBatchSize: 50_000 });
const small = new Float32Array(1000 * d).map((_, i) => Math.sin(i));
await store.addVectors(
  small,
  Array.from({ length: 1000 }, (_, i) => new Document({ pageContent: `first ${i}`, id: `first-${i}` })),
);
await store.save(dir);
process.stdout.write("saved-first\n");
const n = 150_000;
const big = new Float32Array(n * d).map((_, i) => Math.cos(i * 0.001));
await store.addVectors(
  big,
  Array.from({ length: n }, (_, i) => new Document({ pageContent: `second ${i} `.repeat(4), metadata: { i }, id: `second-${i}` })),
);
process.stdout.write("saving-second\n");
await store.save(dir);
process.stdout.write("saved-second\n");
