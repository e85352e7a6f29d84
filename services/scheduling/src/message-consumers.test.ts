import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckPolicy } from 'nats';
import { waitFor } from '@textloop/service-kit/testing';
import { startEnv, type Env } from './test-support';

// What scheduling reads from MESSAGING: its own messages' status copies (messaging.notify.scheduling.>),
// deliveries (the built-in message.delivered trigger) and inbound messages, each on one filter
// subject; the durable that read every status (messaging.message.>) is deleted on start.

let env: Env;

beforeAll(async () => {
  env = await startEnv('sched_msg_consumers');
});

afterAll(async () => {
  await env?.close();
});

describe('consumers of MESSAGING', () => {
  it('retires scheduling-messages and reads messaging.message.> no more', async () => {
    // What an install before this change left behind.
    await env.jsm.consumers.add('MESSAGING', { durable_name: 'scheduling-messages', ack_policy: AckPolicy.Explicit, filter_subject: 'messaging.message.>' });
    await env.start();
    const filters = await waitFor(
      async () => {
        const list = await env.jsm.consumers.list('MESSAGING').next();
        const mine = new Map(list.filter((c) => c.name.startsWith('scheduling-')).map((c) => [c.name, c.config.filter_subject]));
        return mine.has('scheduling-messages') || mine.size < 4 ? undefined : mine;
      },
      { what: 'the new durables, and the old one gone' },
    );
    expect(Object.fromEntries(filters)).toEqual({
      'scheduling-message-status': 'messaging.notify.scheduling.>',
      'scheduling-delivered': 'messaging.message.delivered',
      'scheduling-received': 'messaging.message.received',
      'scheduling-conversations': 'messaging.conversation.>',
    });
  });
});
