import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './db/database';

/**
 * Erasure and the writes it must not race with. contacts.contact.deleted is handled by its own
 * consumer, separately from the consumers that start runs (and from scheduleMessage), so the
 * contact's other events can be handled after its erasure, or at the same moment. Erasure records
 * the id in erased_contacts; whatever would write a run or a scheduled message for a contact checks
 * that list in its own transaction, after taking this contact's erasure lock in shared mode.
 * Erasure takes it exclusively: it waits for writes already past their check (and then deletes
 * what they wrote), and writes that come later wait for it and then see the id in the list.
 * Shared mode lets the writes of one contact go on in parallel with each other.
 */

/** First key of the two-key advisory locks: a key space of its own, apart from the run-key locks. */
const ERASURE_LOCK_CLASS = 74_001;

/** Held by eraseContact until its transaction ends. */
export async function lockForErasure(trx: Transaction<Database>, contactId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(${ERASURE_LOCK_CLASS}::int, hashtext(${contactId}))`.execute(trx);
}

/** Taken before the erased check by anything that writes personal data of a contact; held until the transaction ends. */
export async function lockAgainstErasure(trx: Transaction<Database>, contactId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock_shared(${ERASURE_LOCK_CLASS}::int, hashtext(${contactId}))`.execute(trx);
}

/** Whether the contact was erased (read after lockAgainstErasure, as a later statement, it sees a committed erasure). */
export async function isErased(db: Kysely<Database> | Transaction<Database>, contactId: string): Promise<boolean> {
  const row = await db.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', contactId).executeTakeFirst();
  return row !== undefined;
}

/** Records the erasure (idempotent: the first time is kept). */
export async function recordErasure(trx: Transaction<Database>, contactId: string, now: Date): Promise<void> {
  await trx
    .insertInto('erased_contacts')
    .values({ contact_id: contactId, erased_at: now })
    .onConflict((oc) => oc.column('contact_id').doNothing())
    .execute();
}
