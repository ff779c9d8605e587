// ESLint (flat config): JavaScript's recommended rules and typescript-eslint's, without type information
// (fast enough to run in `npm test`). Formatting is Prettier's job (npm run format), not ESLint's.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "node_modules/",
      "dist/",
      "build/",
      ".cache/",
      "runs/",
      "prebuilds/",
      "src/native/build/",
      "notebooks/",
      "scripts/gpu/results/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // `_name` marks a parameter or binding kept on purpose (a callback's signature, a rest sibling).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", ignoreRestSiblings: true },
      ],
      // One line per statement would be Prettier's business; lines stay within Prettier's width.
      "max-len": ["error", { code: 140, ignoreUrls: true, ignoreRegExpLiterals: true }],
    },
  },
);
