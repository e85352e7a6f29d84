import { startConsumer, type RunningConsumer } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';
import { CONTACT_ERASURE_DURABLE, handleContactDeleted } from './handlers/contacts-contact-deleted';

const RETRY_MS = 1000;
/** Contacts usually creates its stream within seconds; only a longer wait is worth a warning. */
const WARN_AFTER_MS = 30_000;

/**
 * Consumes contacts.contact.deleted. The CONTACTS stream belongs to contacts, which may start after
 * us, so the consumer is attached in the background once the stream exists. It replays the stream
 * on first creation ('all'): an erasure must not be missed because it happened before we started.
 */
export function startConsumers(deps: ServiceDeps<Database>): { stop(): Promise<void> } {
  let stopped = false;
  let consumer: RunningConsumer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let warned = false;
  const since = Date.now();
  let attempt: Promise<void> | undefined;
  const attach = async (): Promise<void> => {
    try {
      const started = await startConsumer({
        js: deps.nats.js,
        jsm: deps.nats.jsm,
        stream: 'CONTACTS',
        durable: CONTACT_ERASURE_DURABLE,
        filterSubjects: ['contacts.contact.deleted'],
        deliver: 'all',
        handle: handleContactDeleted(deps),
        logger: deps.logger,
      });
      if (stopped) await started.stop();
      else consumer = started;
    } catch (err) {
      if (stopped) return;
      if (!warned && Date.now() - since > WARN_AFTER_MS) {
        warned = true;
        deps.logger.warn({ err: (err as Error).message }, 'still waiting for the CONTACTS stream (created by contacts); deleted contacts are erased once it exists');
      }
      timer = setTimeout(() => {
        attempt = attach();
      }, RETRY_MS);
    }
  };
  attempt = attach();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await attempt;
      await consumer?.stop();
    },
  };
}
