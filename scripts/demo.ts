/**
 * `npm start`: the demo over the default model and the bundled PubMedQA corpus.
 *   npx tsx scripts/demo.ts [--dpr <model dir>] [--cross-encoder <dir>] [--questions N] [--top K]
 */
import { parseArgs } from "node:util";
import { runDemo } from "../src/demo/demo.js";

const { values } = parseArgs({
  options: {
    dpr: { type: "string" },
    "cross-encoder": { type: "string" },
    questions: { type: "string" },
    top: { type: "string" },
  },
});

try {
  await runDemo({
    dprModel: values.dpr,
    crossEncoder: values["cross-encoder"],
    questions: values.questions === undefined ? undefined : Number(values.questions),
    topK: values.top === undefined ? undefined : Number(values.top),
  });
} catch (err) {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
