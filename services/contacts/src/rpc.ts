import type { Subscription } from 'nats';
import { serveRpc } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import { contactSummary as summary, resolveAudience } from './audience';
import { ensureContactByPhone } from './contacts';
import type { Database } from './db/database';

/** Room left in a NATS message for the reply envelope around an audience page. */
const ENVELOPE_BYTES = 1024;

/**
 * Questions other services ask contacts over NATS request/reply (never by reading this database):
 * `rpc.contacts.get` answers who a contact is, e.g. for scheduling to address a scheduled message;
 * `rpc.contacts.ensure` finds or creates the contact of a phone number, for messaging when an SMS
 * arrives from a number it does not know; `rpc.contacts.audience` pages through the contacts that
 * match a campaign's audience, for scheduling.
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
    serveRpc(
      deps.nats.nc,
      'rpc.contacts.audience',
      'contacts',
      async (request) => {
        const maxPayload = deps.nats.nc.info?.max_payload ?? 1024 * 1024;
        const page = await resolveAudience(deps, request, maxPayload - ENVELOPE_BYTES);
        deps.logger.debug({ contacts: page.contacts.length, more: page.next != null }, 'audience page');
        return page;
      },
      deps.logger,
    ),
  ];
}
