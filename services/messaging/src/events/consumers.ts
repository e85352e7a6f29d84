import { startConsumer, type RunningConsumer } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { MessagingContext } from '../context';
import type { Database } from '../db/database';
import { CONTACT_SUBJECTS, handleContactEvent } from './handlers/contacts';
import { handleSendCommand } from './handlers/messaging.cmd.send';

/** The durable consumers messaging runs; both replay from the start so a fresh instance catches up. */
export async function startConsumers(deps: ServiceDeps<Database>, ctx: MessagingContext): Promise<RunningConsumer[]> {
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
    const commands = await startConsumer({
      js,
      jsm,
      stream: 'MESSAGING',
      durable: 'messaging-cmd-send',
      filterSubjects: ['messaging.cmd.send'],
      deliver: 'all',
      logger: deps.logger,
      handle: (event) => handleSendCommand(ctx, event),
    });
    return [contacts, commands];
  } catch (err) {
    await contacts.stop();
    throw err;
  }
}
