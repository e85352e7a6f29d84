import type { Subscription } from 'nats';
import { serveRpc } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from './db/database';

/** `rpc.feedback.surveys`: which survey ids exist, so scheduling can refuse a SEND_SURVEY step naming none. */
export function serveFeedbackRpc(deps: ServiceDeps<Database>): Subscription[] {
  return [
    serveRpc(
      deps.nats.nc,
      'rpc.feedback.surveys',
      'feedback',
      async ({ ids }) => {
        if (ids.length === 0) return { surveys: [] };
        const rows = await deps.db.selectFrom('surveys').select(['id', 'name']).where('id', 'in', ids).execute();
        return { surveys: rows.map((r) => ({ surveyId: r.id, name: r.name })) };
      },
      deps.logger,
    ),
  ];
}
