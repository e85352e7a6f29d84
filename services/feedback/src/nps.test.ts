import { describe, expect, it } from 'vitest';
import { npsCategory } from './nps';

describe('npsCategory', () => {
  it('buckets 0-6 as detractors, 7-8 as passives and 9-10 as promoters', () => {
    expect([0, 6, 7, 8, 9, 10].map(npsCategory)).toEqual(['DETRACTOR', 'DETRACTOR', 'PASSIVE', 'PASSIVE', 'PROMOTER', 'PROMOTER']);
  });
});
