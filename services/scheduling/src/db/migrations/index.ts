import type { Migration } from 'kysely';
import * as createAutomations from './2026-11-27T10-00-00_create-automations';
import * as automationEngine from './2026-11-27T12-00-00_automation-engine';
import * as erasedContacts from './2026-11-27T15-00-00_erased-contacts';
import * as campaigns from './2026-11-27T17-00-01_campaigns';
import * as automationEnabledAt from './2026-11-27T18-00-02_automation-enabled-at';

export const migrations: Record<string, Migration> = {
  '2026-11-27T10-00-00_create-automations': createAutomations,
  '2026-11-27T12-00-00_automation-engine': automationEngine,
  '2026-11-27T15-00-00_erased-contacts': erasedContacts,
  '2026-11-27T17-00-01_campaigns': campaigns,
  '2026-11-27T18-00-02_automation-enabled-at': automationEnabledAt,
};
