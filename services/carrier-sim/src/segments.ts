// Segment counting as a carrier bills it. packages/sms has the full version; this one only
// covers what the simulator reports back (segments and coding per handset message).

/** Mocean's `mocean-coding` values: 1 = GSM 7-bit, 2 = 8-bit, 3 = UCS-2. */
export type Coding = 1 | 2 | 3;

export interface SegmentCount {
  coding: Coding;
  /** Septets (GSM), bytes (8-bit) or UTF-16 code units (UCS-2). */
  units: number;
  segments: number;
}

const GSM_BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' + '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
// Extension-table characters need an escape septet in front of them, so they cost two.
const GSM_EXTENDED = '\f^{}\\[~]|€';

// A flat table keeps the hot send path to one array read per character.
const GSM_COST = new Uint8Array(0x10000);
for (const ch of GSM_BASIC) GSM_COST[ch.charCodeAt(0)] = 1;
for (const ch of GSM_EXTENDED) GSM_COST[ch.charCodeAt(0)] = 2;

const GSM_SINGLE = 160;
const GSM_PART = 153; // 7 septets go to the concatenation header
const UCS2_SINGLE = 70;
const UCS2_PART = 67;
const BINARY_SINGLE = 140;
const BINARY_PART = 134;

export function isGsm7(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    if (GSM_COST[text.charCodeAt(i)] === 0) return false;
  }
  return true;
}

export function detectCoding(text: string): 1 | 3 {
  return isGsm7(text) ? 1 : 3;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

function countGsm(text: string): SegmentCount {
  let units = 0;
  let segments = 1;
  let used = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // Characters outside the alphabet (only possible when the caller forced coding 1) go out
    // as one replacement septet, which is what carriers do with them.
    let cost = GSM_COST[code] || 1;
    if (isHighSurrogate(code) && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
      i++;
      cost = 1;
    }
    units += cost;
    // An escape pair must not be split across two parts, hence packing rather than dividing.
    if (used + cost > GSM_PART) {
      segments++;
      used = 0;
    }
    used += cost;
  }
  return { coding: 1, units, segments: units <= GSM_SINGLE ? 1 : segments };
}

function countUcs2(text: string): SegmentCount {
  const units = text.length;
  if (units <= UCS2_SINGLE) return { coding: 3, units, segments: 1 };
  let segments = 1;
  let used = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // A surrogate pair must stay within one part or the handset shows two broken halves.
    const cost = isHighSurrogate(code) && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1)) ? 2 : 1;
    if (cost === 2) i++;
    if (used + cost > UCS2_PART) {
      segments++;
      used = 0;
    }
    used += cost;
  }
  return { coding: 3, units, segments };
}

function countBinary(text: string): SegmentCount {
  const units = Buffer.byteLength(text, 'utf8');
  const segments = units <= BINARY_SINGLE ? 1 : Math.ceil(units / BINARY_PART);
  return { coding: 2, units, segments };
}

/**
 * Counts the parts a message is split into. With no coding given, GSM 7-bit is used when
 * every character is in the GSM alphabet, UCS-2 otherwise (as Mocean does).
 */
export function countSegments(text: string, coding?: Coding): SegmentCount {
  const effective = coding ?? detectCoding(text);
  if (effective === 1) return countGsm(text);
  if (effective === 2) return countBinary(text);
  return countUcs2(text);
}
