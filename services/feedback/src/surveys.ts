import type { Kysely, Selectable, Transaction } from 'kysely';
import { newId } from '@textloop/events';
import { badInput, type Clock } from '@textloop/service-kit';
import type { Database, SurveyResponsesTable, SurveysTable } from './db/database';
import { isZero, parseDuration } from '@textloop/service-kit';

export type SurveyRow = Selectable<SurveysTable>;
export type ResponseRow = Selectable<SurveyResponsesTable>;

type Db = Kysely<Database> | Transaction<Database>;

export const DEFAULT_RESPONSE_WINDOW = 'P3D';

export interface SurveyInput {
  name: string;
  question: string;
  followUp?: string | null;
  thankYou?: string | null;
  touchpoint?: string | null;
  responseWindow?: string | null;
}

function required(value: string, field: string, what: string): string {
  const text = value.trim();
  if (!text) throw badInput(`${what} must not be empty.`, field);
  return text;
}

/** Blank optional texts mean "none". */
function optional(value: string | null | undefined): string | null {
  const text = value?.trim();
  return text ? text : null;
}

function responseWindow(value: string | null | undefined): string {
  const text = value?.trim().toUpperCase();
  if (!text) return DEFAULT_RESPONSE_WINDOW;
  const duration = parseDuration(text);
  if (!duration || isZero(duration)) {
    throw badInput(`responseWindow "${value}" is not a positive ISO-8601 duration; use e.g. P3D (three days) or PT12H (twelve hours).`, 'responseWindow');
  }
  return text;
}

export async function createSurvey(db: Db, clock: Clock, input: SurveyInput): Promise<SurveyRow> {
  const row = {
    id: newId(),
    name: required(input.name, 'name', 'The survey name'),
    question: required(input.question, 'question', 'The question'),
    follow_up: optional(input.followUp),
    thank_you: optional(input.thankYou),
    touchpoint: optional(input.touchpoint),
    response_window: responseWindow(input.responseWindow),
    created_at: clock.now(),
  };
  return db.insertInto('surveys').values(row).returningAll().executeTakeFirstOrThrow();
}

export function listSurveys(db: Db): Promise<SurveyRow[]> {
  return db.selectFrom('surveys').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
}

export function findSurvey(db: Db, id: string): Promise<SurveyRow | undefined> {
  return db.selectFrom('surveys').selectAll().where('id', '=', id).executeTakeFirst();
}

export function responsesOfContact(db: Db, contactId: string): Promise<ResponseRow[]> {
  return db.selectFrom('survey_responses').selectAll().where('contact_id', '=', contactId).orderBy('responded_at', 'desc').orderBy('id', 'desc').execute();
}

/** Right to erasure: the contact's responses and comments go; surveys hold no personal data. */
export async function eraseContact(db: Db, contactId: string): Promise<number> {
  const result = await db.deleteFrom('survey_responses').where('contact_id', '=', contactId).executeTakeFirst();
  return Number(result.numDeletedRows);
}
