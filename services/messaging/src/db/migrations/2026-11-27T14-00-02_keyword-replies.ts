import type { Kysely } from 'kysely';

/**
 * The automatic answers to STOP/START/HELP keywords. A message listed here is exempt from opt-out
 * suppression (the STOP confirmation must go out after the opt-out it confirms) and is never the
 * `inReplyTo` of a later inbound message. A side table, like message_waits, so the queue's insert
 * and status-write paths stay as they are.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('keyword_replies')
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('inbound_message_id', 'text', (c) => c.notNull())
    .addColumn('keyword', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('keyword_replies_inbound_idx').on('keyword_replies').column('inbound_message_id').execute();
}
