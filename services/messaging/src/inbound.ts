import { createHash } from 'node:crypto';
import { newId, type EventData } from '@textloop/events';
import { enqueueEvents } from '@textloop/service-kit';
import { analyzeText, fromMoceanNumber } from '@textloop/sms';
import type { MessageCategory } from './db/database';
import type { MessagingContext } from './context';
import type { ContactRow } from './contacts-projection';
import { toInsertable } from './sending';
import { EVENT_SOURCE, writeChanges, type Db, type MessageRow } from './status';

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
}

/**
 * A step of inbound handling, run in the transaction that stores the message, in order. STOP/START
 * keywords, survey replies and conversations slot in here (later issues).
 */
const MAX_INBOUND_TEXT = 40_000;

export type InboundStep = (inbound: InboundContext) => Promise<void>;

/** Reads a Mocean inbound (MO) report; a string is what is wrong with it. */
export function parseInbound(params: URLSearchParams): InboundSms | string {
  const fromDigits = params.get('mocean-from')?.trim() ?? '';
  const from = fromMoceanNumber(fromDigits);
  if (!from) return `mocean-from must be the handset's number in digits, got "${fromDigits}"`;
  const rawTo = params.get('mocean-to')?.trim() ?? '';
  if (!rawTo) return 'mocean-to is missing';
  const to = /^\d{7,15}$/.test(rawTo) ? (fromMoceanNumber(rawTo) ?? rawTo) : rawTo;
  const text = params.get('mocean-text');
  if (text === null) return 'mocean-text is missing';
  // A concatenated SMS is at most 255 segments (~39,000 characters); anything longer is not an SMS,
  // and its event would exceed NATS's payload limit.
  if (text.length > MAX_INBOUND_TEXT) return `mocean-text is longer than ${MAX_INBOUND_TEXT} characters`;
  return { from, to, text, providerTime: params.get('mocean-time')?.trim() || undefined };
}

function dedupeKey(sms: InboundSms): string | null {
  if (!sms.providerTime) return null;
  const digest = createHash('sha256').update(sms.text).digest('base64url').slice(0, 22);
  return `mo:${sms.from}:${sms.to}:${sms.providerTime}:${digest}`;
}

/**
 * Stores an inbound message (RECEIVED) and publishes messaging.message.received with inReplyTo =
 * the latest outbound message to that number. A redelivered report (same number, text and
 * provider time) changes nothing and publishes nothing.
 */
export async function receiveInbound(ctx: MessagingContext, sms: InboundSms, steps: InboundStep[] = []): Promise<{ message: MessageRow; duplicate: boolean }> {
  const now = ctx.clock.now();
  const key = dedupeKey(sms);
  const outcome = await ctx.db.transaction().execute(async (trx) => {
    const contact = await trx.selectFrom('contacts').selectAll().where('phone', '=', sms.from).orderBy('updated_at', 'desc').executeTakeFirst();
    const last = await trx
      .selectFrom('messages')
      .select(['id', 'category', 'correlation'])
      .where('direction', '=', 'OUTBOUND')
      .where('to_number', '=', sms.from)
      .where('status', 'in', ['SENDING', 'SENT', 'DELIVERED', 'UNDELIVERED', 'EXPIRED'])
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
      attempts: 0,
      not_before: now,
      lease_until: null,
      created_at: now,
      updated_at: now,
      sent_at: null,
      delivered_at: null,
    };
    const inserted = await trx
      .insertInto('messages')
      .values(toInsertable(message))
      .onConflict((oc) => oc.column('idempotency_key').where('idempotency_key', 'is not', null).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inserted) {
      const first = await trx.selectFrom('messages').selectAll().where('idempotency_key', '=', key!).executeTakeFirstOrThrow();
      return { message: first, duplicate: true };
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
    for (const step of steps) await step(inbound);
    await writeChanges(trx, { history: [{ messageId: message.id, status: 'RECEIVED', at: now, detail: null }] }, ctx.clock);
    await enqueueEvents(trx, EVENT_SOURCE, [{ subject: 'messaging.message.received', data: inbound.received }, ...inbound.events], ctx.clock);
    return { message, duplicate: false };
  });
  if (!outcome.duplicate) ctx.outbox.kick();
  return outcome;
}
