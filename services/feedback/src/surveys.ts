import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { newId } from '@textloop/events';
import { badInput, isZero, parseDuration, type Clock } from '@textloop/service-kit';
import type { Database, InvitationStatus, SurveyResponsesTable, SurveysTable } from './db/database';
import { lockForErasure, recordErasure } from './erasure';
import { liquidProblem } from './liquid-check';

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

/** The texts are Liquid templates messaging renders with the contact's fields: broken ones are refused now, not when the survey goes out. */
function template<T extends string | null>(text: T, field: string, what: string): T {
  const problem = text === null ? null : liquidProblem(text);
  if (problem) throw badInput(`${what} is not a template that can be sent: ${problem}`, field);
  return text;
}

export async function createSurvey(db: Db, clock: Clock, input: SurveyInput): Promise<SurveyRow> {
  const row = {
    id: newId(),
    name: required(input.name, 'name', 'The survey name'),
    question: template(required(input.question, 'question', 'The question'), 'question', 'The question'),
    follow_up: template(optional(input.followUp), 'followUp', 'followUp'),
    thank_you: template(optional(input.thankYou), 'thankYou', 'thankYou'),
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

/**
 * Right to erasure (contacts.contact.deleted): the contact's personal link goes, the anonymous
 * scores stay in the aggregates. Responses and invitations lose their contact (and a response its
 * comment, which is the contact's own words); open invitations close, since no reply can be matched
 * to them any more. The id is recorded so a send or reply racing the erasure writes nothing.
 */
export async function eraseContact(db: Transaction<Database>, contactId: string, at: Date): Promise<number> {
  await lockForErasure(db, contactId);
  await recordErasure(db, contactId, at);
  const responses = await db.updateTable('survey_responses').set({ contact_id: null, comment: null }).where('contact_id', '=', contactId).executeTakeFirst();
  await db
    .updateTable('survey_invitations')
    .set({
      contact_id: null,
      correlation: null,
      awaiting: null,
      status: sql<InvitationStatus>`case status when 'SENT' then 'EXPIRED' when 'ANSWERED' then 'COMPLETED' else status end`,
    })
    .where('contact_id', '=', contactId)
    .execute();
  return Number(responses.numUpdatedRows);
}
