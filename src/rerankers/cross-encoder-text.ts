/**
 * The one rule for the passage side of a cross-encoder pair, used when serving
 * (CrossEncoderReranker), evaluating and training, so a model reads at inference exactly what it
 * was trained on.
 *
 * @module
 */

/**
 * How a title joins the passage text in the second segment.
 * - `"space"` (default): `title + " " + text`, the convention of BEIR's cross-encoder reranking
 *   (`[CLS] query [SEP] title text [SEP]`). MS MARCO cross-encoders were trained on passages
 *   without titles; a title in front is how BEIR evaluates them on titled corpora.
 * - `"none"`: titles are ignored; only the text is scored.
 */
export type CrossEncoderTitleJoin = "space" | "none";

/** The valid {@link CrossEncoderTitleJoin} values. */
export const CROSS_ENCODER_TITLE_JOINS: readonly CrossEncoderTitleJoin[] = ["space", "none"];

/**
 * The second segment a cross-encoder reads for a passage: with `"space"` and a title that is a
 * non-empty string (after trimming), `title text` trimmed at both ends; otherwise the text as is.
 */
export function crossEncoderText(title: unknown, text: string, titleJoin: CrossEncoderTitleJoin = "space"): string {
  if (titleJoin === "space" && typeof title === "string" && title.trim().length > 0) return `${title} ${text}`.trim();
  return text;
}
