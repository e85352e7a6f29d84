import { sql, type RawBuilder } from 'kysely';
import { badInput } from '@textloop/service-kit';

/** One page of a newest-first list, keyset-paginated on (timestamp, id). */
export interface Page<T> {
  nodes: T[];
  hasNextPage: boolean;
  endCursor: string | null;
  totalCount: number;
}

export const MAX_PAGE = 500;

/** A position in a list: the sort timestamp and id of the last row of the previous page. */
export interface Cursor {
  at: Date;
  id: string;
}

function encodeCursor(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): Cursor {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const date = new Date(at ?? '');
  if (!id || Number.isNaN(date.getTime())) throw badInput('after is not a cursor from this list; pass pageInfo.endCursor of the previous page.', 'after');
  return { at: date, id };
}

/** Rows strictly after the cursor in (column desc, id desc) order. */
export function beforeCursor(column: string, cursor: Cursor): RawBuilder<boolean> {
  return sql<boolean>`(${sql.ref(column)}, id) < (${cursor.at}, ${cursor.id})`;
}

/**
 * Checks `first`, decodes `after`, and builds the page: `rows` fetches up to `limit` rows after the
 * cursor (newest first), `count` the total of the whole filtered list, `sortKey` the row's timestamp.
 */
export async function keysetPage<T extends { id: string }>(
  first: number,
  after: string | null | undefined,
  sortKey: (row: T) => Date,
  rows: (cursor: Cursor | undefined, limit: number) => Promise<T[]>,
  count: () => Promise<{ n: number | string | bigint }>,
): Promise<Page<T>> {
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE) throw badInput(`first must be between 0 and ${MAX_PAGE}.`, 'first');
  const cursor = after ? decodeCursor(after) : undefined;
  const [fetched, total] = await Promise.all([rows(cursor, first + 1), count()]);
  const nodes = fetched.slice(0, first);
  const last = nodes[nodes.length - 1];
  return {
    nodes,
    hasNextPage: fetched.length > first,
    endCursor: last ? encodeCursor(sortKey(last), last.id) : null,
    totalCount: Number(total.n),
  };
}
