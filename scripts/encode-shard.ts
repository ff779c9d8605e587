/**
 * Encodes shard I of N of a corpus into a vector shard file: `langchain-dpr encode-shard`
 * (src/sharding/cli.ts). See `--help`.
 *
 *   for i in 0 1 2; do npx tsx scripts/encode-shard.ts --model models/dpr --corpus data/scifact \
 *     --shard $i --shards 3 --out shards/ & done; wait
 */
import { main } from "../src/cli/dispatch.js";

await main(["encode-shard", ...process.argv.slice(2)]);
