/** Number-valued command-line flags, parsed one way by every CLI of the project. */

/** What a numeric flag must be. */
export interface NumberFlagRule {
  /** Only whole numbers. */
  integer?: boolean;
  /** Smallest accepted value. */
  min?: number;
}

function describeRule(rule: NumberFlagRule): string {
  const kind = rule.integer ? "an integer" : "a number";
  return rule.min === undefined ? kind : `${kind} >= ${rule.min}`;
}

/**
 * Parses a numeric flag's text; `undefined` when the flag was not given.
 * @throws Error `"<who>: <flag> must be an integer >= 1, got "x""` naming the CLI, the flag and the text.
 */
export function parseNumberFlag(who: string, flag: string, text: string | undefined, rule: NumberFlagRule = {}): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  const ok =
    text.trim() !== "" &&
    Number.isFinite(n) &&
    // integers in plain decimal only (no "1e3", "0x10")
    (!rule.integer || /^\s*[+-]?\d+\s*$/.test(text)) &&
    (rule.min === undefined || n >= rule.min);
  if (!ok) throw new Error(`${who}: ${flag} must be ${describeRule(rule)}, got "${text}"`);
  return n;
}
