import { describe, expect, it } from 'vitest';
import { countryTimezone, fromMoceanNumber, normalizePhone, PhoneError, toMoceanNumber } from './phone';

function phoneError(fn: () => unknown): PhoneError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PhoneError);
    return err as PhoneError;
  }
  throw new Error('expected a PhoneError');
}

describe('normalizePhone', () => {
  it('parses a US national number with the default country and derives the zone from the area code', () => {
    expect(normalizePhone('(415) 555-0100', 'US')).toEqual({
      e164: '+14155550100',
      country: 'US',
      timezone: 'America/Los_Angeles',
    });
  });

  it.each([
    ['415.555.0100', 'US'],
    ['415-555-0100', 'us'],
    ['1 415 555 0100', 'US'],
    [' +1 (415) 555-0100 ', undefined],
    ['tel:+14155550100', undefined],
    ['+1\u00A0415\u00A0555\u00A00100', undefined],
    ['+１ ４１５ ５５５ ０１００', undefined],
    ['011 1 415 555 0100', 'US'],
  ])('accepts %j (country %s)', (input, country) => {
    expect(normalizePhone(input, country).e164).toBe('+14155550100');
  });

  it('parses international GB numbers without a default country', () => {
    expect(normalizePhone('+44 20 7946 0958')).toEqual({ e164: '+442079460958', country: 'GB', timezone: 'Europe/London' });
    expect(normalizePhone('+44 (0)20 7946 0958').e164).toBe('+442079460958');
  });

  it('ignores the default country when the number is international', () => {
    expect(normalizePhone('+44 20 7946 0958', 'US').country).toBe('GB');
  });

  it('parses an Australian mobile in national form', () => {
    expect(normalizePhone('0412 345 678', 'AU')).toEqual({ e164: '+61412345678', country: 'AU', timezone: 'Australia/Sydney' });
  });

  it('accepts the 00 international prefix with or without a default country', () => {
    const gb = { e164: '+442079460958', country: 'GB', timezone: 'Europe/London' };
    expect(normalizePhone('0044 20 7946 0958')).toEqual(gb);
    expect(normalizePhone('0044 20 7946 0958', 'GB')).toEqual(gb);
    // Neither the US (011) nor Australia (0011) dials out with 00, but people still write it.
    expect(normalizePhone('0044 20 7946 0958', 'US')).toEqual(gb);
    expect(normalizePhone('0061 412 345 678', 'AU').e164).toBe('+61412345678');
  });

  it('resolves shared +1 numbers to the right NANP country', () => {
    expect(normalizePhone('+1 416 555 0199')).toEqual({ e164: '+14165550199', country: 'CA', timezone: 'America/Toronto' });
    expect(normalizePhone('+1 604 555 0199').timezone).toBe('America/Vancouver');
    expect(normalizePhone('+1 264 497 1234')).toMatchObject({ country: 'AI', timezone: 'America/Anguilla' });
    expect(normalizePhone('+1 787 555 0100')).toMatchObject({ country: 'PR', timezone: 'America/Puerto_Rico' });
  });

  it.each([
    ['+1 212 555 0100', 'America/New_York'],
    ['+1 312 555 0100', 'America/Chicago'],
    ['+1 303 555 0100', 'America/Denver'],
    ['+1 602 555 0100', 'America/Phoenix'],
    ['+1 206 555 0100', 'America/Los_Angeles'],
    ['+1 907 555 0100', 'America/Anchorage'],
    ['+1 808 555 0100', 'Pacific/Honolulu'],
    ['+1 915 555 0100', 'America/Denver'], // El Paso, unlike the rest of Texas
    ['+1 313 555 0100', 'America/Detroit'],
    ['+1 317 555 0100', 'America/Indiana/Indianapolis'],
    ['+1 709 555 0100', 'America/St_Johns'],
    ['+1 306 555 0100', 'America/Regina'],
    ['+1 850 555 0100', 'America/New_York'], // split between Eastern and Central: main zone
    ['+1 800 555 0100', 'America/New_York'], // toll-free: main zone
  ])('derives the zone of %s as %s', (input, zone) => {
    expect(normalizePhone(input).timezone).toBe(zone);
  });

  it('refines zones inside other multi-zone countries where numbers are geographic', () => {
    expect(normalizePhone('+55 11 99123 4567').timezone).toBe('America/Sao_Paulo');
    expect(normalizePhone('+55 92 99123 4567').timezone).toBe('America/Manaus');
    expect(normalizePhone('+52 55 1234 5678').timezone).toBe('America/Mexico_City');
    expect(normalizePhone('+52 664 123 4567').timezone).toBe('America/Tijuana');
    expect(normalizePhone('+61 7 3123 4567').timezone).toBe('Australia/Brisbane');
    expect(normalizePhone('+61 3 9123 4567').timezone).toBe('Australia/Melbourne');
    expect(normalizePhone('+7 912 345 6789')).toMatchObject({ country: 'RU', timezone: 'Europe/Moscow' });
  });

  it('leaves country and zone out for non-geographic numbers', () => {
    expect(normalizePhone('+800 1234 5678')).toEqual({ e164: '+80012345678' });
  });

  it('asks for a country for national numbers without one', () => {
    const err = phoneError(() => normalizePhone('0412 345 678'));
    expect(err.code).toBe('NEEDS_COUNTRY');
    expect(err.name).toBe('PhoneError');
    expect(err.message).toContain('"0412 345 678"');
    expect(err.message).toContain('defaultCountry');
    expect(err.message).toContain('+<country code>');
    expect(phoneError(() => normalizePhone('4155550100')).code).toBe('NEEDS_COUNTRY');
  });

  it('treats an unknown default country like a missing one, and says so', () => {
    const err = phoneError(() => normalizePhone('4155550100', 'XX'));
    expect(err.code).toBe('NEEDS_COUNTRY');
    expect(err.message).toContain('"XX" is not a supported country code');
  });

  it.each([
    ['12', undefined, 'too short'],
    ['12', 'US', 'too short'],
    ['', 'US', 'empty'],
    ['   ', undefined, 'empty'],
    ['abc', undefined, 'letters'],
    ['1-800-FLOWERS', 'US', 'letters'],
    ['(415) 555-0100 x12', 'US', 'extension'],
    ['415 555 0100 ext. 7', 'US', 'extension'],
    ['+1 415 555 010', undefined, 'too short'],
    ['+1 415 555 0100 1234', undefined, 'too long'],
    ['+15555555555', undefined, '+1'],
    ['+999 1234 5678', undefined, 'country code'],
    ['555-0100', 'US', 'too short'],
    ['415*555*0100', 'US', 'characters other than'],
  ])('rejects %j (country %s) as INVALID_PHONE: %s', (input, country, why) => {
    const err = phoneError(() => normalizePhone(input, country));
    expect(err.code).toBe('INVALID_PHONE');
    expect(err.message).toContain(`"${input}"`);
    expect(err.message).toContain(why);
  });

  it('rejects numbers that have the right length but are not allocated (max metadata)', () => {
    // NANP exchange codes can't start with 0, so this has 10 digits but no line behind it.
    const err = phoneError(() => normalizePhone('(415) 055-0100', 'US'));
    expect(err.code).toBe('INVALID_PHONE');
    expect(err.message).toBe('Invalid phone number "(415) 055-0100": it is not a valid US number');
    expect(phoneError(() => normalizePhone('+61 5 1234 5678')).message).toContain('no number of country code +61 matches it');
  });
});

describe('Mocean number format', () => {
  it('strips the plus for Mocean', () => {
    expect(toMoceanNumber('+14155550100')).toBe('14155550100');
    expect(toMoceanNumber('14155550100')).toBe('14155550100');
  });

  it('rejects non-E.164 input instead of sending to a garbled number', () => {
    expect(phoneError(() => toMoceanNumber('(415) 555-0100')).code).toBe('INVALID_PHONE');
    expect(phoneError(() => toMoceanNumber('+0123')).code).toBe('INVALID_PHONE');
  });

  it('turns Mocean digits or E.164 back into E.164', () => {
    expect(fromMoceanNumber('14155550100')).toBe('+14155550100');
    expect(fromMoceanNumber('+442079460958')).toBe('+442079460958');
    expect(fromMoceanNumber(' 61412345678 ')).toBe('+61412345678');
  });

  it('returns undefined for anything that is not a valid number', () => {
    expect(fromMoceanNumber('')).toBeUndefined();
    expect(fromMoceanNumber('123')).toBeUndefined();
    expect(fromMoceanNumber('15555555555')).toBeUndefined();
    expect(fromMoceanNumber('MOCEAN')).toBeUndefined();
    expect(fromMoceanNumber('1 415 555 0100')).toBeUndefined();
  });

  it('round-trips', () => {
    for (const e164 of ['+14155550100', '+442079460958', '+61412345678', '+5592991234567']) {
      expect(fromMoceanNumber(toMoceanNumber(e164))).toBe(e164);
    }
  });
});

describe('countryTimezone', () => {
  it('returns the main zone, case-insensitively', () => {
    expect(countryTimezone('US')).toBe('America/New_York');
    expect(countryTimezone('ca')).toBe('America/Toronto');
    expect(countryTimezone('AU')).toBe('Australia/Sydney');
    expect(countryTimezone('BR')).toBe('America/Sao_Paulo');
    expect(countryTimezone('RU')).toBe('Europe/Moscow');
    expect(countryTimezone('MX')).toBe('America/Mexico_City');
    expect(countryTimezone('ID')).toBe('Asia/Jakarta');
    expect(countryTimezone('GB')).toBe('Europe/London');
    expect(countryTimezone('IN')).toBe('Asia/Kolkata');
  });

  it('returns undefined for unknown codes', () => {
    expect(countryTimezone('ZZ')).toBeUndefined();
    expect(countryTimezone('')).toBeUndefined();
  });
});
