import { startConsumer, startConsumerWhenReady, type RunningConsumer } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { MessagingContext } from '../context';
import { DETRACTOR_DURABLE } from '../conversation-feedback';
import { UNHANDLED_REPLY_DURABLE } from '../conversations';
import type { Database } from '../db/database';
import { CONTACT_SUBJECTS, handleContactEvent } from './handlers/contacts';
import { handleFeedbackComment } from './handlers/feedback.comment.recorded';
import { handleDetractorDetected } from './handlers/feedback.detractor.detected';
import { handleUnhandledReply } from './handlers/feedback.reply.unhandled';
import { SendCommandBatcher } from './handlers/messaging.cmd.send';
import { handleVerifyCommand } from './handlers/messaging.cmd.verify';

/** The durable consumers messaging runs; all replay from the start so a fresh instance catches up. */
export async function startConsumers(deps: ServiceDeps<Database>, ctx: MessagingContext): Promise<Array<Pick<RunningConsumer, 'stop'>>> {
  const { js, jsm } = deps.nats;
  const contacts = await startConsumer({
    js,
    jsm,
    stream: 'CONTACTS',
    durable: 'messaging-contacts',
    filterSubjects: [...CONTACT_SUBJECTS],
    deliver: 'all',
    logger: deps.logger,
    handle: (event, subject) => handleContactEvent(ctx, event, subject),
  });
  try {
    const batcher = new SendCommandBatcher(ctx);
    const commands = await startConsumer({
      js,
      jsm,
      stream: 'MESSAGING',
      durable: 'messaging-cmd-send',
      filterSubjects: ['messaging.cmd.send'],
      deliver: 'all',
      logger: deps.logger,
      // Enough deliveries at once for the batcher to gather full batches.
      maxInFlight: 500,
      handle: (event) => batcher.handle(event),
    });
    const verify = await startConsumer({
      js,
      jsm,
      stream: 'MESSAGING',
      durable: 'messaging-cmd-verify',
      filterSubjects: ['messaging.cmd.verify'],
      deliver: 'all',
      logger: deps.logger,
      handle: (event) => handleVerifyCommand(ctx, event),
    }).catch(async (err) => {
      await commands.stop();
      throw err;
    });
    // FEEDBACK belongs to feedback, which may start later: this one attaches once the stream exists.
    const unhandledReplies = startConsumerWhenReady({
      js,
      jsm,
      stream: 'FEEDBACK',
      durable: UNHANDLED_REPLY_DURABLE,
      filterSubjects: ['feedback.reply.unhandled'],
      deliver: 'all',
      logger: deps.logger,
      handle: (event) => handleUnhandledReply(ctx, event),
    });
    // Detractors open a support conversation; their comments follow. One at a time, so a comment
    // never overtakes the score it belongs to.
    const detractors = startConsumerWhenReady({
      js,
      jsm,
      stream: 'FEEDBACK',
      durable: DETRACTOR_DURABLE,
      filterSubjects: ['feedback.detractor.detected', 'feedback.comment.recorded'],
      deliver: 'all',
      maxInFlight: 1,
      logger: deps.logger,
      handle: (event, subject) => (subject === 'feedback.detractor.detected' ? handleDetractorDetected(ctx, event) : handleFeedbackComment(ctx, event)),
    });
    return [contacts, commands, verify, unhandledReplies, detractors];
  } catch (err) {
    await contacts.stop();
    throw err;
  }
}
