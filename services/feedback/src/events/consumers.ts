import { startConsumer, startConsumerWhenReady, type PendingConsumer, type RunningConsumer } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';
import { SEND_SURVEY_DURABLE } from '../invitations';
import { REPLIES_DURABLE } from '../replies';
import { handleSendSurvey } from './handlers/feedback.cmd.send_survey';
import { handleReceived } from './handlers/messaging.message.received';
import { handleMessageStatus } from './handlers/messaging.message.status';

/** feedback.cmd.send_survey (from SEND_SURVEY automation steps), on feedback's own stream. */
export function consumeSurveyCommands(deps: ServiceDeps<Database>): Promise<RunningConsumer> {
  return startConsumer({
    js: deps.nats.js,
    jsm: deps.nats.jsm,
    stream: 'FEEDBACK',
    durable: SEND_SURVEY_DURABLE,
    filterSubjects: ['feedback.cmd.send_survey'],
    deliver: 'all',
    logger: deps.logger,
    handle: (event) => handleSendSurvey(deps, event),
  });
}

/**
 * Replies (messaging.message.received). MESSAGING belongs to messaging, which may start later: the
 * consumer attaches once the stream exists and then reads it from the start.
 */
export function consumeReplies(deps: ServiceDeps<Database>): PendingConsumer {
  return startConsumerWhenReady({
    js: deps.nats.js,
    jsm: deps.nats.jsm,
    stream: 'MESSAGING',
    durable: REPLIES_DURABLE,
    filterSubjects: ['messaging.message.received'],
    deliver: 'all',
    logger: deps.logger,
    handle: (event) => handleReceived(deps, event),
  });
}

/**
 * Status events of the survey questions (sent, failed, suppressed…). One filter subject (servers
 * before 2.10 take one); events that are not about a survey question are acknowledged unread.
 */
export function consumeQuestionStatus(deps: ServiceDeps<Database>): PendingConsumer {
  return startConsumerWhenReady({
    js: deps.nats.js,
    jsm: deps.nats.jsm,
    stream: 'MESSAGING',
    durable: 'feedback-question-status',
    filterSubjects: ['messaging.message.*'],
    // Only questions sent from now on matter: there is no history to catch up on.
    deliver: 'new',
    logger: deps.logger,
    ignore: (subject, data) => subject === 'messaging.message.received' || typeof data?.correlation?.surveyInvitationId !== 'string',
    handle: (event, subject) => (subject === 'messaging.message.received' ? Promise.resolve() : handleMessageStatus(deps, subject, event)),
  });
}
