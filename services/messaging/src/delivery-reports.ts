import type { MessageStatus } from './db/database';
import type { MessagingContext } from './context';
import { GroupCommit } from './group-commit';
import { advances, rankOf, withRetry, writeChanges, type HistoryEntry, type MessageRow } from './status';

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
    });
  }

  submit(report: DeliveryReport): Promise<ReportOutcome> {
    return this.batcher.push(report);
  }

  drain(): Promise<void> {
    return this.batcher.drain();
  }

  private async commit(reports: DeliveryReport[]): Promise<ReportOutcome[]> {
    const outcomes = await withRetry(() => this.ctx.db.transaction().execute(async (trx) => {
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
      const unresolved = [...new Set(reports.filter((r) => r.messageId && !byId.has(r.messageId) && !byPmid.has(r.providerMessageId)).map((r) => r.providerMessageId))];
      if (unresolved.length) remember(await lockWhere([], unresolved));
      const changed = new Map<string, MessageRow>();
      const history: HistoryEntry[] = [];
      const announce: MessageRow[] = [];
      const result = reports.map((report): ReportOutcome => {
        const found = (report.messageId && byId.get(report.messageId)) || byPmid.get(report.providerMessageId);
        if (!found || found.direction !== 'OUTBOUND') return 'unknown';
        const current = changed.get(found.id) ?? found;
        const next: MessageRow = { ...current, provider_message_id: current.provider_message_id ?? report.providerMessageId, provider: current.provider ?? 'mocean' };
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
          next.error_message = report.status === 'EXPIRED'
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
    }));
    this.stats.batches++;
    for (const o of outcomes) this.stats[o]++;
    if (outcomes.includes('applied')) this.ctx.outbox.kick();
    return outcomes;
  }
}
