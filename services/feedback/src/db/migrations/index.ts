import type { Migration } from 'kysely';
import * as createSurveys from './2026-11-27T10-00-00_create-surveys';

export const migrations: Record<string, Migration> = {
  '2026-11-27T10-00-00_create-surveys': createSurveys,
};
