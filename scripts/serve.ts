/**
 * HTTP retrieval server. Usage: npx tsx scripts/serve.ts --model <dpr dir> --index <store dir> [--bm25 <dir>] ...
 * (see src/server/cli.ts for all options; --help prints them).
 */
import { runServe } from "../src/server/cli.js";

runServe(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
