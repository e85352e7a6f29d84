import type { Transaction } from 'kysely';
import { applicationSubject, type EventInput } from '@textloop/events';
import { enqueueEvents, type Clock, type OutboxEntry } from '@textloop/service-kit';
import type { ContactRow, Database } from '../db/database';

export const EVENT_SOURCE = 'textloop/contacts';

/** The contact as contacts.contact.created/updated carry it (contract/events.md). */
export function contactSnapshot(row: ContactRow): EventInput<'contacts.contact.created'> {
  return {
    contactId: row.id,
    externalId: row.external_id,
    phone: row.phone,
    country: row.country,
    timezone: row.timezone,
    locale: row.locale,
    firstName: row.first_name,
    lastName: row.last_name,
    email: row.email,
    attributes: row.attributes,
    tags: row.tags,
    subscribed: row.subscribed,
    phoneVerified: row.phone_verified,
  };
}

export type ContactEvent =
  | OutboxEntry<'contacts.contact.created'>
  | OutboxEntry<'contacts.contact.updated'>
  | OutboxEntry<'contacts.contact.deleted'>
  | OutboxEntry<'contacts.contact.unsubscribed'>
  | OutboxEntry<'contacts.contact.resubscribed'>
  | OutboxEntry<'contacts.contact.verified'>
  | OutboxEntry<'contacts.contact.dormant'>;

/** `events.<name>` — what trackEvent publishes for the application (contract/events.md). */
export interface ApplicationEventEntry {
  subject: string;
  data: { eventId: string; contactId: string; name: string; properties: Record<string, unknown>; occurredAt: string };
}

export function applicationEvent(data: ApplicationEventEntry['data']): ApplicationEventEntry {
  return { subject: applicationSubject(data.name), data };
}

/** Writes events into the outbox of the caller's transaction; call deps.outbox.kick() after commit. */
export async function publishInTransaction(trx: Transaction<Database>, clock: Clock, events: Array<ContactEvent | ApplicationEventEntry>): Promise<void> {
  await enqueueEvents(trx, EVENT_SOURCE, events, clock);
}
