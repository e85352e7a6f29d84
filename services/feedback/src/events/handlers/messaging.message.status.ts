import type { CloudEvent, EventData } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../../db/database';
import { handleQuestionStatus } from '../../invitations';

/** messaging.message.<status> of a survey question: the window starts when it left; one that never arrives fails the invitation. */
export async function handleMessageStatus(deps: ServiceDeps<Database>, subject: string, event: CloudEvent<EventData<'messaging.message.sent'>>): Promise<void> {
  await handleQuestionStatus(deps, subject, event);
}
