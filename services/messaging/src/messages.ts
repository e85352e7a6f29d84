import { sql, type Selectable } from 'kysely';
import { addPrices } from '@textloop/sms';
import type { MessageCategory, MessageDirection, MessageStatus, MessageStatusHistoryTable } from './db/database';
import type { MessagingContext } from './context';
import { beforeCursor, keysetPage, type Page } from './pagination';
import type { MessageRow } from './status';

export type HistoryRow = Selectable<MessageStatusHistoryTable>;

export interface MessageFilter {
  contactId?: string | null;
  status?: MessageStatus | null;
  category?: MessageCategory | null;
  direction?: MessageDirection | null;
  since?: Date | null;
  until?: Date | null;
}

export async function messageById(ctx: MessagingContext, id: string): Promise<MessageRow | undefined> {
  return ctx.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function messagesByIds(ctx: MessagingContext, ids: string[]): Promise<Map<string, MessageRow>> {
  const out = new Map<string, MessageRow>();
  if (ids.length === 0) return out;
  for (const r of await ctx.db.selectFrom('messages').selectAll().where('id', 'in', ids).execute()) out.set(r.id, r);
  return out;
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function listMessages(ctx: MessagingContext, filter: MessageFilter, first: number, after?: string | null): Promise<Page<MessageRow>> {
  let q = ctx.db.selectFrom('messages');
  if (filter.contactId) q = q.where('contact_id', '=', filter.contactId);
  if (filter.status) q = q.where('status', '=', filter.status);
  if (filter.category) q = q.where('category', '=', filter.category);
  if (filter.direction) q = q.where('direction', '=', filter.direction);
  if (filter.since) q = q.where('created_at', '>=', filter.since);
  if (filter.until) q = q.where('created_at', '<', filter.until);
  return keysetPage(
    first,
    after,
    (row) => row.created_at,
    (cursor, limit) =>
      q
        .selectAll()
        .$if(cursor !== undefined, (qb) => qb.where(beforeCursor('created_at', cursor!)))
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute(),
    () => q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  );
}

/** Status history of many messages at once, oldest first. */
export async function historyFor(ctx: MessagingContext, ids: string[]): Promise<Map<string, HistoryRow[]>> {
  const out = new Map<string, HistoryRow[]>();
  if (ids.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('message_status_history')
    .selectAll()
    .where('message_id', 'in', ids)
    .orderBy('message_id')
    .orderBy('at')
    .orderBy('id')
    .execute();
  for (const r of rows) {
    const list = out.get(r.message_id) ?? [];
    list.push(r);
    out.set(r.message_id, list);
  }
  return out;
}

export interface Stats {
  sent: number;
  delivered: number;
  failed: number;
  undelivered: number;
  expired: number;
  suppressed: number;
  deliveryRate: number;
  segments: number;
  inbound: number;
  cost: { amount: string; currency: string };
  costByCurrency: Array<{ amount: string; currency: string }>;
}

const SENT_STATUSES = ['SENT', 'DELIVERED', 'UNDELIVERED', 'EXPIRED'] as const;

/**
 * Counts over messages created in [since, until). sent = outbound that reached the provider (SENT or
 * later); cost = exact sum of the prices of those, per currency.
 */
export async function messagingStats(
  ctx: MessagingContext,
  options: { since?: Date | null; until?: Date | null; category?: MessageCategory | null },
): Promise<Stats> {
  let q = ctx.db.selectFrom('messages');
  if (options.since) q = q.where('created_at', '>=', options.since);
  if (options.until) q = q.where('created_at', '<', options.until);
  if (options.category) q = q.where('category', '=', options.category);
  const sentList = sql.join(SENT_STATUSES.map((s) => sql.lit(s)));
  const [counts, costs] = await Promise.all([
    q
      .select([
        sql<number>`count(*) filter (where direction = 'OUTBOUND' and status in (${sentList}))`.as('sent'),
        sql<number>`count(*) filter (where status = 'DELIVERED')`.as('delivered'),
        sql<number>`count(*) filter (where status = 'FAILED')`.as('failed'),
        sql<number>`count(*) filter (where status = 'UNDELIVERED')`.as('undelivered'),
        sql<number>`count(*) filter (where status = 'EXPIRED')`.as('expired'),
        sql<number>`count(*) filter (where status = 'SUPPRESSED')`.as('suppressed'),
        sql<number>`coalesce(sum(segments) filter (where direction = 'OUTBOUND' and status in (${sentList})), 0)`.as('segments'),
        sql<number>`count(*) filter (where direction = 'INBOUND')`.as('inbound'),
      ])
      .executeTakeFirstOrThrow(),
    q
      .select(['price_currency', sql<string>`sum(price_amount)::text`.as('amount')])
      .where('direction', '=', 'OUTBOUND')
      .where('status', 'in', [...SENT_STATUSES])
      .where('price_currency', 'is not', null)
      .groupBy('price_currency')
      .orderBy(sql`sum(price_amount)`, 'desc')
      .execute(),
  ]);
  const n = (v: unknown) => Number(v ?? 0);
  const delivered = n(counts.delivered);
  const settled = delivered + n(counts.undelivered) + n(counts.failed) + n(counts.expired);
  const costByCurrency = costs.map((c) => ({ amount: addPrices('0', c.amount ?? '0'), currency: c.price_currency! }));
  return {
    sent: n(counts.sent),
    delivered,
    failed: n(counts.failed),
    undelivered: n(counts.undelivered),
    expired: n(counts.expired),
    suppressed: n(counts.suppressed),
    deliveryRate: settled === 0 ? 0 : delivered / settled,
    segments: n(counts.segments),
    inbound: n(counts.inbound),
    cost: costByCurrency[0] ?? { amount: '0.0000', currency: 'USD' },
    costByCurrency,
  };
}

export interface QueueStats {
  queued: number;
  retrying: number;
  sending: number;
  scheduled: number;
  oldestQueuedAt: Date | null;
}

export async function queueStats(ctx: MessagingContext): Promise<QueueStats> {
  const now = ctx.clock.now();
  const [active, scheduled] = await Promise.all([
    ctx.db
      .selectFrom('messages')
      .where('status', 'in', ['QUEUED', 'SENDING'])
      .select([
        sql<number>`count(*) filter (where status = 'QUEUED' and not_before <= ${now})`.as('queued'),
        sql<number>`count(*) filter (where status = 'QUEUED' and not_before > ${now})`.as('retrying'),
        sql<number>`count(*) filter (where status = 'SENDING')`.as('sending'),
        sql<Date | null>`min(created_at) filter (where status = 'QUEUED')`.as('oldest'),
      ])
      .executeTakeFirstOrThrow(),
    ctx.db
      .selectFrom('messages')
      .where('status', '=', 'SCHEDULED')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow(),
  ]);
  return {
    queued: Number(active.queued),
    retrying: Number(active.retrying),
    sending: Number(active.sending),
    scheduled: Number(scheduled.n),
    oldestQueuedAt: active.oldest ? new Date(active.oldest) : null,
  };
}
