import type { Subscription } from 'nats';
import { serveRpc } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from './db/database';

/**
 * Questions other services ask contacts over NATS request/reply (never by reading this database):
 * `rpc.contacts.get` answers who a contact is, e.g. for scheduling to address a scheduled message.
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
        return {
          contacts: rows.map((r) => ({
            contactId: r.id,
            phone: r.phone,
            country: r.country,
            timezone: r.timezone,
            firstName: r.first_name,
            lastName: r.last_name,
            subscribed: r.subscribed,
          })),
        };
      },
      deps.logger,
    ),
  ];
}
