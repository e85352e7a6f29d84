import { describe, expect, it } from 'vitest';
import { queryParam } from './http';

describe('queryParam', () => {
  it('reads one parameter as URLSearchParams would, at a parameter boundary only', () => {
    const search = '?secret=a%2Bb+c&mids=14155550100.m-1,14155550101.m-2&xsecret=no&empty=';
    for (const name of ['secret', 'mids', 'xsecret', 'empty', 'missing', 'ecret']) {
      expect(queryParam(search, name), name).toBe(new URLSearchParams(search).get(name));
    }
    expect(queryParam('?a=1&secret=2', 'secret')).toBe('2');
    expect(queryParam('', 'secret')).toBeNull();
  });

  it('returns a value that is not valid percent-encoding as it is', () => {
    expect(queryParam('?secret=100%', 'secret')).toBe('100%');
  });
});
