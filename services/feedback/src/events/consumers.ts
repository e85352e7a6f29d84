import {
  notifyFilter,
  retireDurables,
  startConsumer,
  startConsumerWhenReady,
  statusSubjectOfNotify,
  type PendingConsumer,
  type RunningConsumer,
} from '@textloop/events';
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

/** Durable of the survey questions' status copies. */
export const QUESTION_STATUS_DURABLE = 'feedback-message-status';

/** Durables feedback ran before and no longer does (deleted at start-up so the stream keeps nothing pending for them). */
const RETIRED_DURABLES = [
  // messaging.message.*: every status of every message, nearly all of it acknowledged unread.
  'feedback-question-status',
];

/**
 * Status events of the survey questions (sent, failed, suppressed…). Messaging copies the statuses
 * of the messages feedback asked for (messaging.cmd.send) to messaging.notify.feedback.<status>;
 * feedback reads only those copies, so bulk traffic of other senders never reaches it (a server
 * before 2.10 takes one filter subject per consumer and cannot filter on the payload). Copies that
 * are not about a survey invitation are acknowledged unread.
 */
export function consumeQuestionStatus(deps: ServiceDeps<Database>): PendingConsumer {
  // Best effort and in the background: a missing stream or durable is fine, and start-up does not wait.
  void retireDurables(deps.nats.jsm, 'MESSAGING', RETIRED_DURABLES, deps.logger).catch(() => undefined);
  return startConsumerWhenReady({
    js: deps.nats.js,
    jsm: deps.nats.jsm,
    stream: 'MESSAGING',
    durable: QUESTION_STATUS_DURABLE,
    filterSubjects: [notifyFilter('feedback')],
    // The copies are only feedback's own messages, so replaying them from the start costs little and
    // misses none published before this durable existed.
    deliver: 'all',
    logger: deps.logger,
    ignore: (_subject, data) => typeof data?.correlation?.surveyInvitationId !== 'string',
    // invitations.ts speaks in the contract's subject names (messaging.message.<status>).
    handle: async (event, subject) => {
      const status = statusSubjectOfNotify(subject);
      if (status) await handleMessageStatus(deps, status, event);
    },
  });
}
