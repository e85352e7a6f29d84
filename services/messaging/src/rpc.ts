import type { NatsConnection, Subscription } from 'nats';
import { serveRpc } from '@textloop/events';
import type { MessagingContext } from './context';

/**
 * Questions other services ask messaging over NATS request/reply: `rpc.messaging.templates` tells
 * scheduling which template names exist (and what they read) when an automation is created.
 */
export function serveMessagingRpc(nc: NatsConnection, ctx: MessagingContext): Subscription[] {
  return [
    serveRpc(
      nc,
      'rpc.messaging.templates',
      'messaging',
      async ({ names }) => {
        if (names.length === 0) return { templates: [] };
        const rows = await ctx.db.selectFrom('templates').select(['name', 'category', 'body']).where('name', 'in', names).execute();
        return { templates: rows.map((r) => ({ name: r.name, category: r.category, variables: ctx.renderer.variables(r.body) })) };
      },
      ctx.logger,
    ),
  ];
}
