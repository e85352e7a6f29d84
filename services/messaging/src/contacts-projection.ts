import { sql, type ExpressionBuilder, type Selectable } from 'kysely';
import type { CloudEvent, ContactSnapshot, EventData } from '@textloop/events';
import type { Clock } from '@textloop/service-kit';
import type { ContactsTable, Database } from './db/database';
import type { MessagingContext } from './context';
import { withRetry, writeChanges, type Db, type MessageRow } from './status';

export type ContactRow = Selectable<ContactsTable>;

/** Written instead of an erased contact's phone numbers. */
export const ERASED = '[erased]';

/**
 * Orders events about one contact: event time, then the (time-ordered) event id. The consumer
 * handles events concurrently and redeliveries come late, so arrival order means nothing.
 */
export function eventVersion(event: CloudEvent): string {
  const ms = Date.parse(event.time);
  return `${String(Number.isFinite(ms) ? ms : 0).padStart(15, '0')}:${event.id}`;
}

const newer = (current: string | null, candidate: string) => current === null || current < candidate;

/** The version of a change made by an inbound message (a STOP/START keyword), comparable with eventVersion. */
export function messageVersion(at: Date, messageId: string): string {
  return `${String(at.getTime()).padStart(15, '0')}:${messageId}`;
}

/**
 * True when the contact texted a STOP/START that this projection has already applied and that is
 * newer than the keyword message `messageId`: contacts' event about the older keyword (it lags
 * behind the local change) must not undo the newer one. Its own event comes later.
 */
async function overtakenByLocalKeyword(trx: Db, contactId: string, messageId: string): Promise<boolean> {
  const cause = await trx.selectFrom('messages').select(['id', 'created_at']).where('id', '=', messageId).executeTakeFirst();
  if (!cause) return false;
  const latest = await trx
    .selectFrom('keyword_replies')
    .innerJoin('messages', 'messages.id', 'keyword_replies.inbound_message_id')
    .select(['messages.id', 'messages.created_at'])
    .where('messages.contact_id', '=', contactId)
    .where('keyword_replies.keyword', 'in', ['STOP', 'START'])
    .orderBy('messages.created_at', 'desc')
    .orderBy('messages.id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return latest !== undefined && messageVersion(latest.created_at, latest.id) > messageVersion(cause.created_at, cause.id);
}

async function isErased(db: Db, contactId: string): Promise<boolean> {
  const row = await db.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', contactId).executeTakeFirst();
  return row !== undefined;
}

/** contacts.contact.created / updated: the full current profile. */
export async function applySnapshot(ctx: MessagingContext, event: CloudEvent<ContactSnapshot>): Promise<void> {
  const d = event.data;
  const version = eventVersion(event);
  const profile = {
    phone: d.phone,
    external_id: d.externalId ?? null,
    country: d.country ?? null,
    timezone: d.timezone ?? null,
    locale: d.locale ?? null,
    first_name: d.firstName ?? null,
    last_name: d.lastName ?? null,
    email: d.email ?? null,
    attributes: JSON.stringify(d.attributes ?? {}),
    tags: JSON.stringify(d.tags ?? []),
    ...(d.phoneVerified !== undefined ? { phone_verified: d.phoneVerified } : {}),
    profile_version: version,
  };
  await ctx.db.transaction().execute(async (trx) => {
    if (await isErased(trx, d.contactId)) return;
    const inserted = await trx
      .insertInto('contacts')
      .values({ id: d.contactId, ...profile, subscribed: d.subscribed, consent_version: version, updated_at: ctx.clock.now() })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return;
    const current = await trx
      .selectFrom('contacts')
      .select(['profile_version', 'consent_version'])
      .where('id', '=', d.contactId)
      .forUpdate()
      .executeTakeFirst();
    if (!current) return;
    const set = {
      ...(newer(current.profile_version, version) ? profile : {}),
      ...(newer(current.consent_version, version) ? { subscribed: d.subscribed, consent_version: version } : {}),
    };
    if (Object.keys(set).length === 0) return;
    await trx
      .updateTable('contacts')
      .set({ ...set, updated_at: ctx.clock.now() })
      .where('id', '=', d.contactId)
      .execute();
  });
}

/**
 * Sets one contact's consent in the projection if `version` is newer than what it holds (a stub
 * row when the contact is not here yet: the snapshot fills in the profile later). Returns whether
 * the row took this version. Shared by contacts.contact.unsubscribed/resubscribed and by the
 * STOP/START keywords, which set it at once, before contacts confirms.
 */
export async function setProjectionConsent(
  trx: Db,
  change: { contactId: string; phone: string; subscribed: boolean; version: string; now: Date },
): Promise<boolean> {
  const { contactId, phone, subscribed, version, now } = change;
  // A stub (no profile yet) when this overtook contacts.contact.created; the snapshot fills it in.
  const inserted = await trx
    .insertInto('contacts')
    .values({ id: contactId, phone, subscribed, consent_version: version, profile_version: null, updated_at: now })
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return true;
  const updated = await trx
    .updateTable('contacts')
    .set({ subscribed, consent_version: version, updated_at: now })
    .where('id', '=', contactId)
    .where((eb) => eb.or([eb('consent_version', 'is', null), eb('consent_version', '<', version)]))
    .executeTakeFirst();
  return Number(updated.numUpdatedRows ?? 0) > 0;
}

/** Keyword replies (the STOP confirmation above all) go out whatever the recipient's consent. */
const notKeywordReply = (eb: ExpressionBuilder<Database, 'messages'>) =>
  eb.not(eb.exists(eb.selectFrom('keyword_replies').select('keyword_replies.message_id').whereRef('keyword_replies.message_id', '=', 'messages.id')));

/**
 * After an opt-out: outbound messages to the contact or to its number (a send by `to`) that are
 * still waiting (QUEUED: a retry during a provider outage; SCHEDULED: quiet hours or a chosen time)
 * become SUPPRESSED with OPTED_OUT. Keyword replies are exempt. Returns how many.
 */
export async function suppressWaiting(trx: Db, clock: Clock, who: { contactId: string | null; phone: string }, now: Date): Promise<number> {
  const pending: MessageRow[] = (
    await trx
      .selectFrom('messages')
      .selectAll()
      .where('direction', '=', 'OUTBOUND')
      .where('status', 'in', ['QUEUED', 'SCHEDULED'])
      .where((eb) => eb.or([...(who.contactId ? [eb('contact_id', '=', who.contactId)] : []), eb('to_number', '=', who.phone)]))
      .where(notKeywordReply)
      .orderBy('id')
      .forUpdate()
      .execute()
  ).map((row) => ({
    ...row,
    status: 'SUPPRESSED',
    error_code: 'OPTED_OUT',
    error_message: 'The contact unsubscribed before the message was sent',
    lease_until: null,
    updated_at: now,
  }));
  if (pending.length === 0) return 0;
  await writeChanges(
    trx,
    {
      rows: pending,
      history: pending.map((r) => ({ messageId: r.id, status: 'SUPPRESSED' as const, at: now, detail: 'contact unsubscribed' })),
      announce: pending,
    },
    clock,
  );
  return pending.length;
}

/**
 * Of these messages, the outbound ones whose recipient is unsubscribed now (by contact, or by
 * number), keyword replies excepted. The release loop asks before a SCHEDULED message goes out.
 */
export async function optedOutMessageIds(db: Db, rows: Array<Pick<MessageRow, 'id' | 'direction'>>): Promise<Set<string>> {
  const ids = rows.filter((r) => r.direction === 'OUTBOUND').map((r) => r.id);
  if (ids.length === 0) return new Set();
  const found = await db
    .selectFrom('messages')
    .select('messages.id')
    .where('messages.id', 'in', ids)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('contacts')
          .select('contacts.id')
          .where('contacts.subscribed', '=', false)
          .where((c) => c.or([c('contacts.id', '=', c.ref('messages.contact_id')), c('contacts.phone', '=', c.ref('messages.to_number'))])),
      ),
    )
    .where(notKeywordReply)
    .execute();
  return new Set(found.map((r) => r.id));
}

/** contacts.contact.unsubscribed / resubscribed. */
export async function applyConsent(
  ctx: MessagingContext,
  event: CloudEvent<EventData<'contacts.contact.unsubscribed'> | EventData<'contacts.contact.resubscribed'>>,
  subscribed: boolean,
): Promise<void> {
  const d = event.data;
  const version = eventVersion(event);
  const now = ctx.clock.now();
  const suppressed = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      if (await isErased(trx, d.contactId)) return 0;
      if (d.messageId && (await overtakenByLocalKeyword(trx, d.contactId, d.messageId))) return 0;
      if (!(await setProjectionConsent(trx, { contactId: d.contactId, phone: d.phone, subscribed, version, now }))) return 0;
      if (subscribed) return 0;
      // Consent is checked when a message is accepted; one still waiting must not go out after the opt-out either.
      return suppressWaiting(trx, ctx.clock, { contactId: d.contactId, phone: d.phone }, now);
    }),
  );
  if (suppressed > 0) ctx.outbox.kick();
}

export async function applyVerified(ctx: MessagingContext, event: CloudEvent<EventData<'contacts.contact.verified'>>): Promise<void> {
  await ctx.db
    .updateTable('contacts')
    .set({ phone_verified: true, updated_at: ctx.clock.now() })
    .where('id', '=', event.data.contactId)
    .where('phone', '=', event.data.phone)
    .execute();
}

/**
 * contacts.contact.deleted: forget the contact and erase its personal data here. Message rows
 * stay (counts, statuses and costs still add up) with body and numbers blanked; messages not yet
 * handed to the provider are canceled.
 */
export async function eraseContact(ctx: MessagingContext, contactId: string): Promise<void> {
  const now = ctx.clock.now();
  const canceled = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('erased_contacts')
        .values({ contact_id: contactId, erased_at: now })
        .onConflict((oc) => oc.column('contact_id').doNothing())
        .execute();
      await trx.deleteFrom('contacts').where('id', '=', contactId).execute();
      // Verifications hold the number: a pending one ends, all of them forget whose it was.
      await trx
        .updateTable('verifications')
        .set({ to_number: ERASED, contact_id: null, status: sql<'CANCELED'>`case when status = 'PENDING' then 'CANCELED' else status end`, updated_at: now })
        .where('contact_id', '=', contactId)
        .execute();
      // Its support conversation goes (messages are unlinked by the foreign key and kept, erased, below).
      await trx.deleteFrom('conversations').where('contact_id', '=', contactId).execute();
      const rows = await trx.selectFrom('messages').selectAll().where('contact_id', '=', contactId).orderBy('id').forUpdate().execute();
      const pending: MessageRow[] = rows
        .filter((row) => row.status === 'QUEUED' || row.status === 'SCHEDULED')
        .map((row) => ({
          ...row,
          status: 'CANCELED',
          error_code: 'CONTACT_DELETED',
          error_message: 'The contact was deleted before the message was sent',
          lease_until: null,
          updated_at: now,
        }));
      if (rows.length > 0) {
        await sql`update messages set body = '',
            to_number = case when direction = 'OUTBOUND' then ${ERASED} else to_number end,
            from_number = case when direction = 'INBOUND' then ${ERASED} else from_number end,
            updated_at = ${now}
          where contact_id = ${contactId}`.execute(trx);
        await writeChanges(
          trx,
          {
            rows: pending,
            history: pending.map((r) => ({ messageId: r.id, status: 'CANCELED' as const, at: now, detail: 'contact deleted' })),
            // Events about erased messages carry no phone number either.
            announce: pending.map((r) => ({
              ...r,
              body: '',
              to_number: r.direction === 'OUTBOUND' ? ERASED : r.to_number,
              from_number: r.direction === 'INBOUND' ? ERASED : r.from_number,
            })),
          },
          ctx.clock,
        );
      }
      return pending.length;
    }),
  );
  if (canceled > 0) ctx.outbox.kick();
}

/** Contacts with a profile (stubs excluded), by id. */
export async function contactsByIds(ctx: MessagingContext, ids: string[]): Promise<Map<string, ContactRow>> {
  const out = new Map<string, ContactRow>();
  if (ids.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('contacts')
    .selectAll()
    .where('id', 'in', [...new Set(ids)])
    .where('profile_version', 'is not', null)
    .execute();
  for (const r of rows) out.set(r.id, r);
  return out;
}

/**
 * Like contactsByIds, but waits up to config.contactWaitMs for ids the projection has not seen yet:
 * a contact created a moment ago may still be on its way over NATS.
 */
export async function awaitContacts(ctx: MessagingContext, ids: string[]): Promise<Map<string, ContactRow>> {
  const found = await contactsByIds(ctx, ids);
  const deadline = Date.now() + ctx.config.contactWaitMs;
  let missing = [...new Set(ids)].filter((id) => !found.has(id));
  while (missing.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    for (const [id, row] of await contactsByIds(ctx, missing)) found.set(id, row);
    missing = missing.filter((id) => !found.has(id));
  }
  return found;
}

/** Contacts (stubs included: they know consent) by E.164 phone; an unsubscribed one wins. */
export async function contactsByPhones(ctx: MessagingContext, phones: string[]): Promise<Map<string, ContactRow>> {
  const out = new Map<string, ContactRow>();
  if (phones.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('contacts')
    .selectAll()
    .where('phone', 'in', [...new Set(phones)])
    .orderBy('subscribed')
    .orderBy('updated_at', 'desc')
    .execute();
  for (const r of rows) if (!out.has(r.phone)) out.set(r.phone, r);
  return out;
}
