import { WakeableSleep } from '@textloop/service-kit';
import { sql } from 'kysely';
import { newId } from '@textloop/events';
import type { MessagingContext } from './context';
import { GroupCommit } from './group-commit';
import type { ProviderSendResult, SmsProvider } from './providers/provider';
import { optedOutMessageIds } from './contacts-projection';
import { callbackQuery } from './delivery-reports';
import { advances, insertStatusEventsSql, lockMessages, statusEventDataSql, withRetry, writeChanges, type HistoryEntry, type MessageRow } from './status';

/** A claimed row: what the provider call needs, plus the attempt number that owns the lease. */
export interface Claimed {
  id: string;
  to_number: string;
  from_number: string;
  body: string;
  encoding: 'GSM7' | 'UCS2';
  attempts: number;
}

interface Outcome {
  claimed: Claimed;
  result: ProviderSendResult;
  at: Date;
}

export interface DispatcherHooks {
  /**
   * Runs after the provider answered and before the result is recorded. Tests use it to stand in
   * for a process that dies at the worst moment (a promise that never settles).
   */
  beforeRecord?: (outcome: { messageId: string; result: ProviderSendResult }) => Promise<void>;
}

/** Exponential backoff for attempt n (1-based): base, 2×base, 4×base… capped. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** The callback URL for a request: the secret, and our ids so a report that overtakes the send record still finds its message. */
export function dlrUrlFor(ctx: MessagingContext, recipients: ReadonlyArray<{ messageId: string; to: string }>): string {
  return `${ctx.config.publicWebhookUrl}/webhooks/mocean/dlr?secret=${encodeURIComponent(ctx.config.webhookSecret)}&${callbackQuery(recipients)}`;
}

/**
 * Takes the next request's worth of claimed rows off `ready`: the first row, and up to max − 1
 * more with the same sender, text and encoding for other numbers (one number twice in a request
 * could not tell its two results or reports apart). The rest keep their order.
 */
export function takeGroup(ready: Claimed[], max: number): Claimed[] {
  const first = ready.shift()!;
  if (max <= 1 || ready.length === 0) return [first];
  const group = [first];
  const numbers = new Set([first.to_number]);
  let kept = 0;
  for (let i = 0; i < ready.length; i++) {
    const row = ready[i]!;
    if (
      group.length < max &&
      row.body === first.body &&
      row.from_number === first.from_number &&
      row.encoding === first.encoding &&
      !numbers.has(row.to_number)
    ) {
      group.push(row);
      numbers.add(row.to_number);
    } else {
      ready[kept++] = row;
    }
  }
  ready.length = kept;
  return group;
}

/**
 * The outbound queue's worker. Claims due rows in batches with FOR UPDATE SKIP LOCKED (so any
 * number of instances share the queue), marks them SENDING under a lease, calls the provider with
 * bounded concurrency, and records results through a group commit: one transaction per batch of
 * results. A row whose lease expires (its instance died mid-send) is claimed again and resent with
 * the same message id, which the provider deduplicates.
 */
export class Dispatcher {
  private running = false;
  private loopDone: Promise<void> | undefined;
  private readonly sleeper = new WakeableSleep();
  /** Provider calls running now. */
  private inFlight = 0;
  /** Results waiting for the group commit that records them (their rows stay SENDING until then). */
  private unrecorded = 0;
  private readonly inFlightWork = new Set<Promise<void>>();
  /** Claimed rows (leased to us) waiting for a provider slot. */
  private readonly ready: Claimed[] = [];
  /** The last claim found fewer due rows than it asked for. */
  private drained = false;
  private readonly maxUnrecorded: number;
  private readonly recorder: GroupCommit<Outcome, void>;
  readonly stats = { claims: 0, claimed: 0, requests: 0, recordBatches: 0, sent: 0, retried: 0, failed: 0 };

  constructor(
    private readonly ctx: MessagingContext,
    private readonly provider: SmsProvider,
    private readonly hooks: DispatcherHooks = {},
  ) {
    const { batchSize, concurrency } = ctx.config.dispatch;
    this.maxUnrecorded = 4 * Math.max(batchSize, concurrency);
    // Two batches of results in flight: one commits while the next gathers (rows are locked in id order, so they cannot deadlock).
    this.recorder = new GroupCommit((items) => this.record(items), { maxBatch: Math.max(batchSize, 100), maxDelayMs: 5, concurrency: 2 });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Call after committing new due messages: they go out without waiting for the poll. */
  kick(): void {
    this.sleeper.kick();
  }

  /**
   * Stops claiming and lets the sends already claimed finish and be recorded (what does not finish
   * in time is claimed again after its lease).
   */
  async stop(timeoutMs = this.ctx.config.mocean.timeoutMs + 2000): Promise<void> {
    this.running = false;
    this.sleeper.wake();
    await this.loopDone;
    let timer: NodeJS.Timeout | undefined;
    const settle = async () => {
      // Claimed rows still waiting for a slot start as others finish, so wait until none is left.
      while (this.inFlightWork.size > 0) await Promise.allSettled([...this.inFlightWork]);
      await this.recorder.drain();
    };
    await Promise.race([
      settle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Starts provider calls for claimed rows while there are free slots. */
  private fill(): void {
    const { concurrency } = this.ctx.config.dispatch;
    while (this.ready.length > 0 && this.inFlight < concurrency) this.dispatch(takeGroup(this.ready, this.provider.maxRecipients));
  }

  /**
   * Claims ahead: while fewer than a batch of claimed rows wait for a provider slot, claim another
   * batch, so a claim's round trip overlaps the calls in flight instead of leaving slots idle.
   * Results waiting to be recorded are capped too, so a slow database slows claiming instead of
   * piling results up in memory.
   */
  private async loop(): Promise<void> {
    const { batchSize, pollMs } = this.ctx.config.dispatch;
    let failures = 0;
    while (this.running) {
      this.fill();
      if (this.ready.length >= batchSize || this.unrecorded >= this.maxUnrecorded) {
        await this.sleeper.sleep(pollMs);
        continue;
      }
      let claimed: Claimed[];
      try {
        this.sleeper.takeKicked();
        claimed = await this.claim(batchSize);
        failures = 0;
      } catch (err) {
        failures++;
        this.ctx.logger.warn({ err: (err as Error).message, failures }, 'dispatcher could not claim messages; will retry');
        await this.sleeper.sleep(Math.min(100 * 2 ** failures, 5000));
        continue;
      }
      // A short claim means nothing else is due: finished calls stop waking the loop until new
      // messages are committed (kick) or the poll comes round.
      this.drained = claimed.length < batchSize;
      this.ready.push(...claimed);
      this.fill();
      if (!this.drained || this.sleeper.kicked) continue;
      await this.sleeper.sleep(pollMs);
    }
  }

  /**
   * One statement (so one short implicit transaction): due rows → SENDING with a lease,
   * attempts + 1, and their history. The lease expiry doubles as not_before, so one partial index
   * finds both due QUEUED rows and SENDING rows whose instance died.
   */
  private async claim(limit: number): Promise<Claimed[]> {
    const { leaseMs } = this.ctx.config.dispatch;
    const now = this.ctx.clock.now();
    const leaseUntil = new Date(now.getTime() + leaseMs);
    const result = await sql<Claimed>`
      with due as (
        select id, status from messages
         where status in ('QUEUED', 'SENDING') and not_before <= ${now}
         order by not_before
         limit ${limit}
         for update skip locked
      ), claimed as (
        update messages m
           set status = 'SENDING', attempts = m.attempts + 1, lease_until = ${leaseUntil}, not_before = ${leaseUntil}, updated_at = ${now}
          from due
         where m.id = due.id
        returning m.id, m.to_number, m.from_number, m.body, m.encoding, m.attempts, due.status as previous
      ), h as (
        insert into message_status_history (message_id, status, at, detail)
        select id, 'SENDING', ${now}::timestamptz,
               case when previous = 'SENDING'
                    then 'attempt ' || attempts || ': the previous attempt''s lease expired without a result; resending with the same reference'
                    else 'attempt ' || attempts end
          from claimed
      )
      select id, to_number, from_number, body, encoding, attempts from claimed`.execute(this.ctx.db);
    this.stats.claims++;
    this.stats.claimed += result.rows.length;
    return result.rows;
  }

  /** One provider request for a group of claimed rows (often a group of one). */
  private dispatch(rows: Claimed[]): void {
    this.inFlight++;
    this.stats.requests++;
    let calling = true;
    const callDone = () => {
      if (!calling) return;
      calling = false;
      this.inFlight--;
      // The provider slot is free as soon as it answered (recording happens in the background):
      // the next claimed rows take it, and the loop claims more when few are left waiting.
      this.fill();
      if (!this.drained && this.ready.length < this.ctx.config.dispatch.batchSize) this.sleeper.wake();
    };
    const work = (async () => {
      try {
        const first = rows[0]!;
        const recipients = rows.map((row) => ({ messageId: row.id, to: row.to_number }));
        const results = await this.provider.sendGroup({
          from: first.from_number,
          text: first.body,
          encoding: first.encoding,
          dlrUrl: dlrUrlFor(this.ctx, recipients),
          recipients,
        });
        this.unrecorded += rows.length;
        callDone();
        await Promise.all(rows.map((row, i) => this.recordOne(row, results[i]!)));
      } catch (err) {
        // Adapters answer failures as results; should one throw, the rows stay SENDING and their lease brings them back.
        this.ctx.logger.error({ err: (err as Error).message, messages: rows.length }, 'provider call failed; the messages will be retried after their lease');
      } finally {
        callDone();
      }
    })();
    this.inFlightWork.add(work);
    void work.finally(() => this.inFlightWork.delete(work));
  }

  private async recordOne(row: Claimed, result: ProviderSendResult): Promise<void> {
    try {
      try {
        if (this.hooks.beforeRecord) await this.hooks.beforeRecord({ messageId: row.id, result });
        await this.recorder.push({ claimed: row, result, at: this.ctx.clock.now() });
      } finally {
        if (this.unrecorded-- === this.maxUnrecorded) this.sleeper.wake();
      }
    } catch (err) {
      // Left SENDING: the lease expires and the row is claimed again (same reference, no duplicate).
      this.ctx.logger.error({ err: (err as Error).message, messageId: row.id }, 'could not record a send result; the message will be retried after its lease');
    }
  }

  /**
   * Records a batch of provider results. Acceptances of distinct messages (the bulk) go in ONE
   * statement; failures and a second result for the same message in this batch take the general
   * path afterwards, in its own transaction.
   */
  private async record(outcomes: Outcome[]): Promise<void[]> {
    const seen = new Set<string>();
    const fast: Outcome[] = [];
    const rest: Outcome[] = [];
    for (const o of outcomes) {
      if (o.result.ok && !seen.has(o.claimed.id)) {
        seen.add(o.claimed.id);
        fast.push(o);
      } else {
        rest.push(o);
      }
    }
    if (fast.length) {
      const sent = await withRetry(() => this.recordAccepted(fast));
      this.stats.recordBatches++;
      this.stats.sent += sent;
      this.ctx.outbox.kick();
    }
    if (rest.length) await this.recordGeneral(rest);
    return outcomes.map(() => undefined);
  }

  /**
   * Provider acceptances of distinct messages in ONE statement (an implicit transaction): lock the
   * rows in id order, learn provider and provider id, SENDING (or earlier) → SENT with its history
   * row and event; a row a delivery report already moved on keeps its status. Same rules as the
   * general path. Returns how many were first acceptances.
   */
  private async recordAccepted(outcomes: Outcome[]): Promise<number> {
    const rows = outcomes.map(({ claimed, result, at }) => ({
      id: claimed.id,
      pmid: (result as { providerMessageId: string }).providerMessageId,
      at,
      e: newId(),
      // the requester's copy (messaging.notify.<requester>.sent), when the message has one
      n: newId(),
    }));
    const provider = this.provider.name;
    const time = this.ctx.clock.now().toISOString();
    const result = await sql<{ n: number }>`
      with r as (
        select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(id text, pmid text, at timestamptz, e uuid, n uuid)
      ), cur as (
        select m.id, m.status in ('SCHEDULED', 'QUEUED', 'SENDING') as adv, m.sent_at is null as first
          from messages m
         where m.id in (select id from r)
         order by m.id
           for update
      ), p as (
        select r.*, cur.adv, cur.first from r join cur on cur.id = r.id
      ), u as (
        update messages m set
               provider = ${provider}::text,
               provider_message_id = p.pmid,
               sent_at = coalesce(m.sent_at, p.at),
               lease_until = null,
               status = case when p.adv then 'SENT' else m.status end,
               error_code = case when p.adv then null else m.error_code end,
               error_message = case when p.adv then null else m.error_message end,
               updated_at = p.at
          from p
         where m.id = p.id
        -- p's columns come back with each row: the event below needs no join of p and u, which the
        -- planner may run as a nested loop (batch size squared) when it misjudges p's size.
        returning m.id, m.contact_id, m.to_number, m.from_number, m.category, m.status, m.segments, m.price_amount, m.price_currency,
                  m.provider, m.provider_message_id, m.error_code, m.correlation, m.requester, p.e, p.n, p.adv
      ), h as (
        insert into message_status_history (message_id, status, at, detail)
        select p.id, 'SENT', p.at, 'accepted by ' || ${provider}::text || ' as ' || p.pmid from p where p.first order by p.id
      ), d as (
        select u.e as id, u.n as copy_id, u.requester, 'sent' as status, ${statusEventDataSql('u')} as data
          from u
         where u.adv
      ), o as (${insertStatusEventsSql('d', time)})
      select count(*)::int as n from p where p.first`.execute(this.ctx.db);
    return result.rows[0]?.n ?? 0;
  }

  /** Records a batch of provider results in ONE transaction (rows locked in id order). */
  private async recordGeneral(outcomes: Outcome[]): Promise<void> {
    const { maxAttempts, retryBaseMs, retryMaxMs } = this.ctx.config.dispatch;
    const counts = { sent: 0, retried: 0, failed: 0 };
    await withRetry(() =>
      this.ctx.db.transaction().execute(async (trx) => {
        counts.sent = counts.retried = counts.failed = 0;
        const locked = await lockMessages(
          trx,
          outcomes.map((o) => o.claimed.id),
        );
        const changed = new Map<string, MessageRow>();
        const announce = new Map<string, MessageRow>();
        const history: HistoryEntry[] = [];
        // A recipient who opted out while this attempt was in flight gets no retry: the opt-out
        // only suppresses what is waiting (QUEUED/SCHEDULED), and this row was SENDING then.
        const optedOut = await optedOutMessageIds(
          trx,
          [...locked.values()].filter((row) => outcomes.some((o) => !o.result.ok && o.claimed.id === row.id)),
        );
        for (const { claimed, result, at } of outcomes) {
          const current = changed.get(claimed.id) ?? locked.get(claimed.id);
          if (!current) continue;
          const next: MessageRow = { ...current };
          if (result.ok) {
            // Monotonic: a DELIVERED report may have overtaken us; keep it, but learn the provider id.
            const firstAcceptance = current.sent_at === null;
            next.provider = this.provider.name;
            // The send response is authoritative; a delivery report may have filled it in first.
            next.provider_message_id = result.providerMessageId;
            next.sent_at = current.sent_at ?? at;
            next.lease_until = null;
            if (advances(current.status, 'SENT')) {
              next.status = 'SENT';
              next.error_code = null;
              next.error_message = null;
              announce.set(next.id, next);
            }
            if (firstAcceptance) {
              history.push({ messageId: next.id, status: 'SENT', at, detail: `accepted by ${this.provider.name} as ${result.providerMessageId}` });
              counts.sent++;
            }
            next.updated_at = at;
            changed.set(next.id, next);
            continue;
          }
          // Failures only count for the attempt that still holds the row.
          if (current.status !== 'SENDING' || current.attempts !== claimed.attempts) continue;
          next.lease_until = null;
          next.updated_at = at;
          if (result.transient && optedOut.has(current.id)) {
            next.status = 'SUPPRESSED';
            next.error_code = 'OPTED_OUT';
            next.error_message = 'The contact unsubscribed while the message was being sent; it is not retried';
            history.push({
              messageId: next.id,
              status: 'SUPPRESSED',
              at,
              detail: `attempt ${current.attempts} failed (${result.message}); not retried: contact unsubscribed`,
            });
            announce.set(next.id, next);
            counts.failed++;
          } else if (result.transient && current.attempts < maxAttempts) {
            const delay = retryDelayMs(current.attempts, retryBaseMs, retryMaxMs);
            next.status = 'QUEUED';
            next.not_before = new Date(at.getTime() + delay);
            next.error_message = result.message;
            history.push({
              messageId: next.id,
              status: 'QUEUED',
              at,
              detail: `attempt ${current.attempts} failed (${result.message}); retry ${current.attempts + 1} of ${maxAttempts} in ${delay} ms`,
            });
            counts.retried++;
          } else {
            next.status = 'FAILED';
            if (result.transient) {
              next.error_code = 'PROVIDER_UNAVAILABLE';
              next.error_message = `The provider was unavailable for ${current.attempts} attempts; last error: ${result.message}`;
            } else {
              next.error_code = result.code === 'INVALID_NUMBER' ? 'INVALID_NUMBER' : 'PROVIDER_REJECTED';
              next.error_message = result.message;
            }
            history.push({ messageId: next.id, status: 'FAILED', at, detail: next.error_message });
            announce.set(next.id, next);
            counts.failed++;
          }
          changed.set(next.id, next);
        }
        await writeChanges(trx, { rows: [...changed.values()], history, announce: [...announce.values()] }, this.ctx.clock);
      }),
    );
    this.stats.recordBatches++;
    this.stats.sent += counts.sent;
    this.stats.retried += counts.retried;
    this.stats.failed += counts.failed;
    this.ctx.outbox.kick();
    if (counts.retried > 0) this.sleeper.wake();
  }
}
