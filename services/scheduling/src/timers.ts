import { sql } from 'kysely';
import { enqueueEvents, WakeableSleep, type OutboxEntry } from '@textloop/service-kit';
import { EVENT_SOURCE, type SchedulingContext } from './context';
import type { MessageCategory, StoredStep } from './db/database';
import { issueCodes, offerVariables, type CodeRequest, type IssuedCode } from './offers';

export interface TimerOptions {
  /** rows claimed per transaction */
  batchSize: number;
  /** longest sleep when nothing is due soon; another instance's new rows are seen within this */
  maxSleepMs: number;
}

interface DueStep {
  id: string;
  run_id: string;
  step_index: number;
  automation_id: string;
  contact_id: string;
  trigger_properties: Record<string, unknown>;
  steps: StoredStep[];
  /** the run's contact is in erased_contacts */
  erased: boolean;
}

interface DueMessage {
  id: string;
  contact_id: string | null;
  to_number: string;
  body: string | null;
  template: string | null;
  variables: Record<string, unknown>;
  category: MessageCategory;
  /** the message's contact is in erased_contacts */
  erased: boolean;
}

/**
 * The command a due step sends; requestId = step id, so publishing it twice never acts twice. A
 * SEND_MESSAGE step with an offer passes the code issued for it as variables.offer.
 */
export function commandForStep(row: DueStep, code?: IssuedCode): OutboxEntry {
  const step = row.steps[row.step_index]!;
  const correlation = {
    automationId: row.automation_id,
    automationRunId: row.run_id,
    step: row.step_index,
    stepId: row.id,
    // Only steps with an offer: messaging's first event then names the message the code went out in.
    ...(code ? { offerCode: code.code } : {}),
  };
  switch (step.type) {
    case 'SEND_MESSAGE':
      return {
        subject: 'messaging.cmd.send',
        data: {
          requestId: row.id,
          contactId: row.contact_id,
          template: step.template,
          // Absent category: the template's own category applies.
          ...(step.category ? { category: step.category } : {}),
          variables: {
            event: row.trigger_properties,
            ...(step.offer && code ? { offer: offerVariables(step.offer, code.code, code.expiresAt) } : {}),
          },
          correlation,
        },
      } as OutboxEntry;
    case 'START_VERIFICATION':
      return {
        subject: 'messaging.cmd.verify',
        data: { requestId: row.id, contactId: row.contact_id, template: step.template, correlation },
      };
    case 'SEND_SURVEY':
      return {
        subject: 'feedback.cmd.send_survey',
        data: { requestId: row.id, surveyId: step.surveyId!, contactId: row.contact_id, correlation },
      };
  }
}

/**
 * The durable timers. Due automation steps and scheduled messages are rows; this loop claims the
 * due ones FOR UPDATE SKIP LOCKED in batches (so any number of instances share them), writes the
 * command each one sends into the outbox and marks it done, all in one transaction: a crash before
 * commit leaves the row pending, a crash after it leaves the command in the outbox, and the
 * command's requestId (the row id) makes a second publish harmless. Between batches it sleeps
 * until the next due time (or until kicked), never longer than maxSleepMs.
 */
export class Timers {
  private running = false;
  private loopDone: Promise<void> | undefined;
  private readonly sleeper = new WakeableSleep();
  readonly stats = { steps: 0, messages: 0, batches: 0 };

  constructor(
    private readonly ctx: SchedulingContext,
    private readonly options: TimerOptions,
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

  /** Call after committing rows that may be due before the loop's current sleep ends. */
  kick(): void {
    this.sleeper.kick();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.sleeper.takeKicked();
      let wait: number;
      try {
        const { batchSize, maxSleepMs } = this.options;
        const steps = await this.fireSteps(batchSize);
        const messages = await this.fireMessages(batchSize);
        failures = 0;
        if (steps === batchSize || messages === batchSize) continue;
        const next = await this.nextDue();
        wait = next === null ? maxSleepMs : Math.min(maxSleepMs, Math.max(0, next.getTime() - this.ctx.clock.now().getTime()));
      } catch (err) {
        failures++;
        wait = Math.min(100 * 2 ** failures, 5000);
        this.ctx.logger.warn({ err: (err as Error).message, failures }, 'timers could not fire due steps; will retry');
      }
      if (this.sleeper.kicked || !this.running) continue;
      // A due time in the past (another instance holds those rows) is retried shortly, not spun on.
      await this.sleeper.sleep(Math.max(wait, 10));
    }
  }

  private async nextDue(): Promise<Date | null> {
    const row = await sql<{ next: Date | null }>`
      select least(
        (select min(due_at) from scheduled_steps where status = 'PENDING'),
        (select min(send_at) from scheduled_messages where status = 'PENDING')
      ) as next`.execute(this.ctx.db);
    const next = row.rows[0]?.next;
    return next ? new Date(next) : null;
  }

  /** Fires up to `limit` due steps in one transaction; returns how many it claimed (fired, or dropped for an erased contact). */
  async fireSteps(limit: number): Promise<number> {
    const now = this.ctx.clock.now();
    const { claimed, fired } = await this.ctx.db.transaction().execute(async (trx) => {
      // The run rows are locked with the steps: two instances firing steps of the same run at once
      // would each still see the other's steps PENDING when deciding whether the run is complete,
      // and neither would complete it. With the run locked, one transaction at a time fires a run's
      // steps (another instance skips them until it commits), and the completion check below, a
      // later statement, sees every step fired before. SKIP LOCKED never waits, so this cannot
      // deadlock with applyEvent or message-links, which lock a run before its steps.
      //
      // A step of an erased contact is never fired. eraseContact deletes the contact's runs in the
      // transaction that records the erasure, and takes their row locks to do so: a step claimed
      // here before that commit fired before the erasure (and is deleted after it), one claimed
      // later no longer exists (rows locked meanwhile are skipped). A run written for the contact
      // all the same (before the erased list existed, restored from a backup) is dropped below.
      const due = await sql<DueStep>`
        select s.id, s.run_id, s.step_index, r.automation_id, r.contact_id, r.trigger_properties, a.steps,
               exists (select 1 from erased_contacts e where e.contact_id = r.contact_id) as erased
          from scheduled_steps s
          join automation_runs r on r.id = s.run_id
          join automations a on a.id = r.automation_id
         where s.status = 'PENDING' and s.due_at <= ${now}
         order by s.due_at
         limit ${limit}
           for update of s, r skip locked`.execute(trx);
      if (due.rows.length === 0) return { claimed: 0, fired: 0 };
      const erasedRuns = [...new Set(due.rows.filter((r) => r.erased).map((r) => r.run_id))];
      if (erasedRuns.length > 0) {
        await trx.deleteFrom('automation_runs').where('id', 'in', erasedRuns).execute();
        this.ctx.logger.warn({ runs: erasedRuns.length }, 'dropped runs of erased contacts instead of firing their steps');
      }
      const live = due.rows.filter((r) => !r.erased);
      if (live.length === 0) return { claimed: due.rows.length, fired: 0 };
      const ids = live.map((r) => r.id);
      // Offer codes are issued now, in the transaction that writes the command carrying them.
      const offers: CodeRequest[] = live.flatMap((r) => {
        const step = r.steps[r.step_index];
        return step?.type === 'SEND_MESSAGE' && step.offer
          ? [{ key: r.id, offer: step.offer, contactId: r.contact_id, automationId: r.automation_id, runId: r.run_id, stepId: r.id }]
          : [];
      });
      const codes = offers.length > 0 ? await issueCodes(trx, offers, now) : new Map<string, IssuedCode>();
      const commands = live.map((r) => commandForStep(r, codes.get(r.id)));
      await trx.updateTable('scheduled_steps').set({ status: 'DONE', executed_at: now }).where('id', 'in', ids).execute();
      const completed = await trx
        .updateTable('automation_runs')
        .set({ status: 'COMPLETED', updated_at: now })
        .where('id', 'in', [...new Set(live.map((r) => r.run_id))])
        .where('status', '=', 'ACTIVE')
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('scheduled_steps as p').select('p.id').whereRef('p.run_id', '=', 'automation_runs.id').where('p.status', '=', 'PENDING'))),
        )
        .returning(['id', 'automation_id', 'contact_id', 'run_key'])
        .execute();
      const done: OutboxEntry[] = completed.map((r) => ({
        subject: 'scheduling.run.completed',
        data: { runId: r.id, automationId: r.automation_id, contactId: r.contact_id, key: r.run_key },
      }));
      await enqueueEvents(trx, EVENT_SOURCE, [...commands, ...done], this.ctx.clock);
      return { claimed: due.rows.length, fired: live.length };
    });
    if (fired > 0) {
      this.stats.steps += fired;
      this.stats.batches++;
      this.ctx.outbox.kick();
    }
    return claimed;
  }

  /** Fires up to `limit` due scheduled messages in one transaction; returns how many it claimed (sent, or dropped for an erased contact). */
  async fireMessages(limit: number): Promise<number> {
    const now = this.ctx.clock.now();
    const { claimed, fired } = await this.ctx.db.transaction().execute(async (trx) => {
      // As for steps: eraseContact deletes the contact's messages (row locks, skipped here) in the
      // transaction that records the erasure; one written all the same is dropped, not sent.
      const due = await sql<DueMessage>`
        select m.id, m.contact_id, m.to_number, m.body, m.template, m.variables, m.category,
               (m.contact_id is not null and exists (select 1 from erased_contacts e where e.contact_id = m.contact_id)) as erased
          from scheduled_messages m
         where m.status = 'PENDING' and m.send_at <= ${now}
         order by m.send_at
         limit ${limit}
           for update of m skip locked`.execute(trx);
      if (due.rows.length === 0) return { claimed: 0, fired: 0 };
      const erased = due.rows.filter((m) => m.erased).map((m) => m.id);
      if (erased.length > 0) {
        await trx.deleteFrom('scheduled_messages').where('id', 'in', erased).execute();
        this.ctx.logger.warn({ messages: erased.length }, 'dropped scheduled messages of erased contacts instead of sending them');
      }
      const live = due.rows.filter((m) => !m.erased);
      if (live.length === 0) return { claimed: due.rows.length, fired: 0 };
      const commands: OutboxEntry[] = live.map((m) => ({
        subject: 'messaging.cmd.send',
        data: {
          requestId: m.id,
          ...(m.contact_id ? { contactId: m.contact_id } : { to: m.to_number }),
          ...(m.template ? { template: m.template } : { body: m.body }),
          variables: m.variables,
          category: m.category,
          correlation: { scheduledMessageId: m.id },
        },
      }));
      await trx
        .updateTable('scheduled_messages')
        .set({ status: 'SENT', updated_at: now })
        .where(
          'id',
          'in',
          live.map((r) => r.id),
        )
        .execute();
      await enqueueEvents(trx, EVENT_SOURCE, commands, this.ctx.clock);
      return { claimed: due.rows.length, fired: live.length };
    });
    if (fired > 0) {
      this.stats.messages += fired;
      this.stats.batches++;
      this.ctx.outbox.kick();
    }
    return claimed;
  }
}
