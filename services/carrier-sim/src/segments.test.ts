import { describe, expect, it } from 'vitest';
import { countSegments, detectCoding } from './segments';

describe('countSegments', () => {
  it('fits 160 GSM characters in one segment and splits 161 into two', () => {
    expect(countSegments('a'.repeat(160))).toEqual({ coding: 1, units: 160, segments: 1 });
    expect(countSegments('a'.repeat(161))).toEqual({ coding: 1, units: 161, segments: 2 });
    expect(countSegments('a'.repeat(306)).segments).toBe(2);
    expect(countSegments('a'.repeat(307)).segments).toBe(3);
  });

  it('counts extension characters such as € twice', () => {
    expect(countSegments('€')).toEqual({ coding: 1, units: 2, segments: 1 });
    expect(countSegments('€'.repeat(80)).segments).toBe(1);
    expect(countSegments('€'.repeat(81)).segments).toBe(2);
    expect(countSegments('[]{}^~|\\').units).toBe(16);
  });

  it('never splits an escape pair across two parts', () => {
    // 306 septets would be exactly two parts of 153, but the € cannot straddle the boundary.
    const text = 'a'.repeat(152) + '€' + 'a'.repeat(152);
    expect(countSegments(text)).toEqual({ coding: 1, units: 306, segments: 3 });
  });

  it('switches to UCS-2 for an emoji and counts UTF-16 code units', () => {
    expect(detectCoding('hi 👋')).toBe(3);
    expect(countSegments('hi 👋')).toEqual({ coding: 3, units: 5, segments: 1 });
  });

  it('fits 70 UCS-2 units in one segment and splits 71 into two', () => {
    expect(countSegments('ж'.repeat(70))).toEqual({ coding: 3, units: 70, segments: 1 });
    expect(countSegments('ж'.repeat(71))).toEqual({ coding: 3, units: 71, segments: 2 });
    expect(countSegments('ж'.repeat(134)).segments).toBe(2);
    expect(countSegments('ж'.repeat(135)).segments).toBe(3);
  });

  it('keeps surrogate pairs within one part', () => {
    // 66 units then a 2-unit emoji: it moves to part two instead of being cut.
    const text = 'ж'.repeat(66) + '😀' + 'ж'.repeat(66);
    expect(countSegments(text)).toEqual({ coding: 3, units: 134, segments: 3 });
  });

  it('honours an explicit coding', () => {
    expect(countSegments('hello', 3)).toEqual({ coding: 3, units: 5, segments: 1 });
    expect(countSegments('a'.repeat(140), 2)).toEqual({ coding: 2, units: 140, segments: 1 });
    expect(countSegments('a'.repeat(141), 2).segments).toBe(2);
    // Forced 7-bit: a character outside the alphabet still costs one septet.
    expect(countSegments('ж', 1)).toEqual({ coding: 1, units: 1, segments: 1 });
  });

  it('treats GSM accented letters as 7-bit', () => {
    expect(detectCoding('Ça coûte 5€ à Zürich')).toBe(3); // û is not in the GSM alphabet
    expect(detectCoding('Ça coute 5€ à Zürich')).toBe(1);
  });
});
