import { sql } from 'kysely';
import { retireDurables, startConsumer, type CloudEvent, type PendingConsumer, type RunningConsumer } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';
import { CLOCK_SLACK_MS } from '../triggers';

export const DELIVERED_DURABLE = 'scheduling-delivered';
const TRIGGER = 'message.delivered';
/** How often each instance checks whether an automation needs deliveries (and after its own changes at once). */
const RECONCILE_MS = 5000;

/**
 * Since when an automation needs messaging.message.delivered — one that triggers on, or is cancelled
 * by, the built-in message.delivered: the earliest time such an automation was switched on — or
 * undefined when none does.
 */
export async function deliveriesNeededSince(deps: Pick<ServiceDeps<Database>, 'db'>): Promise<Date | undefined> {
  const row = await deps.db
    .selectFrom('automations')
    .select(sql<Date | null>`min(enabled_at)`.as('since'))
    .where((eb) => eb.or([eb.and([eb('enabled', '=', true), eb('trigger_event', '=', TRIGGER)]), sql<boolean>`${TRIGGER} = any(${sql.ref('cancel_on')})`]))
    .executeTakeFirst();
  return row?.since ? new Date(row.since) : undefined;
}

/**
 * The built-in message.delivered trigger, read only while an automation uses it. Every delivered
 * message publishes messaging.message.delivered, and a bulk send is thousands of them a second;
 * most installs have no automation on deliveries, and a durable consumer would read (and
 * acknowledge) every one of them for nothing. So the durable exists only while some automation
 * needs it: created when one does, starting a minute (triggers.ts's clock slack) before the
 * earliest time such an automation was switched on (automations react only to events newer than
 * that, so nothing they could use is skipped, and deliveries from while they were off start
 * nothing), and deleted when none does. Instances reconcile on their own every few seconds (and at once after their own
 * changes); several instances share the durable like any other.
 */
export class DeliveredTriggerFeed implements PendingConsumer {
  private consumer: RunningConsumer | undefined;
  /** The durable was deleted (or found missing) since the last time one was needed. */
  private retired = false;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  readonly ready: Promise<RunningConsumer | undefined> = Promise.resolve(undefined);

  constructor(
    private readonly deps: ServiceDeps<Database>,
    private readonly handle: (event: CloudEvent<any>, subject: string) => Promise<void>,
  ) {}

  start(): void {
    this.kick();
    this.timer = setInterval(() => this.kick(), RECONCILE_MS);
    this.timer.unref();
  }

  /** Reconciles now (after an automation was created, enabled or disabled here). */
  kick(): void {
    this.chain = this.chain.then(() => this.reconcile()).catch(() => undefined);
  }

  /** Settles when the reconciliations asked for so far are done (tests). */
  settled(): Promise<void> {
    return this.chain;
  }

  get running(): boolean {
    return this.consumer !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.chain;
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const { js, jsm } = this.deps.nats;
    try {
      const since = await deliveriesNeededSince(this.deps);
      if (since && !this.consumer) {
        // JetStream stamps messages with the real time; a clock set ahead (tests) must not skip any.
        const startTime = new Date(Math.min(since.getTime() - CLOCK_SLACK_MS, Date.now()));
        this.consumer = await startConsumer({
          js,
          jsm,
          stream: 'MESSAGING',
          durable: DELIVERED_DURABLE,
          filterSubjects: ['messaging.message.delivered'],
          deliver: { startTime },
          logger: this.deps.logger,
          // A delivery without a contact starts nothing.
          ignore: (_subject, data) => typeof data?.contactId !== 'string',
          handle: this.handle,
        });
        this.retired = false;
        this.deps.logger.info({ since: startTime.toISOString() }, 'an automation uses message.delivered: reading deliveries');
      } else if (!since && (this.consumer || !this.retired)) {
        await this.consumer?.stop();
        this.consumer = undefined;
        await retireDurables(jsm, 'MESSAGING', [DELIVERED_DURABLE], this.deps.logger);
        this.retired = true;
      }
    } catch (err) {
      // The stream may not exist yet (messaging starts later), or the database is away: next round.
      this.deps.logger.debug({ err: (err as Error).message }, 'could not reconcile the message.delivered consumer; will retry');
    }
  }
}
