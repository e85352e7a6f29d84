import { GraphQLError } from 'graphql';
import { requesterOf, type CloudEvent, type EventData } from '@textloop/events';
import type { MessagingContext } from '../../context';
import { startVerification } from '../../verification';

type VerifyCommand = EventData<'messaging.cmd.verify'>;

/** A contact the projection has not seen is waited for this long (redelivery with backoff) before the command is dropped. */
const CONTACT_GRACE_MS = 5 * 60_000;

/**
 * messaging.cmd.verify: start (or resend) a verification like startVerification, with requestId as
 * the idempotency key and the correlation kept on the code's messages. A command that cannot
 * succeed (invalid, rate limited, unknown template or contact) is logged and acked; infrastructure
 * errors throw so the message is redelivered.
 */
export async function handleVerifyCommand(ctx: MessagingContext, event: CloudEvent<VerifyCommand>): Promise<void> {
  const command = event.data;
  try {
    await startVerification(
      ctx,
      { contactId: command.contactId, to: command.to, template: command.template, codeLength: command.codeLength },
      { requestId: command.requestId, correlation: command.correlation ?? null, requester: requesterOf(event.source) },
    );
  } catch (err) {
    if (!(err instanceof GraphQLError)) throw err;
    const unknownContact = err.extensions.code === 'NOT_FOUND' && err.message.startsWith('No contact');
    if (unknownContact && command.contactId && (await mayStillArrive(ctx, event, command.contactId))) {
      throw new Error(`contact ${command.contactId} is not in the projection yet; retrying`);
    }
    ctx.logger.warn(
      { requestId: command.requestId, contactId: command.contactId, code: err.extensions.code, field: err.extensions.field, reason: err.message },
      'messaging.cmd.verify refused; no verification started',
    );
  }
}

async function mayStillArrive(ctx: MessagingContext, event: CloudEvent, contactId: string): Promise<boolean> {
  const erased = await ctx.db.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', contactId).executeTakeFirst();
  if (erased) return false;
  return ctx.clock.now().getTime() - Date.parse(event.time) < CONTACT_GRACE_MS;
}
