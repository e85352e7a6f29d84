import type { CloudEvent } from '@textloop/events';
import type { MessagingContext } from '../../context';
import { applyConsent, applySnapshot, applyVerified, eraseContact } from '../../contacts-projection';

export const CONTACT_SUBJECTS = [
  'contacts.contact.created',
  'contacts.contact.updated',
  'contacts.contact.deleted',
  'contacts.contact.unsubscribed',
  'contacts.contact.resubscribed',
  'contacts.contact.verified',
] as const;

/**
 * Keeps the contact projection. Idempotent by construction: every write is versioned by the
 * event's time and id, so a redelivery or an overtaken event changes nothing.
 */
export async function handleContactEvent(ctx: MessagingContext, event: CloudEvent<any>, subject: string): Promise<void> {
  switch (subject) {
    case 'contacts.contact.created':
    case 'contacts.contact.updated':
      return applySnapshot(ctx, event);
    case 'contacts.contact.unsubscribed':
      return applyConsent(ctx, event, false);
    case 'contacts.contact.resubscribed':
      return applyConsent(ctx, event, true);
    case 'contacts.contact.verified':
      return applyVerified(ctx, event);
    case 'contacts.contact.deleted':
      return eraseContact(ctx, event.data.contactId);
    default:
      return undefined;
  }
}
