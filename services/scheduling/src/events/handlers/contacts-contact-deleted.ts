import type { CloudEvent, EventData } from '@textloop/events';
import { markProcessed, type ServiceDeps } from '@textloop/service-kit';
import { eraseContact } from '../../automations';
import type { Database } from '../../db/database';

export const CONTACT_ERASURE_DURABLE = 'scheduling-contact-erasure';

/** Erases the deleted contact's runs; a redelivered event changes nothing. */
export function handleContactDeleted(deps: ServiceDeps<Database>) {
  return async (event: CloudEvent<EventData<'contacts.contact.deleted'>>): Promise<void> => {
    await deps.db.transaction().execute(async (trx) => {
      if (!(await markProcessed(trx, CONTACT_ERASURE_DURABLE, event.id))) return;
      const runs = await eraseContact(trx, event.data.contactId);
      deps.logger.debug({ contactId: event.data.contactId, runs }, 'erased a deleted contact');
    });
  };
}
