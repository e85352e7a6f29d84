import type { Transaction } from 'kysely';
import { startConsumerWhenReady, type PendingConsumer } from '@textloop/events';
import type { ServiceDeps } from './boot';
import { markProcessed } from './outbox';

/**
 * Every service erases a deleted contact's personal data (contacts.contact.deleted). The CONTACTS
 * stream belongs to contacts, which may start later, so the consumer attaches once it exists and
 * replays it on first creation: an erasure must not be missed because it happened before we started.
 * `erase` runs in the same transaction that records the event as processed, so a redelivery changes nothing.
 */
export function consumeContactErasure<DB>(deps: ServiceDeps<DB>, erase: (trx: Transaction<DB>, contactId: string) => Promise<unknown>): PendingConsumer {
  const durable = `${deps.name}-contact-erasure`;
  return startConsumerWhenReady({
    js: deps.nats.js,
    jsm: deps.nats.jsm,
    stream: 'CONTACTS',
    durable,
    filterSubjects: ['contacts.contact.deleted'],
    deliver: 'all',
    logger: deps.logger,
    handle: async (event) => {
      await deps.db.transaction().execute(async (trx) => {
        if (!(await markProcessed(trx, durable, event.id))) return;
        const erased = await erase(trx, event.data.contactId);
        deps.logger.debug({ contactId: event.data.contactId, erased }, 'erased a deleted contact');
      });
    },
  });
}
