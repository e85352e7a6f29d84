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

export function isZero(d: Duration): boolean {
  return Object.values(d).every((v) => v === 0);
}
