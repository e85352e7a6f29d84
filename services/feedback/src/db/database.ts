import type { ColumnType } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

export interface SurveysTable {
  id: string;
  name: string;
  question: string;
  follow_up: string | null;
  thank_you: string | null;
  touchpoint: string | null;
  /** ISO-8601 duration, e.g. P3D */
  response_window: string;
  created_at: CreatedAt;
}

/** The NPS category is derived from the score (see nps.ts), so it is not stored. */
export interface SurveyResponsesTable {
  id: string;
  survey_id: string;
  contact_id: string;
  score: number;
  comment: string | null;
  responded_at: ColumnType<Date, Date | string, Date | string>;
}

export interface Database {
  surveys: SurveysTable;
  survey_responses: SurveyResponsesTable;
}
