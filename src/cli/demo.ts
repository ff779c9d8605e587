/**
 * `langchain-dpr demo` (`npm start`): the demo over the default models and the bundled PubMedQA
 * corpus ({@link runDemo}).
 *
 * @module
 */
import { runDemo } from "../demo/demo.js";
import { parseCliArgs, parseNumberFlag, PROCESS_IO, runCommandLine, type CliIO } from "../utils/cli-args.js";
import { DEMO_USAGE } from "./usage.js";

const WHO = "demo";

/** Runs the demo command line; returns the exit code (0 ok, 1 runtime error, 2 usage error). Never throws. */
export async function runDemoCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  return runCommandLine({ who: WHO, usage: DEMO_USAGE, io }, async () => {
    const { values } = parseCliArgs(WHO, {
      args: argv,
      options: {
        dpr: { type: "string" },
        "cross-encoder": { type: "string" },
        questions: { type: "string" },
        top: { type: "string" },
        help: { type: "boolean" },
      },
    });
    if (values.help) {
      io.stdout(DEMO_USAGE);
      return 0;
    }
    const questions = parseNumberFlag(WHO, "--questions", values.questions, { integer: true, min: 0 });
    const topK = parseNumberFlag(WHO, "--top", values.top, { integer: true, min: 1 });
    await runDemo({
      dprModel: values.dpr,
      crossEncoder: values["cross-encoder"],
      questions,
      topK,
      print: (line) => io.stdout(`${line}\n`),
    });
    return 0;
  });
}
