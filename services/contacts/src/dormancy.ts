import { sql } from 'kysely';
import { ConfigError } from '@textloop/service-kit';
import { DAY_MS, spellStart, type ContactsDeps } from './contacts';
import { EVENT_SOURCE } from './events/publish';

export const DEFAULT_THRESHOLDS = [30, 60, 90];
export const DEFAULT_SWEEP_INTERVAL_MS = 60 * 60 * 1000;

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

/** Contacts locked and flagged per statement: bounds how long a contact's row stays locked. */
export const SWEEP_BATCH = 20_000;

/**
 * One statement per batch: finds contacts whose inactivity spell crossed a threshold not yet
 * announced in that spell — for each threshold t, one range of contacts_inactivity_idx,
 * `since <= now - t days and dormant_days < t`, combined in a BitmapOr so the rows are then read in
 * table order — locks them (SKIP LOCKED: a contact being updated right now is left to the next
 * batch or sweep, and concurrent sweeps share the work), raises dormant_days to the highest
 * threshold each crossed, and writes one contacts.contact.dormant outbox row per threshold crossed.
 * Nothing is read into Node.
 *
 * Event ids are UUIDv7 made in SQL: the statement's wall-clock millisecond plus a sequence
 * (threshold, then contact), so the relay publishes a contact's thresholds in ascending order.
 */
export function sweepStatement(thresholds: number[], now: Date, batch = SWEEP_BATCH) {
  const cutoffs = thresholds.map((days) => new Date(now.getTime() - days * DAY_MS));
  const crossedAny = sql.join(
    thresholds.map((days, i) => sql`(${spellStart} <= ${cutoffs[i]!}::timestamptz and dormant_days < ${days}::integer)`),
    sql` or `,
  );
  return sql<{ contacts: number; events: number }>`
    with due as (
      select id, last_active_at, dormant_days, ${spellStart} as since
        from contacts
       where ${crossedAny}
       limit ${batch}
         for update skip locked
    ), numbered as (
      select due.*, row_number() over () as rn from due
    ), crossed as (
      select d.id as contact_id, d.last_active_at, t.days, t.k * ${batch}::bigint + d.rn as n
        from numbered d
        join unnest(${thresholds}::integer[], ${cutoffs.map((c) => c.toISOString())}::timestamptz[]) with ordinality as t(days, cutoff, k)
          on t.days > d.dormant_days and d.since <= t.cutoff
    ), raised as (
      update contacts c
         set dormant_days = m.days
        from (select contact_id, max(days) as days from crossed group by contact_id) m
       where c.id = m.contact_id
    ), base as (
      select (extract(epoch from clock_timestamp()) * 1000)::bigint as ms
    ), queued as (
      insert into outbox (id, subject, event)
      select e.event_id, 'contacts.contact.dormant',
             jsonb_build_object(
               'specversion', '1.0', 'id', e.event_id, 'source', ${EVENT_SOURCE}::text, 'type', 'contacts.contact.dormant',
               'time', ${now.toISOString()}::text, 'datacontenttype', 'application/json',
               'data', jsonb_build_object(
                 'contactId', e.contact_id, 'days', e.days,
                 'lastActiveAt', to_char(e.last_active_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
        from (select c.*, (substr(h.hex, 1, 8) || '-' || substr(h.hex, 9, 4) || '-7' || lpad(to_hex(c.n % 4096), 3, '0')
                           || substr(gen_random_uuid()::text, 19))::uuid as event_id
                from crossed c, base,
                     lateral (select lpad(to_hex(base.ms + c.n / 4096), 12, '0') as hex) h) e
    )
    select (select count(*) from due)::int as contacts, (select count(*) from crossed)::int as events`;
}

async function sweepBatch(deps: ContactsDeps, thresholds: number[], now: Date, batch: number): Promise<{ contacts: number; events: number }> {
  return deps.db.transaction().execute(async (trx) => {
    // The planner cannot know that since and dormant_days are correlated (a contact long inactive
    // has been flagged already), so it expects a large share of the table to match and prefers a
    // sequential scan: 1,000,000 rows read for a sweep with nothing to do, where the index ranges
    // find the few due contacts directly. For the same overestimate JIT would spend ~80 ms
    // compiling the statement.
    await sql`set local enable_seqscan = off`.execute(trx);
    await sql`set local jit = off`.execute(trx);
    const { rows } = await sweepStatement(thresholds, now, batch).execute(trx);
    return rows[0] ?? { contacts: 0, events: 0 };
  });
}

/**
 * Flags every contact whose inactivity spell crossed a threshold not yet announced in it: one
 * contacts.contact.dormant { contactId, days, lastActiveAt } per contact and threshold. Returns how
 * many were flagged (events written). Set-based: a few statements, however many contacts there are.
 *
 * - The spell starts at coalesce(lastActiveAt, createdAt): a contact never active counts as
 *   inactive since it was created. Activity after that start ends the spell (recordActivity resets
 *   dormant_days), and the thresholds are announced again in the next one.
 * - A contact that crossed several thresholds since the last sweep (a long gap, or history imported
 *   with old occurredAt) gets one event for each of them, in ascending order.
 * - Unsubscribed contacts are flagged too: dormancy is a fact about activity. Sending is what
 *   consent governs, and campaigns and the messaging policy exclude unsubscribed contacts.
 * - Only contacts.contact.dormant is published, never events.contact.dormant: scheduling maps
 *   contacts.contact.dormant to the built-in automation event contact.dormant with properties
 *   { days, lastActiveAt }; publishing both would start every dormancy automation twice.
 */
export async function runDormancySweep(deps: ContactsDeps, thresholds: number[], options: { batch?: number } = {}): Promise<number> {
  if (thresholds.length === 0) return 0;
  const days = [...new Set(thresholds)].sort((a, b) => a - b);
  const now = deps.clock.now();
  const batch = options.batch ?? SWEEP_BATCH;
  let flagged = 0;
  for (;;) {
    const done = await sweepBatch(deps, days, now, batch);
    flagged += done.events;
    if (done.events > 0) deps.outbox.kick();
    if (done.contacts < batch) break;
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
