import { describe, expect, it } from 'vitest';
import { analyzeText, applyGsmReplacements, encodingWarnings, gsmReplacement, isGsm7, moceanCoding, splitSegments } from './encoding';

const BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' + '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const EXTENDED = '\f^{}\\[~]|€';

describe('GSM 03.38 character set', () => {
  it('accepts all 127 basic characters at 1 septet each', () => {
    expect(Array.from(BASIC)).toHaveLength(127);
    expect(new Set(BASIC).size).toBe(127);
    expect(isGsm7(BASIC)).toBe(true);
    const info = analyzeText(BASIC);
    expect(info).toMatchObject({ encoding: 'GSM7', units: 127, nonGsmCharacters: [] });
  });

  it('counts each extension character as 2 septets', () => {
    expect(isGsm7(EXTENDED)).toBe(true);
    for (const ch of EXTENDED) {
      expect(analyzeText(ch)).toMatchObject({ encoding: 'GSM7', units: 2, characters: 1, segments: 1 });
    }
    expect(analyzeText(EXTENDED).units).toBe(20);
  });

  it.each(['ç', 'á', 'ê', '`', '\t', 'α', 'Ё', '“', '’', '–', '…', '\u00A0', '😀', '中', '\u0301'])('rejects %j', (ch) => {
    expect(isGsm7(ch)).toBe(false);
    expect(isGsm7(`abc${ch}def`)).toBe(false);
    expect(analyzeText(ch).encoding).toBe('UCS2');
  });

  it('treats the empty string as GSM-7 with no segments', () => {
    expect(isGsm7('')).toBe(true);
    expect(analyzeText('')).toEqual({ encoding: 'GSM7', units: 0, characters: 0, segments: 0, nonGsmCharacters: [] });
    expect(splitSegments('')).toEqual([]);
  });

  it('maps encodings to Mocean coding values', () => {
    expect(moceanCoding('GSM7')).toBe(1);
    expect(moceanCoding('UCS2')).toBe(3);
  });
});

describe('GSM-7 segments', () => {
  it.each([
    [1, 1],
    [153, 1],
    [160, 1],
    [161, 2],
    [306, 2],
    [307, 3],
    [459, 3],
    [460, 4],
  ])('%i plain characters → %i segments', (n, segments) => {
    const info = analyzeText('a'.repeat(n));
    expect(info).toEqual({ encoding: 'GSM7', units: n, characters: n, segments, nonGsmCharacters: [] });
  });

  it('counts extension characters double: 159 + € = 161 septets → 2 segments', () => {
    expect(analyzeText('a'.repeat(159) + '€')).toMatchObject({ encoding: 'GSM7', units: 161, characters: 160, segments: 2 });
    expect(analyzeText('a'.repeat(158) + '€')).toMatchObject({ units: 160, characters: 159, segments: 1 });
    expect(analyzeText('{}'.repeat(80))).toMatchObject({ units: 320, characters: 160, segments: 3 });
  });

  it('never splits an escape pair: it moves to the next segment', () => {
    // 152 + € would be 154 septets in part 1, so € starts part 2; 306 septets need 3 parts, not ceil(306/153) = 2.
    const text = 'a'.repeat(152) + '€' + 'b'.repeat(152);
    expect(analyzeText(text)).toMatchObject({ units: 306, segments: 3 });
    const parts = splitSegments(text);
    expect(parts.map((p) => p.length)).toEqual([152, 152, 1]);
    expect(parts[1]?.startsWith('€')).toBe(true);
    expect(parts.join('')).toBe(text);
  });

  it('fills a part exactly when the escape pair ends on septet 153', () => {
    const text = 'a'.repeat(151) + '€' + 'b'.repeat(153);
    expect(analyzeText(text)).toMatchObject({ units: 306, segments: 2 });
    expect(splitSegments(text)).toEqual(['a'.repeat(151) + '€', 'b'.repeat(153)]);
  });

  it('keeps CR, LF and their combination at one septet each', () => {
    expect(analyzeText('a\r\nb')).toMatchObject({ encoding: 'GSM7', units: 4, segments: 1 });
  });
});

describe('UCS-2 segments', () => {
  it.each([
    [70, 1],
    [71, 2],
    [134, 2],
    [135, 3],
    [201, 3],
    [202, 4],
  ])('%i BMP characters → %i segments', (n, segments) => {
    expect(analyzeText('ж'.repeat(n))).toEqual({
      encoding: 'UCS2',
      units: n,
      characters: n,
      segments,
      nonGsmCharacters: ['ж'],
    });
  });

  it('counts GSM characters as 1 unit once the message is UCS-2 (extension chars lose their double cost)', () => {
    expect(analyzeText('€ж')).toMatchObject({ encoding: 'UCS2', units: 2 });
    expect(analyzeText('a'.repeat(69) + 'ж')).toMatchObject({ encoding: 'UCS2', units: 70, segments: 1 });
  });

  it('counts an emoji as 2 units but 1 character', () => {
    expect(analyzeText('😀')).toEqual({ encoding: 'UCS2', units: 2, characters: 1, segments: 1, nonGsmCharacters: ['😀'] });
    expect(analyzeText('😀'.repeat(35))).toMatchObject({ units: 70, characters: 35, segments: 1 });
    expect(analyzeText('😀'.repeat(36))).toMatchObject({ units: 72, characters: 36, segments: 2 });
  });

  it('treats a skin-tone emoji as one character of 4 units', () => {
    expect(analyzeText('👍🏽')).toMatchObject({ units: 4, characters: 1, nonGsmCharacters: ['👍🏽'] });
  });

  it('never splits a surrogate pair: an emoji starting at unit 67 moves to the next segment', () => {
    // 66 + 2 + 66 = 134 units: naive ceil(134/67) = 2, but the emoji can't straddle parts 1 and 2.
    const text = 'ж'.repeat(66) + '😀' + 'ж'.repeat(66);
    expect(analyzeText(text)).toMatchObject({ encoding: 'UCS2', units: 134, segments: 3 });
    const parts = splitSegments(text);
    expect(parts.map((p) => p.length)).toEqual([66, 67, 1]);
    expect(parts[1]?.startsWith('😀')).toBe(true);
    expect(parts.join('')).toBe(text);
  });

  it('fills a part exactly when the emoji ends on unit 67', () => {
    const text = 'ж'.repeat(65) + '😀' + 'ж'.repeat(67);
    expect(analyzeText(text)).toMatchObject({ units: 134, segments: 2 });
    expect(splitSegments(text).map((p) => p.length)).toEqual([67, 67]);
  });

  it('does not apply the split rule to single-segment messages', () => {
    const text = 'ж'.repeat(68) + '😀'; // 70 units, no UDH needed
    expect(analyzeText(text)).toMatchObject({ units: 70, segments: 1 });
    expect(splitSegments(text)).toEqual([text]);
  });

  it('lists distinct non-GSM characters in order of first appearance', () => {
    expect(analyzeText('“Hi” it’s “me”').nonGsmCharacters).toEqual(['“', '”', '’']);
    expect(analyzeText('日本😀日').nonGsmCharacters).toEqual(['日', '本', '😀']);
  });

  it('reports a decomposed accent as the one character the user sees', () => {
    expect(analyzeText('Cafe\u0301')).toMatchObject({
      encoding: 'UCS2',
      units: 5,
      characters: 4,
      nonGsmCharacters: ['e\u0301'],
    });
  });
});

describe('gsmReplacement', () => {
  it.each([
    ['‘', "'"],
    ['’', "'"],
    ['“', '"'],
    ['”', '"'],
    ['„', '"'],
    ['«', '"'],
    ['–', '-'],
    ['—', '-'],
    ['−', '-'],
    ['…', '...'],
    ['\u00A0', ' '],
    ['\u2003', ' '],
    ['\u202F', ' '],
    ['\t', ' '],
    ['\u200B', ''],
    ['\u00AD', ''],
    ['•', '-'],
    ['á', 'a'],
    ['ç', 'c'],
    ['ê', 'e'],
    ['ł', 'l'],
    ['e\u0301', 'é'],
    ['Ａ', 'A'],
    ['ﬁ', 'fi'],
    ['™', 'TM'],
    ['Α', 'A'], // Greek capital alpha
    ['о', 'o'], // Cyrillic o
  ])('%j → %j', (ch, replacement) => {
    expect(gsmReplacement(ch)).toBe(replacement);
    expect(isGsm7(replacement)).toBe(true);
  });

  it.each(['😀', '❤️', '中', 'ж', 'a', 'é', '€', 'Δ', ''])('has no replacement for %j', (ch) => {
    expect(gsmReplacement(ch)).toBeUndefined();
  });

  it('applies replacements across a text and keeps what has none', () => {
    expect(applyGsmReplacements('“Hi” — it’s… ok')).toBe('"Hi" - it\'s... ok');
    expect(applyGsmReplacements('“Hi” 😀')).toBe('"Hi" 😀');
    expect(isGsm7(applyGsmReplacements('Crème brûlée à la carte\u00A0– “très” bien'))).toBe(true);
  });
});

describe('encodingWarnings', () => {
  it('says nothing about a short GSM-7 message or an empty one', () => {
    expect(encodingWarnings('Hello {name}, your code is 1234 €')).toEqual([]);
    expect(encodingWarnings('')).toEqual([]);
  });

  it('names replaceable characters and the segment saving', () => {
    const text = '“Sale” ' + 'x'.repeat(70); // 77 units UCS-2 = 2 segments; 77 septets GSM-7 = 1
    expect(encodingWarnings(text)).toEqual([
      'Characters “ ” force UCS-2 (70 characters per segment): replacing them with " " would need 1 segment instead of 2',
      'Message is 77 UCS-2 characters and will be sent as 2 segments of up to 67 characters, each billed as one SMS',
    ]);
  });

  it('uses the singular for one character', () => {
    expect(encodingWarnings('it’s ' + 'x'.repeat(70))[0]).toBe(
      "Character ’ forces UCS-2 (70 characters per segment): replacing it with ' would need 1 segment instead of 2",
    );
  });

  it('still points out a replaceable character when the segment count would not change', () => {
    expect(encodingWarnings('it’s here')).toEqual([
      "Character ’ forces UCS-2 (70 characters per segment): replacing it with ' would allow GSM-7 (160 characters per segment); the message is 1 segment either way",
    ]);
  });

  it('names invisible characters instead of printing them', () => {
    expect(encodingWarnings('10\u00A0am')).toEqual([
      'Character non-breaking space (U+00A0) forces UCS-2 (70 characters per segment): replacing it with (space) would allow GSM-7 (160 characters per segment); the message is 1 segment either way',
    ]);
  });

  it('does not suggest a replacement that would cost more segments', () => {
    const text = '…'.repeat(60); // 60 UCS-2 units = 1 segment; "..." × 60 = 180 septets = 2 segments
    expect(encodingWarnings(text)).toEqual(['Character … forces UCS-2 (70 characters per segment)']);
  });

  it('warns about emoji and their double width', () => {
    expect(encodingWarnings('Thanks 😀')).toEqual(['Emoji 😀 forces UCS-2 (70 characters per segment) and counts as 2 characters']);
    expect(encodingWarnings('Thanks 😀 👍🏽 😀')).toEqual(['Emoji 😀 👍🏽 force UCS-2 (70 characters per segment) and count as 2 to 4 characters each']);
  });

  it('names characters without a GSM equivalent, together with replaceable ones', () => {
    expect(encodingWarnings('Привет “друг” 😀')).toEqual([
      'Characters П р и в е т “ д у г ” force UCS-2 (70 characters per segment)',
      'Emoji 😀 forces UCS-2 (70 characters per segment) and counts as 2 characters',
    ]);
  });

  it('warns when a GSM-7 message needs more than one segment, naming double-cost characters', () => {
    expect(encodingWarnings('a'.repeat(161))).toEqual([
      'Message is 161 GSM-7 characters and will be sent as 2 segments of up to 153 characters, each billed as one SMS',
    ]);
    expect(encodingWarnings('a'.repeat(159) + '€')).toEqual([
      'Message is 161 GSM-7 characters and will be sent as 2 segments of up to 153 characters, each billed as one SMS (€ counts as 2 characters)',
    ]);
    expect(encodingWarnings('a'.repeat(152) + '{x}[y]')).toEqual([
      'Message is 162 GSM-7 characters and will be sent as 2 segments of up to 153 characters, each billed as one SMS ({ } [ ] count as 2 characters)',
    ]);
  });
});
