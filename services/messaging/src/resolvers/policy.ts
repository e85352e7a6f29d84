import type { RequestContext, Role } from '@textloop/service-kit';
import type { MessagingContext } from '../context';
import { readPolicy, updateMessagingPolicy, type MessagingPolicy, type MessagingPolicyInput } from '../policy';

type Allow = (context: RequestContext, roles: Role[], what: string) => void;

const toPolicy = (p: MessagingPolicy) => ({ quietHoursStart: p.quietHoursStart, quietHoursEnd: p.quietHoursEnd, marketingWeeklyCap: p.marketingWeeklyCap });

/** Query.messagingPolicy and Mutation.updateMessagingPolicy; merged into createResolvers. kickRelease wakes the release loop. */
export function policyResolvers(ctx: MessagingContext, allow: Allow, kickRelease?: () => void) {
  return {
    Query: {
      messagingPolicy: async () => toPolicy(await readPolicy(ctx.db)),
    },
    Mutation: {
      updateMessagingPolicy: async (_: unknown, args: { input: MessagingPolicyInput }, context: RequestContext) => {
        allow(context, ['admin'], 'change the messaging policy');
        return toPolicy(await updateMessagingPolicy(ctx, args.input, kickRelease));
      },
    },
  };
}
