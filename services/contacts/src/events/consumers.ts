import { startConsumerWhenReady, type ConsumerOptions, type PendingConsumer } from '@textloop/events';
import type { Nats } from '@textloop/service-kit';
import type { ContactsDeps } from '../contacts';
import { ACTIVITY_DURABLE, handleMessageReceived } from './handlers/messaging.message.received';
import { handleVerificationApproved, VERIFICATION_DURABLE } from './handlers/messaging.verification.approved';

/**
 * The consumers contacts runs. They read MESSAGING, which messaging creates: until it exists they
 * wait in the background instead of failing start-up, so the services can start in any order.
 */
export class Consumers {
  private pending: PendingConsumer[] = [];

  constructor(private readonly deps: ContactsDeps & { nats: Nats }) {}

  start(): void {
    const { deps } = this;
    // 'all': a durable created after messaging already published (either may start first) still
    // sees those events; the handlers are idempotent and the stream keeps 14 days at most.
    const base = { js: deps.nats.js, jsm: deps.nats.jsm, logger: deps.logger, deliver: 'all' } as const satisfies Partial<ConsumerOptions>;
    this.pending = [
      startConsumerWhenReady({
        ...base,
        stream: 'MESSAGING',
        durable: ACTIVITY_DURABLE,
        filterSubjects: ['messaging.message.received'],
        handle: (event) => handleMessageReceived(deps, event),
      }),
      startConsumerWhenReady({
        ...base,
        stream: 'MESSAGING',
        durable: VERIFICATION_DURABLE,
        filterSubjects: ['messaging.verification.approved'],
        handle: (event) => handleVerificationApproved(deps, event),
      }),
    ];
  }

  async stop(): Promise<void> {
    await Promise.all(this.pending.map((c) => c.stop()));
    this.pending = [];
  }
}
