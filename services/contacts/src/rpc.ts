import type { Subscription } from 'nats';
import { serveRpc, type ContactSummary } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import { ensureContactByPhone } from './contacts';
import type { ContactRow, Database } from './db/database';

function summary(r: Pick<ContactRow, 'id' | 'phone' | 'country' | 'timezone' | 'first_name' | 'last_name' | 'subscribed'>): ContactSummary {
  return {
    contactId: r.id,
    phone: r.phone,
    country: r.country,
    timezone: r.timezone,
    firstName: r.first_name,
    lastName: r.last_name,
    subscribed: r.subscribed,
  };
}

/**
 * Questions other services ask contacts over NATS request/reply (never by reading this database):
 * `rpc.contacts.get` answers who a contact is, e.g. for scheduling to address a scheduled message;
 * `rpc.contacts.ensure` finds or creates the contact of a phone number, for messaging when an SMS
 * arrives from a number it does not know.
 */
export function serveContactsRpc(deps: ServiceDeps<Database>): Subscription[] {
  return [
    serveRpc(
      deps.nats.nc,
      'rpc.contacts.get',
      'contacts',
      async ({ ids }) => {
        if (ids.length === 0) return { contacts: [] };
        const rows = await deps.db
          .selectFrom('contacts')
          .select(['id', 'phone', 'country', 'timezone', 'first_name', 'last_name', 'subscribed'])
          .where('id', 'in', ids)
          .execute();
        return { contacts: rows.map(summary) };
      },
      deps.logger,
    ),
    serveRpc(
      deps.nats.nc,
      'rpc.contacts.ensure',
      'contacts',
      async ({ phone, source }) => {
        const { contact, created } = await ensureContactByPhone(deps, phone, source);
        if (created) deps.logger.debug({ contactId: contact.id, source }, 'contact created for an unknown number');
        return { contact: summary(contact), created };
      },
      deps.logger,
    ),
  ];
}
