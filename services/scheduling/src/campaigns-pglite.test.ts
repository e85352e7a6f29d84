import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, notifySubject } from '@textloop/events';
import { addContact, startEnv, type Env, type Instance } from './test-support';

/** Without DATABASE_URL the platform runs on embedded PGlite: campaigns, offers and attribution must work there too. */
describe('campaigns on embedded PGlite', () => {
  let env: Env;
  let app: Instance;

  beforeAll(async () => {
    env = await startEnv('sched_campaigns_pglite', { pglite: true });
    env.world.templates.set('winback', { category: 'MARKETING', variables: ['contact.firstName', 'offer.code'] });
    app = await env.start({ CAMPAIGN_RATE_PER_SECOND: '5', CAMPAIGN_BATCH_SIZE: '2' });
  });

  afterAll(async () => {
    await env?.close();
  });

  it('resolves, sends paced with codes, completes, and keeps stats from the events', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => addContact(env.world, `c-lite-${i}`, { tags: ['lite'], subscribed: i !== 5 }));
    const created = await app.gql('mutation($input: CampaignInput!) { createCampaign(input: $input) { id status warnings } }', {
      input: { name: 'Lite', audience: { tags: ['lite'] }, template: 'winback', offer: { codePrefix: 'LITE', discountPercent: 25 } },
    });
    expect(created.errors, JSON.stringify(created.errors)).toBeUndefined();
    const id = created.data.createCampaign.id;
    const launched = await app.gql('mutation($id: ID!) { launchCampaign(id: $id) { status stats { recipients } } }', { id });
    expect(launched.data.launchCampaign).toEqual({ status: 'RUNNING', stats: { recipients: 5 } });

    // 5 a second: all five in the first second's budget; the rest of the test runs on that.
    const commands = await env.waitFor('messaging.cmd.send', (e) => e.event.data.correlation?.campaignId === id, 5);
    await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === id);
    expect(commands.map((c) => c.event.data.contactId).sort()).toEqual(ids.slice(0, 5));
    const codes = commands.map((c) => c.event.data.variables.offer.code as string);
    expect(new Set(codes).size).toBe(5);

    const [first, second, third] = commands;
    await env.publish(notifySubject('scheduling', 'messaging.message.delivered'), {
      messageId: 'msg-lite-1',
      contactId: first!.event.data.contactId,
      to: '+14155550100',
      from: '+15005550006',
      category: 'MARKETING',
      status: 'DELIVERED',
      segments: 1,
      price: { amount: '0.05', currency: 'EUR' },
      correlation: first!.event.data.correlation,
    });
    await env.publish('messaging.message.received', {
      messageId: newId(),
      contactId: second!.event.data.contactId,
      from: '+14155550100',
      to: '+15005550006',
      body: 'STOP',
      keyword: 'STOP',
      inReplyTo: { messageId: 'msg-lite-2', category: 'MARKETING', correlation: second!.event.data.correlation },
    });
    await env.handled('MESSAGING', 'scheduling-message-status');
    await env.handled('MESSAGING', 'scheduling-received');
    env.clock.advance(60_000);
    await env.track('order.placed', third!.event.data.contactId, { code: codes[2] });
    await env.handled('EVENTS', 'scheduling-events');

    const res = await app.gql(
      'query($id: ID!) { campaign(id: $id) { status stats { recipients sent delivered optedOut reactivated redeemed cost { amount currency } } } }',
      { id },
    );
    expect(res.data.campaign).toEqual({
      status: 'COMPLETED',
      stats: { recipients: 5, sent: 5, delivered: 1, optedOut: 1, reactivated: 1, redeemed: 1, cost: { amount: '0.0500', currency: 'EUR' } },
    });
  });
});
