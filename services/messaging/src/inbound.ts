import { createHash } from 'node:crypto';
import { callRpc, newId, type ContactSummary, type EventData } from '@textloop/events';
import { enqueueEvents } from '@textloop/service-kit';
import { analyzeText, fromMoceanNumber } from '@textloop/sms';
import type { MessageCategory } from './db/database';
import type { MessagingContext } from './context';
import type { ContactRow } from './contacts-projection';
import { keywordStep } from './keyword-step';
import type { Keyword } from './keywords';
import { characterCount, MAX_BODY_CHARS, toInsertable } from './sending';
import { EVENT_SOURCE, withRetry, writeChanges, freshMessageState, type Db, type MessageRow } from './status';

/** A mobile-originated SMS as the provider reported it. */
export interface InboundSms {
  /** handset, E.164 */
  from: string;
  /** our number (E.164) or sender ID the handset replied to */
  to: string;
  text: string;
  /** provider's receive time, as sent (used to recognise a redelivered report) */
  providerTime?: string;
}

export type ReceivedEventData = EventData<'messaging.message.received'>;

/** What the steps of the inbound pipeline see and may add to. */
export interface InboundContext {
  trx: Db;
  message: MessageRow;
  contact: ContactRow | undefined;
  inReplyTo: { messageId: string; category: MessageCategory; correlation?: Record<string, unknown> | null } | undefined;
  /** The messaging.message.received payload; steps may fill in e.g. conversationId. */
  received: ReceivedEventData;
  /** Extra events to publish with the message (same transaction). */
  events: Array<{ subject: string; data: unknown }>;
  /**
   * Set by the keyword step, which runs before every other step, when the whole message is a
   * compliance keyword (already handled and answered): later steps leave such a message alone
   * (it opens no conversation). Also on the event as `received.keyword`.
   */
  keyword?: Keyword;
  /** A step queued an outbound message in this transaction: the dispatcher is woken after commit. */
  replyQueued?: boolean;
}

/**
 * A step of inbound handling, run in the transaction that stores the message, in order, after the
 * keyword step (keyword-step.ts), which always runs first. Survey replies and conversations slot in here.
 */
export type InboundStep = (inbound: InboundContext) => Promise<void>;

/** An inbound message longer than an outbound one may be (1,600 characters) is refused. */
export const MAX_INBOUND_CHARS = MAX_BODY_CHARS;
/** How far back the outbound message an inbound one answers may be. */
export const IN_REPLY_TO_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;
/** Who created a contact for an unknown number (contacts' consent ledger `source`). */
export const INBOUND_CONTACT_SOURCE = 'sms_inbound';
const ENSURE_TIMEOUT_MS = 3000;

/** Why an inbound report is refused: 400 malformed, 413 text too long. Nothing is stored. */
export interface InboundRejection {
  status: 400 | 413;
  error: string;
}

/** Our number (digits, with or without +) or an alphanumeric sender ID, as sendMessage accepts for `from`. */
const OUR_SENDER = /^(\+?\d{3,15}|[A-Za-z0-9][A-Za-z0-9 ]{0,10})$/;

/** Reads a Mocean inbound (MO) report, or says why it is refused. */
export function readInbound(params: URLSearchParams): InboundSms | InboundRejection {
  const bad = (error: string): InboundRejection => ({ status: 400, error });
  const rawFrom = params.get('mocean-from');
  if (rawFrom === null || rawFrom.trim() === '')
    return bad("mocean-from is missing: give the handset's number in digits with its country code, e.g. 14155550100");
  const from = fromMoceanNumber(rawFrom.trim());
  if (!from) return bad(`mocean-from must be the handset's number in digits with its country code (e.g. 14155550100), got "${rawFrom.trim()}"`);
  const rawTo = params.get('mocean-to')?.trim() ?? '';
  if (!rawTo) return bad('mocean-to is missing: give our number or sender ID the handset wrote to');
  if (!OUR_SENDER.test(rawTo)) return bad(`mocean-to must be a number in digits or a sender ID of at most 11 letters and digits, got "${rawTo}"`);
  const to = /^\d{7,15}$/.test(rawTo) ? (fromMoceanNumber(rawTo) ?? rawTo) : rawTo;
  const text = params.get('mocean-text');
  if (text === null) return bad('mocean-text is missing');
  if (text.trim() === '') return bad('mocean-text is empty');
  const n = characterCount(text);
  if (n > MAX_INBOUND_CHARS) return { status: 413, error: `mocean-text is ${n} characters; at most ${MAX_INBOUND_CHARS} are accepted` };
  return { from, to, text, providerTime: params.get('mocean-time')?.trim() || undefined };
}

/** Reads a Mocean inbound (MO) report; a string is what is wrong with it. */
export function parseInbound(params: URLSearchParams): InboundSms | string {
  const read = readInbound(params);
  return 'error' in read ? read.error : read;
}

/** Contacts could not be asked about an unknown number: nothing was stored, the provider should retry. */
export class ContactsUnavailableError extends Error {}

/**
 * The projection knows the number, or contacts is asked to find or create its contact
 * (rpc.contacts.ensure: contacts.contact.created, ledger source sms_inbound) and what it answers is
 * written into the projection as a stub: profile and consent versions stay null, so
 * contacts.contact.created/updated and consent events still apply in full when they arrive.
 */
async function ensureContact(ctx: MessagingContext, phone: string): Promise<void> {
  const known = await ctx.db.selectFrom('contacts').select('id').where('phone', '=', phone).limit(1).executeTakeFirst();
  if (known) return;
  if (!ctx.nats) throw new ContactsUnavailableError('no NATS connection to ask contacts about an unknown number');
  let contact: ContactSummary;
  try {
    ({ contact } = await callRpc(ctx.nats, 'rpc.contacts.ensure', { phone, source: INBOUND_CONTACT_SOURCE }, ENSURE_TIMEOUT_MS));
  } catch (err) {
    throw new ContactsUnavailableError((err as Error).message);
  }
  const erased = await ctx.db.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', contact.contactId).executeTakeFirst();
  if (erased) return;
  await ctx.db
    .insertInto('contacts')
    .values({
      id: contact.contactId,
      phone: contact.phone,
      country: contact.country ?? null,
      timezone: contact.timezone ?? null,
      locale: null,
      first_name: contact.firstName ?? null,
      last_name: contact.lastName ?? null,
      email: null,
      external_id: null,
      subscribed: contact.subscribed,
      profile_version: null,
      consent_version: null,
      updated_at: ctx.clock.now(),
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

function dedupeKey(sms: InboundSms): string | null {
  if (!sms.providerTime) return null;
  const digest = createHash('sha256').update(sms.text).digest('base64url').slice(0, 22);
  return `mo:${sms.from}:${sms.to}:${sms.providerTime}:${digest}`;
}

/**
 * Stores an inbound message (RECEIVED) with its contact (an unknown number becomes a contact) and
 * publishes messaging.message.received with inReplyTo = the latest outbound message to that number
 * in the last 7 days (automatic keyword answers excepted). The keyword step runs first, then
 * `steps`, all in the storing transaction. A redelivered report (same number, text and provider
 * time) changes nothing and publishes nothing. Throws ContactsUnavailableError, with nothing
 * stored, when the number is unknown and contacts cannot be asked.
 */
export async function receiveInbound(ctx: MessagingContext, sms: InboundSms, steps: InboundStep[] = []): Promise<{ message: MessageRow; duplicate: boolean }> {
  const now = ctx.clock.now();
  const key = dedupeKey(sms);
  await ensureContact(ctx, sms.from);
  const pipeline = [keywordStep(ctx), ...steps];
  const outcome = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      const contact = await trx.selectFrom('contacts').selectAll().where('phone', '=', sms.from).orderBy('updated_at', 'desc').executeTakeFirst();
      const last = await trx
        .selectFrom('messages')
        .select(['id', 'category', 'correlation'])
        .where('direction', '=', 'OUTBOUND')
        .where('to_number', '=', sms.from)
        .where('created_at', '>', new Date(now.getTime() - IN_REPLY_TO_WINDOW_MS))
        .where('status', 'in', ['SENDING', 'SENT', 'DELIVERED', 'UNDELIVERED', 'EXPIRED'])
        .where((eb) =>
          eb.not(eb.exists(eb.selectFrom('keyword_replies').select('keyword_replies.message_id').whereRef('keyword_replies.message_id', '=', 'messages.id'))),
        )
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      const info = analyzeText(sms.text);
      const message: MessageRow = {
        id: newId(),
        direction: 'INBOUND',
        category: last?.category ?? 'SUPPORT',
        status: 'RECEIVED',
        contact_id: contact?.id ?? null,
        to_number: sms.to,
        from_number: sms.from,
        body: sms.text,
        template_id: null,
        encoding: info.encoding,
        segments: info.segments,
        country: contact?.country ?? null,
        price_amount: null,
        price_currency: null,
        provider: 'mocean',
        provider_message_id: null,
        error_code: null,
        error_message: null,
        idempotency_key: key,
        correlation: null,
        requester: null,
        ...freshMessageState(now),
      };
      const inserted = await trx
        .insertInto('messages')
        .values(toInsertable(message))
        .onConflict((oc) => oc.column('idempotency_key').where('idempotency_key', 'is not', null).doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) {
        const first = await trx.selectFrom('messages').selectAll().where('idempotency_key', '=', key!).executeTakeFirstOrThrow();
        return { message: first, duplicate: true, replyQueued: false };
      }
      const inReplyTo = last ? { messageId: last.id, category: last.category, correlation: last.correlation ?? null } : undefined;
      const inbound: InboundContext = {
        trx,
        message,
        contact,
        inReplyTo,
        received: {
          messageId: message.id,
          contactId: message.contact_id,
          from: sms.from,
          to: sms.to,
          body: sms.text,
          conversationId: null,
          inReplyTo: inReplyTo ?? null,
        },
        events: [],
      };
      for (const step of pipeline) await step(inbound);
      await writeChanges(
        trx,
        { history: [{ messageId: message.id, status: 'RECEIVED', at: now, detail: inbound.keyword ? `keyword ${inbound.keyword}` : null }] },
        ctx.clock,
      );
      await enqueueEvents(trx, EVENT_SOURCE, [{ subject: 'messaging.message.received', data: inbound.received }, ...inbound.events], ctx.clock);
      return { message, duplicate: false, replyQueued: inbound.replyQueued === true };
    }),
  );
  if (!outcome.duplicate) ctx.outbox.kick();
  if (outcome.replyQueued) ctx.kickDispatcher();
  return { message: outcome.message, duplicate: outcome.duplicate };
}
