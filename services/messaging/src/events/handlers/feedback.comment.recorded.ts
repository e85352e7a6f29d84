import type { CloudEvent, EventData } from '@textloop/events';
import type { MessagingContext } from '../../context';
import { recordFeedbackComment } from '../../conversation-feedback';

/** feedback.comment.recorded: a detractor's comment joins its score on the conversation. */
export async function handleFeedbackComment(ctx: MessagingContext, event: CloudEvent<EventData<'feedback.comment.recorded'>>): Promise<void> {
  await recordFeedbackComment(ctx, event);
}
