import type { CloudEvent, EventData } from '@textloop/events';
import { markProcessed } from '@textloop/service-kit';
import { activityTime, recordActivity } from '../../activity';
import { applyConsentKeyword, keywordVersion } from '../../consent';
import type { ContactsDeps } from '../../contacts';

export const ACTIVITY_DURABLE = 'contacts-activity';

/**
 * An inbound SMS is activity: lastActiveAt moves to when it arrived (and a new inactivity spell
 * starts). A STOP or START keyword also changes consent (ledger reason STOP_KEYWORD/START_KEYWORD),
 * in the same transaction, once per event.
 */
export async function handleMessageReceived(deps: ContactsDeps, event: CloudEvent<EventData<'messaging.message.received'>>): Promise<void> {
  const { contactId, keyword } = event.data;
  if (!contactId) return;
  const changed = await deps.db.transaction().execute(async (trx) => {
    if (!(await markProcessed(trx, ACTIVITY_DURABLE, event.id))) return false;
    const updated = await recordActivity(trx, contactId, activityTime(new Date(event.time), deps.clock));
    if (!updated) {
      deps.logger.debug({ contactId, eventId: event.id }, 'inbound message for an unknown contact; ignored');
      return false;
    }
    if (keyword !== 'STOP' && keyword !== 'START') return false;
    return applyConsentKeyword(trx, deps.clock, contactId, keyword, keywordVersion(event.time, event.data.messageId), event.data.messageId);
  });
  if (changed) deps.outbox.kick();
}
