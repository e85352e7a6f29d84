import { startConsumer, type RunningConsumer } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';

/**
 * feedback.cmd.send_survey (from SEND_SURVEY automation steps). Until surveys are sent (surveys
 * issue) the command is acknowledged and logged, so the stream does not redeliver it forever.
 */
export function consumeSurveyCommands(deps: ServiceDeps<Database>): Promise<RunningConsumer> {
  return startConsumer({
    js: deps.nats.js,
    jsm: deps.nats.jsm,
    stream: 'FEEDBACK',
    durable: 'feedback-cmd-send-survey',
    filterSubjects: ['feedback.cmd.send_survey'],
    deliver: 'all',
    logger: deps.logger,
    handle: async (event) => {
      const { requestId, surveyId, contactId } = event.data as { requestId: string; surveyId: string; contactId: string };
      deps.logger.info({ requestId, surveyId, contactId }, 'send_survey command acknowledged; survey sending is not available yet');
    },
  });
}
