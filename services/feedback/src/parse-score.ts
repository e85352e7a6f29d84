/**
 * Reads an NPS score (0–10) out of an SMS reply: "9", " 9 ", "9/10", "9 out of 10", "nine",
 * "Ten!", "I'd say 8", "10!!!". Null when the reply names no number, several different numbers
 * ("7 or 8", "4/5"), a number outside 0–10 ("11", "-1", "100") or a fraction ("8.5"): such a reply
 * is not an answer. The same number said twice ("8, yes 8") is that number. "9/10", "9 of 10" and
 * "9 out of 10" are one number, the first. Pure: no I/O, no state.
 */

const WORDS: Record<string, number> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  // Not scores, but numbers: a reply naming them is out of range rather than "no number".
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  hundred: 100,
};

const WORD = Object.keys(WORDS).join('|');
/** A number as people type it: digits (maybe with a decimal part) or a word. */
const NUMBER = `(?:\\d+(?:[.,]\\d+)?|(?:${WORD})(?![a-z]))`;
/** "<n>/10", "<n> / 10", "<n> out of 10", "<n> of ten": the scale after the score is not a second number. */
const ON_A_SCALE_OF_TEN = new RegExp(`(${NUMBER})\\s*(?:/|\\bout\\s+of\\b|\\bof\\b)\\s*(?:10|ten)(?![\\d.,]*\\d|[a-z])`, 'g');
/**
 * Every number left, with a minus sign when it is written right before it ("-1", but not "8-9").
 * Digits may follow anything but a letter ("x9" is not a number, "#9" is); a word must be a whole word.
 */
const ANY_NUMBER = new RegExp(`(?<![a-z\\d])(-?)(\\d+(?:[.,]\\d+)?|(?:${WORD})(?![a-z]))`, 'g');

export function parseScore(text: string): number | null {
  // NFKC turns full-width digits (９) into ASCII ones; case does not matter.
  const normalized = text.normalize('NFKC').toLowerCase();
  const withoutScale = normalized.replace(ON_A_SCALE_OF_TEN, '$1');
  const values = new Set<number>();
  for (const match of withoutScale.matchAll(ANY_NUMBER)) {
    const [, minus, token] = match;
    const value = token! in WORDS ? WORDS[token!]! : Number(token!.replace(',', '.'));
    values.add(minus ? -value || 0 : value);
  }
  if (values.size !== 1) return null;
  const [score] = values;
  return Number.isInteger(score) && score! >= 0 && score! <= 10 ? score! : null;
}
