import { sql } from 'kysely';
import type { SchedulingContext } from './context';
import { normalizeCode } from './offers';

type Data = Record<string, unknown>;

/**
 * What happened after a campaign or an offer was sent, from events scheduling already consumes:
 * messaging's status events (delivered, failed, suppressed, cost) and inbound messages (replies,
 * STOP), and tracked application events (reactivation, redemption). Every write is conditional
 * (a status only moves forward, a first time is never overwritten), so redelivery changes
 * nothing and no processed-event bookkeeping is needed. These consumers see bulk traffic: each
 * event costs at most a few primary-key or partial-index lookups, and none when it carries no
 * campaign correlation.
 */

/** Messaging's ranks: a status only replaces a lower one (a late SENT never overwrites DELIVERED). */
const RANK: Record<string, number> = {
  SCHEDULED: 0,
  QUEUED: 1,
  SENDING: 2,
  SENT: 3,
  DELIVERED: 4,
  UNDELIVERED: 4,
  EXPIRED: 4,
  FAILED: 4,
  SUPPRESSED: 5,
  CANCELED: 5,
};

/** A message's first event (it names the message), as in message-links.ts. */
const FIRST_EVENTS = new Set(['messaging.message.queued', 'messaging.message.scheduled', 'messaging.message.suppressed', 'messaging.message.failed']);

/** A status event of a campaign message (correlation.campaignRecipientId): its recipient's latest status, message id and price. */
export async function recordCampaignMessageStatus(ctx: SchedulingContext, subject: string, data: Data, recipientId: string): Promise<void> {
  const status = typeof data.status === 'string' ? data.status : undefined;
  const messageId = typeof data.messageId === 'string' ? data.messageId : null;
  if (!status || RANK[status] === undefined) return;
  const rank = RANK[status]!;
  const price = data.price as { amount?: unknown; currency?: unknown } | null | undefined;
  const amount = price && typeof price.amount === 'string' && typeof price.currency === 'string' && price.currency ? price.amount : null;
  const currency = amount !== null ? (price!.currency as string) : null;
  await sql`
    update campaign_recipients set
      message_id = coalesce(message_id, ${messageId}),
      message_status = case when ${rank}::int > message_rank then ${status} else message_status end,
      message_rank = greatest(message_rank, ${rank}::int),
      price_amount = case when ${amount}::numeric is not null and (${rank}::int >= message_rank or price_amount is null) then ${amount}::numeric else price_amount end,
      price_currency = case when ${amount}::numeric is not null and (${rank}::int >= message_rank or price_amount is null) then ${currency} else price_currency end
    where id = ${recipientId}`.execute(ctx.db);
  if (messageId && FIRST_EVENTS.has(subject)) {
    await ctx.db
      .updateTable('offer_codes')
      .set({ message_id: messageId })
      .where('campaign_recipient_id', '=', recipientId)
      .where('message_id', 'is', null)
      .execute();
  }
}

/** The first event of an automation step's message (correlation.offerCode) names the message its offer code went out in. */
export async function recordStepOfferMessage(ctx: SchedulingContext, code: string, messageId: string): Promise<void> {
  await ctx.db.updateTable('offer_codes').set({ message_id: messageId }).where('code', '=', code).where('message_id', 'is', null).execute();
}

/**
 * An inbound message (messaging.message.received). A STOP keyword counts as opted out for the
 * campaign it answers (inReplyTo.correlation), or else for the campaign last sent to the contact
 * whose attribution window is open; any other reply to a campaign message (not START or HELP)
 * counts as replied. `time` is the event's time.
 */
export async function recordInbound(ctx: SchedulingContext, data: Data, time: Date): Promise<void> {
  const inReplyTo = data.inReplyTo as { correlation?: Data | null } | null | undefined;
  const correlation = inReplyTo?.correlation ?? null;
  const recipientId = typeof correlation?.campaignRecipientId === 'string' ? correlation.campaignRecipientId : null;
  const campaignId = typeof correlation?.campaignId === 'string' ? correlation.campaignId : null;
  const contactId = typeof data.contactId === 'string' ? data.contactId : null;
  const keyword = typeof data.keyword === 'string' ? data.keyword : null;

  if (keyword === 'STOP') {
    if (recipientId) {
      await ctx.db
        .updateTable('campaign_recipients')
        .set({ opted_out_at: time })
        .where('id', '=', recipientId)
        .where('status', '=', 'SENT')
        .where('opted_out_at', 'is', null)
        .execute();
    } else if (contactId) {
      await sql`
        update campaign_recipients set opted_out_at = ${time}
         where id = (select id from campaign_recipients
                      where contact_id = ${contactId} and status = 'SENT' and sent_at <= ${time} and attribution_until > ${time}
                      order by sent_at desc, id desc
                      limit 1)
           and opted_out_at is null`.execute(ctx.db);
    }
    return;
  }
  // START and HELP are not replies to the campaign.
  if (keyword) return;
  if (recipientId) {
    await ctx.db.updateTable('campaign_recipients').set({ replied_at: time }).where('id', '=', recipientId).where('replied_at', 'is', null).execute();
  } else if (campaignId && contactId) {
    await ctx.db
      .updateTable('campaign_recipients')
      .set({ replied_at: time })
      .where('campaign_id', '=', campaignId)
      .where('contact_id', '=', contactId)
      .where('replied_at', 'is', null)
      .execute();
  }
}

export interface TrackedEvent {
  eventId: string;
  contactId: string;
  name: string;
  properties: Record<string, unknown>;
  occurredAt?: string | null;
}

/**
 * A tracked application event (events.>), at its occurredAt (else the event's time):
 * - the contact is active again: each campaign sent to it whose attribution window (the offer's
 *   validity, or 30 days without an offer) is open counts it as reactivated, once; so does each
 *   of its unexpired offer codes (the automations' figures);
 * - properties.code naming an unredeemed, unexpired code redeems it, once (whoever tracks it).
 * One statement, so the common case (a contact that was sent nothing) is a single round trip.
 */
export async function recordActivity(ctx: SchedulingContext, event: TrackedEvent, time: Date): Promise<void> {
  const occurred = event.occurredAt ? new Date(event.occurredAt) : time;
  const at = Number.isNaN(occurred.getTime()) ? time : occurred;
  const raw = event.properties?.code;
  const code = typeof raw === 'string' && raw.trim() !== '' && raw.length <= 64 ? normalizeCode(raw) : null;
  // One update of offer_codes for both effects: a statement must not update a row twice.
  await sql`
    with campaigns_reactivated as (
      update campaign_recipients set reactivated_at = ${at}
       where contact_id = ${event.contactId} and status = 'SENT' and reactivated_at is null
         and sent_at <= ${at} and attribution_until > ${at}
      returning id
    ), codes as (
      update offer_codes set
        reactivated_at = case when contact_id = ${event.contactId} and reactivated_at is null and created_at <= ${at} and expires_at > ${at}
                              then ${at}::timestamptz else reactivated_at end,
        redeemed_at = case when code = ${code}::text and redeemed_at is null and expires_at > ${at} then ${at}::timestamptz else redeemed_at end,
        redeemed_event_id = case when code = ${code}::text and redeemed_at is null and expires_at > ${at} then ${event.eventId} else redeemed_event_id end
       where (contact_id = ${event.contactId} and reactivated_at is null and created_at <= ${at} and expires_at > ${at})
          or (code = ${code}::text and redeemed_at is null and expires_at > ${at})
      returning code
    )
    select (select count(*) from campaigns_reactivated) as reactivated, (select count(*) from codes) as codes`.execute(ctx.db);
}
