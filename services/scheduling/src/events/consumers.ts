import { startConsumerWhenReady } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';
import { CONTACT_ERASURE_DURABLE, handleContactDeleted } from './handlers/contacts-contact-deleted';

/**
 * Consumes contacts.contact.deleted. The CONTACTS stream belongs to contacts, which may start after
 * us, so the consumer attaches once the stream exists. It replays the stream on first creation
 * ('all'): an erasure must not be missed because it happened before we started.
 */
export function startConsumers(deps: ServiceDeps<Database>): { stop(): Promise<void> } {
  return startConsumerWhenReady({
    js: deps.nats.js,
    jsm: deps.nats.jsm,
    stream: 'CONTACTS',
    durable: CONTACT_ERASURE_DURABLE,
    filterSubjects: ['contacts.contact.deleted'],
    deliver: 'all',
    handle: handleContactDeleted(deps),
    logger: deps.logger,
  });
}
