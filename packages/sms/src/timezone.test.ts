import { getCountries } from 'libphonenumber-js/max';
import { describe, expect, it } from 'vitest';
import { allKnownTimezones, countryTimezone, nanpAreaCodeTimezone, numberTimezone } from './timezone';

describe('timezone tables', () => {
  it('has a zone for every country libphonenumber-js knows', () => {
    const missing = getCountries().filter((c) => countryTimezone(c) === undefined);
    expect(missing).toEqual([]);
  });

  it('only contains zones the runtime (ICU) recognises', () => {
    const unknown = allKnownTimezones().filter((zone) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: zone });
        return false;
      } catch {
        return true;
      }
    });
    expect(unknown).toEqual([]);
  });

  it('maps NANP area codes, leaving split ones to the fallback', () => {
    expect(nanpAreaCodeTimezone('415')).toBe('America/Los_Angeles');
    expect(nanpAreaCodeTimezone('212')).toBe('America/New_York');
    expect(nanpAreaCodeTimezone('713')).toBe('America/Chicago');
    expect(nanpAreaCodeTimezone('514')).toBe('America/Toronto');
    expect(nanpAreaCodeTimezone('403')).toBe('America/Edmonton');
    expect(nanpAreaCodeTimezone('850')).toBeUndefined();
    expect(nanpAreaCodeTimezone('867')).toBeUndefined();
    expect(nanpAreaCodeTimezone('800')).toBeUndefined();
  });

  it('falls back to the country main zone, and to undefined without a country', () => {
    expect(numberTimezone('US', '8505550100')).toBe('America/New_York');
    expect(numberTimezone('CA', '8675550100')).toBe('America/Toronto');
    expect(numberTimezone('AU', '412345678')).toBe('Australia/Sydney');
    expect(numberTimezone('DE', '301234567')).toBe('Europe/Berlin');
    expect(numberTimezone(undefined, '12345678')).toBeUndefined();
  });
});
