/**
 * Builds a FaissDPRStore from the vector shards of `encode-shard`: `langchain-dpr build-index`
 * (src/sharding/cli.ts). See `--help`.
 *
 *   npx tsx scripts/build-index.ts --shards shards/ --corpus data/scifact --out index/ --factory "IVF4096,PQ64"
 */
import { main } from "../src/cli/dispatch.js";

await main(["build-index", ...process.argv.slice(2)]);
