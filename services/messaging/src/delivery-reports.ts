import { sql } from 'kysely';
import { newId } from '@textloop/events';
import type { MessageStatus } from './db/database';
import type { MessagingContext } from './context';
import { GroupCommit } from './group-commit';
import { advances, insertStatusEventsSql, rankOf, statusEventDataSql, withRetry, writeChanges, type HistoryEntry, type MessageRow } from './status';

export interface DeliveryReport {
  /** Our message id, from the mid= of the callback URL we gave the provider. */
  messageId?: string;
  providerMessageId: string;
  status: 'DELIVERED' | 'UNDELIVERED' | 'EXPIRED';
  /** mocean-error-code: '0' or the carrier's code */
  carrierCode: string;
  at: Date;
}

/** applied: the status moved; ignored: duplicate or stale; unknown: no such message. */
export type ReportOutcome = 'applied' | 'ignored' | 'unknown';

const DLR_STATUS: Record<string, DeliveryReport['status']> = { '1': 'DELIVERED', '2': 'UNDELIVERED', '3': 'EXPIRED' };

/**
 * What the callback URL we give the provider carries so that a report finds its message even when
 * it overtakes the send record: `mid=<message id>` for one message, and for a group (one request,
 * many receivers, one URL) `mids=<digits>.<message id>,…`, resolved by the report's `mocean-to`.
 */
export function callbackQuery(recipients: ReadonlyArray<{ messageId: string; to: string }>): string {
  if (recipients.length === 1) return `mid=${encodeURIComponent(recipients[0]!.messageId)}`;
  return `mids=${recipients.map((r) => `${r.to.replace(/^\+/, '')}.${encodeURIComponent(r.messageId)}`).join(',')}`;
}

/** The message id a callback URL names for the report's receiver (`mocean-to`), if any. */
export function callbackMessageId(query: { get(name: string): string | null }, receiver: string | null): string | null {
  const mid = query.get('mid');
  if (mid !== null) return mid;
  const mids = query.get('mids');
  const digits = receiver?.trim().replace(/^\+/, '');
  if (!mids || !digits) return null;
  for (const pair of mids.split(',')) {
    const dot = pair.indexOf('.');
    if (dot > 0 && pair.slice(0, dot) === digits) return pair.slice(dot + 1);
  }
  return null;
}

/** Reads a Mocean delivery report; a string is what is wrong with it. */
export function parseDeliveryReport(params: URLSearchParams, mid: string | null, at: Date): DeliveryReport | string {
  const providerMessageId = params.get('mocean-msgid')?.trim();
  if (!providerMessageId) return 'mocean-msgid is missing';
  const rawStatus = params.get('mocean-dlr-status')?.trim() ?? '';
  const status = DLR_STATUS[rawStatus];
  if (!status) return `mocean-dlr-status must be 1 (delivered), 2 (failed) or 3 (expired), got "${rawStatus}"`;
  const carrierCode = params.get('mocean-error-code')?.trim() || '0';
  if (!/^\d{1,10}$/.test(carrierCode)) return `mocean-error-code must be a number, got "${carrierCode}"`;
  return { messageId: mid?.trim() || undefined, providerMessageId, status, carrierCode, at };
}

/**
 * Applies delivery reports with group commit: reports arriving within a few milliseconds share one
 * transaction (one row lock query, one update, one history insert, one outbox insert), and each
 * HTTP request is answered only after the transaction holding its report committed.
 */
export class DeliveryReports {
  private readonly batcher: GroupCommit<DeliveryReport, ReportOutcome>;
  readonly stats = { batches: 0, applied: 0, ignored: 0, unknown: 0 };

  constructor(private readonly ctx: MessagingContext) {
    this.batcher = new GroupCommit((reports) => this.commit(reports), {
      maxBatch: ctx.config.deliveryReports.batchSize,
      maxDelayMs: ctx.config.deliveryReports.flushMs,
      // The provider holds a connection open per report until it is committed, and posts over a
      // bounded number of them: two commits in flight halve the wait, and so double what those
      // connections carry. Both lock their rows in id order, so they cannot deadlock.
      concurrency: 2,
    });
  }

  submit(report: DeliveryReport): Promise<ReportOutcome> {
    return this.batcher.push(report);
  }

  drain(): Promise<void> {
    return this.batcher.drain();
  }

  private async commit(reports: DeliveryReport[]): Promise<ReportOutcome[]> {
    // Fast path: the first report for each message id, all in ONE statement (its own transaction).
    // The rest (no mid, a second report for the same message in this batch, an id we do not know,
    // which may still resolve by provider id) goes through the general path afterwards, in order.
    const outcomes = new Array<ReportOutcome | undefined>(reports.length);
    const seen = new Set<string>();
    const first: number[] = [];
    for (let i = 0; i < reports.length; i++) {
      const id = reports[i]!.messageId;
      if (id && !seen.has(id)) {
        seen.add(id);
        first.push(i);
      }
    }
    if (first.length) {
      const fast = await withRetry(() =>
        applyByMessageId(
          this.ctx,
          first.map((i) => reports[i]!),
        ),
      );
      first.forEach((i, k) => (outcomes[i] = fast[k]));
    }
    const rest: number[] = [];
    for (let i = 0; i < reports.length; i++) if (outcomes[i] === undefined) rest.push(i);
    if (rest.length) {
      const slow = await this.commitGeneral(rest.map((i) => reports[i]!));
      rest.forEach((i, k) => (outcomes[i] = slow[k]));
    }
    const result = outcomes as ReportOutcome[];
    this.stats.batches++;
    for (const o of result) this.stats[o]++;
    if (result.includes('applied')) this.ctx.outbox.kick();
    return result;
  }

  /** The general path: lock, decide in JS, write (handles fallbacks and repeats in one batch). */
  private async commitGeneral(reports: DeliveryReport[]): Promise<ReportOutcome[]> {
    return withRetry(() =>
      this.ctx.db.transaction().execute(async (trx) => {
        // Our own callbacks carry mid=<message id>; the provider id is the fallback (rare, so a second query).
        const ids = [...new Set(reports.flatMap((r) => (r.messageId ? [r.messageId] : [])))];
        const byId = new Map<string, MessageRow>();
        const byPmid = new Map<string, MessageRow>();
        const remember = (rows: MessageRow[]) => {
          for (const r of rows) {
            byId.set(r.id, r);
            if (r.provider_message_id) byPmid.set(r.provider_message_id, r);
          }
        };
        const lockWhere = (idList: string[], pmidList: string[]) =>
          trx
            .selectFrom('messages')
            .selectAll()
            .where((eb) => eb.or([...(idList.length ? [eb('id', 'in', idList)] : []), ...(pmidList.length ? [eb('provider_message_id', 'in', pmidList)] : [])]))
            .orderBy('id')
            .forUpdate()
            .execute();
        const withoutMid = [...new Set(reports.filter((r) => !r.messageId).map((r) => r.providerMessageId))];
        if (ids.length || withoutMid.length) remember(await lockWhere(ids, withoutMid));
        const unresolved = [
          ...new Set(reports.filter((r) => r.messageId && !byId.has(r.messageId) && !byPmid.has(r.providerMessageId)).map((r) => r.providerMessageId)),
        ];
        if (unresolved.length) remember(await lockWhere([], unresolved));
        const changed = new Map<string, MessageRow>();
        const history: HistoryEntry[] = [];
        const announce: MessageRow[] = [];
        const result = reports.map((report): ReportOutcome => {
          const found = (report.messageId && byId.get(report.messageId)) || byPmid.get(report.providerMessageId);
          if (!found || found.direction !== 'OUTBOUND') return 'unknown';
          const current = changed.get(found.id) ?? found;
          const next: MessageRow = {
            ...current,
            provider_message_id: current.provider_message_id ?? report.providerMessageId,
            provider: current.provider ?? 'mocean',
          };
          if (!advances(current.status, report.status)) {
            if (current.provider_message_id === null) changed.set(next.id, { ...next, updated_at: report.at });
            return 'ignored';
          }
          if (rankOf(current.status) < rankOf('SENT')) {
            // The report overtook the record of the provider's acceptance (or that record was lost in a
            // crash): the provider did accept it, so say so, in order.
            next.status = 'SENT';
            next.sent_at = current.sent_at ?? report.at;
            next.lease_until = null;
            history.push({ messageId: next.id, status: 'SENT', at: report.at, detail: 'implied by a delivery report' });
            announce.push({ ...next });
          }
          next.status = report.status as MessageStatus;
          next.lease_until = null;
          next.updated_at = report.at;
          if (report.status === 'DELIVERED') {
            next.delivered_at = report.at;
            next.error_code = null;
            next.error_message = null;
          } else {
            const code = report.carrierCode !== '0' ? `CARRIER_${report.carrierCode}` : report.status === 'EXPIRED' ? 'EXPIRED' : 'CARRIER_UNKNOWN';
            next.error_code = code;
            next.error_message =
              report.status === 'EXPIRED'
                ? `The carrier gave up delivering before the message's validity ran out (Mocean dlr-status 3, error code ${report.carrierCode})`
                : `The carrier could not deliver the message (Mocean dlr-status 2, error code ${report.carrierCode})`;
          }
          history.push({ messageId: next.id, status: next.status, at: report.at, detail: report.status === 'DELIVERED' ? null : next.error_message });
          announce.push({ ...next });
          changed.set(next.id, next);
          return 'applied';
        });
        await writeChanges(trx, { rows: [...changed.values()], history, announce }, this.ctx.clock);
        return result;
      }),
    );
  }
}

/** What a report sets when it moves a message to a final status (same rules as the general path). */
function finalErrorOf(report: DeliveryReport): { code: string | null; message: string | null } {
  if (report.status === 'DELIVERED') return { code: null, message: null };
  const code = report.carrierCode !== '0' ? `CARRIER_${report.carrierCode}` : report.status === 'EXPIRED' ? 'EXPIRED' : 'CARRIER_UNKNOWN';
  const message =
    report.status === 'EXPIRED'
      ? `The carrier gave up delivering before the message's validity ran out (Mocean dlr-status 3, error code ${report.carrierCode})`
      : `The carrier could not deliver the message (Mocean dlr-status 2, error code ${report.carrierCode})`;
  return { code, message };
}

/**
 * Applies reports for DISTINCT message ids in ONE statement (so one round trip and one implicit
 * transaction): lock the rows in id order, move those whose status ranks below the report's (a
 * status before SENT first gets the implied SENT, as in the general path), and insert the history
 * rows and outbox events in the same statement. A message we do not have comes back undefined, for
 * the general path to try by provider id. Every DLR status ranks 4, so "advances" means the current
 * status is one of SCHEDULED, QUEUED, SENDING, SENT.
 */
async function applyByMessageId(ctx: MessagingContext, reports: DeliveryReport[]): Promise<Array<ReportOutcome | undefined>> {
  const rows = reports.map((r, i) => {
    const err = finalErrorOf(r);
    // se/fe: ids of the implied SENT and the final status event; sn/fn: their requester copies
    return {
      i,
      id: r.messageId,
      pmid: r.providerMessageId,
      status: r.status,
      at: r.at,
      ec: err.code,
      em: err.message,
      se: newId(),
      fe: newId(),
      sn: newId(),
      fn: newId(),
    };
  });
  const time = ctx.clock.now().toISOString();
  const result = await sql<{ i: number; o: string }>`
    with r as (
      select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        as r(i int, id text, pmid text, status text, at timestamptz, ec text, em text, se uuid, fe uuid, sn uuid, fn uuid)
    ), cur as (
      select m.id, m.status, m.direction, m.provider_message_id, m.error_code
        from messages m
       where m.id in (select id from r)
       order by m.id
         for update
    ), p as (
      select r.*, cur.status in ('SCHEDULED', 'QUEUED', 'SENDING', 'SENT') as adv,
             cur.status in ('SCHEDULED', 'QUEUED', 'SENDING') as implied,
             cur.provider_message_id is null as no_pmid, cur.error_code as old_ec
        from r join cur on cur.id = r.id
       where cur.direction = 'OUTBOUND'
    ), u as (
      update messages m set
             status = case when p.adv then p.status else m.status end,
             provider_message_id = coalesce(m.provider_message_id, p.pmid),
             provider = coalesce(m.provider, 'mocean'),
             lease_until = case when p.adv then null else m.lease_until end,
             updated_at = p.at,
             sent_at = case when p.implied then coalesce(m.sent_at, p.at) else m.sent_at end,
             delivered_at = case when p.adv and p.status = 'DELIVERED' then p.at else m.delivered_at end,
             error_code = case when p.adv then p.ec else m.error_code end,
             error_message = case when p.adv then p.em else m.error_message end
        from p
       where m.id = p.id and (p.adv or p.no_pmid)
      -- p's columns come back with each row, so the events below need no join of p and u (the
      -- planner, expecting one row from p, joined them in a nested loop: batch size squared).
      returning m.id, m.contact_id, m.to_number, m.from_number, m.category, m.status, m.segments, m.price_amount, m.price_currency,
                m.provider, m.provider_message_id, m.error_code, m.correlation, m.requester,
                p.se, p.sn, p.fe, p.fn, p.adv, p.implied, p.old_ec
    ), h as (
      insert into message_status_history (message_id, status, at, detail)
      select id, status, at, detail from (
        select p.i, 0 as k, p.id, 'SENT' as status, p.at, 'implied by a delivery report' as detail from p where p.implied
        union all
        select p.i, 1, p.id, p.status, p.at, case when p.status = 'DELIVERED' then null else p.em end from p where p.adv
      ) x order by i, k
    ), ev as (
      select u.se as eid, u.sn as nid, 'SENT' as status, u.old_ec as ec, u.id, u.contact_id, u.to_number, u.from_number, u.category, u.segments,
             u.price_amount, u.price_currency, u.provider, u.provider_message_id, u.correlation, u.requester
        from u where u.implied
      union all
      select u.fe, u.fn, u.status, u.error_code, u.id, u.contact_id, u.to_number, u.from_number, u.category, u.segments,
             u.price_amount, u.price_currency, u.provider, u.provider_message_id, u.correlation, u.requester
        from u where u.adv
    ), d as (
      select ev.eid as id, ev.nid as copy_id, ev.requester, lower(ev.status) as status, ${statusEventDataSql('ev', 'ec')} as data from ev
    ), o as (${insertStatusEventsSql('d', time)})
    select r.i, case when p.id is null then (case when exists (select 1 from cur where cur.id = r.id) then 'unknown' else 'missing' end)
                     when p.adv then 'applied' else 'ignored' end as o
      from r left join p on p.i = r.i`.execute(ctx.db);
  const out = new Array<ReportOutcome | undefined>(reports.length);
  for (const row of result.rows) out[row.i] = row.o === 'missing' ? undefined : (row.o as ReportOutcome);
  return out;
}
