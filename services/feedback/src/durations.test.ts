import { describe, expect, it } from 'vitest';
import { isZero, parseDuration } from './durations';

describe('parseDuration', () => {
  it('reads the ISO-8601 forms used for windows and delays', () => {
    expect(parseDuration('P3D')).toMatchObject({ days: 3, hours: 0 });
    expect(parseDuration('PT12H')).toMatchObject({ days: 0, hours: 12 });
    expect(parseDuration('P1DT30M')).toMatchObject({ days: 1, minutes: 30 });
    expect(parseDuration('P2W')).toMatchObject({ weeks: 2 });
    expect(parseDuration('P1Y2M')).toMatchObject({ years: 1, months: 2 });
    expect(parseDuration('PT1.5S')).toMatchObject({ seconds: 1.5 });
  });

  it('rejects what is not a duration', () => {
    for (const text of ['', 'P', 'PT', 'P1DT', '3D', 'P3', 'P-1D', 'PT5MIN', '3 days', 'P1H']) expect(parseDuration(text), text).toBeNull();
  });

  it('tells a zero duration', () => {
    expect(isZero(parseDuration('P0D')!)).toBe(true);
    expect(isZero(parseDuration('PT1S')!)).toBe(false);
  });
});
