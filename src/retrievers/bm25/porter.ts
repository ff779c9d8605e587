/**
 * The Porter (1980) stemming algorithm, as Lucene's `PorterStemFilter` applies it (and therefore
 * as Pyserini/Anserini indexes are stemmed): the original algorithm, not Porter2/Snowball
 * "english", including the two departures of Porter's reference implementation that Lucene keeps
 * ("-bli" → "-ble" instead of "-abli" → "-able", and "-logi" → "-log"). Words shorter than three
 * characters are left alone. Input is expected lower-cased.
 *
 * Written from the published algorithm (https://tartarus.org/martin/PorterStemmer/def.txt).
 */

const A = 97,
  E = 101,
  I = 105,
  O = 111,
  U = 117,
  Y = 121,
  W = 119,
  X = 120,
  L = 108,
  S = 115,
  Z = 122,
  T = 116;

function isVowelLetter(c: number): boolean {
  return c === A || c === E || c === I || c === O || c === U;
}

/** True when `w[i]` is a consonant in Porter's sense ("y" after a consonant is a vowel). */
function isConsonant(w: string, i: number): boolean {
  const c = w.charCodeAt(i);
  if (isVowelLetter(c)) return false;
  if (c === Y) return i === 0 ? true : !isConsonant(w, i - 1);
  return true;
}

/** Porter's measure m of `w[0, end)`: the number of vowel-consonant sequences. */
function measure(w: string, end: number): number {
  let i = 0;
  while (i < end && isConsonant(w, i)) i++;
  let m = 0;
  while (i < end) {
    while (i < end && !isConsonant(w, i)) i++;
    if (i >= end) break;
    m++;
    while (i < end && isConsonant(w, i)) i++;
  }
  return m;
}

function hasVowel(w: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (!isConsonant(w, i)) return true;
  return false;
}

/** `w[0, end)` ends with a double consonant. */
function endsDoubleConsonant(w: string, end: number): boolean {
  return end >= 2 && w.charCodeAt(end - 1) === w.charCodeAt(end - 2) && isConsonant(w, end - 1);
}

/** `w[0, end)` ends consonant-vowel-consonant, the last not w, x or y (e.g. "hop", not "snow"). */
function endsCvc(w: string, end: number): boolean {
  if (end < 3) return false;
  if (!isConsonant(w, end - 1) || isConsonant(w, end - 2) || !isConsonant(w, end - 3)) return false;
  const c = w.charCodeAt(end - 1);
  return c !== W && c !== X && c !== Y;
}

type Rule = readonly [suffix: string, replacement: string];

/** Suffix rules, longest first so that the longest matching suffix is the one tested. */
const STEP2: readonly Rule[] = sortLongestFirst([
  ["ational", "ate"],
  ["tional", "tion"],
  ["enci", "ence"],
  ["anci", "ance"],
  ["izer", "ize"],
  ["bli", "ble"],
  ["alli", "al"],
  ["entli", "ent"],
  ["eli", "e"],
  ["ousli", "ous"],
  ["ization", "ize"],
  ["ation", "ate"],
  ["ator", "ate"],
  ["alism", "al"],
  ["iveness", "ive"],
  ["fulness", "ful"],
  ["ousness", "ous"],
  ["aliti", "al"],
  ["iviti", "ive"],
  ["biliti", "ble"],
  ["logi", "log"],
]);
const STEP3: readonly Rule[] = sortLongestFirst([
  ["icate", "ic"],
  ["ative", ""],
  ["alize", "al"],
  ["iciti", "ic"],
  ["ical", "ic"],
  ["ful", ""],
  ["ness", ""],
]);
const STEP4: readonly string[] = [
  "al",
  "ance",
  "ence",
  "er",
  "ic",
  "able",
  "ible",
  "ant",
  "ement",
  "ment",
  "ent",
  "ion",
  "ou",
  "ism",
  "ate",
  "iti",
  "ous",
  "ive",
  "ize",
].sort((a, b) => b.length - a.length);

function sortLongestFirst(rules: Rule[]): Rule[] {
  return rules.sort((a, b) => b[0].length - a[0].length);
}

/** Applies the first (longest) matching rule if the remaining stem has measure > 0. */
function applyRules(w: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement] of rules) {
    if (w.endsWith(suffix)) {
      const stemEnd = w.length - suffix.length;
      return measure(w, stemEnd) > 0 ? w.slice(0, stemEnd) + replacement : w;
    }
  }
  return w;
}

/** Stems one lower-cased word with the Porter algorithm (Lucene's variant; see module doc). */
export function porterStem(word: string): string {
  if (word.length < 3) return word;
  let w = word;

  // Step 1a: plurals.
  if (w.charCodeAt(w.length - 1) === S) {
    if (w.endsWith("sses")) w = w.slice(0, -2);
    else if (w.endsWith("ies")) w = w.slice(0, -2);
    else if (w.charCodeAt(w.length - 2) !== S) w = w.slice(0, -1);
  }

  // Step 1b: -eed, -ed, -ing.
  if (w.endsWith("eed")) {
    if (measure(w, w.length - 3) > 0) w = w.slice(0, -1);
  } else {
    const suffixLength = w.endsWith("ed") ? 2 : w.endsWith("ing") ? 3 : 0;
    if (suffixLength > 0 && hasVowel(w, w.length - suffixLength)) {
      w = w.slice(0, -suffixLength);
      if (w.endsWith("at") || w.endsWith("bl") || w.endsWith("iz")) {
        w += "e";
      } else if (endsDoubleConsonant(w, w.length)) {
        const last = w.charCodeAt(w.length - 1);
        if (last !== L && last !== S && last !== Z) w = w.slice(0, -1);
      } else if (measure(w, w.length) === 1 && endsCvc(w, w.length)) {
        w += "e";
      }
    }
  }

  // Step 1c: terminal y → i when the stem has a vowel.
  if (w.charCodeAt(w.length - 1) === Y && hasVowel(w, w.length - 1)) {
    w = w.slice(0, -1) + "i";
  }

  // Steps 2 and 3: double suffixes to single ones; -ic-, -full, -ness.
  w = applyRules(w, STEP2);
  w = applyRules(w, STEP3);

  // Step 4: remove -ant, -ence, ... when m > 1 ("-ion" only after s or t).
  for (const suffix of STEP4) {
    if (w.endsWith(suffix)) {
      const stemEnd = w.length - suffix.length;
      if (suffix === "ion") {
        const before = stemEnd > 0 ? w.charCodeAt(stemEnd - 1) : 0;
        if (before !== S && before !== T) break;
      }
      if (measure(w, stemEnd) > 1) w = w.slice(0, stemEnd);
      break;
    }
  }

  // Step 5a: final -e.
  if (w.charCodeAt(w.length - 1) === E) {
    const m = measure(w, w.length - 1);
    if (m > 1 || (m === 1 && !endsCvc(w, w.length - 1))) w = w.slice(0, -1);
  }
  // Step 5b: -ll → -l when m > 1.
  if (w.charCodeAt(w.length - 1) === L && endsDoubleConsonant(w, w.length) && measure(w, w.length) > 1) {
    w = w.slice(0, -1);
  }
  return w;
}
