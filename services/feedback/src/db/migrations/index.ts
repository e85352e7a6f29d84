import type { Migration } from 'kysely';
import * as createSurveys from './2026-11-27T10-00-00_create-surveys';
import * as surveyFlow from './2026-11-27T16-00-00_survey-flow';
import * as npsReport from './2026-11-27T16-00-01_nps-report';

export const migrations: Record<string, Migration> = {
  '2026-11-27T10-00-00_create-surveys': createSurveys,
  '2026-11-27T16-00-00_survey-flow': surveyFlow,
  '2026-11-27T16-00-01_nps-report': npsReport,
};
