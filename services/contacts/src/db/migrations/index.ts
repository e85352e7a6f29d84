import type { Migration } from 'kysely';
import * as createContacts from './2026-11-27T10-00-00_create-contacts';
import * as keywordConsent from './2026-11-27T14-00-00_keyword-consent';
import * as dormancyIndex from './2026-11-27T17-00-00_dormancy-index';

export const migrations: Record<string, Migration> = {
  '2026-11-27T10-00-00_create-contacts': createContacts,
  '2026-11-27T14-00-00_keyword-consent': keywordConsent,
  '2026-11-27T17-00-00_dormancy-index': dormancyIndex,
};
