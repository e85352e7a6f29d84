import { sql, type Kysely } from 'kysely';

/** The messaging policy (one row; absent until first changed) and the marker of messages held back by quiet hours. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('messaging_policy')
    .addColumn('id', 'integer', (c) =>
      c
        .primaryKey()
        .defaultTo(1)
        .check(sql`id = 1`),
    )
    .addColumn('quiet_hours_start', 'text', (c) => c.notNull())
    .addColumn('quiet_hours_end', 'text', (c) => c.notNull())
    .addColumn('marketing_weekly_cap', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();

  // Which SCHEDULED messages wait for quiet hours to end (rather than for a time someone chose), so a
  // policy change can re-evaluate them and leave the others alone. A side table, not a messages
  // column, so the queue's insert and status-write paths stay as they are.
  await db.schema
    .createTable('message_waits')
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('waiting_for', 'text', (c) => c.notNull())
    .execute();
}
