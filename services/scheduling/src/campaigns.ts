import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { GraphQLError } from 'graphql';
import { callRpc, newId, RpcError } from '@textloop/events';
import { badInput, conflict, enqueueEvents, notFound, type OutboxEntry } from '@textloop/service-kit';
import { EVENT_SOURCE, type SchedulingContext } from './context';
import type { CampaignsTable, Database, MessageCategory, StoredAudience } from './db/database';
import { checkOffer, offerWarnings, type OfferInput } from './offers';

export type CampaignRow = Selectable<CampaignsTable>;
type Db = Kysely<Database> | Transaction<Database>;

const CATEGORIES: MessageCategory[] = ['TRANSACTIONAL', 'MARKETING', 'OTP', 'SURVEY', 'SUPPORT'];
const YEAR_MS = 366 * 24 * 3600_000;
/** Explicit contact ids: at most this many per campaign, asked of contacts this many at a time. */
export const MAX_CONTACT_IDS = 100_000;
const CONTACT_ID_CHUNK = 1000;
/** An instance resolving an audience holds it this long (business time) per page; a crashed one's campaign is taken over after it. */
export const RESOLVE_LEASE_MS = 60_000;
/** After a failed page (contacts unreachable) the resolution is retried this much later. */
const RESOLVE_RETRY_MS = 5_000;

export interface CampaignAudienceInput {
  tags?: string[] | null;
  inactiveForDays?: number | null;
  country?: string | null;
  contactIds?: string[] | null;
}

export interface CampaignInput {
  name: string;
  audience: CampaignAudienceInput;
  template: string;
  category?: MessageCategory | null;
  sendAt?: string | Date | null;
  offer?: OfferInput | null;
}

function checkAudience(input: CampaignAudienceInput | null | undefined): StoredAudience {
  const audience: StoredAudience = {};
  if (!input) return audience;
  if (input.tags !== undefined && input.tags !== null) {
    const tags = [...new Set(input.tags.map((t) => t.trim()))];
    const empty = tags.findIndex((t) => t === '');
    if (empty >= 0) throw badInput('audience.tags contains an empty tag; give tag names such as "vip", or leave tags out.', 'audience.tags');
    const long = tags.find((t) => t.length > 100);
    if (long) throw badInput(`audience.tags: "${long.slice(0, 20)}…" is longer than 100 characters; no tag is that long.`, 'audience.tags');
    if (tags.length > 100) throw badInput(`audience.tags has ${tags.length} tags; give at most 100 (contacts with any of them match).`, 'audience.tags');
    // An empty list matches nobody, as contacts defines it.
    audience.tags = tags;
  }
  if (input.inactiveForDays !== undefined && input.inactiveForDays !== null) {
    const days = input.inactiveForDays;
    if (!Number.isInteger(days) || days <= 0) {
      throw badInput(
        `audience.inactiveForDays is ${days}; give a whole number of days above 0, e.g. 30 for contacts inactive for 30 days or more.`,
        'audience.inactiveForDays',
      );
    }
    audience.inactiveForDays = days;
  }
  if (input.country !== undefined && input.country !== null) {
    const country = input.country.trim().toUpperCase();
    if (!/^[A-Z]{2}$/.test(country)) {
      throw badInput(`audience.country "${input.country}" is not a country code; give the two-letter ISO 3166 code, e.g. US or GB.`, 'audience.country');
    }
    audience.country = country;
  }
  if (input.contactIds !== undefined && input.contactIds !== null) {
    const ids = [...new Set(input.contactIds.map((id) => id.trim()))];
    if (ids.includes('')) throw badInput('audience.contactIds contains an empty id.', 'audience.contactIds');
    if (ids.length > MAX_CONTACT_IDS) {
      throw badInput(
        `audience.contactIds has ${ids.length} ids; a campaign may name at most ${MAX_CONTACT_IDS} (use tags for larger audiences).`,
        'audience.contactIds',
      );
    }
    // Sorted: the resolution asks for them in chunks, and its cursor counts chunks.
    audience.contactIds = ids.sort();
  }
  return audience;
}

function unavailable(err: RpcError, what: string): GraphQLError {
  return new GraphQLError(`Could not ${what}: ${err.message}.`);
}

/**
 * Creates a campaign: DRAFT, or SCHEDULED when sendAt is given (it then launches itself at that
 * time). The template must exist; an offer the template does not show (or offer.* without an
 * offer) is a warning on the campaign, not an error.
 */
export async function createCampaign(ctx: SchedulingContext, input: CampaignInput): Promise<CampaignRow> {
  const now = ctx.clock.now();
  const name = input.name?.trim() ?? '';
  if (!name) throw badInput('name is empty; give the campaign a name people recognise, e.g. "November win-back".', 'name');
  if (name.length > 200) throw badInput('name is longer than 200 characters.', 'name');
  const template = input.template?.trim() ?? '';
  if (!template) throw badInput('template is empty; give the name of the template to send.', 'template');
  const category = input.category ?? 'MARKETING';
  if (!CATEGORIES.includes(category)) throw badInput(`category must be one of ${CATEGORIES.join(', ')}.`, 'category');
  if (category === 'OTP') throw badInput('A campaign cannot send OTP messages; use MARKETING (the default) or another category.', 'category');
  let sendAt: Date | null = null;
  if (input.sendAt !== undefined && input.sendAt !== null) {
    sendAt = new Date(input.sendAt);
    if (Number.isNaN(sendAt.getTime())) throw badInput('sendAt is not a date-time; write e.g. 2026-12-01T09:00:00Z.', 'sendAt');
    if (sendAt.getTime() <= now.getTime()) {
      throw badInput(
        `sendAt ${sendAt.toISOString()} is not in the future (now is ${now.toISOString()}); leave it out and call launchCampaign to send now.`,
        'sendAt',
      );
    }
    if (sendAt.getTime() > now.getTime() + YEAR_MS) throw badInput('sendAt is more than a year ahead; schedule it at most one year from now.', 'sendAt');
  }
  const offer = input.offer ? checkOffer(input.offer, 'offer') : null;
  const audience = checkAudience(input.audience);

  let warnings: string[];
  try {
    const { templates } = await callRpc(ctx.nats, 'rpc.messaging.templates', { names: [template] });
    const found = templates.find((t) => t.name === template);
    if (!found) throw notFound(`No template is named "${template}"; create it with createTemplate or check the spelling.`);
    warnings = offerWarnings(template, found.variables, offer);
  } catch (err) {
    if (err instanceof RpcError) throw unavailable(err, "check the campaign's template");
    throw err;
  }

  const row = await ctx.db
    .insertInto('campaigns')
    .values({
      id: newId(),
      name,
      status: sendAt ? 'SCHEDULED' : 'DRAFT',
      template,
      category,
      audience: JSON.stringify(audience),
      offer: offer ? JSON.stringify(offer) : null,
      warnings: JSON.stringify(warnings),
      send_at: sendAt,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  if (sendAt) ctx.kickCampaigns();
  return row;
}

export function findCampaign(db: Db, id: string): Promise<CampaignRow | undefined> {
  return db.selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Newest first. */
export function listCampaigns(db: Db): Promise<CampaignRow[]> {
  return db.selectFrom('campaigns').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1000).execute();
}

/**
 * Launches a DRAFT (or, ahead of its time, a SCHEDULED) campaign: RUNNING now. The audience is
 * resolved at once, within a time budget (the campaign runner carries on with larger ones), so the
 * answer usually already counts the recipients, and an audience that matches nobody is COMPLETED.
 */
export async function launchCampaign(ctx: SchedulingContext, id: string, options: { inlineBudgetMs?: number } = {}): Promise<CampaignRow> {
  const now = ctx.clock.now();
  const launched = await ctx.db
    .updateTable('campaigns')
    .set({ status: 'RUNNING', launched_at: now, resolve_lease_until: new Date(now.getTime() + RESOLVE_LEASE_MS), updated_at: now })
    .where('id', '=', id)
    .where('status', 'in', ['DRAFT', 'SCHEDULED'])
    .returning('id')
    .executeTakeFirst();
  if (!launched) {
    const existing = await findCampaign(ctx.db, id);
    if (!existing) throw notFound(`No campaign has id "${id}".`);
    throw conflict(
      existing.status === 'RUNNING'
        ? `Campaign "${existing.name}" is already running (launched ${existing.launched_at?.toISOString()}); it cannot be launched twice.`
        : `Campaign "${existing.name}" is ${existing.status} and cannot be launched again; create a new campaign instead.`,
    );
  }
  await resolveAudience(ctx, id, { deadline: Date.now() + (options.inlineBudgetMs ?? 2000) });
  return (await findCampaign(ctx.db, id))!;
}

/**
 * Cancels a campaign that has not finished: recipients not sent yet are CANCELED, and the sender
 * stops at its next batch. A COMPLETED or CANCELED campaign is a CONFLICT.
 */
export async function cancelCampaign(ctx: SchedulingContext, id: string): Promise<CampaignRow> {
  const now = ctx.clock.now();
  const NOT_CANCELABLE = Symbol('not cancelable');
  let row: CampaignRow | undefined;
  try {
    row = await ctx.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('campaigns').select('status').where('id', '=', id).executeTakeFirst();
      if (!current || current.status === 'COMPLETED' || current.status === 'CANCELED') throw NOT_CANCELABLE;
      // Recipients first, then the campaign: the sender locks recipients and then (completing) the
      // campaign, so taking them in the same order cannot deadlock. This waits for a batch being sent
      // right now (its row locks), then cancels what it left.
      await trx.updateTable('campaign_recipients').set({ status: 'CANCELED' }).where('campaign_id', '=', id).where('status', '=', 'PENDING').execute();
      const canceled = await trx
        .updateTable('campaigns')
        .set({ status: 'CANCELED', canceled_at: now, resolve_lease_until: null, updated_at: now })
        .where('id', '=', id)
        .where('status', 'in', ['DRAFT', 'SCHEDULED', 'RUNNING'])
        .returningAll()
        .executeTakeFirst();
      // It completed meanwhile: nothing was pending, nothing to undo.
      if (!canceled) throw NOT_CANCELABLE;
      return canceled;
    });
  } catch (err) {
    if (err !== NOT_CANCELABLE) throw err;
  }
  if (row) return row;
  const existing = await findCampaign(ctx.db, id);
  if (!existing) throw notFound(`No campaign has id "${id}".`);
  throw conflict(
    existing.status === 'COMPLETED'
      ? `Campaign "${existing.name}" already COMPLETED (every recipient was sent its message); there is nothing left to cancel.`
      : `Campaign "${existing.name}" is already CANCELED.`,
  );
}

// ───────────────────────────── audience resolution ─────────────────────────────

/** Where the paging through rpc.contacts.audience stands: the chunk of explicit ids, and the keyset cursor within it. */
interface ResolveCursor {
  chunk: number;
  after: string | null;
}

export type ResolveOutcome = 'done' | 'paused' | 'lost' | 'failed';

/**
 * Pages through rpc.contacts.audience (subscribed contacts only) into campaign_recipients. Each
 * page is written in one transaction that also advances the stored cursor, on the condition that
 * the cursor is still the one the page was asked with (compare-and-set): a crash resumes from the
 * last page written, and two instances resolving the same campaign never both write a page (the
 * recipients' unique (campaign, contact) would absorb it anyway). When the last page is written it
 * publishes scheduling.campaign.launched { recipients }, and completes a campaign that has none.
 *
 * Returns 'done', 'paused' (past the deadline: the lease is released for the runner), 'lost'
 * (canceled, or another instance moved on), or 'failed' (contacts did not answer; retried later).
 */
export async function resolveAudience(ctx: SchedulingContext, campaignId: string, options: { deadline?: number } = {}): Promise<ResolveOutcome> {
  for (;;) {
    const campaign = await findCampaign(ctx.db, campaignId);
    if (!campaign || campaign.status !== 'RUNNING' || campaign.resolved_at) return 'lost';
    const cursor: ResolveCursor = campaign.resolve_cursor ? (JSON.parse(campaign.resolve_cursor) as ResolveCursor) : { chunk: 0, after: null };
    const audience = campaign.audience;
    const chunks = audience.contactIds ? Math.ceil(audience.contactIds.length / CONTACT_ID_CHUNK) : 1;

    let contacts: Array<{ contactId: string; subscribed: boolean }> = [];
    let next: ResolveCursor = { chunk: cursor.chunk + 1, after: null };
    if (cursor.chunk < chunks) {
      try {
        const page = await callRpc(ctx.nats, 'rpc.contacts.audience', {
          ...(audience.tags ? { tags: audience.tags } : {}),
          ...(audience.inactiveForDays ? { inactiveForDays: audience.inactiveForDays } : {}),
          ...(audience.country ? { country: audience.country } : {}),
          ...(audience.contactIds ? { contactIds: audience.contactIds.slice(cursor.chunk * CONTACT_ID_CHUNK, (cursor.chunk + 1) * CONTACT_ID_CHUNK) } : {}),
          subscribedOnly: true,
          ...(cursor.after ? { after: cursor.after } : {}),
          limit: ctx.campaigns.audiencePageSize,
        });
        contacts = page.contacts;
        if (page.next) next = { chunk: cursor.chunk, after: page.next };
      } catch (err) {
        const message = err instanceof RpcError ? err.message : (err as Error).message;
        ctx.logger.warn({ campaignId, err: message }, 'could not resolve a page of the campaign audience; will retry');
        await ctx.db
          .updateTable('campaigns')
          .set({ resolve_error: message, resolve_lease_until: new Date(ctx.clock.now().getTime() + RESOLVE_RETRY_MS) })
          .where('id', '=', campaignId)
          .where('status', '=', 'RUNNING')
          .execute();
        return 'failed';
      }
    }
    const done = next.chunk >= chunks;

    const written = await ctx.db.transaction().execute(async (trx) => {
      const now = ctx.clock.now();
      const moved = await trx
        .updateTable('campaigns')
        .set({
          resolve_cursor: JSON.stringify(next),
          resolve_lease_until: new Date(now.getTime() + RESOLVE_LEASE_MS),
          resolve_error: null,
          updated_at: now,
        })
        .where('id', '=', campaignId)
        .where('status', '=', 'RUNNING')
        .where('resolved_at', 'is', null)
        .where(sql<boolean>`resolve_cursor is not distinct from ${campaign.resolve_cursor}`)
        .returning('id')
        .executeTakeFirst();
      if (!moved) return false;
      // Unsubscribed contacts are excluded here (and messaging suppresses any that unsubscribe later);
      // erased ones too, should contacts still know them.
      let ids = [...new Set(contacts.filter((c) => c.subscribed !== false).map((c) => c.contactId))];
      if (ids.length > 0) {
        const erased = new Set(
          (await trx.selectFrom('erased_contacts').select('contact_id').where('contact_id', 'in', ids).execute()).map((r) => r.contact_id),
        );
        ids = ids.filter((id) => !erased.has(id));
      }
      if (ids.length > 0) {
        await trx
          .insertInto('campaign_recipients')
          .values(ids.map((contactId) => ({ id: newId(), campaign_id: campaignId, contact_id: contactId, created_at: now })))
          .onConflict((oc) => oc.columns(['campaign_id', 'contact_id']).doNothing())
          .execute();
      }
      if (done) {
        const { n } = await trx
          .selectFrom('campaign_recipients')
          .select(sql<number>`count(*)::int`.as('n'))
          .where('campaign_id', '=', campaignId)
          .executeTakeFirstOrThrow();
        await trx
          .updateTable('campaigns')
          .set({ resolved_at: now, recipients: n, resolve_lease_until: null, updated_at: now })
          .where('id', '=', campaignId)
          .execute();
        await enqueueEvents(trx, EVENT_SOURCE, [{ subject: 'scheduling.campaign.launched', data: { campaignId, recipients: n } }], ctx.clock);
        await completeFinished(trx, ctx, [campaignId]);
      }
      return true;
    });
    if (!written) return 'lost';
    // The sender claims pending recipients through a partial index; with statistics from when the
    // table was nearly empty the planner sorts every pending row per batch instead (seen at 100k:
    // 200 ms a batch instead of 2 ms). Refresh them after the first page and when the audience is in
    // (autovacuum may be off or late).
    if (cursor.chunk === 0 && !cursor.after) await refreshRecipientStats(ctx);
    else if (done) await refreshRecipientStats(ctx);
    ctx.outbox.kick();
    ctx.kickCampaigns();
    if (done) return 'done';
    if (options.deadline !== undefined && Date.now() >= options.deadline) {
      // Hand the rest to the campaign runner (any instance) at once.
      await ctx.db.updateTable('campaigns').set({ resolve_lease_until: null }).where('id', '=', campaignId).where('resolved_at', 'is', null).execute();
      ctx.kickCampaigns();
      return 'paused';
    }
  }
}

/**
 * Completes the given RUNNING campaigns whose audience is resolved and that have no PENDING
 * recipient left, publishing scheduling.campaign.completed, in the caller's transaction.
 */
export async function completeFinished(trx: Transaction<Database>, ctx: Pick<SchedulingContext, 'clock'>, campaignIds?: string[]): Promise<number> {
  if (campaignIds && campaignIds.length === 0) return 0;
  const now = ctx.clock.now();
  let query = trx
    .updateTable('campaigns')
    .set({ status: 'COMPLETED', completed_at: now, updated_at: now })
    .where('status', '=', 'RUNNING')
    .where('resolved_at', 'is not', null)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('campaign_recipients as r').select('r.id').whereRef('r.campaign_id', '=', 'campaigns.id').where('r.status', '=', 'PENDING'))),
    );
  if (campaignIds) query = query.where('id', 'in', campaignIds);
  const completed = await query.returning(['id', 'recipients']).execute();
  const events: OutboxEntry[] = completed.map((c) => ({
    subject: 'scheduling.campaign.completed',
    data: { campaignId: c.id, recipients: c.recipients ?? 0 },
  }));
  await enqueueEvents(trx, EVENT_SOURCE, events, ctx.clock);
  return completed.length;
}

// ───────────────────────────── stats ─────────────────────────────

export interface CampaignStats {
  recipients: number;
  sent: number;
  delivered: number;
  failed: number;
  suppressed: number;
  optedOut: number;
  replied: number;
  reactivated: number;
  redeemed: number;
  cost: { amount: string; currency: string };
}

/** A decimal string with at least 4 decimals, as Money.amount is everywhere. */
export function formatAmount(value: string | null | undefined): string {
  const text = value ?? '0';
  const [whole, fraction = ''] = text.split('.');
  return `${whole}.${fraction.padEnd(4, '0')}`;
}

/**
 * Live figures from scheduling's own tables, which the consumers keep from messaging's status
 * and inbound events and from tracked events (see attribution.ts).
 */
export async function campaignStats(db: Db, campaignId: string): Promise<CampaignStats> {
  const [counts, costs, redeemed] = await Promise.all([
    db
      .selectFrom('campaign_recipients')
      .select([
        sql<number>`count(*)::int`.as('recipients'),
        sql<number>`(count(*) filter (where status = 'SENT'))::int`.as('sent'),
        sql<number>`(count(*) filter (where message_status = 'DELIVERED'))::int`.as('delivered'),
        sql<number>`(count(*) filter (where message_status in ('FAILED', 'UNDELIVERED', 'EXPIRED')))::int`.as('failed'),
        sql<number>`(count(*) filter (where message_status = 'SUPPRESSED'))::int`.as('suppressed'),
        sql<number>`(count(*) filter (where opted_out_at is not null))::int`.as('optedOut'),
        sql<number>`(count(*) filter (where replied_at is not null))::int`.as('replied'),
        sql<number>`(count(*) filter (where reactivated_at is not null))::int`.as('reactivated'),
      ])
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('campaign_recipients')
      .select(['price_currency', sql<string>`sum(price_amount)::text`.as('amount'), sql<number>`count(*)::int`.as('n')])
      .where('campaign_id', '=', campaignId)
      .where('price_currency', 'is not', null)
      .groupBy('price_currency')
      .orderBy('n', 'desc')
      .orderBy('price_currency')
      .execute(),
    db
      .selectFrom('offer_codes')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaign_id', '=', campaignId)
      .where('redeemed_at', 'is not', null)
      .executeTakeFirstOrThrow(),
  ]);
  const main = costs[0];
  return {
    ...counts,
    redeemed: redeemed.n,
    cost: main ? { amount: formatAmount(main.amount), currency: main.price_currency! } : { amount: '0.0000', currency: 'USD' },
  };
}

// ───────────────────────────── erasure ─────────────────────────────

/**
 * Right to erasure for campaigns: the contact's pending sends are canceled, and its recipient rows
 * and offer codes forget who it was (contact_id null) while still counting in the stats.
 */
export async function eraseCampaignData(trx: Transaction<Database>, contactId: string): Promise<number> {
  const recipients = await trx
    .updateTable('campaign_recipients')
    .set({ contact_id: null, status: sql`case when status = 'PENDING' then 'CANCELED' else status end` })
    .where('contact_id', '=', contactId)
    .executeTakeFirst();
  const codes = await trx.updateTable('offer_codes').set({ contact_id: null }).where('contact_id', '=', contactId).executeTakeFirst();
  return Number(recipients.numUpdatedRows) + Number(codes.numUpdatedRows);
}

async function refreshRecipientStats(ctx: SchedulingContext): Promise<void> {
  try {
    await sql`analyze campaign_recipients`.execute(ctx.db);
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message }, 'could not analyze campaign_recipients');
  }
}
