import { sql, type Generated, type Kysely, type Transaction } from 'kysely';
import type { NatsConnection } from 'nats';
import { createEvent, publishBatch, type CloudEvent, type EventInput, type Subject } from '@textloop/events';
import type { Logger } from 'pino';
import type { Clock } from './clock';

interface OutboxTables {
  outbox: { id: string; subject: string; event: unknown; created_at: Generated<Date> };
}

export interface OutboxEntry<S extends Subject = Subject> {
  subject: S;
  data: EventInput<S>;
}

/**
 * Writes events into the outbox inside the caller's transaction, so they exist iff the state
 * change commits. `source` is textloop/<service>.
 */
export async function enqueueEvents(
  trx: Transaction<any> | Kysely<any>,
  source: string,
  entries: Array<OutboxEntry | { subject: string; data: unknown }>,
  clock?: Clock,
): Promise<CloudEvent[]> {
  if (entries.length === 0) return [];
  const time = clock?.now() ?? new Date();
  const events = entries.map((e) => createEvent({ source, type: e.subject, data: e.data, time }));
  await (trx as Kysely<OutboxTables>)
    .insertInto('outbox')
    .values(events.map((event) => ({ id: event.id, subject: event.type, event: JSON.stringify(event) })))
    .execute();
  return events;
}

/**
 * Publishes outbox rows to JetStream with Nats-Msg-Id = event id and deletes them after the ack.
 * Rows are claimed FOR UPDATE SKIP LOCKED so several instances share the work; a crash between
 * publish and delete re-publishes, which the stream's duplicate window drops.
 */
export class OutboxRelay {
  private running = false;
  private wake?: () => void;
  private loopDone?: Promise<void>;
  private kicked = false;
  published = 0;
  refused = 0;

  constructor(
    private readonly db: Kysely<any>,
    private readonly nc: NatsConnection,
    private readonly logger: Logger,
    /**
     * lockRows (Postgres): claim rows FOR UPDATE SKIP LOCKED inside a transaction, so instances
     * share the work. Embedded PGlite has one connection and one instance: holding a transaction
     * open while waiting on NATS would stall every other query, so it reads, publishes, then deletes.
     */
    private readonly options: { batchSize?: number; idleMs?: number; lockRows?: boolean } = {},
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Call after committing a transaction that enqueued events: publishes without waiting for the poll. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loopDone;
  }

  /** Publishes everything pending now; used by tests and shutdown. */
  async drain(): Promise<void> {
    while ((await this.publishBatch()) > 0);
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        this.kicked = false;
        const n = await this.publishBatch();
        failures = 0;
        if (n > 0 || this.kicked) continue;
      } catch (err) {
        failures++;
        this.logger.warn({ err: (err as Error).message, failures }, 'outbox publish failed; will retry');
        await sleep(Math.min(200 * 2 ** failures, 5000));
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.idleMs ?? 250);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private async publishBatch(): Promise<number> {
    if (this.options.lockRows === false) return this.publishRows(this.db, '');
    return this.db.transaction().execute((trx) => this.publishRows(trx, 'for update skip locked'));
  }

  private async publishRows(db: Kysely<any>, lock: '' | 'for update skip locked'): Promise<number> {
    const limit = this.options.batchSize ?? 500;
    // event::text: published as stored, without parsing and re-serialising each one.
    const rows = await sql<{ id: string; subject: string; event: string }>`
      select id, subject, event::text as event from outbox order by id limit ${limit} ${sql.raw(lock)}`.execute(db);
    if (rows.rows.length === 0) return 0;
    const { acked, refused } = await publishBatch(
      this.nc,
      rows.rows.map((r) => ({ subject: r.subject, id: r.id, payload: r.event })),
    );
    // One array parameter rather than a placeholder per row: the statement text (and its parse and
    // plan) stays the same whatever the batch size.
    if (acked.length) await sql`delete from outbox where id = any(${acked}::uuid[])`.execute(db);
    if (refused.length) {
      // Refused rows stay and are retried; they must not hold back the events behind them.
      this.refused += refused.length;
      const first = refused[0]!;
      if (acked.length === 0) throw new Error(`JetStream refused ${refused.length} outbox events (first ${first.id}: ${first.reason})`);
      this.logger.warn({ refused: refused.length, first }, 'JetStream refused outbox events; they stay queued and are retried');
    }
    this.published += acked.length;
    return acked.length;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Records that `consumer` handled `eventId`; false when it already had. Call inside the same
 * transaction as the handler's writes so effect and record commit together.
 */
export async function markProcessed(trx: Transaction<any> | Kysely<any>, consumer: string, eventId: string): Promise<boolean> {
  const res = await sql`insert into processed_events (consumer, event_id) values (${consumer}, ${eventId}) on conflict do nothing`.execute(trx);
  return Number(res.numAffectedRows ?? 0) > 0;
}
