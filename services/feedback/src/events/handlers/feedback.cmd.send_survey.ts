import type { CloudEvent, EventData } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../../db/database';
import { handleSendSurveyCommand } from '../../invitations';

/** feedback.cmd.send_survey (SEND_SURVEY automation steps): invite the contact; requestId makes it idempotent. */
export async function handleSendSurvey(deps: ServiceDeps<Database>, event: CloudEvent<EventData<'feedback.cmd.send_survey'>>): Promise<void> {
  await handleSendSurveyCommand(deps, event);
}
