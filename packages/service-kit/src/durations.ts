/**
 * ISO-8601 durations, as the API takes them for delays, offsets and windows: P3D, PT12H, P1DT30M,
 * and signed offsets such as -PT24H. Shared by every service that schedules or expires something.
 */

/** An ISO-8601 duration split into its parts, e.g. P1DT12H → { days: 1, hours: 12 }. */
export interface Duration {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
}

const PATTERN = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/;

/** Parses an unsigned ISO-8601 duration such as P3D, PT12H or P1DT30M; null when it is not one. */
export function parseDuration(text: string): Duration | null {
  const match = PATTERN.exec(text);
  // "P" and "P1DT" match the pattern but name no amount.
  if (!match || text === 'P' || text.endsWith('T')) return null;
  const n = (i: number) => Number((match[i] ?? '0').replace(',', '.'));
  return { years: n(1), months: n(2), weeks: n(3), days: n(4), hours: n(5), minutes: n(6), seconds: n(7) };
}

/** A duration with a direction: "-PT24H" is 24 hours before, "+PT5M" or "PT5M" after. */
export interface SignedDuration {
  sign: 1 | -1;
  duration: Duration;
}

export function parseSignedDuration(text: string): SignedDuration | null {
  const sign = text.startsWith('-') ? -1 : 1;
  const duration = parseDuration(text.replace(/^[+-]/, ''));
  return duration ? { sign, duration } : null;
}

export function isZero(d: Duration): boolean {
  return Object.values(d).every((v) => v === 0);
}

/**
 * `at` moved by the duration: years and months on the UTC calendar (Jan 31 + P1M = Feb 28/29),
 * the rest as exact elapsed time (a day is 24 hours), which is what a timer means by PT24H.
 */
export function addDuration(at: Date, d: Duration, sign: 1 | -1 = 1): Date {
  const out = new Date(at.getTime());
  if (d.years || d.months) {
    const day = out.getUTCDate();
    out.setUTCDate(1);
    out.setUTCMonth(out.getUTCMonth() + sign * (d.years * 12 + d.months));
    const lastDay = new Date(Date.UTC(out.getUTCFullYear(), out.getUTCMonth() + 1, 0)).getUTCDate();
    out.setUTCDate(Math.min(day, lastDay));
  }
  const ms = ((((d.weeks * 7 + d.days) * 24 + d.hours) * 60 + d.minutes) * 60 + d.seconds) * 1000;
  return new Date(out.getTime() + sign * ms);
}
