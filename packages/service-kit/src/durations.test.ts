import { describe, expect, it } from 'vitest';
import { addDuration, isZero, parseDuration, parseSignedDuration } from './durations';

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

describe('signed durations and adding them', () => {
  it('reads a sign', () => {
    expect(parseSignedDuration('-PT24H')).toEqual({ sign: -1, duration: expect.objectContaining({ hours: 24 }) });
    expect(parseSignedDuration('+PT5M')).toEqual({ sign: 1, duration: expect.objectContaining({ minutes: 5 }) });
    expect(parseSignedDuration('PT5M')?.sign).toBe(1);
    expect(parseSignedDuration('--PT5M')).toBeNull();
    expect(parseSignedDuration('-')).toBeNull();
  });

  it('adds exact time and calendar months', () => {
    const at = new Date('2026-01-31T10:00:00.000Z');
    expect(addDuration(at, parseDuration('PT5M')!).toISOString()).toBe('2026-01-31T10:05:00.000Z');
    expect(addDuration(at, parseDuration('P1DT2H')!, -1).toISOString()).toBe('2026-01-30T08:00:00.000Z');
    expect(addDuration(at, parseDuration('P1M')!).toISOString()).toBe('2026-02-28T10:00:00.000Z');
    expect(addDuration(at, parseDuration('P1Y1M')!).toISOString()).toBe('2027-02-28T10:00:00.000Z');
    expect(addDuration(at, parseDuration('P2W')!).toISOString()).toBe('2026-02-14T10:00:00.000Z');
  });
});
