import type { Migration } from 'kysely';
import * as foundation from './2026-11-27T10-00-00_messaging-foundation';

export const migrations: Record<string, Migration> = {
  '2026-11-27T10-00-00_messaging-foundation': foundation,
};
