import type { CloudEvent, EventData } from '@textloop/events';
import type { MessagingContext } from '../../context';
import { attachUnhandledReply } from '../../conversations';

/** feedback.reply.unhandled: a survey reply feedback could not use joins the contact's conversation. */
export async function handleUnhandledReply(ctx: MessagingContext, event: CloudEvent<EventData<'feedback.reply.unhandled'>>): Promise<void> {
  await attachUnhandledReply(ctx, event);
}
