import type { CloudEvent, EventData } from '@textloop/events';
import { markProcessed } from '@textloop/service-kit';
import { recordVerification } from '../../activity';
import type { ContactsDeps } from '../../contacts';

export const VERIFICATION_DURABLE = 'contacts-verification';

/** The contact proved the phone is theirs: phoneVerified, and contacts.contact.verified the first time. */
export async function handleVerificationApproved(deps: ContactsDeps, event: CloudEvent<EventData<'messaging.verification.approved'>>): Promise<void> {
  const contactId = event.data.contactId;
  if (!contactId) return;
  const outcome = await deps.db.transaction().execute(async (trx) => {
    if (!(await markProcessed(trx, VERIFICATION_DURABLE, event.id))) return 'duplicate' as const;
    return recordVerification(trx, deps.clock, contactId, event.data.to, new Date(event.time));
  });
  if (outcome === 'verified') deps.outbox.kick();
  deps.logger.debug({ contactId, eventId: event.id, outcome }, 'verification approved');
}
