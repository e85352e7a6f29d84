/**
 * Outbound SMS pricing. Money is handled as decimal strings and integer
 * arithmetic (BigInt scaled units) only: 3 × 0.0079 must be exactly 0.0237,
 * and campaign totals are sums of thousands of such values, where float
 * error would show up in invoices.
 */

export interface Price {
  /** decimal string with 4 decimals, e.g. "0.0450" (more only if a custom table has finer prices, to stay exact) */
  amount: string;
  currency: string;
}

export type PriceTable = Record<string, { perSegment: string; currency: string }>;

/** Decimal places every amount is shown with; prices are quoted in 1/100 of a cent. */
const AMOUNT_DECIMALS = 4;

/**
 * Indicative per-segment list prices in USD for A2P traffic (mid-2020s
 * aggregator rates, rounded). Deployments with a negotiated Mocean rate card
 * pass their own table; DEFAULT covers countries not listed.
 */
export const defaultPriceTable: PriceTable = Object.freeze({
  US: { perSegment: '0.0079', currency: 'USD' },
  CA: { perSegment: '0.0079', currency: 'USD' },
  GB: { perSegment: '0.0400', currency: 'USD' },
  IE: { perSegment: '0.0700', currency: 'USD' },
  DE: { perSegment: '0.0850', currency: 'USD' },
  FR: { perSegment: '0.0750', currency: 'USD' },
  ES: { perSegment: '0.0750', currency: 'USD' },
  IT: { perSegment: '0.0800', currency: 'USD' },
  NL: { perSegment: '0.0900', currency: 'USD' },
  BE: { perSegment: '0.0900', currency: 'USD' },
  CH: { perSegment: '0.0650', currency: 'USD' },
  SE: { perSegment: '0.0450', currency: 'USD' },
  PL: { perSegment: '0.0350', currency: 'USD' },
  PT: { perSegment: '0.0350', currency: 'USD' },
  AU: { perSegment: '0.0450', currency: 'USD' },
  NZ: { perSegment: '0.0900', currency: 'USD' },
  IN: { perSegment: '0.0050', currency: 'USD' },
  SG: { perSegment: '0.0400', currency: 'USD' },
  MY: { perSegment: '0.0300', currency: 'USD' },
  PH: { perSegment: '0.0200', currency: 'USD' },
  ID: { perSegment: '0.0350', currency: 'USD' },
  TH: { perSegment: '0.0150', currency: 'USD' },
  HK: { perSegment: '0.0450', currency: 'USD' },
  JP: { perSegment: '0.0750', currency: 'USD' },
  KR: { perSegment: '0.0300', currency: 'USD' },
  AE: { perSegment: '0.0300', currency: 'USD' },
  BR: { perSegment: '0.0250', currency: 'USD' },
  MX: { perSegment: '0.0250', currency: 'USD' },
  AR: { perSegment: '0.0500', currency: 'USD' },
  CO: { perSegment: '0.0150', currency: 'USD' },
  ZA: { perSegment: '0.0200', currency: 'USD' },
  NG: { perSegment: '0.0300', currency: 'USD' },
  KE: { perSegment: '0.0150', currency: 'USD' },
  DEFAULT: { perSegment: '0.0600', currency: 'USD' },
});

interface Decimal {
  /** value × 10^scale */
  units: bigint;
  scale: number;
}

function parseDecimal(value: string): Decimal {
  const m = /^\s*([+-])?(\d+)(?:\.(\d+))?\s*$/.exec(value);
  if (!m) throw new TypeError(`Not a decimal amount: "${value}"`);
  const fraction = m[3] ?? '';
  const units = BigInt((m[2] ?? '0') + fraction);
  return { units: m[1] === '-' ? -units : units, scale: fraction.length };
}

function rescale(d: Decimal, scale: number): bigint {
  // Only ever widened (never rounded): callers pick scale >= d.scale.
  return d.units * 10n ** BigInt(scale - d.scale);
}

/** At least AMOUNT_DECIMALS places; extra places only when they carry non-zero digits. */
function formatDecimal(units: bigint, scale: number): string {
  let u = units;
  let s = scale;
  while (s > AMOUNT_DECIMALS && u % 10n === 0n) {
    u /= 10n;
    s--;
  }
  if (s < AMOUNT_DECIMALS) {
    u *= 10n ** BigInt(AMOUNT_DECIMALS - s);
    s = AMOUNT_DECIMALS;
  }
  const negative = u < 0n;
  const digits = (negative ? -u : u).toString().padStart(s + 1, '0');
  const out = `${digits.slice(0, digits.length - s)}.${digits.slice(digits.length - s)}`;
  return negative ? `-${out}` : out;
}

/** Decimal strings, exact; the result has at least 4 decimals. */
export function addPrices(a: string, b: string): string {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  const scale = Math.max(x.scale, y.scale);
  return formatDecimal(rescale(x, scale) + rescale(y, scale), scale);
}

/**
 * Price of sending `segments` segments to `country` (ISO alpha-2, any case).
 * Unknown or missing country uses the DEFAULT row; undefined when the table
 * has neither.
 */
export function priceFor(country: string | undefined, segments: number, table: PriceTable = defaultPriceTable): Price | undefined {
  if (!Number.isSafeInteger(segments) || segments < 0) {
    throw new RangeError(`segments must be a non-negative integer, got ${segments}`);
  }
  const row = (country ? table[country.trim().toUpperCase()] : undefined) ?? table.DEFAULT;
  if (!row) return undefined;
  const per = parseDecimal(row.perSegment);
  return { amount: formatDecimal(per.units * BigInt(segments), per.scale), currency: row.currency };
}
