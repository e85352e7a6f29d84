import type { CloudEvent, EventData } from '@textloop/events';
import type { MessagingContext } from '../../context';
import { recordDetractor } from '../../conversation-feedback';

/** feedback.detractor.detected: the contact's support conversation opens (or reopens) with the score on it. */
export async function handleDetractorDetected(ctx: MessagingContext, event: CloudEvent<EventData<'feedback.detractor.detected'>>): Promise<void> {
  await recordDetractor(ctx, event);
}
