import { describe, expect, it } from "vitest";
import { CrossEncoderTrainer } from "../../src/training/cross-encoder-trainer.js";
import { scratchModel } from "../../src/training/init.js";
import {
  DEFAULT_MAX_GRAD_NORM,
  requireFraction,
  requireInteger,
  requirePositive,
  runLength,
  warmupLinearSchedule,
} from "../../src/training/recipe.js";
import { DPRTrainer } from "../../src/training/trainer.js";

describe("runLength (one meaning of epochs and maxSteps for both trainers)", () => {
  it("without maxSteps: epochs × updates per epoch, and no more epochs than asked", () => {
    expect(runLength({ epochs: 3, stepsPerEpoch: 7 })).toEqual({ totalSteps: 21, maxEpochs: 3 });
  });

  it("with maxSteps: exactly that many updates, below or beyond epochs × updates per epoch (maxSteps overrides epochs)", () => {
    expect(runLength({ epochs: 3, stepsPerEpoch: 7, maxSteps: 5 })).toEqual({ totalSteps: 5, maxEpochs: Infinity });
    expect(runLength({ epochs: 1, stepsPerEpoch: 2, maxSteps: 30 })).toEqual({ totalSteps: 30, maxEpochs: Infinity });
  });
});

describe("warmupLinearSchedule", () => {
  it("rounds warmupRatio × totalSteps to the nearest update and caps explicit warm-up at the run's length", () => {
    expect(warmupLinearSchedule({ lr: 1, warmupRatio: 0.1, totalSteps: 24 }).warmupSteps).toBe(2); // 2.4
    expect(warmupLinearSchedule({ lr: 1, warmupRatio: 0.1, totalSteps: 25 }).warmupSteps).toBe(3); // 2.5
    expect(warmupLinearSchedule({ lr: 1, warmupRatio: 0.1, warmupSteps: 40, totalSteps: 25 }).warmupSteps).toBe(25);
  });

  it("rises linearly to the peak over the warm-up, then decays linearly towards 0 at the last update", () => {
    const { schedule } = warmupLinearSchedule({ lr: 0.01, warmupRatio: 0.2, totalSteps: 10 });
    expect([0, 1, 2, 5, 9].map(schedule)).toEqual([0.005, 0.01, 0.01, 0.00625, 0.00125]);
  });
});

describe("defaults defined once", () => {
  const { config, tokenizer } = scratchModel({
    hidden: 16,
    layers: 1,
    heads: 2,
    ffn: 32,
    maxLen: 32,
    vocabSize: 120,
    texts: ["soy intake and breast cancer risk", "vitamin d and bone density"],
  });
  const examples = [
    {
      question: "soy and cancer",
      positives: [{ id: "a", title: "", text: "soy intake and breast cancer risk" }],
      negatives: [],
      hardNegatives: [],
    },
  ];

  it("clips at 2.0 for the dual encoder (DPR's recipe) and 1.0 for the cross-encoder, unless told otherwise", () => {
    expect(DEFAULT_MAX_GRAD_NORM).toEqual({ dualEncoder: 2, crossEncoder: 1 });
    const dpr = new DPRTrainer({
      outputDir: "unused",
      tokenizer,
      init: { config },
      train: examples,
      maxQueryLength: 16,
      maxPassageLength: 32,
    });
    expect(dpr.maxGradNorm).toBe(2);
    const ce = new CrossEncoderTrainer({ outputDir: "unused", tokenizer, config, train: examples, progress: false });
    try {
      expect(ce.maxGradNorm).toBe(1);
      expect(
        new DPRTrainer({
          outputDir: "unused",
          tokenizer,
          init: { config },
          train: examples,
          maxQueryLength: 16,
          maxPassageLength: 32,
          maxGradNorm: 0.5,
        }).maxGradNorm,
      ).toBe(0.5);
    } finally {
      ce.dispose();
    }
  });

  it("the option checks name the owner, the option, the bound and the value", () => {
    expect(() => requireInteger("DPRTrainer", 2.5, "batchSize", 1)).toThrow("DPRTrainer: batchSize must be an integer >= 1, got 2.5");
    expect(() => requireInteger("X", undefined, "maxSteps", 1)).not.toThrow();
    expect(() => requirePositive("CrossEncoderTrainer", 0, "maxMinutes")).toThrow("CrossEncoderTrainer: maxMinutes must be > 0, got 0");
    expect(() => requireFraction("DPRTrainer", 1, "warmupRatio")).not.toThrow();
    expect(() => requireFraction("DPRTrainer", 1, "dropout")).toThrow("DPRTrainer: dropout must be in [0, 1), got 1");
    expect(() => requireFraction("CrossEncoderTrainer", -0.1, "warmupRatio")).toThrow(
      "CrossEncoderTrainer: warmupRatio must be in [0, 1], got -0.1",
    );
  });
});
