import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckPolicy } from 'nats';
import { waitFor } from '@textloop/service-kit/testing';
import { startEnv, type Env } from './test-support';

// What scheduling reads from MESSAGING: its own messages' status copies (messaging.notify.scheduling.>)
// and inbound messages, each on one filter subject; deliveries (the built-in message.delivered
// trigger) only while an automation uses them; the durable that read every status
// (messaging.message.>) is deleted on start.

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
        return mine.has('scheduling-messages') || mine.size < 3 ? undefined : mine;
      },
      { what: 'the new durables, and the old one gone' },
    );
    expect(Object.fromEntries(filters)).toEqual({
      'scheduling-message-status': 'messaging.notify.scheduling.>',
      'scheduling-received': 'messaging.message.received',
      'scheduling-conversations': 'messaging.conversation.>',
    });
  });

  it('reads deliveries only while an automation triggers on or is cancelled by message.delivered', async () => {
    env.world.templates.set('plain', { category: 'TRANSACTIONAL', variables: [] });
    const app = await env.start();
    const exists = () =>
      env.jsm.consumers.info('MESSAGING', 'scheduling-delivered').then(
        (info) => info.config.filter_subject,
        () => undefined,
      );
    try {
      // Other automations do not need deliveries.
      await app.gql(
        `mutation { createAutomation(input: { name: "On sign-up", triggerEvent: "contact.created", steps: [{ type: SEND_MESSAGE, template: "plain" }] }) { id } }`,
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(await exists()).toBeUndefined();

      const created = await app.gql(
        `mutation { createAutomation(input: { name: "After delivery", triggerEvent: "message.delivered", steps: [{ type: SEND_MESSAGE, template: "plain" }] }) { id } }`,
      );
      expect(created.errors).toBeUndefined();
      const id = created.data.createAutomation.id;
      expect(await waitFor(exists, { what: 'the durable, once an automation triggers on message.delivered' })).toBe('messaging.message.delivered');

      await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: false) { id } }', { id });
      await waitFor(async () => (await exists()) === undefined, { what: 'the durable deleted once no automation needs deliveries' });

      // Cancelled by a delivery counts too.
      await app.gql(
        `mutation { createAutomation(input: { name: "Nudge", triggerEvent: "cart.abandoned", cancelOn: ["message.delivered"], steps: [{ type: SEND_MESSAGE, template: "plain" }] }) { id } }`,
      );
      expect(await waitFor(exists, { what: 'the durable, for an automation cancelled by message.delivered' })).toBe('messaging.message.delivered');
    } finally {
      await app.stop();
    }
  });
});
