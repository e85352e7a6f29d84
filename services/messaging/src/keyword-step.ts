import { newId } from '@textloop/events';
import { analyzeText, normalizePhone, priceFor } from '@textloop/sms';
import type { MessagingContext } from './context';
import { messageVersion, setProjectionConsent, suppressWaiting } from './contacts-projection';
import type { InboundContext, InboundStep } from './inbound';
import { matchKeyword, type Keyword } from './keywords';
import { freshMessageState, insertMessages, type MessageRow } from './status';

/** The idempotency key of the answer to an inbound message: at most one answer per inbound message. */
export const keywordReplyKey = (inboundMessageId: string) => `keyword-reply:${inboundMessageId}`;

function countryOf(inbound: InboundContext): string | undefined {
  if (inbound.contact?.country) return inbound.contact.country;
  if (inbound.message.country) return inbound.message.country;
  try {
    return normalizePhone(inbound.message.from_number).country;
  } catch {
    return undefined;
  }
}

/**
 * Queues the one answer to a keyword: to the handset, from the number (or sender) it wrote to,
 * category SUPPORT (outside quiet hours and the weekly cap), keyed by the inbound message's id, and
 * listed in keyword_replies so that opt-out suppression leaves it alone — the STOP confirmation
 * goes out after the opt-out it confirms, and HELP is answered whatever the consent.
 */
async function queueReply(ctx: MessagingContext, inbound: InboundContext, keyword: Keyword, now: Date): Promise<void> {
  const body = ctx.config.keywords.replies[keyword];
  const info = analyzeText(body);
  const country = countryOf(inbound);
  const price = priceFor(country, info.segments);
  const row: MessageRow = {
    id: newId(),
    direction: 'OUTBOUND',
    category: 'SUPPORT',
    status: 'QUEUED',
    contact_id: inbound.contact?.id ?? null,
    to_number: inbound.message.from_number,
    from_number: inbound.message.to_number,
    body,
    template_id: null,
    encoding: info.encoding,
    segments: info.segments,
    country: country ?? null,
    price_amount: price?.amount ?? null,
    price_currency: price?.currency ?? null,
    provider: null,
    provider_message_id: null,
    error_code: null,
    error_message: null,
    idempotency_key: keywordReplyKey(inbound.message.id),
    correlation: null,
    requester: null,
    ...freshMessageState(now),
  };
  const inserted = await insertMessages(
    inbound.trx,
    [row],
    [{ messageId: row.id, status: 'QUEUED', at: now, detail: `automatic answer to ${keyword}` }],
    ctx.clock,
  );
  if (!inserted.has(row.id)) return;
  await inbound.trx.insertInto('keyword_replies').values({ message_id: row.id, inbound_message_id: inbound.message.id, keyword }).execute();
  inbound.replyQueued = true;
}

/**
 * The first inbound step: a message that is, as a whole, a compliance keyword (keywords.ts) is
 * handled here, in the transaction that stores it, and marked on `inbound.keyword` and on the
 * messaging.message.received payload (`keyword`), so later steps (conversations) leave it alone.
 *
 * - STOP: the projection marks the contact unsubscribed at once (versioned like a consent event,
 *   so contacts' own unsubscribed event later agrees with it and older events cannot undo it), its
 *   QUEUED/SCHEDULED messages become SUPPRESSED OPTED_OUT, and one confirmation is queued.
 *   Contacts records the ledger entry (STOP_KEYWORD) from the received event.
 * - START: resubscribed in the projection likewise, one confirmation.
 * - HELP: one answer, even to an unsubscribed number (carriers require HELP to be answered).
 *
 * A redelivered inbound message never gets here (receiveInbound stores it once), so each keyword
 * message is answered exactly once.
 */
export function keywordStep(ctx: MessagingContext): InboundStep {
  return async (inbound) => {
    const keyword = matchKeyword(inbound.message.body, ctx.config.keywords.lists);
    if (!keyword) return;
    inbound.keyword = keyword;
    inbound.received.keyword = keyword;
    const now = ctx.clock.now();
    if (keyword === 'STOP' || keyword === 'START') {
      const subscribed = keyword === 'START';
      const phone = inbound.message.from_number;
      const contact = inbound.contact;
      const applied = contact
        ? await setProjectionConsent(inbound.trx, { contactId: contact.id, phone, subscribed, version: messageVersion(now, inbound.message.id), now })
        : true;
      if (contact && applied) inbound.contact = { ...contact, subscribed, updated_at: now };
      if (!subscribed && applied) {
        const suppressed = await suppressWaiting(inbound.trx, ctx.clock, { contactId: contact?.id ?? null, phone }, now);
        if (suppressed > 0 && ctx.logger.isLevelEnabled('debug')) ctx.logger.debug({ contactId: contact?.id, suppressed }, 'STOP suppressed waiting messages');
      }
    }
    await queueReply(ctx, inbound, keyword, now);
  };
}
