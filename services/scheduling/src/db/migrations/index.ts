import type { Migration } from 'kysely';
import * as createAutomations from './2026-11-27T10-00-00_create-automations';

export const migrations: Record<string, Migration> = {
  '2026-11-27T10-00-00_create-automations': createAutomations,
};
