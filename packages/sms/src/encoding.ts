/**
 * SMS text encoding and segment maths (GSM 03.38 / 3GPP TS 23.038).
 *
 * A message is sent as GSM-7 only when every character is in the GSM basic
 * table or its extension table; a single other character switches the whole
 * message to UCS-2, which cuts capacity from 160 to 70 characters. Long
 * messages are split into concatenated parts whose 6-byte UDH header leaves
 * 153 septets (GSM-7) or 67 UTF-16 units (UCS-2) per part.
 */

export type Encoding = 'GSM7' | 'UCS2';

export interface SegmentInfo {
  encoding: Encoding;
  /** characters as the handset counts them: GSM-7 septets for GSM7 (extension chars count 2), UTF-16 code units for UCS-2 */
  units: number;
  /** user-visible characters (grapheme clusters where the runtime can segment them, else code points) */
  characters: number;
  /** 0 for empty text; never splits a surrogate pair or a GSM escape pair, so it can exceed the naive ceil */
  segments: number;
  /** distinct characters that force UCS-2, in order of first appearance */
  nonGsmCharacters: string[];
}

/** GSM 03.38 basic table in code order, without 0x1B (the escape to the extension table). */
const GSM_BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' + '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';

/** Extension table: each is sent as ESC + char, so it costs 2 septets. */
const GSM_EXTENDED = '\f^{}\\[~]|€';

const basicSet = new Set(GSM_BASIC);
const extendedSet = new Set(GSM_EXTENDED);

export const GSM7_SINGLE_SEGMENT = 160;
export const GSM7_MULTI_SEGMENT = 153;
export const UCS2_SINGLE_SEGMENT = 70;
export const UCS2_MULTI_SEGMENT = 67;

function isGsmCodePoint(ch: string): boolean {
  return basicSet.has(ch) || extendedSet.has(ch);
}

export function isGsm7(text: string): boolean {
  for (const ch of text) {
    if (!isGsmCodePoint(ch)) return false;
  }
  return true;
}

/** Mocean 'mocean-coding' value: 1 for GSM7, 3 for UCS2 */
export function moceanCoding(encoding: Encoding): 1 | 3 {
  return encoding === 'GSM7' ? 1 : 3;
}

// One shared segmenter: constructing Intl.Segmenter is comparatively costly and
// analyzeText runs on every keystroke of a message preview.
const graphemeSegmenter: Intl.Segmenter | undefined =
  typeof Intl !== 'undefined' && typeof Intl.Segmenter === 'function' ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : undefined;

/** User-perceived characters, so 👍🏽 or e + combining accent count (and are reported) as one. */
// Printable ASCII and \n: every character is its own grapheme, and Intl.Segmenter costs ~100 µs a message.
const SIMPLE_TEXT = /^[\n\x20-\x7E]*$/;

function graphemes(text: string): string[] {
  if (!graphemeSegmenter || SIMPLE_TEXT.test(text)) return Array.from(text);
  const out: string[] = [];
  for (const s of graphemeSegmenter.segment(text)) out.push(s.segment);
  return out;
}

function unitCost(ch: string, encoding: Encoding): number {
  if (encoding === 'GSM7') return extendedSet.has(ch) ? 2 : 1;
  return ch.length; // 2 for astral code points (surrogate pair), 1 otherwise
}

/**
 * Splits text into the parts a handset/SMSC would send. Greedy fill per part,
 * moving an escape pair or surrogate pair to the next part rather than
 * cutting it (which is what makes the count exceed the naive ceil).
 */
export function splitSegments(text: string): string[] {
  if (text === '') return [];
  const encoding: Encoding = isGsm7(text) ? 'GSM7' : 'UCS2';
  const single = encoding === 'GSM7' ? GSM7_SINGLE_SEGMENT : UCS2_SINGLE_SEGMENT;
  const multi = encoding === 'GSM7' ? GSM7_MULTI_SEGMENT : UCS2_MULTI_SEGMENT;
  const chars = Array.from(text);
  let total = 0;
  for (const ch of chars) total += unitCost(ch, encoding);
  if (total <= single) return [text];

  const parts: string[] = [];
  let current = '';
  let used = 0;
  for (const ch of chars) {
    const cost = unitCost(ch, encoding);
    if (used + cost > multi) {
      parts.push(current);
      current = '';
      used = 0;
    }
    current += ch;
    used += cost;
  }
  if (current !== '') parts.push(current);
  return parts;
}

export function analyzeText(text: string): SegmentInfo {
  const clusters = graphemes(text);
  const nonGsmCharacters: string[] = [];
  const seen = new Set<string>();
  for (const g of clusters) {
    if (!isGsm7(g) && !seen.has(g)) {
      seen.add(g);
      nonGsmCharacters.push(g);
    }
  }
  const encoding: Encoding = nonGsmCharacters.length === 0 ? 'GSM7' : 'UCS2';
  let units = 0;
  for (const ch of text) units += unitCost(ch, encoding);
  return {
    encoding,
    units,
    characters: clusters.length,
    segments: splitSegments(text).length,
    nonGsmCharacters,
  };
}

/**
 * Look-alikes that word processors and phones substitute for plain ASCII.
 * Checked before the Unicode-normalisation fallback because NFKC leaves these
 * alone (curly quotes, dashes) or maps them to something still non-GSM.
 */
const REPLACEMENTS: Record<string, string> = {
  // quotes and primes
  '\u2018': "'",
  '\u2019': "'",
  '\u201A': "'",
  '\u201B': "'",
  '\u2032': "'",
  '\u2035': "'",
  '\u02B9': "'",
  '\u02BB': "'",
  '\u02BC': "'",
  '\u02BD': "'",
  '\u02C8': "'",
  '\u0060': "'",
  '\u00B4': "'",
  '\u2039': "'",
  '\u203A': "'",
  '\u201C': '"',
  '\u201D': '"',
  '\u201E': '"',
  '\u201F': '"',
  '\u2033': '"',
  '\u2036': '"',
  '\u02BA': '"',
  '\u02DD': '"',
  '\u00AB': '"',
  '\u00BB': '"',
  '\u301D': '"',
  '\u301E': '"',
  // dashes, hyphens, minus
  '\u2010': '-',
  '\u2011': '-',
  '\u2012': '-',
  '\u2013': '-',
  '\u2014': '-',
  '\u2015': '-',
  '\u2212': '-',
  '\u2043': '-',
  '\uFE58': '-',
  '\uFE63': '-',
  '\uFF0D': '-',
  // punctuation and symbols
  '\u2026': '...',
  '\u2022': '-',
  '\u00B7': '.',
  '\u2024': '.',
  '\u2044': '/',
  '\u00F7': '/',
  '\u00D7': 'x',
  '\u00A9': '(C)',
  '\u00AE': '(R)',
  '\u2122': 'TM',
  '\u00A0': ' ',
  '\t': ' ',
  '\u00BC': '1/4',
  '\u00BD': '1/2',
  '\u00BE': '3/4',
  '\u2030': '%o',
  // invisible characters that sneak in from copy/paste: dropping them changes nothing visible
  '\u00AD': '',
  '\u200B': '',
  '\u200C': '',
  '\u200D': '',
  '\u2060': '',
  '\uFEFF': '',
  // letters without a canonical decomposition to a GSM letter
  '\u0142': 'l',
  '\u0141': 'L',
  '\u0111': 'd',
  '\u0110': 'D',
  '\u0153': 'oe',
  '\u0152': 'OE',
  '\u0131': 'i',
  '\u00F0': 'd',
  '\u00FE': 'th',
  '\u00DE': 'Th',
  // Greek capitals that are indistinguishable from Latin ones (GSM has only Δ Φ Γ Λ Ω Π Ψ Σ Θ Ξ)
  '\u0391': 'A',
  '\u0392': 'B',
  '\u0395': 'E',
  '\u0396': 'Z',
  '\u0397': 'H',
  '\u0399': 'I',
  '\u039A': 'K',
  '\u039C': 'M',
  '\u039D': 'N',
  '\u039F': 'O',
  '\u03A1': 'P',
  '\u03A4': 'T',
  '\u03A5': 'Y',
  '\u03A7': 'X',
  // Cyrillic homoglyphs, typically pasted by accident into Latin text
  '\u0410': 'A',
  '\u0412': 'B',
  '\u0415': 'E',
  '\u041A': 'K',
  '\u041C': 'M',
  '\u041D': 'H',
  '\u041E': 'O',
  '\u0420': 'P',
  '\u0421': 'C',
  '\u0422': 'T',
  '\u0425': 'X',
  '\u0430': 'a',
  '\u0435': 'e',
  '\u043E': 'o',
  '\u0440': 'p',
  '\u0441': 'c',
  '\u0445': 'x',
  '\u0443': 'y',
};

/**
 * Suggested GSM replacement for a non-GSM character (a code point or a
 * grapheme cluster), or undefined when the character is already GSM or has
 * no sensible look-alike. '' means "drop it" (invisible characters).
 */
export function gsmReplacement(ch: string): string | undefined {
  if (ch === '' || isGsm7(ch)) return undefined;
  const direct = REPLACEMENTS[ch] ?? REPLACEMENTS[ch.normalize('NFC')];
  if (direct !== undefined) return direct;
  // Decomposed accents (e + U+0301) recompose to a GSM letter such as é.
  const nfc = ch.normalize('NFC');
  if (isGsm7(nfc)) return nfc;
  // Compatibility forms: full-width letters, ligatures, exotic spaces, superscripts.
  const nfkc = ch.normalize('NFKC');
  if (isGsm7(nfkc)) return nfkc;
  // Accented letters GSM lacks (á, ê, ç…): the base letter keeps the text readable.
  // Format characters (ZWJ, variation selectors) are dropped with the marks.
  const stripped = ch.normalize('NFKD').replace(/[\p{M}\p{Cf}]/gu, '');
  if (stripped === '') return undefined;
  if (isGsm7(stripped)) return stripped;
  // Last resort: the base letter itself is a mapped look-alike (e.g. Cyrillic о with an accent).
  const parts = Array.from(stripped, (c) => (isGsmCodePoint(c) ? c : REPLACEMENTS[c]));
  return parts.every((c) => c !== undefined) ? parts.join('') : undefined;
}

/** Applies gsmReplacement to every non-GSM character that has one; the rest is left as is. */
export function applyGsmReplacements(text: string): string {
  let out = '';
  for (const g of graphemes(text)) {
    out += isGsm7(g) ? g : (gsmReplacement(g) ?? g);
  }
  return out;
}

const NAMED_INVISIBLES: Record<string, string> = {
  '\u00A0': 'non-breaking space',
  '\t': 'tab',
  '\u00AD': 'soft hyphen',
  '\u200B': 'zero-width space',
  '\u200C': 'zero-width non-joiner',
  '\u200D': 'zero-width joiner',
  '\u2060': 'word joiner',
  '\uFEFF': 'byte order mark',
};

/** Invisible characters would make a warning read "Characters   force…", so name them. */
function displayChar(ch: string): string {
  const named = NAMED_INVISIBLES[ch];
  if (named) return `${named} (U+${codePointHex(ch)})`;
  if (/^[\p{Z}\p{C}]+$/u.test(ch)) return `U+${codePointHex(ch)}`;
  return ch;
}

function codePointHex(ch: string): string {
  return (ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
}

function displayReplacement(r: string): string {
  if (r === '') return '(nothing)';
  if (r.trim() === '') return '(space)';
  return r;
}

const EMOJI = /\p{Extended_Pictographic}|\p{Regional_Indicator}/u;

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

function segmentsText(n: number): string {
  return `${n} ${plural(n, 'segment', 'segments')}`;
}

/**
 * Human warnings for previewMessage, e.g. 'Characters “ ” force UCS-2 (70
 * characters per segment): replacing them with " " would need 1 segment
 * instead of 2'. Empty array when nothing to say.
 */
export function encodingWarnings(text: string): string[] {
  if (text === '') return [];
  const info = analyzeText(text);
  const warnings: string[] = [];

  if (info.encoding === 'UCS2') {
    const ucs2 = `UCS-2 (${UCS2_SINGLE_SEGMENT} characters per segment)`;
    const replacements = info.nonGsmCharacters.map((ch) => ({ ch, replacement: gsmReplacement(ch) }));

    if (replacements.every((r) => r.replacement !== undefined)) {
      // Every offender has a look-alike, so replacing them would bring the message back to GSM-7.
      const n = replacements.length;
      const after = analyzeText(applyGsmReplacements(text));
      const chars = replacements.map((r) => displayChar(r.ch)).join(' ');
      const repl = replacements.map((r) => displayReplacement(r.replacement ?? '')).join(' ');
      const head = `${plural(n, 'Character', 'Characters')} ${chars} ${plural(n, 'forces', 'force')} ${ucs2}`;
      const replacing = `replacing ${plural(n, 'it', 'them')} with ${repl} would`;
      if (after.segments < info.segments) {
        warnings.push(`${head}: ${replacing} need ${segmentsText(after.segments)} instead of ${info.segments}`);
      } else if (after.segments === info.segments) {
        warnings.push(
          `${head}: ${replacing} allow GSM-7 (${GSM7_SINGLE_SEGMENT} characters per segment); ` + `the message is ${segmentsText(info.segments)} either way`,
        );
      } else {
        // Multi-character replacements (… → ...) can make GSM-7 longer; don't suggest a costlier message.
        warnings.push(head);
      }
    } else {
      // Something without a look-alike keeps the message UCS-2 whatever else is replaced,
      // so just name the offenders; emoji get their own warning because they also cost double.
      const emoji = replacements.filter((r) => r.replacement === undefined && EMOJI.test(r.ch)).map((r) => r.ch);
      const other = info.nonGsmCharacters.filter((ch) => !emoji.includes(ch));
      if (other.length > 0) {
        const n = other.length;
        warnings.push(`${plural(n, 'Character', 'Characters')} ${other.map(displayChar).join(' ')} ${plural(n, 'forces', 'force')} ${ucs2}`);
      }
      if (emoji.length > 0) {
        const n = emoji.length;
        const widths = emoji.map((e) => e.length);
        const min = Math.min(...widths);
        const max = Math.max(...widths);
        const width = `${min === max ? min : `${min} to ${max}`} ${plural(max, 'character', 'characters')}`;
        warnings.push(
          n === 1 ? `Emoji ${emoji[0]} forces ${ucs2} and counts as ${width}` : `Emoji ${emoji.join(' ')} force ${ucs2} and count as ${width} each`,
        );
      }
    }
  }

  if (info.segments > 1) {
    const perPart = info.encoding === 'GSM7' ? GSM7_MULTI_SEGMENT : UCS2_MULTI_SEGMENT;
    const label = info.encoding === 'GSM7' ? 'GSM-7' : 'UCS-2';
    let msg =
      `Message is ${info.units} ${label} characters and will be sent as ${info.segments} segments ` + `of up to ${perPart} characters, each billed as one SMS`;
    if (info.encoding === 'GSM7') {
      const ext = [...new Set(Array.from(text).filter((c) => extendedSet.has(c)))];
      if (ext.length > 0) {
        msg += ` (${ext.map(displayChar).join(' ')} ${plural(ext.length, 'counts', 'count')} as 2 characters)`;
      }
    }
    warnings.push(msg);
  }
  return warnings;
}
