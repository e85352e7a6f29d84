import { WakeableSleep } from '@textloop/service-kit';
import type { MessagingContext } from './context';
import { optedOutMessageIds } from './contacts-projection';
import {
  CAP_WINDOW_MS,
  capApplies,
  capKey,
  frequencyCapMessage,
  inQuietHours,
  lockCapKeys,
  marketingInWindow,
  quietHoursApply,
  quietHoursDetail,
  quietHoursEnd,
  readPolicy,
  recipientZones,
  type CountedMessage,
} from './policy';
import { withRetry, writeChanges, type HistoryEntry, type MessageRow } from './status';

/** Wait when due rows exist but another instance holds them all. */
const BUSY_WAIT_MS = 50;

const createdBefore = (a: { created_at: Date; id: string }, b: { created_at: Date; id: string }) =>
  a.created_at.getTime() < b.created_at.getTime() || (a.created_at.getTime() === b.created_at.getTime() && a.id < b.id);

/**
 * Moves SCHEDULED messages into the outbound queue when their time comes. Sleeps until the earliest
 * not_before (at most config.release.pollMs, so a row another instance added is seen soon; kick()
 * wakes it at once), claims due rows FOR UPDATE SKIP LOCKED in batches (several instances share the
 * work) and applies the policy as it is at that moment: still quiet hours → held to the new end;
 * the recipient unsubscribed → SUPPRESSED (OPTED_OUT); the weekly cap now reached → SUPPRESSED
 * (FREQUENCY_CAP); otherwise → QUEUED, and the dispatcher
 * is kicked. The dispatcher itself only ever claims QUEUED and SENDING rows.
 */
export class ScheduledRelease {
  private running = false;
  private loopDone: Promise<void> | undefined;
  private readonly sleeper = new WakeableSleep();
  readonly stats = { passes: 0, released: 0, held: 0, suppressed: 0 };

  constructor(private readonly ctx: MessagingContext) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Call when SCHEDULED rows became due (a policy change, a clock moved in tests). */
  kick(): void {
    this.sleeper.kick();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.sleeper.wake();
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    const { pollMs } = this.ctx.config.release;
    const batch = this.ctx.config.dispatch.batchSize;
    let failures = 0;
    while (this.running) {
      let claimed: number;
      try {
        this.sleeper.takeKicked();
        claimed = await this.releaseDue(batch);
        failures = 0;
        this.stats.passes++;
      } catch (err) {
        failures++;
        this.ctx.logger.warn({ err: (err as Error).message, failures }, 'could not release scheduled messages; will retry');
        await this.sleeper.sleep(Math.min(100 * 2 ** failures, 5000));
        continue;
      }
      if (claimed === batch || this.sleeper.kicked) continue;
      let delay = pollMs;
      try {
        const next = await this.earliest();
        if (next) {
          const wait = next.getTime() - this.ctx.clock.now().getTime();
          delay = Math.min(pollMs, wait > 0 ? wait : BUSY_WAIT_MS);
        }
      } catch {
        // the next pass reports a database that stays unreachable
      }
      if (this.sleeper.kicked || !this.running) continue;
      await this.sleeper.sleep(delay);
    }
  }

  private async earliest(): Promise<Date | undefined> {
    const row = await this.ctx.db
      .selectFrom('messages')
      .select((eb) => eb.fn.min('not_before').as('next'))
      .where('status', '=', 'SCHEDULED')
      .executeTakeFirst();
    return row?.next ? new Date(row.next) : undefined;
  }

  /** One batch: claims due SCHEDULED rows and re-evaluates them in one transaction. Returns how many were claimed. */
  async releaseDue(limit: number): Promise<number> {
    const result = await withRetry(() =>
      this.ctx.db.transaction().execute(async (trx) => {
        const now = this.ctx.clock.now();
        const due = await trx
          .selectFrom('messages')
          .selectAll()
          .where('status', '=', 'SCHEDULED')
          .where('not_before', '<=', now)
          .orderBy('not_before')
          .limit(limit)
          .forUpdate()
          .skipLocked()
          .execute();
        const counts = { claimed: due.length, queued: 0, held: 0, suppressed: 0 };
        if (due.length === 0) return counts;

        const policy = await readPolicy(trx);
        const quiet = policy.quietHoursStart !== policy.quietHoursEnd;
        const gated = due.filter((r) => r.direction === 'OUTBOUND' && quietHoursApply(r.category));
        const gatedIds = new Set(gated.map((r) => r.id));
        const capped = gated.filter((r) => capApplies(r.category));
        const zones = quiet ? await recipientZones(trx, gated) : new Map<string, string>();
        let window: CountedMessage[] = [];
        if (capped.length > 0 && policy.marketingWeeklyCap > 0) {
          await lockCapKeys(trx, capped.map(capKey));
          window = await marketingInWindow(trx, capped, new Date(now.getTime() - CAP_WINDOW_MS));
        }
        const inWindow = new Map(window.map((m) => [m.id, m]));
        // Consent as it is now: an opt-out normally suppresses waiting messages at once, but one that
        // raced it (accepted while the STOP was being stored) is caught here, before it is queued.
        const optedOut = await optedOutMessageIds(trx, due);

        const changed: MessageRow[] = [];
        const announce: MessageRow[] = [];
        const history: HistoryEntry[] = [];
        const heldIds: string[] = [];
        const leftIds: string[] = [];
        // Oldest first: when the cap leaves room for only some, the earlier messages go.
        for (const row of [...due].sort((a, b) => (createdBefore(a, b) ? -1 : createdBefore(b, a) ? 1 : 0))) {
          const policyApplies = gatedIds.has(row.id);
          const tz = zones.get(row.id);
          if (optedOut.has(row.id)) {
            const next: MessageRow = {
              ...row,
              status: 'SUPPRESSED',
              error_code: 'OPTED_OUT',
              error_message: 'The contact unsubscribed before the message was sent',
              price_amount: null,
              price_currency: null,
              updated_at: now,
            };
            changed.push(next);
            announce.push(next);
            history.push({ messageId: row.id, status: 'SUPPRESSED', at: now, detail: 'contact unsubscribed' });
            leftIds.push(row.id);
            const counting = inWindow.get(row.id);
            if (counting) counting.status = 'SUPPRESSED';
            counts.suppressed++;
            continue;
          }
          if (policyApplies && capApplies(row.category)) {
            const key = capKey(row);
            // What went or will go out, except later messages that are still waiting: they come after this one.
            const counted = window.filter(
              (m) => m.key === key && m.id !== row.id && m.status !== 'SUPPRESSED' && (m.status !== 'SCHEDULED' || createdBefore(m, row)),
            ).length;
            if (counted >= policy.marketingWeeklyCap) {
              const message = frequencyCapMessage(counted, policy.marketingWeeklyCap, row.contact_id !== null);
              const next: MessageRow = {
                ...row,
                status: 'SUPPRESSED',
                error_code: 'FREQUENCY_CAP',
                error_message: message,
                price_amount: null,
                price_currency: null,
                updated_at: now,
              };
              changed.push(next);
              announce.push(next);
              history.push({ messageId: row.id, status: 'SUPPRESSED', at: now, detail: message });
              leftIds.push(row.id);
              const counting = inWindow.get(row.id);
              if (counting) counting.status = 'SUPPRESSED';
              counts.suppressed++;
              continue;
            }
          }
          if (policyApplies && quiet && tz && inQuietHours(now, tz, policy.quietHoursStart, policy.quietHoursEnd)) {
            const until = quietHoursEnd(now, tz, policy.quietHoursStart, policy.quietHoursEnd);
            changed.push({ ...row, not_before: until, updated_at: now });
            history.push({ messageId: row.id, status: 'SCHEDULED', at: now, detail: quietHoursDetail(policy, tz, until) });
            heldIds.push(row.id);
            counts.held++;
            continue;
          }
          const next: MessageRow = { ...row, status: 'QUEUED', not_before: now, updated_at: now };
          changed.push(next);
          announce.push(next);
          const why = !policyApplies
            ? 'released: due'
            : quiet
              ? `released: outside quiet hours ${policy.quietHoursStart}–${policy.quietHoursEnd} in ${tz}`
              : 'released: no quiet hours';
          history.push({ messageId: row.id, status: 'QUEUED', at: now, detail: why });
          leftIds.push(row.id);
          const counting = inWindow.get(row.id);
          if (counting) counting.status = 'QUEUED';
          counts.queued++;
        }
        await writeChanges(trx, { rows: changed, history, announce }, this.ctx.clock);
        if (leftIds.length > 0) await trx.deleteFrom('message_waits').where('message_id', 'in', leftIds).execute();
        if (heldIds.length > 0) {
          await trx
            .insertInto('message_waits')
            .values(heldIds.map((id) => ({ message_id: id, waiting_for: 'QUIET_HOURS' as const })))
            .onConflict((oc) => oc.column('message_id').doNothing())
            .execute();
        }
        return counts;
      }),
    );
    this.stats.released += result.queued;
    this.stats.held += result.held;
    this.stats.suppressed += result.suppressed;
    if (result.queued > 0) this.ctx.kickDispatcher();
    if (result.queued + result.suppressed > 0) this.ctx.outbox.kick();
    if (result.claimed > 0) this.ctx.logger.debug(result, 'released scheduled messages');
    return result.claimed;
  }
}
