import type { Transaction } from 'kysely';
import { newId } from '@textloop/events';
import type { Clock } from '@textloop/service-kit';
import { requireContact, type ContactsDeps } from './contacts';
import type { ConsentRow, ContactRow, Database } from './db/database';
import { publishInTransaction } from './events/publish';

/** Why consent changed; STOP/START keywords arrive through messaging in a later issue. */
export type ConsentReason = 'API' | 'STOP_KEYWORD' | 'START_KEYWORD' | (string & {});

/**
 * Sets the contact's consent inside the caller's transaction: a ledger row and an
 * unsubscribed/resubscribed event when it changes, nothing at all when it already was so.
 */
export async function setSubscriptionInTransaction(
  trx: Transaction<Database>,
  clock: Clock,
  contactId: string,
  subscribed: boolean,
  reason: ConsentReason,
  source: string,
): Promise<{ contact: ContactRow; changed: boolean }> {
  const current = await requireContact(trx, contactId, { forUpdate: true });
  if (current.subscribed === subscribed) return { contact: current, changed: false };
  const now = clock.now();
  const contact = await trx
    .updateTable('contacts')
    .set({ subscribed, unsubscribed_at: subscribed ? null : now, updated_at: now })
    .where('id', '=', contactId)
    .returningAll()
    .executeTakeFirstOrThrow();
  await trx.insertInto('consent_ledger').values({ id: newId(), contact_id: contactId, subscribed, reason, source, at: now }).execute();
  const data = { contactId, phone: contact.phone, reason };
  await publishInTransaction(trx, clock, [
    subscribed ? { subject: 'contacts.contact.resubscribed', data } : { subject: 'contacts.contact.unsubscribed', data },
  ]);
  return { contact, changed: true };
}

export async function setSubscription(deps: ContactsDeps, contactId: string, subscribed: boolean, reason: ConsentReason, source: string): Promise<ContactRow> {
  const { contact, changed } = await deps.db
    .transaction()
    .execute((trx) => setSubscriptionInTransaction(trx, deps.clock, contactId, subscribed, reason, source));
  if (changed) deps.outbox.kick();
  return contact;
}

/** Oldest first. */
export async function consentHistory(deps: Pick<ContactsDeps, 'db'>, contactId: string): Promise<ConsentRow[]> {
  return deps.db.selectFrom('consent_ledger').selectAll().where('contact_id', '=', contactId).orderBy('at').orderBy('id').execute();
}
