/**
 * Phone number normalisation to E.164, built on libphonenumber-js. The 'max'
 * metadata is used because the smaller bundles only check length, and we
 * want typos rejected at import time rather than as failed sends later.
 */
import {
  isSupportedCountry,
  parseDigits,
  parsePhoneNumberWithError,
  ParseError,
  validatePhoneNumberLength,
  type CountryCode,
  type PhoneNumber,
} from 'libphonenumber-js/max';
import { numberTimezone } from './timezone';

export { countryTimezone } from './timezone';

export interface NormalizedPhone {
  e164: string;
  /** ISO 3166-1 alpha-2; absent for non-geographic numbers such as +800 */
  country?: string;
  /** IANA zone derived from the number, when one zone is plausible for it; else the country's main zone; else undefined */
  timezone?: string;
}

export type PhoneErrorCode = 'INVALID_PHONE' | 'NEEDS_COUNTRY';

export class PhoneError extends Error {
  readonly code: PhoneErrorCode;
  constructor(code: PhoneErrorCode, message: string) {
    super(message);
    this.name = 'PhoneError';
    this.code = code;
  }
}

/** Shortest national significant number any country uses (Niue, St Helena, Tokelau… have 4 digits). */
const MIN_NATIONAL_DIGITS = 4;
/** E.164 caps the whole number, country code included, at 15 digits. */
const MAX_E164_DIGITS = 15;

const LENGTH_REASONS: Record<string, string> = {
  TOO_SHORT: 'it is too short',
  TOO_LONG: 'it is too long',
  INVALID_LENGTH: 'it has the wrong number of digits',
  INVALID_COUNTRY: 'its country code does not exist',
  NOT_A_NUMBER: 'it is not a phone number',
};

function invalid(input: string, why: string): PhoneError {
  return new PhoneError('INVALID_PHONE', `Invalid phone number "${input}": ${why}`);
}

/** Unicode digits (full-width, Arabic-Indic…) count too; libphonenumber-js accepts them. */
function countDigits(s: string): number {
  return (s.match(/\p{Nd}/gu) ?? []).length;
}

/**
 * Parses any common format: +44 20 7946 0958, 0044 20 7946 0958, (415) 555-0100,
 * 415.555.0100, tel:+14155550100, +44 (0)20…. National numbers without a +/00
 * prefix need defaultCountry (ISO alpha-2, any case).
 */
export function normalizePhone(input: string, defaultCountry?: string): NormalizedPhone {
  const raw = input.trim();
  if (raw === '') throw invalid(input, 'it is empty');

  const text = raw.replace(/^tel:/i, '');
  // Extensions reach a desk phone behind a switchboard; an SMS can't, so refuse rather than drop it silently.
  const ext = /(?:\s*(?:ext\.?|extension|x|#)\s*\p{Nd}+)\s*$/iu.exec(text);
  if (ext) throw invalid(input, `it has an extension (${ext[0].trim()}), which cannot receive SMS`);
  // libphonenumber-js stops at the first letter, so "1-800-FLOWERS" would become +1800: reject instead.
  if (/\p{L}/u.test(text)) throw invalid(input, 'it contains letters');
  if (/[^\p{Nd}\s+()\-.\/\u2010-\u2015\u00A0]/u.test(text)) {
    throw invalid(input, 'it contains characters other than digits, spaces, + ( ) - . /');
  }

  const digits = countDigits(text);
  if (digits < MIN_NATIONAL_DIGITS) throw invalid(input, 'it is too short');
  if (digits > MAX_E164_DIGITS + 4) throw invalid(input, 'it is too long'); // room for 00/011 + trunk 0

  const country = defaultCountry?.trim().toUpperCase();
  const knownCountry: CountryCode | undefined = country && isSupportedCountry(country) ? country : undefined;

  const international = /^[\s(]*\+/.test(text);
  // parseDigits maps full-width / Arabic-Indic digits to ASCII and drops everything else.
  const asciiDigits = parseDigits(text);
  // "00" is the international prefix in most of the world. libphonenumber-js only
  // honours it when the default country dials out with 00 (not in the US or AU),
  // so rewrite it to "+" ourselves whenever the country's own rules don't make it valid.
  const doubleZero = !international && asciiDigits.startsWith('00');

  let parsed: PhoneNumber | undefined;
  let failure: string | undefined;
  if (international || knownCountry) {
    ({ parsed, failure } = tryParse(text, knownCountry));
  }
  if (doubleZero && !parsed?.isValid()) {
    const plus = '+' + asciiDigits.slice(2);
    const viaPlus = tryParse(plus, undefined);
    if (viaPlus.parsed?.isValid() || !parsed) ({ parsed, failure } = viaPlus);
  }

  if (!parsed) {
    if (!international && !doubleZero && !knownCountry) {
      const unknown = country ? ` ("${defaultCountry}" is not a supported country code)` : '';
      throw new PhoneError(
        'NEEDS_COUNTRY',
        `Phone number "${input}" has no country code${unknown}: pass defaultCountry (ISO 3166-1 alpha-2, e.g. "US") ` +
          'or write it in international form as +<country code><number>',
      );
    }
    throw invalid(input, failure ?? 'it is not a phone number');
  }

  if (!parsed.isValid()) {
    const lengthProblem = validatePhoneNumberLength(parsed.number);
    const why = lengthProblem
      ? (LENGTH_REASONS[lengthProblem] ?? 'it has the wrong number of digits')
      : parsed.country
        ? `it is not a valid ${parsed.country} number`
        : `no number of country code +${parsed.countryCallingCode} matches it`;
    throw invalid(input, why);
  }

  const result: NormalizedPhone = { e164: parsed.number };
  if (parsed.country) result.country = parsed.country;
  const timezone = numberTimezone(parsed.country, parsed.nationalNumber);
  if (timezone) result.timezone = timezone;
  return result;
}

function tryParse(text: string, country: CountryCode | undefined): { parsed?: PhoneNumber; failure?: string } {
  try {
    return { parsed: parsePhoneNumberWithError(text, country) };
  } catch (err) {
    if (err instanceof ParseError) return { failure: LENGTH_REASONS[err.message] ?? err.message };
    throw err;
  }
}

/** E.164 → digits without '+', for Mocean. */
export function toMoceanNumber(e164: string): string {
  const trimmed = e164.trim();
  if (!/^\+?[1-9]\d{1,14}$/.test(trimmed)) throw invalid(e164, 'it is not in E.164 form (+ then up to 15 digits)');
  return trimmed.replace(/^\+/, '');
}

/** Digits (Mocean) or E.164 → E.164, or undefined if invalid. */
export function fromMoceanNumber(digits: string): string | undefined {
  const trimmed = digits.trim();
  if (!/^\+?\d+$/.test(trimmed)) return undefined;
  const withPlus = '+' + trimmed.replace(/^\+/, '');
  const { parsed } = tryParse(withPlus, undefined);
  return parsed?.isValid() ? parsed.number : undefined;
}
