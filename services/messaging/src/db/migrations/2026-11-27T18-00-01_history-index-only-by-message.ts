import { sql, type Kysely } from 'kysely';

/**
 * message_status_history is written three or four times per message and read only by message
 * (message_status_history_message_idx: message_id, at, id), never by id alone. Its primary-key
 * index cost an index insert per status change for no reader, so it goes; the id column stays as
 * the tie-breaker of the history's order.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table message_status_history drop constraint if exists message_status_history_pkey`.execute(db);
}
