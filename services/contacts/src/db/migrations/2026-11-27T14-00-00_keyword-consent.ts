import type { Kysely } from 'kysely';

/**
 * STOP/START keywords arrive as messaging.message.received events, which are handled concurrently
 * and may be redelivered late: the latest keyword applied is remembered so an older one that is
 * processed afterwards cannot undo it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('contacts').addColumn('keyword_version', 'text').execute();
}
