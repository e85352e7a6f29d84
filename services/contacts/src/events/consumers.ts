import { startConsumer, type ConsumerOptions, type RunningConsumer } from '@textloop/events';
import type { ContactsDeps } from '../contacts';
import type { Nats } from '@textloop/service-kit';
import { ACTIVITY_DURABLE, handleMessageReceived } from './handlers/messaging.message.received';
import { handleVerificationApproved, VERIFICATION_DURABLE } from './handlers/messaging.verification.approved';

const RETRY_MS = 1000;

/**
 * The consumers contacts runs. They read MESSAGING, which messaging creates: until it exists we
 * retry quietly instead of failing start-up, so the services can start in any order.
 */
export class Consumers {
  private running: RunningConsumer[] = [];
  private stopped = false;
  private pending: Array<Promise<void>> = [];
  private sleepers = new Set<() => void>();

  constructor(private readonly deps: ContactsDeps & { nats: Nats }) {}

  start(): void {
    this.stopped = false;
    const { deps } = this;
    // 'all': a durable created after messaging already published (either may start first) still
    // sees those events; the handlers are idempotent and the stream keeps 14 days at most.
    const base = { js: deps.nats.js, jsm: deps.nats.jsm, logger: deps.logger, deliver: 'all' } as const;
    this.launch({ ...base, stream: 'MESSAGING', durable: ACTIVITY_DURABLE, filterSubjects: ['messaging.message.received'], handle: (event) => handleMessageReceived(deps, event) });
    this.launch({ ...base, stream: 'MESSAGING', durable: VERIFICATION_DURABLE, filterSubjects: ['messaging.verification.approved'], handle: (event) => handleVerificationApproved(deps, event) });
  }

  private launch(options: ConsumerOptions): void {
    let warned = false;
    const attempt = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        const consumer = await startConsumer(options);
        if (this.stopped) await consumer.stop();
        else this.running.push(consumer);
      } catch (err) {
        if (this.stopped) return;
        if (!warned) {
          warned = true;
          this.deps.logger.info({ stream: options.stream, durable: options.durable, err: (err as Error).message }, 'waiting for the stream to consume from');
        }
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            this.sleepers.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, RETRY_MS);
          this.sleepers.add(wake);
        });
        return attempt();
      }
    };
    this.pending.push(attempt());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of [...this.sleepers]) wake();
    await Promise.allSettled(this.pending);
    await Promise.all(this.running.map((c) => c.stop()));
    this.running = [];
    this.pending = [];
  }
}
