/**
 * `npm start`: the demo over the default model and the bundled PubMedQA corpus: `langchain-dpr demo`.
 *   npx tsx scripts/demo.ts [--dpr <model dir>] [--cross-encoder <dir>] [--questions N] [--top K]
 */
import { main } from "../src/cli/dispatch.js";

await main(["demo", ...process.argv.slice(2)]);
