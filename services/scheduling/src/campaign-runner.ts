import { sql } from 'kysely';
import { enqueueEvents, WakeableSleep, type OutboxEntry } from '@textloop/service-kit';
import { completeFinished, resolveAudience, RESOLVE_LEASE_MS } from './campaigns';
import { EVENT_SOURCE, type SchedulingContext } from './context';
import type { MessageCategory, StoredOffer } from './db/database';
import { issueCodes, offerVariables, type IssuedCode } from './offers';

export interface CampaignRunnerOptions {
  /** messages per second over all campaigns and instances (CAMPAIGN_RATE_PER_SECOND) */
  ratePerSecond: number;
  /** recipients claimed per transaction at most (CAMPAIGN_BATCH_SIZE) */
  batchSize: number;
  /** longest sleep when nothing is due sooner (shares TIMER_MAX_SLEEP_MS) */
  maxSleepMs: number;
}

/** Without an offer, a recipient's activity and STOPs count for the campaign this long after the send. */
export const ATTRIBUTION_WINDOW_MS = 30 * 24 * 3600_000;
/** Unused send budget is kept for at most this long: after a pause, at most one second's worth goes at once. */
const BURST_MS = 1000;

interface DueRecipient {
  id: string;
  campaign_id: string;
  contact_id: string | null;
  template: string;
  category: MessageCategory;
  offer: StoredOffer | null;
  erased: boolean;
}

/**
 * Runs campaigns in the background, on every instance:
 * - launches SCHEDULED campaigns at their sendAt;
 * - resolves audiences whose resolution is not held by anyone (a crashed instance's, or one
 *   too large to finish inside launchCampaign), from the stored cursor;
 * - sends, paced: recipients are claimed FOR UPDATE SKIP LOCKED in small batches, and each
 *   batch issues the offer codes, writes the messaging.cmd.send commands (requestId = recipient
 *   id) into the outbox and marks the recipients SENT in one transaction, so a crash never sends
 *   twice and a restart carries on. The pace is one budget for all campaigns and instances, kept
 *   in the campaign_pacer row (a token bucket: ratePerSecond, at most one second's burst), whose
 *   lock also makes instances take turns. A canceled campaign's recipients are no longer PENDING,
 *   so sending stops at the next batch;
 * - completes a RUNNING campaign once it is resolved and nothing is PENDING.
 */
export class CampaignRunner {
  private running = false;
  private loopDone: Promise<void> | undefined;
  private readonly sleeper = new WakeableSleep();
  readonly stats = { sent: 0, batches: 0 };

  constructor(
    private readonly ctx: SchedulingContext,
    private readonly options: CampaignRunnerOptions,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.sleeper.wake();
    await this.loopDone;
  }

  kick(): void {
    this.sleeper.kick();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let lastHousekeeping = 0;
    while (this.running) {
      const kicked = this.sleeper.takeKicked();
      let wait: number;
      try {
        // Launching scheduled campaigns and taking over resolutions: when woken for it, or about
        // once a second (not at every paced batch).
        if (kicked || Date.now() - lastHousekeeping >= 1000) {
          lastHousekeeping = Date.now();
          await this.launchDue();
          await this.resumeResolution();
        }
        const batch = await this.sendBatch();
        failures = 0;
        if (batch.sent > 0 && batch.waitMs === 0) continue;
        const next = await this.nextScheduled();
        const untilScheduled = next === null ? Infinity : Math.max(0, next.getTime() - this.ctx.clock.now().getTime());
        wait = Math.min(this.options.maxSleepMs, batch.waitMs, untilScheduled);
      } catch (err) {
        failures++;
        wait = Math.min(100 * 2 ** failures, 5000);
        this.ctx.logger.warn({ err: (err as Error).message, failures }, 'campaign runner failed; will retry');
      }
      if (this.sleeper.kicked || !this.running) continue;
      await this.sleeper.sleep(Math.max(wait, 10));
    }
  }

  private async nextScheduled(): Promise<Date | null> {
    const row = await this.ctx.db
      .selectFrom('campaigns')
      .select(sql<Date | null>`min(send_at)`.as('next'))
      .where('status', '=', 'SCHEDULED')
      .executeTakeFirst();
    return row?.next ? new Date(row.next) : null;
  }

  /** SCHEDULED campaigns whose sendAt has come become RUNNING; resumeResolution takes them. Returns how many. */
  async launchDue(): Promise<number> {
    const now = this.ctx.clock.now();
    const launched = await this.ctx.db
      .updateTable('campaigns')
      .set({ status: 'RUNNING', launched_at: now, resolve_lease_until: null, updated_at: now })
      .where('status', '=', 'SCHEDULED')
      .where('send_at', '<=', now)
      .returning('id')
      .execute();
    if (launched.length > 0) this.ctx.logger.debug({ campaigns: launched.map((c) => c.id) }, 'scheduled campaigns launched');
    return launched.length;
  }

  /** Takes over the resolution of one RUNNING campaign nobody holds, and runs it for about a second. */
  async resumeResolution(): Promise<boolean> {
    const now = this.ctx.clock.now();
    const claimed = await sql<{ id: string }>`
      update campaigns set resolve_lease_until = ${new Date(now.getTime() + RESOLVE_LEASE_MS)}
       where id = (select id from campaigns
                    where status = 'RUNNING' and resolved_at is null
                      and (resolve_lease_until is null or resolve_lease_until <= ${now})
                    order by launched_at, id
                    limit 1
                      for update skip locked)
      returning id`.execute(this.ctx.db);
    const id = claimed.rows[0]?.id;
    if (!id) return false;
    await resolveAudience(this.ctx, id, { deadline: Date.now() + 1000 });
    return true;
  }

  /**
   * Sends one paced batch. Returns how many commands it wrote and how long to wait before the
   * budget allows the next batch (0: go on now).
   */
  async sendBatch(): Promise<{ sent: number; waitMs: number }> {
    const { ratePerSecond: rate, batchSize } = this.options;
    const interval = 1000 / rate;
    // Batches of at least this many (about 20 transactions a second at most), unless fewer are left.
    const minBatch = Math.max(1, Math.min(batchSize, Math.floor(rate / 20)));
    const result = await this.ctx.db.transaction().execute(async (trx) => {
      const pacer = await trx.selectFrom('campaign_pacer').select('paced_until').where('id', '=', 'global').forUpdate().skipLocked().executeTakeFirst();
      // Another instance is sending a batch: take turns.
      if (!pacer) return { sent: 0, waitMs: Math.ceil(interval * minBatch) };
      const now = this.ctx.clock.now();
      const base = Math.max(pacer.paced_until?.getTime() ?? -Infinity, now.getTime() - Math.max(BURST_MS, interval));
      const tokens = Math.floor(((now.getTime() - base) * rate) / 1000 + 1e-9);
      if (tokens < minBatch) return { sent: 0, waitMs: Math.max(1, Math.ceil(base + minBatch * interval - now.getTime())) };
      const limit = Math.min(tokens, batchSize);

      const due = await sql<DueRecipient>`
        select r.id, r.campaign_id, r.contact_id, c.template, c.category, c.offer,
               (r.contact_id is null or exists (select 1 from erased_contacts e where e.contact_id = r.contact_id)) as erased
          from campaign_recipients r
          join campaigns c on c.id = r.campaign_id
         where r.status = 'PENDING' and c.status = 'RUNNING'
         order by r.id
         limit ${limit}
           for update of r skip locked`.execute(trx);
      if (due.rows.length === 0) {
        // Nothing to send: complete what is finished (e.g. the last recipients were canceled by erasure).
        const completed = await completeFinished(trx, this.ctx);
        return { sent: 0, waitMs: Infinity, completed };
      }

      const erased = due.rows.filter((r) => r.erased).map((r) => r.id);
      if (erased.length > 0) {
        await trx.updateTable('campaign_recipients').set({ status: 'CANCELED', contact_id: null }).where('id', 'in', erased).execute();
      }
      const live = due.rows.filter((r) => !r.erased);
      const codes = live.some((r) => r.offer)
        ? await issueCodes(
            trx,
            live.flatMap((r) =>
              r.offer ? [{ key: r.id, offer: r.offer, contactId: r.contact_id, campaignId: r.campaign_id, campaignRecipientId: r.id }] : [],
            ),
            now,
          )
        : new Map<string, IssuedCode>();
      if (live.length > 0) {
        const windowEnd = new Date(now.getTime() + ATTRIBUTION_WINDOW_MS);
        // One bind parameter for the whole batch (the same on Postgres and PGlite).
        const values = live.map((r) => ({ id: r.id, code: codes.get(r.id)?.code ?? null, until: (codes.get(r.id)?.expiresAt ?? windowEnd).toISOString() }));
        await sql`
          update campaign_recipients r
             set status = 'SENT', sent_at = ${now}, offer_code = v.code, attribution_until = v.until
            from jsonb_to_recordset(${JSON.stringify(values)}::jsonb) as v(id text, code text, until timestamptz)
           where r.id = v.id`.execute(trx);
        const commands: OutboxEntry[] = live.map((r) => {
          const code = codes.get(r.id);
          return {
            subject: 'messaging.cmd.send',
            data: {
              requestId: r.id,
              contactId: r.contact_id,
              template: r.template,
              category: r.category,
              variables: r.offer && code ? { offer: offerVariables(r.offer, code.code, code.expiresAt) } : {},
              correlation: { campaignId: r.campaign_id, campaignRecipientId: r.id },
            },
          };
        });
        await enqueueEvents(trx, EVENT_SOURCE, commands, this.ctx.clock);
        await trx
          .updateTable('campaign_pacer')
          .set({ paced_until: new Date(base + live.length * interval) })
          .where('id', '=', 'global')
          .execute();
      }
      const completed = await completeFinished(trx, this.ctx, [...new Set(due.rows.map((r) => r.campaign_id))]);
      // More may be due at once when the budget allowed more than one batch.
      const left = tokens - live.length;
      return { sent: live.length, waitMs: left >= minBatch && due.rows.length === limit ? 0 : Math.max(1, Math.ceil(minBatch * interval)), completed };
    });
    if (result.sent > 0 || ('completed' in result && (result.completed ?? 0) > 0)) this.ctx.outbox.kick();
    if (result.sent > 0) {
      this.stats.sent += result.sent;
      this.stats.batches++;
    }
    return { sent: result.sent, waitMs: result.waitMs };
  }
}
