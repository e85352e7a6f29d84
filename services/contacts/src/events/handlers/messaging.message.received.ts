import type { CloudEvent, EventData } from '@textloop/events';
import { markProcessed } from '@textloop/service-kit';
import { activityTime, recordActivity } from '../../activity';
import type { ContactsDeps } from '../../contacts';

export const ACTIVITY_DURABLE = 'contacts-activity';

/** An inbound SMS is activity: lastActiveAt moves to when it arrived (and a new inactivity spell starts). */
export async function handleMessageReceived(deps: ContactsDeps, event: CloudEvent<EventData<'messaging.message.received'>>): Promise<void> {
  const contactId = event.data.contactId;
  if (!contactId) return;
  await deps.db.transaction().execute(async (trx) => {
    if (!(await markProcessed(trx, ACTIVITY_DURABLE, event.id))) return;
    const updated = await recordActivity(trx, contactId, activityTime(new Date(event.time), deps.clock));
    if (!updated) deps.logger.debug({ contactId, eventId: event.id }, 'inbound message for an unknown contact; ignored');
  });
}
