import { isDeepStrictEqual } from 'node:util';
import { sql, type Transaction } from 'kysely';
import { newId } from '@textloop/events';
import { addDuration, enqueueEvents, markProcessed, parseDuration, parseSignedDuration, type OutboxEntry } from '@textloop/service-kit';
import type { AutomationRow } from './automations';
import { EVENT_SOURCE, type SchedulingContext } from './context';
import type { Database, StepStatus, StoredStep } from './db/database';
import { isErased, lockAgainstErasure } from './erasure';

/** An event as automations see it: an application event, or a built-in one mapped from a service's subject. */
export interface TriggerEvent {
  /** CloudEvent id: the same event delivered twice starts one run */
  eventId: string;
  contactId: string;
  name: string;
  properties: Record<string, unknown>;
  /** when the event was published (CloudEvent time) */
  time: string;
}

/**
 * Replaying a stream from the start (a new instance, a recreated consumer) must not start runs of
 * automations created after the event. A minute of slack covers clocks that differ between hosts.
 */
export const CLOCK_SLACK_MS = 60_000;

export interface PlannedStep {
  index: number;
  type: StoredStep['type'];
  dueAt: Date;
  status: StepStatus;
}

export type Plan = { ok: true; steps: PlannedStep[] } | { ok: false; reason: string };

/** Whole or partial ISO-8601 date-times with a zone, e.g. 2026-11-28T15:00:00Z or 2026-11-28T15:00:00+05:30. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * Due times of an automation's steps for one trigger: each step runs `delay` after the previous
 * one (the first after the trigger), or at `event[relativeTo] + offset`. A step whose time is
 * already past when the run starts is SKIPPED (a reminder for an appointment booked too late).
 */
export function planSteps(steps: StoredStep[], properties: Record<string, unknown>, start: Date): Plan {
  const planned: PlannedStep[] = [];
  let previous = start;
  for (const [index, step] of steps.entries()) {
    let dueAt: Date;
    if (step.relativeTo) {
      const value = properties[step.relativeTo];
      if (typeof value !== 'string' || !DATE_TIME.test(value) || Number.isNaN(Date.parse(value))) {
        const got = value === undefined ? 'it is missing' : `got ${JSON.stringify(value)}`;
        return {
          ok: false,
          reason: `step ${index}: the event property "${step.relativeTo}" must be an ISO-8601 date-time with a zone such as 2026-11-28T15:00:00Z; ${got}`,
        };
      }
      const offset = step.offset ? parseSignedDuration(step.offset)! : { sign: 1 as const, duration: parseDuration('PT0S')! };
      dueAt = addDuration(new Date(value), offset.duration, offset.sign);
    } else {
      dueAt = step.delay ? addDuration(previous, parseDuration(step.delay)!) : previous;
    }
    planned.push({ index, type: step.type, dueAt, status: dueAt.getTime() < start.getTime() ? 'SKIPPED' : 'PENDING' });
    previous = dueAt;
  }
  return { ok: true, steps: planned };
}

/** Equality on every property the filter names (numbers, strings, nested values). */
export function matchesFilter(filter: Record<string, unknown> | null, properties: Record<string, unknown>): boolean {
  if (!filter) return true;
  return Object.entries(filter).every(([key, value]) => isDeepStrictEqual(properties[key], value));
}

/** The run key of an event for an automation: the runKey property's value, as text. */
export function runKeyOf(automation: Pick<AutomationRow, 'run_key'>, properties: Record<string, unknown>): string | null {
  if (!automation.run_key) return null;
  const value = properties[automation.run_key];
  if (value === undefined || value === null || value === '') return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

interface EndedRun {
  id: string;
  automation_id: string;
  contact_id: string;
  run_key: string | null;
}

/** Ends the given active runs (REPLACED or CANCELED) and cancels their pending steps; returns the ended runs. */
async function endRuns(trx: Transaction<Database>, runIds: string[], status: 'REPLACED' | 'CANCELED', now: Date): Promise<EndedRun[]> {
  if (runIds.length === 0) return [];
  const ended = await trx
    .updateTable('automation_runs')
    .set({ status, updated_at: now })
    .where('id', 'in', runIds)
    .where('status', '=', 'ACTIVE')
    .returning(['id', 'automation_id', 'contact_id', 'run_key'])
    .execute();
  if (ended.length > 0) {
    await trx
      .updateTable('scheduled_steps')
      .set({ status: 'CANCELED' })
      .where(
        'run_id',
        'in',
        ended.map((r) => r.id),
      )
      .where('status', '=', 'PENDING')
      .execute();
  }
  return ended;
}

function canceledEvents(runs: EndedRun[], reason: string): OutboxEntry[] {
  return runs.map((r) => ({
    subject: 'scheduling.run.canceled' as const,
    data: { runId: r.id, automationId: r.automation_id, contactId: r.contact_id, key: r.run_key, reason },
  }));
}

/**
 * Applies one event to every automation: cancels the runs it cancels (cancelOn, same contact and
 * key), then starts a run of each enabled automation it triggers, replacing a pending run with the
 * same key. All in one transaction with the consumer's processed mark, so a redelivered event
 * changes nothing. Returns the number of runs started.
 */
export async function applyEvent(ctx: SchedulingContext, consumer: string, event: TriggerEvent): Promise<number> {
  let started = 0;
  let soonest: number | undefined;
  // Most events (every delivery report, for one) concern no automation: find out without a transaction.
  const automations = await ctx.db
    .selectFrom('automations')
    .selectAll()
    .where((eb) =>
      eb.or([eb.and([eb('enabled', '=', true), eb('trigger_event', '=', event.name)]), sql<boolean>`${sql.ref('cancel_on')} @> ARRAY[${event.name}]::text[]`]),
    )
    .orderBy('created_at')
    .execute();
  if (automations.length === 0) return 0;
  await ctx.db.transaction().execute(async (trx) => {
    if (!(await markProcessed(trx, consumer, event.eventId))) return;
    // The contact may have been erased before this event was handled (erasure has its own
    // consumer): start nothing for it. The shared lock makes a concurrent erasure wait for this
    // transaction and then delete what it wrote.
    await lockAgainstErasure(trx, event.contactId);
    if (await isErased(trx, event.contactId)) {
      ctx.logger.debug({ contactId: event.contactId, event: event.name }, 'event of an erased contact ignored');
      return;
    }
    // Events are handled concurrently (the consumer keeps many in flight, and instances share it), so
    // a booking and its re-booking or cancellation can be in two transactions at once, each finding
    // no committed ACTIVE run to replace or cancel: the contact would get both sets of reminders, or
    // reminders for a cancelled appointment. Serialise the events of one automation, contact and key
    // (locks taken in sorted order, so two events cannot deadlock on them; a hash collision only
    // serialises more). The run lookups below are later statements and see what the other committed.
    const locks = [...new Set(automations.map((a) => JSON.stringify([a.id, event.contactId, runKeyOf(a, event.properties)])))].sort();
    for (const lock of locks) await sql`select pg_advisory_xact_lock(hashtextextended(${lock}, 0))`.execute(trx);
    const now = ctx.clock.now();
    const eventTime = Date.parse(event.time);
    const outbox: OutboxEntry[] = [];

    for (const automation of automations.filter((a) => a.cancel_on.includes(event.name))) {
      const key = runKeyOf(automation, event.properties);
      // With a runKey, only the run for the same key (the same appointment) is canceled.
      if (automation.run_key && key === null) continue;
      let query = trx
        .selectFrom('automation_runs')
        .select('id')
        .where('automation_id', '=', automation.id)
        .where('contact_id', '=', event.contactId)
        .where('status', '=', 'ACTIVE');
      if (key !== null) query = query.where('run_key', '=', key);
      const ids = (await query.forUpdate().execute()).map((r) => r.id);
      outbox.push(...canceledEvents(await endRuns(trx, ids, 'CANCELED', now), `canceled by ${event.name}`));
    }

    for (const automation of automations) {
      if (!automation.enabled || automation.trigger_event !== event.name) continue;
      // Only events newer than the automation (since it was last switched on) start runs.
      if (automation.enabled_at.getTime() > eventTime + CLOCK_SLACK_MS) continue;
      if (!matchesFilter(automation.trigger_filter, event.properties)) continue;
      const key = runKeyOf(automation, event.properties);
      if (key !== null) {
        const previous = await trx
          .selectFrom('automation_runs')
          .select('id')
          .where('automation_id', '=', automation.id)
          .where('contact_id', '=', event.contactId)
          .where('run_key', '=', key)
          .where('status', '=', 'ACTIVE')
          .forUpdate()
          .execute();
        outbox.push(
          ...canceledEvents(
            await endRuns(
              trx,
              previous.map((r) => r.id),
              'REPLACED',
              now,
            ),
            'replaced by a new trigger with the same key',
          ),
        );
      }
      const plan = planSteps(automation.steps, event.properties, now);
      const runId = newId();
      const pending = plan.ok ? plan.steps.filter((s) => s.status === 'PENDING') : [];
      const status = !plan.ok ? 'FAILED' : pending.length === 0 ? 'COMPLETED' : 'ACTIVE';
      await trx
        .insertInto('automation_runs')
        .values({
          id: runId,
          automation_id: automation.id,
          contact_id: event.contactId,
          status,
          run_key: key,
          trigger_event_id: event.eventId,
          trigger_name: event.name,
          trigger_properties: JSON.stringify(event.properties),
          failure: plan.ok ? null : plan.reason,
          created_at: now,
          updated_at: now,
        })
        .execute();
      if (!plan.ok) {
        ctx.logger.warn({ automationId: automation.id, contactId: event.contactId, reason: plan.reason }, 'automation run failed to start');
        continue;
      }
      await trx
        .insertInto('scheduled_steps')
        .values(plan.steps.map((s) => ({ id: newId(), run_id: runId, step_index: s.index, type: s.type, due_at: s.dueAt, status: s.status })))
        .execute();
      const ref = { runId, automationId: automation.id, contactId: event.contactId, key };
      outbox.push({ subject: 'scheduling.run.started', data: ref });
      if (status === 'COMPLETED') outbox.push({ subject: 'scheduling.run.completed', data: ref });
      for (const s of pending) soonest = Math.min(soonest ?? Infinity, s.dueAt.getTime());
      started++;
    }
    await enqueueEvents(trx, EVENT_SOURCE, outbox, ctx.clock);
  });
  ctx.outbox.kick();
  if (soonest !== undefined) ctx.kickTimers();
  return started;
}
