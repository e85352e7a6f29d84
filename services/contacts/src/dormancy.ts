import { sql } from 'kysely';
import { ConfigError } from '@textloop/service-kit';
import { spellStart, type ContactsDeps } from './contacts';
import { publishInTransaction, type ContactEvent } from './events/publish';

export const DEFAULT_THRESHOLDS = [30, 60, 90];
export const DEFAULT_SWEEP_INTERVAL_MS = 60 * 60 * 1000;
const BATCH = 500;

/** DORMANCY_THRESHOLDS, e.g. "30,60,90": whole days, ascending, no repeats. */
export function parseThresholds(raw: string | undefined): number[] {
  if (raw === undefined || raw.trim() === '') return DEFAULT_THRESHOLDS;
  const days = raw.split(',').map((part) => Number(part.trim()));
  if (days.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new ConfigError(`DORMANCY_THRESHOLDS must be a comma-separated list of whole days above 0, e.g. "30,60,90"; got "${raw}"`);
  }
  return [...new Set(days)].sort((a, b) => a - b);
}

/** DORMANCY_SWEEP_INTERVAL_MS; 0 turns the periodic sweep off (runDormancySweep still works). */
export function parseSweepInterval(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_SWEEP_INTERVAL_MS;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0)
    throw new ConfigError(`DORMANCY_SWEEP_INTERVAL_MS must be a whole number of milliseconds (0 disables the sweep); got "${raw}"`);
  return ms;
}

/**
 * Announces every contact whose inactivity spell (since max(lastActiveAt, createdAt)) crossed a
 * threshold not yet announced in that spell: one contacts.contact.dormant per contact and threshold.
 * Batches lock their rows with SKIP LOCKED, so concurrent sweeps (several instances, or the
 * mutation during the periodic run) never announce the same threshold twice.
 * Returns how many were flagged (dormant events published).
 */
export async function runDormancySweep(deps: ContactsDeps, thresholds: number[]): Promise<number> {
  if (thresholds.length === 0) return 0;
  const now = deps.clock.now();
  const smallest = Math.min(...thresholds);
  let flagged = 0;
  for (;;) {
    const { contacts, events } = await deps.db.transaction().execute(async (trx) => {
      const due = await trx
        .selectFrom('contacts')
        .select(['id', 'last_active_at', 'dormant_notified_days'])
        .select(sql<Date>`${spellStart}`.as('since'))
        .select(
          sql<number[]>`array(select t.days from unnest(${thresholds}::integer[]) as t(days)
            where ${spellStart} <= ${now}::timestamptz - t.days * interval '24 hours'
              and not (t.days = any(dormant_notified_days)) order by t.days)`.as('crossed'),
        )
        .where(sql<boolean>`${spellStart} <= ${now}::timestamptz - ${smallest}::integer * interval '24 hours'`)
        .where(
          sql<boolean>`exists (select 1 from unnest(${thresholds}::integer[]) as t(days)
            where ${spellStart} <= ${now}::timestamptz - t.days * interval '24 hours'
              and not (t.days = any(dormant_notified_days)))`,
        )
        .orderBy('id')
        .limit(BATCH)
        .forUpdate()
        .skipLocked()
        .execute();
      if (due.length === 0) return { contacts: 0, events: 0 };
      await trx
        .updateTable('contacts')
        .set({
          dormant_notified_days: sql<number[]>`array(select distinct d from unnest(dormant_notified_days || array(
            select t.days from unnest(${thresholds}::integer[]) as t(days)
            where ${spellStart} <= ${now}::timestamptz - t.days * interval '24 hours')) as d order by d)`,
        })
        .where(
          'id',
          'in',
          due.map((c) => c.id),
        )
        .execute();
      const announcements: ContactEvent[] = due.flatMap((c) =>
        c.crossed.map((days) => ({
          subject: 'contacts.contact.dormant' as const,
          data: { contactId: c.id, days, lastActiveAt: c.last_active_at ? c.last_active_at.toISOString() : null },
        })),
      );
      await publishInTransaction(trx, deps.clock, announcements);
      return { contacts: due.length, events: announcements.length };
    });
    flagged += events;
    if (events > 0) deps.outbox.kick();
    if (contacts < BATCH) break;
  }
  if (flagged > 0) deps.logger.debug({ flagged }, 'dormancy sweep');
  return flagged;
}

/** Runs the sweep at start-up and then every interval; one run at a time. */
export class DormancySweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;

  constructor(
    private readonly deps: ContactsDeps,
    private readonly thresholds: number[],
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.intervalMs === 0) return;
    this.stopped = false;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  private tick(): void {
    if (this.running || this.stopped) return;
    this.running = runDormancySweep(this.deps, this.thresholds)
      .catch((err) => this.deps.logger.warn({ err: (err as Error).message }, 'dormancy sweep failed; will retry at the next interval'))
      .finally(() => {
        this.running = undefined;
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
