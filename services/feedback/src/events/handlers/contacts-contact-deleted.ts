import type { CloudEvent, EventData } from '@textloop/events';
import { markProcessed, type ServiceDeps } from '@textloop/service-kit';
import { eraseContact } from '../../surveys';
import type { Database } from '../../db/database';

export const CONTACT_ERASURE_DURABLE = 'feedback-contact-erasure';

/** Erases the deleted contact's survey responses; a redelivered event changes nothing. */
export function handleContactDeleted(deps: ServiceDeps<Database>) {
  return async (event: CloudEvent<EventData<'contacts.contact.deleted'>>): Promise<void> => {
    await deps.db.transaction().execute(async (trx) => {
      if (!(await markProcessed(trx, CONTACT_ERASURE_DURABLE, event.id))) return;
      const responses = await eraseContact(trx, event.data.contactId);
      deps.logger.debug({ contactId: event.data.contactId, responses }, 'erased a deleted contact');
    });
  };
}
