import type { CloudEvent, EventData } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../../db/database';
import { handleReply } from '../../replies';

/** messaging.message.received: a reply to a SURVEY message is a score, a comment, or handed back to messaging. */
export async function handleReceived(deps: ServiceDeps<Database>, event: CloudEvent<EventData<'messaging.message.received'>>): Promise<void> {
  await handleReply(deps, event);
}
