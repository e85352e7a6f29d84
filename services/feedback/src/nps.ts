export type NpsCategory = 'PROMOTER' | 'PASSIVE' | 'DETRACTOR';

/** The Net Promoter bucket of a 0-10 score: 9-10 promoters, 7-8 passives, 0-6 detractors. */
export function npsCategory(score: number): NpsCategory {
  if (score >= 9) return 'PROMOTER';
  if (score >= 7) return 'PASSIVE';
  return 'DETRACTOR';
}
