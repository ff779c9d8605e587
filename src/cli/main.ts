#!/usr/bin/env node
/**
 * The `langchain-dpr` command (package.json `bin`; compiled to dist/cli/main.js). `langchain-dpr --help`
 * lists the commands; src/cli/dispatch.ts runs them.
 */
import { main } from "./dispatch.js";

await main();
