import { describe, expect, it } from 'vitest';
import { addPrices, defaultPriceTable, priceFor, type PriceTable } from './pricing';

describe('defaultPriceTable', () => {
  it('covers the common countries plus DEFAULT, with 4-decimal USD prices', () => {
    const required = [
      'US',
      'CA',
      'GB',
      'DE',
      'FR',
      'ES',
      'IT',
      'NL',
      'IE',
      'AU',
      'NZ',
      'IN',
      'SG',
      'MY',
      'PH',
      'ID',
      'TH',
      'BR',
      'MX',
      'ZA',
      'NG',
      'KE',
      'AE',
      'JP',
      'KR',
      'DEFAULT',
    ];
    for (const country of required) expect(defaultPriceTable[country], country).toBeDefined();
    expect(Object.keys(defaultPriceTable).length).toBeGreaterThanOrEqual(30);
    for (const [country, row] of Object.entries(defaultPriceTable)) {
      expect(row.perSegment, country).toMatch(/^\d+\.\d{4}$/);
      expect(row.currency, country).toBe('USD');
    }
  });
});

describe('priceFor', () => {
  it('multiplies exactly: 3 × 0.0079 = 0.0237', () => {
    expect(priceFor('US', 3)).toEqual({ amount: '0.0237', currency: 'USD' });
  });

  it.each([
    ['US', 1, '0.0079'],
    ['US', 7, '0.0553'],
    ['GB', 2, '0.0800'],
    ['IN', 3, '0.0150'],
    ['US', 0, '0.0000'],
    ['US', 1_000_000, '7900.0000'],
  ])('%s × %i = %s', (country, segments, amount) => {
    expect(priceFor(country, segments)?.amount).toBe(amount);
  });

  it('matches the country case-insensitively and uses DEFAULT for unknown or missing countries', () => {
    expect(priceFor('us', 1)?.amount).toBe('0.0079');
    expect(priceFor('ZZ', 2)).toEqual({ amount: '0.1200', currency: 'USD' });
    expect(priceFor(undefined, 1)).toEqual({ amount: '0.0600', currency: 'USD' });
  });

  it('uses a custom table, and returns undefined when it has neither the country nor DEFAULT', () => {
    const table: PriceTable = { GB: { perSegment: '0.0325', currency: 'GBP' } };
    expect(priceFor('GB', 3, table)).toEqual({ amount: '0.0975', currency: 'GBP' });
    expect(priceFor('US', 3, table)).toBeUndefined();
    expect(priceFor(undefined, 3, table)).toBeUndefined();
  });

  it('keeps sub-0.0001 prices exact rather than rounding them away', () => {
    const table: PriceTable = { US: { perSegment: '0.00795', currency: 'USD' } };
    expect(priceFor('US', 3, table)?.amount).toBe('0.02385');
    expect(priceFor('US', 2, table)?.amount).toBe('0.0159');
  });

  it('rejects nonsensical segment counts', () => {
    expect(() => priceFor('US', -1)).toThrow(RangeError);
    expect(() => priceFor('US', 1.5)).toThrow(RangeError);
    expect(() => priceFor('US', Number.NaN)).toThrow(RangeError);
  });
});

describe('addPrices', () => {
  it('adds exactly with 4 decimals', () => {
    expect(addPrices('0.0450', '0.0237')).toBe('0.0687');
    expect(addPrices('0.1', '0.2')).toBe('0.3000');
    expect(addPrices('0', '0')).toBe('0.0000');
    expect(addPrices('12', '0.0079')).toBe('12.0079');
    expect(addPrices('0.0079', '-0.0100')).toBe('-0.0021');
    expect(addPrices('-0.0079', '0.0079')).toBe('0.0000');
    expect(addPrices('0.00001', '0.00002')).toBe('0.00003');
  });

  it('accumulates without float drift', () => {
    let total = '0';
    for (let i = 0; i < 10_000; i++) total = addPrices(total, '0.0079');
    expect(total).toBe('79.0000');
    expect(addPrices('99999999999999999999.9999', '0.0001')).toBe('100000000000000000000.0000');
  });

  it('rejects strings that are not decimals', () => {
    expect(() => addPrices('1e-3', '0')).toThrow(TypeError);
    expect(() => addPrices('abc', '0')).toThrow(TypeError);
    expect(() => addPrices('', '0')).toThrow(TypeError);
  });
});
