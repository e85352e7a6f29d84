import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './db/database';

/**
 * Erasure and the writes it must not race with (as in scheduling). contacts.contact.deleted has its
 * own consumer, so a survey can be sent, or a reply handled, for a contact whose erasure is running
 * at that moment or already done. Erasure records the id in erased_contacts under this contact's
 * lock taken exclusively; whatever writes personal data of a contact (an invitation, a response)
 * takes the lock shared and then checks the list in the same transaction: it either finishes before
 * the erasure (which then unlinks what it wrote) or waits for it and sees the id.
 */

/** First key of the two-key advisory locks: a key space of feedback's own. */
const ERASURE_LOCK_CLASS = 75_001;

type Db = Kysely<Database> | Transaction<Database>;

/** Held by eraseContact until its transaction ends. */
export async function lockForErasure(trx: Db, contactId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(${ERASURE_LOCK_CLASS}::int, hashtext(${contactId}))`.execute(trx);
}

/** Taken before the erased check by anything that writes personal data of a contact; held until the transaction ends. */
export async function lockAgainstErasure(trx: Db, contactId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock_shared(${ERASURE_LOCK_CLASS}::int, hashtext(${contactId}))`.execute(trx);
}

/** Whether the contact was erased here (after lockAgainstErasure it sees a committed erasure). */
export async function isErased(db: Db, contactId: string): Promise<boolean> {
  const row = await db.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', contactId).executeTakeFirst();
  return row !== undefined;
}

/** Records the erasure (idempotent: the first time is kept). */
export async function recordErasure(trx: Db, contactId: string, at: Date): Promise<void> {
  await trx
    .insertInto('erased_contacts')
    .values({ contact_id: contactId, erased_at: at })
    .onConflict((oc) => oc.column('contact_id').doNothing())
    .execute();
}
