import { sql, type Kysely, type Transaction } from 'kysely';
import { badInput, notFound } from '@textloop/service-kit';
import type { Database } from './db/database';
import type { NpsCategory } from './nps';
import { findSurvey, type ResponseRow } from './surveys';

type Db = Kysely<Database> | Transaction<Database>;

export const MAX_PAGE_SIZE = 1000;

export interface ResponsePage {
  nodes: ResponseRow[];
  hasNextPage: boolean;
  endCursor: string | null;
  totalCount: number;
}

function encodeCursor(row: ResponseRow): string {
  return Buffer.from(JSON.stringify([row.responded_at.toISOString(), row.id])).toString('base64url');
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      const at = new Date(parsed[0]);
      if (!Number.isNaN(at.getTime())) return { at, id: parsed[1] };
    }
  } catch {
    // reported below
  }
  throw badInput('after is not a cursor this list returned; pass pageInfo.endCursor of the previous page.', 'after');
}

export interface ResponseFilter {
  surveyId?: string | null;
  category?: NpsCategory | null;
}

/**
 * Responses newest first, keyset-paginated on (responded_at, id). Responses of erased contacts are
 * left out: they have no contact to show and live on only in the NPS aggregates. A surveyId that
 * names no survey is NOT_FOUND.
 */
export async function listResponses(db: Db, filter: ResponseFilter, first: number | null | undefined, after?: string | null): Promise<ResponsePage> {
  const size = first ?? 50;
  if (!Number.isInteger(size) || size < 0 || size > MAX_PAGE_SIZE) {
    throw badInput(`first must be between 0 and ${MAX_PAGE_SIZE}; page through more with after.`, 'first');
  }
  if (filter.surveyId && !(await findSurvey(db, filter.surveyId))) {
    throw notFound(`No survey has id "${filter.surveyId}"; list them with surveys.`);
  }
  const cursor = after ? decodeCursor(after) : undefined;
  let q = db.selectFrom('survey_responses').where('contact_id', 'is not', null);
  if (filter.surveyId) q = q.where('survey_id', '=', filter.surveyId);
  if (filter.category) q = q.where('category', '=', filter.category);
  const [rows, total] = await Promise.all([
    q
      .selectAll()
      .$if(cursor !== undefined, (qb) => qb.where(sql<boolean>`(responded_at, id) < (${cursor!.at}, ${cursor!.id})`))
      .orderBy('responded_at', 'desc')
      .orderBy('id', 'desc')
      .limit(size + 1)
      .execute(),
    q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  const nodes = rows.slice(0, size);
  return {
    nodes,
    hasNextPage: rows.length > size,
    endCursor: nodes.length ? encodeCursor(nodes[nodes.length - 1]!) : null,
    totalCount: Number(total.n),
  };
}

/** The response to an invitation, if it was answered. */
export function responseOfInvitation(db: Db, invitationId: string): Promise<ResponseRow | undefined> {
  return db.selectFrom('survey_responses').selectAll().where('invitation_id', '=', invitationId).executeTakeFirst();
}
