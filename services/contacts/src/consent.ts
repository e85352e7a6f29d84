import type { Transaction } from 'kysely';
import { newId } from '@textloop/events';
import type { Clock } from '@textloop/service-kit';
import { requireContact, type ContactsDeps } from './contacts';
import type { ConsentRow, ContactRow, Database } from './db/database';
import { publishInTransaction } from './events/publish';

/** Why consent changed; STOP/START keywords arrive through messaging (messaging.message.received). */
export type ConsentReason = 'API' | 'STOP_KEYWORD' | 'START_KEYWORD' | (string & {});

/**
 * Sets the contact's consent inside the caller's transaction: a ledger row and an
 * unsubscribed/resubscribed event when it changes, nothing at all when it already was so.
 * `messageId`: the inbound SMS whose keyword caused it, echoed on the event.
 */
export async function setSubscriptionInTransaction(
  trx: Transaction<Database>,
  clock: Clock,
  contactId: string,
  subscribed: boolean,
  reason: ConsentReason,
  source: string,
  cause: { messageId?: string } = {},
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
  const data = { contactId, phone: contact.phone, reason, ...(cause.messageId ? { messageId: cause.messageId } : {}) };
  await publishInTransaction(trx, clock, [
    subscribed ? { subject: 'contacts.contact.resubscribed', data } : { subject: 'contacts.contact.unsubscribed', data },
  ]);
  return { contact, changed: true };
}

/** Orders keyword messages: messaging's receive time (the event's time), then the inbound message id (time-ordered). */
export function keywordVersion(eventTime: string, messageId: string): string {
  const ms = Date.parse(eventTime);
  return `${String(Number.isFinite(ms) ? ms : 0).padStart(15, '0')}:${messageId}`;
}

/**
 * A STOP or START keyword the contact texted (messaging.message.received with `keyword`): consent
 * changes with reason STOP_KEYWORD / START_KEYWORD, source "sms", and contacts publishes
 * unsubscribed/resubscribed as for any change. Keyword messages may be handled out of order (the
 * consumer runs handlers concurrently; a redelivery comes late): one older than the latest keyword
 * already applied changes nothing, so START-then-STOP always ends unsubscribed. Returns whether
 * consent changed (the caller kicks the outbox after commit).
 */
export async function applyConsentKeyword(
  trx: Transaction<Database>,
  clock: Clock,
  contactId: string,
  keyword: 'STOP' | 'START',
  version: string,
  messageId: string,
): Promise<boolean> {
  const row = await trx.selectFrom('contacts').select(['id', 'keyword_version']).where('id', '=', contactId).forUpdate().executeTakeFirst();
  if (!row) return false;
  if (row.keyword_version !== null && row.keyword_version >= version) return false;
  await trx.updateTable('contacts').set({ keyword_version: version }).where('id', '=', contactId).execute();
  const subscribed = keyword === 'START';
  const { changed } = await setSubscriptionInTransaction(trx, clock, contactId, subscribed, subscribed ? 'START_KEYWORD' : 'STOP_KEYWORD', 'sms', {
    messageId,
  });
  return changed;
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
