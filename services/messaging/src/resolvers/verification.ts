import type { RequestContext, Role } from '@textloop/service-kit';
import type { MessagingContext } from '../context';
import {
  checkVerification,
  effectiveStatus,
  startVerification,
  verificationById,
  type CheckVerificationInput,
  type StartVerificationInput,
  type VerificationRow,
} from '../verification';

type Allow = (context: RequestContext, roles: Role[], what: string) => void;

function toVerification(row: VerificationRow, now: Date) {
  return {
    id: row.id,
    to: row.to_number,
    contactId: row.contact_id,
    status: effectiveStatus(row, now),
    attempts: row.attempts,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
  };
}

type GqlVerification = ReturnType<typeof toVerification>;

/** Query.verification, Mutation.startVerification / checkVerification and Verification; merged into createResolvers. */
export function verificationResolvers(ctx: MessagingContext, allow: Allow) {
  return {
    Query: {
      verification: async (_: unknown, args: { id: string }) => {
        const row = await verificationById(ctx, args.id);
        return row ? toVerification(row, ctx.clock.now()) : null;
      },
    },
    Mutation: {
      startVerification: async (_: unknown, args: { input: StartVerificationInput }, context: RequestContext) => {
        allow(context, ['admin', 'app'], 'verify phone numbers');
        return toVerification(await startVerification(ctx, args.input), ctx.clock.now());
      },
      checkVerification: async (_: unknown, args: { input: CheckVerificationInput }, context: RequestContext) => {
        allow(context, ['admin', 'app'], 'verify phone numbers');
        return toVerification(await checkVerification(ctx, args.input), ctx.clock.now());
      },
    },
    Verification: {
      contact: (v: GqlVerification) => (v.contactId ? { __typename: 'Contact', id: v.contactId } : null),
    },
  };
}
