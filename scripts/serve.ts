/**
 * HTTP retrieval server: `langchain-dpr serve` (src/cli/, src/server/cli.ts).
 *   npx tsx scripts/serve.ts --model <dpr dir> --index <store dir> [--bm25 <dir>] ...   (--help prints every option)
 */
import { main } from "../src/cli/dispatch.js";

await main(["serve", ...process.argv.slice(2)]);
