import { sql, type RawBuilder } from 'kysely';

/** A column of a bulk write: name and Postgres type. */
export type Column = readonly [name: string, type: string];

/**
 * Many rows as ONE bind parameter: jsonb_to_recordset($1) as v(col type, …). Serialising with
 * JSON.stringify is far cheaper on the hot path than a bind parameter per value (a 1,000-row
 * insert of 27 columns would be 27,000 of them), and it behaves the same on Postgres and PGlite.
 * Rows may carry more properties than columns (they are ignored); Dates serialise as ISO strings.
 */
export function recordset(columns: readonly Column[], rows: ReadonlyArray<object>, alias = 'v'): RawBuilder<unknown> {
  const types = sql.join(columns.map(([name, type]) => sql`${sql.ref(name)} ${sql.raw(type)}`));
  return sql`jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as ${sql.raw(alias)}(${types})`;
}

export function columnList(columns: readonly Column[]): RawBuilder<unknown> {
  return sql.join(columns.map(([name]) => sql.ref(name)));
}
