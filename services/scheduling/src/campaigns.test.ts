import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, notifySubject } from '@textloop/events';
import { waitFor } from '@textloop/service-kit/testing';
import { issueCodes } from './offers';
import { addContact, expectError, startEnv, type Env, type GraphQLResult, type Instance, type Recorded } from './test-support';

// Campaigns and offers with an unthrottled sender (pacing, restarts and cancellation are in
// campaign-sending.test.ts): validation, empty audiences, launching twice, scheduled launches,
// stats from messaging's and the application's events, and offer codes on automation steps.

const CAMPAIGN_FIELDS = `id name status template category sendAt warnings launchedAt finishedAt createdAt
  audience { tags inactiveForDays country contactIds }
  offer { codePrefix discountPercent validDays }
  stats { recipients sent delivered failed suppressed optedOut replied reactivated redeemed cost { amount currency } }`;
const CODE = /^[A-Z0-9]{2,10}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let env: Env;
let app: Instance;

beforeAll(async () => {
  env = await startEnv('sched_campaigns');
  env.world.templates.set('winback', {
    category: 'MARKETING',
    variables: ['contact.firstName', 'offer.code', 'offer.discountPercent', 'offer.expiresAt'],
  });
  env.world.templates.set('news', { category: 'MARKETING', variables: ['contact.firstName'] });
  env.world.templates.set('offer-no-code', { category: 'MARKETING', variables: ['offer.discountPercent'] });
  app = await env.start({ CAMPAIGN_RATE_PER_SECOND: '100000' });
});

afterAll(async () => {
  await env?.close();
});

async function createCampaign(input: Record<string, unknown>): Promise<GraphQLResult> {
  return app.gql(`mutation($input: CampaignInput!) { createCampaign(input: $input) { ${CAMPAIGN_FIELDS} } }`, { input });
}

async function created(input: Record<string, unknown>): Promise<any> {
  const res = await createCampaign(input);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.createCampaign;
}

async function launch(id: string): Promise<GraphQLResult> {
  return app.gql(`mutation($id: ID!) { launchCampaign(id: $id) { ${CAMPAIGN_FIELDS} } }`, { id });
}

async function campaign(id: string): Promise<any> {
  const res = await app.gql(`query($id: ID!) { campaign(id: $id) { ${CAMPAIGN_FIELDS} } }`, { id });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.campaign;
}

function commandsOf(campaignId: string): Recorded[] {
  return env.of('messaging.cmd.send', (e) => e.event.data.correlation?.campaignId === campaignId);
}

/** Contacts of this test, tagged with a tag of their own so audiences do not overlap between tests. */
function contacts(tag: string, n: number, options: { subscribed?: (i: number) => boolean } = {}): string[] {
  return Array.from({ length: n }, (_, i) =>
    addContact(env.world, `c-${tag}-${String(i).padStart(3, '0')}`, { tags: [tag], subscribed: options.subscribed?.(i) ?? true }),
  );
}

describe('createCampaign', () => {
  const valid = { name: 'Winter sale', audience: { tags: ['vip'] }, template: 'news' };

  it('rejects bad input with the contract code and field, and writes nothing', async () => {
    const before = (await app.deps.db.selectFrom('campaigns').select('id').execute()).length;
    expect(expectError(await createCampaign({ ...valid, template: 'no-such-template' }), 'NOT_FOUND')).toContain('no-such-template');
    for (const inactiveForDays of [0, -30]) {
      expect(expectError(await createCampaign({ ...valid, audience: { inactiveForDays } }), 'BAD_USER_INPUT', 'audience.inactiveForDays')).toContain('above 0');
    }
    for (const discountPercent of [0, 101, -5]) {
      expect(
        expectError(await createCampaign({ ...valid, offer: { codePrefix: 'SALE', discountPercent } }), 'BAD_USER_INPUT', 'offer.discountPercent'),
      ).toContain('1 to 100');
    }
    for (const codePrefix of ['S', 'TOOLONGPREFIX', 'SA-LE', 'SALE!']) {
      expectError(await createCampaign({ ...valid, offer: { codePrefix } }), 'BAD_USER_INPUT', 'offer.codePrefix');
    }
    expectError(await createCampaign({ ...valid, offer: { codePrefix: 'SALE', validDays: 0 } }), 'BAD_USER_INPUT', 'offer.validDays');
    expectError(await createCampaign({ ...valid, audience: { country: 'USA' } }), 'BAD_USER_INPUT', 'audience.country');
    expectError(await createCampaign({ ...valid, audience: { tags: ['vip', ' '] } }), 'BAD_USER_INPUT', 'audience.tags');
    expectError(await createCampaign({ ...valid, name: '  ' }), 'BAD_USER_INPUT', 'name');
    expectError(await createCampaign({ ...valid, sendAt: new Date(env.clock.now().getTime() - 1000).toISOString() }), 'BAD_USER_INPUT', 'sendAt');
    expectError(await createCampaign({ ...valid, category: 'OTP' }), 'BAD_USER_INPUT', 'category');
    expect((await app.deps.db.selectFrom('campaigns').select('id').execute()).length).toBe(before);
  });

  it('creates a DRAFT with MARKETING by default, normalises the offer, and warns when the template does not show the code', async () => {
    const draft = await created({ ...valid, audience: { tags: ['vip'], country: 'gb' }, offer: { codePrefix: 'back', discountPercent: 20 } });
    expect(draft).toMatchObject({
      name: 'Winter sale',
      status: 'DRAFT',
      template: 'news',
      category: 'MARKETING',
      sendAt: null,
      launchedAt: null,
      audience: { tags: ['vip'], country: 'GB', inactiveForDays: null, contactIds: null },
      offer: { codePrefix: 'BACK', discountPercent: 20, validDays: 14 },
      createdAt: env.clock.now().toISOString(),
      stats: { recipients: 0, sent: 0, redeemed: 0, cost: { amount: '0.0000', currency: 'USD' } },
    });
    expect(draft.warnings).toHaveLength(1);
    expect(draft.warnings[0]).toContain('{{ offer.code }}');
    // A template that reads offer.* but no offer: every message would fail to render.
    const noOffer = await created({ ...valid, template: 'offer-no-code' });
    expect(noOffer.warnings).toHaveLength(1);
    expect(noOffer.warnings[0]).toContain('offer.discountPercent');
    // The right combination has no warning, and is kept (campaign(id) shows it).
    const good = await created({ ...valid, template: 'winback', offer: { codePrefix: 'BACK' } });
    expect(good.warnings).toEqual([]);
    expect((await campaign(draft.id)).warnings).toEqual(draft.warnings);
    const listed = (await app.gql('{ campaigns { id } }')).data.campaigns.map((c: { id: string }) => c.id);
    expect(listed.slice(0, 3)).toEqual([good.id, noOffer.id, draft.id].sort().reverse());
  });
});

describe('launching', () => {
  it('an audience that matches nobody completes at once with 0 recipients, with launched and completed events', async () => {
    const draft = await created({ name: 'Nobody', audience: { tags: ['tag-nobody-has'] }, template: 'news' });
    const res = await launch(draft.id);
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    expect(res.data.launchCampaign).toMatchObject({ status: 'COMPLETED', stats: { recipients: 0, sent: 0 } });
    expect(res.data.launchCampaign.finishedAt).toBe(env.clock.now().toISOString());
    const [launched] = await env.waitFor('scheduling.campaign.launched', (e) => e.event.data.campaignId === draft.id);
    const [completed] = await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === draft.id);
    expect(launched!.event.data).toEqual({ campaignId: draft.id, recipients: 0 });
    expect(completed!.event.data).toEqual({ campaignId: draft.id, recipients: 0 });
    // An explicit empty list of ids matches nobody too.
    const empty = await created({ name: 'Empty ids', audience: { contactIds: [] }, template: 'news' });
    expect((await launch(empty.id)).data.launchCampaign.status).toBe('COMPLETED');
    // Launching or cancelling a completed campaign is a conflict that says why.
    expect(expectError(await launch(draft.id), 'CONFLICT')).toContain('COMPLETED');
    expect(expectError(await app.gql('mutation($id: ID!) { cancelCampaign(id: $id) { id } }', { id: draft.id }), 'CONFLICT')).toContain('COMPLETED');
    expectError(await launch('no-such-campaign'), 'NOT_FOUND');
  });

  it('launching twice is a CONFLICT, also when both launches arrive at once; one command per eligible recipient', async () => {
    const ids = contacts('twice', 6, { subscribed: (i) => i !== 2 });
    addContact(env.world, 'c-twice-other', { tags: ['someone-else'] });
    const draft = await created({ name: 'Twice', audience: { tags: ['twice'] }, template: 'news', category: 'TRANSACTIONAL' });
    const [a, b] = await Promise.all([launch(draft.id), launch(draft.id)]);
    const ok = [a, b].filter((r) => !r.errors);
    expect(ok).toHaveLength(1);
    expect(
      expectError(
        [a, b].find((r) => r.errors)!,
        'CONFLICT',
      ),
    ).toMatch(/already running|COMPLETED/);
    expect(expectError(await launch(draft.id), 'CONFLICT')).toMatch(/already running|COMPLETED/);

    await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === draft.id);
    await env.settle(app.deps.db);
    const commands = commandsOf(draft.id);
    // The unsubscribed contact (index 2) is not a recipient.
    expect(commands.map((c) => c.event.data.contactId).sort()).toEqual(ids.filter((_, i) => i !== 2));
    expect(new Set(commands.map((c) => c.event.data.requestId)).size).toBe(5);
    const recipients = await app.deps.db.selectFrom('campaign_recipients').selectAll().where('campaign_id', '=', draft.id).execute();
    expect(new Set(recipients.map((r) => r.id))).toEqual(new Set(commands.map((c) => c.event.data.requestId)));
    for (const c of commands) {
      expect(c.event.data).toMatchObject({
        template: 'news',
        category: 'TRANSACTIONAL',
        variables: {},
        correlation: { campaignId: draft.id, campaignRecipientId: c.event.data.requestId },
      });
    }
    expect(env.of('scheduling.campaign.launched', (e) => e.event.data.campaignId === draft.id).map((e) => e.event.data.recipients)).toEqual([5]);
    expect((await campaign(draft.id)).stats).toMatchObject({ recipients: 5, sent: 5 });
  });

  it('a SCHEDULED campaign launches itself at sendAt, not before', async () => {
    contacts('scheduled', 3);
    const sendAt = new Date(env.clock.now().getTime() + HOUR);
    const scheduled = await created({ name: 'Later', audience: { tags: ['scheduled'] }, template: 'news', sendAt: sendAt.toISOString() });
    expect(scheduled).toMatchObject({ status: 'SCHEDULED', sendAt: sendAt.toISOString() });
    env.clock.advance(HOUR - 1000);
    app.server.campaigns.kick();
    expect(await app.server.campaigns.launchDue()).toBe(0);
    expect((await campaign(scheduled.id)).status).toBe('SCHEDULED');
    env.clock.advance(1000);
    app.server.campaigns.kick();
    await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === scheduled.id);
    expect(commandsOf(scheduled.id)).toHaveLength(3);
    expect(await campaign(scheduled.id)).toMatchObject({ status: 'COMPLETED', launchedAt: sendAt.toISOString(), stats: { recipients: 3, sent: 3 } });
  });
});

describe('offers and stats', () => {
  /** A status of a campaign message as scheduling gets it: messaging's copy on messaging.notify.scheduling.<status>. */
  function statusEvent(
    command: Recorded,
    status: string,
    extra: Record<string, unknown> = {},
    subject = notifySubject('scheduling', `messaging.message.${status.toLowerCase()}`),
  ) {
    return env.publish(subject, {
      messageId: `msg-${command.event.data.requestId}`,
      contactId: command.event.data.contactId,
      to: '+14155550100',
      from: '+15005550006',
      category: 'MARKETING',
      status,
      segments: 1,
      correlation: command.event.data.correlation,
      ...extra,
    });
  }
  function inbound(contactId: string, body: string, inReplyTo: Record<string, unknown> | null, keyword?: string) {
    return env.publish('messaging.message.received', {
      messageId: newId(),
      contactId,
      from: '+14155550100',
      to: '+15005550006',
      body,
      inReplyTo,
      ...(keyword ? { keyword } : {}),
    });
  }
  const price = { amount: '0.0079', currency: 'USD' };

  it('gives every recipient a distinct code in variables.offer, and the stats add up from the events', async () => {
    const ids = contacts('stats', 9);
    const draft = await created({
      name: 'Win-back',
      audience: { tags: ['stats'] },
      template: 'winback',
      offer: { codePrefix: 'BACK', discountPercent: 20, validDays: 10 },
    });
    const sentAt = env.clock.now();
    await launch(draft.id);
    await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === draft.id);
    await env.settle(app.deps.db);
    const commands = commandsOf(draft.id).sort((a, b) => (a.event.data.contactId < b.event.data.contactId ? -1 : 1));
    expect(commands.map((c) => c.event.data.contactId)).toEqual(ids);
    const codes = commands.map((c) => c.event.data.variables.offer.code as string);
    expect(new Set(codes).size).toBe(9);
    for (const c of commands) {
      expect(c.event.data.variables.offer).toEqual({
        code: expect.stringMatching(CODE),
        discountPercent: 20,
        expiresAt: new Date(sentAt.getTime() + 10 * DAY).toISOString(),
      });
      expect(c.event.data.variables.offer.code.startsWith('BACK-')).toBe(true);
      expect(c.event.data.category).toBe('MARKETING');
    }
    // Stored with contact, campaign, recipient and expiry; the recipient row has it too.
    const stored = await app.deps.db.selectFrom('offer_codes').selectAll().where('campaign_id', '=', draft.id).execute();
    expect(stored.map((s) => s.code).sort()).toEqual([...codes].sort());
    for (const s of stored) {
      const command = commands.find((c) => c.event.data.variables.offer.code === s.code)!;
      expect(s).toMatchObject({ contact_id: command.event.data.contactId, campaign_recipient_id: command.event.data.requestId, discount_percent: 20 });
      expect(s.expires_at.toISOString()).toBe(new Date(sentAt.getTime() + 10 * DAY).toISOString());
    }
    const [c0, c1, c2, c3, c4, c5, c6, c7, c8] = commands as [Recorded, Recorded, Recorded, Recorded, Recorded, Recorded, Recorded, Recorded, Recorded];

    // Delivery: c0 and c4 delivered (c4's late SENT after DELIVERED changes nothing), c1 failed, c2 suppressed, c3 undelivered.
    await statusEvent(c0, 'QUEUED');
    await statusEvent(c0, 'SENT', { price });
    await statusEvent(c0, 'DELIVERED', { price });
    await statusEvent(c1, 'QUEUED');
    await statusEvent(c1, 'FAILED', { errorCode: 'INVALID_NUMBER' });
    await statusEvent(c2, 'SUPPRESSED', { errorCode: 'FREQUENCY_CAP' });
    await statusEvent(c3, 'SENT', { price });
    await statusEvent(c3, 'UNDELIVERED', { price });
    await statusEvent(c4, 'DELIVERED', { price });
    await statusEvent(c4, 'SENT', { price });
    await statusEvent(c5, 'DELIVERED', { price });
    // Replies: c5 answers its campaign message; c1 answers something else and sends HELP; c6 sends STOP in reply.
    await inbound(c5.event.data.contactId, 'Yes please!', { messageId: 'msg-x', category: 'MARKETING', correlation: c5.event.data.correlation });
    await inbound(c1.event.data.contactId, 'Where is my order?', { messageId: 'msg-y', category: 'TRANSACTIONAL', correlation: { automationRunId: 'r' } });
    await inbound(c1.event.data.contactId, 'HELP', { messageId: 'msg-x', category: 'MARKETING', correlation: c1.event.data.correlation }, 'HELP');
    await inbound(c6.event.data.contactId, 'STOP', { messageId: 'msg-x', category: 'MARKETING', correlation: c6.event.data.correlation }, 'STOP');
    // A STOP without inReplyTo counts for the campaign last sent to the contact (c8).
    await inbound(c8.event.data.contactId, 'stop', null, 'STOP');
    await env.handled('MESSAGING', 'scheduling-message-status');
    await env.handled('MESSAGING', 'scheduling-received');

    // An event that happened before the send (delivered late) is not coming back.
    await env.track('app.opened', c2.event.data.contactId, {}, { time: new Date(sentAt.getTime() - 1000) });
    // Coming back: c6 opens the app; c7 buys with its code, typed in lower case, then tries the same code again.
    env.clock.advance(HOUR);
    await env.track('app.opened', c6.event.data.contactId, {});
    await env.track('order.placed', c7.event.data.contactId, { code: ` ${codes[7]!.toLowerCase()} ` });
    await env.handled('EVENTS', 'scheduling-events');
    env.clock.advance(HOUR);
    await env.track('order.placed', c7.event.data.contactId, { code: codes[7] });
    // Someone else's code on c3's order redeems that code (once) and reactivates c3.
    await env.track('order.placed', c3.event.data.contactId, { code: codes[0] });
    await env.track('order.placed', c3.event.data.contactId, { code: 'BACK-NOTREAL' });
    await env.handled('EVENTS', 'scheduling-events');

    const { stats } = await campaign(draft.id);
    expect(stats).toEqual({
      recipients: 9,
      sent: 9,
      delivered: 3,
      failed: 2,
      suppressed: 1,
      optedOut: 2,
      replied: 1,
      reactivated: 3,
      redeemed: 2,
      cost: { amount: '0.0316', currency: 'USD' },
    });
    const redeemed = await app.deps.db.selectFrom('offer_codes').select(['code', 'redeemed_at']).where('redeemed_at', 'is not', null).execute();
    expect(redeemed.map((r) => r.code).sort()).toEqual([codes[0], codes[7]].sort());
    // Redeemed once: the first event's time is kept.
    expect(redeemed.find((r) => r.code === codes[7])!.redeemed_at!.getTime()).toBe(sentAt.getTime() + HOUR);
    // The first status event told which message carried each code.
    const linked = await app.deps.db.selectFrom('offer_codes').select(['code', 'message_id']).where('code', '=', codes[0]!).executeTakeFirstOrThrow();
    expect(linked.message_id).toBe(`msg-${c0.event.data.requestId}`);
  });

  it('takes statuses only from its copies: a campaign message’s status on messaging.message.* alone changes no stats', async () => {
    contacts('copies', 2);
    const draft = await created({ name: 'Copies only', audience: { tags: ['copies'] }, template: 'news' });
    await launch(draft.id);
    await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === draft.id);
    const [a, b] = commandsOf(draft.id).sort((x, y) => (x.event.data.contactId < y.event.data.contactId ? -1 : 1)) as [Recorded, Recorded];
    // On everyone's subjects only (as if messaging had made no copy), then scheduling's copy of b's status behind them.
    await statusEvent(a, 'DELIVERED', { price: { amount: '0.5', currency: 'USD' } }, 'messaging.message.delivered');
    await statusEvent(a, 'FAILED', { errorCode: 'INVALID_NUMBER' }, 'messaging.message.failed');
    await statusEvent(b, 'DELIVERED', { price });
    await env.handled('MESSAGING', 'scheduling-message-status');
    expect((await campaign(draft.id)).stats).toMatchObject({ recipients: 2, sent: 2, delivered: 1, failed: 0, cost: { amount: '0.0079', currency: 'USD' } });
    const rows = await app.deps.db
      .selectFrom('campaign_recipients')
      .select(['message_id', 'message_status'])
      .where('campaign_id', '=', draft.id)
      .orderBy('contact_id')
      .execute();
    expect(rows).toEqual([
      { message_id: null, message_status: null },
      { message_id: `msg-${b.event.data.requestId}`, message_status: 'DELIVERED' },
    ]);
  });

  it('does not redeem an expired code nor count activity after the offer expired; without an offer the window is 30 days', async () => {
    const [withOffer] = contacts('expiry', 1);
    const [late, early] = contacts('nooffer', 2);
    const offerCampaign = await created({
      name: 'Short offer',
      audience: { tags: ['expiry'] },
      template: 'winback',
      offer: { codePrefix: 'SHORT', validDays: 1 },
    });
    const plain = await created({ name: 'No offer', audience: { tags: ['nooffer'] }, template: 'news' });
    await launch(offerCampaign.id);
    await launch(plain.id);
    await env.waitFor('scheduling.campaign.completed', (e) => [offerCampaign.id, plain.id].includes(e.event.data.campaignId), 2);
    const start = env.clock.now().getTime();
    const [command] = commandsOf(offerCampaign.id);
    const code = command!.event.data.variables.offer.code as string;

    // Two days later the 1-day code has expired: neither redeemed nor reactivated.
    env.clock.set(new Date(start + 2 * DAY));
    await env.track('order.placed', withOffer!, { code });
    // Without an offer: activity on day 29 counts, on day 31 it does not.
    env.clock.set(new Date(start + 29 * DAY));
    await env.track('app.opened', early!, {});
    env.clock.set(new Date(start + 31 * DAY));
    await env.track('app.opened', late!, {});
    await env.handled('EVENTS', 'scheduling-events');

    expect((await campaign(offerCampaign.id)).stats).toMatchObject({ recipients: 1, sent: 1, redeemed: 0, reactivated: 0 });
    expect((await campaign(plain.id)).stats).toMatchObject({ recipients: 2, sent: 2, redeemed: 0, reactivated: 1 });
    const row = await app.deps.db.selectFrom('offer_codes').selectAll().where('code', '=', code).executeTakeFirstOrThrow();
    expect(row.redeemed_at).toBeNull();
    expect(row.reactivated_at).toBeNull();
  });

  it('draws a code again when the one drawn is taken', async () => {
    await app.deps.db
      .insertInto('offer_codes')
      .values({ code: 'DUPE-222222', contact_id: 'someone', created_at: env.clock.now(), expires_at: env.clock.now(), discount_percent: null })
      .execute();
    const drawn = ['DUPE-222222', 'DUPE-333333'];
    const issued = await app.deps.db
      .transaction()
      .execute((trx) =>
        issueCodes(trx, [{ key: 'k', offer: { codePrefix: 'DUPE', discountPercent: null, validDays: 1 }, contactId: 'c' }], env.clock.now(), () =>
          drawn.shift()!,
        ),
      );
    expect(issued.get('k')!.code).toBe('DUPE-333333');
  });
});

describe('offers on automation steps', () => {
  it('rejects a bad offer, warns when the template does not show the code, and accepts a good one', async () => {
    const create = (steps: unknown[]) =>
      app.gql(
        'mutation($input: AutomationInput!) { createAutomation(input: $input) { id warnings steps { offer { codePrefix discountPercent validDays } } } }',
        {
          input: { name: 'Win-back 30', triggerEvent: 'contact.dormant', triggerFilter: { days: 30 }, steps },
        },
      );
    expectError(
      await create([{ type: 'SEND_MESSAGE', template: 'winback', offer: { codePrefix: 'BACK', discountPercent: 150 } }]),
      'BAD_USER_INPUT',
      'steps[0].offer.discountPercent',
    );
    expectError(await create([{ type: 'SEND_MESSAGE', template: 'winback', offer: { codePrefix: 'B' } }]), 'BAD_USER_INPUT', 'steps[0].offer.codePrefix');
    env.world.surveys.set('survey-1', 'NPS');
    expectError(await create([{ type: 'SEND_SURVEY', surveyId: 'survey-1', offer: { codePrefix: 'BACK' } }]), 'BAD_USER_INPUT', 'steps[0].offer');
    const warned = await create([{ type: 'SEND_MESSAGE', template: 'news', offer: { codePrefix: 'BACK' } }]);
    expect(warned.errors).toBeUndefined();
    expect(warned.data.createAutomation.warnings).toEqual([expect.stringMatching(/^steps\[0\]: .*offer\.code/)]);
    expect(warned.data.createAutomation.steps[0].offer).toEqual({ codePrefix: 'BACK', discountPercent: null, validDays: 14 });
    await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: false) { id } }', { id: warned.data.createAutomation.id });
  });

  it('fires the step with a unique code in variables.offer, links it to its message, and counts redemption and reactivation', async () => {
    const res = await app.gql(
      'mutation($input: AutomationInput!) { createAutomation(input: $input) { id warnings steps { offer { codePrefix discountPercent validDays } } } }',
      {
        input: {
          name: 'Win-back with code',
          triggerEvent: 'contact.dormant',
          triggerFilter: { days: 30 },
          steps: [{ type: 'SEND_MESSAGE', template: 'winback', category: 'MARKETING', offer: { codePrefix: 'BACK', discountPercent: 15, validDays: 7 } }],
        },
      },
    );
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    const automation = res.data.createAutomation;
    expect(automation.warnings).toEqual([]);
    expect(automation.steps[0].offer).toEqual({ codePrefix: 'BACK', discountPercent: 15, validDays: 7 });
    const dormant = [`c-dormant-${newId()}`, `c-dormant-${newId()}`, `c-dormant-${newId()}`];
    const firedAt = env.clock.now();
    for (const contactId of dormant) await env.publish('contacts.contact.dormant', { contactId, days: 30, lastActiveAt: '2026-10-01T00:00:00Z' });
    const commands = await env.waitFor('messaging.cmd.send', (e) => e.event.data.correlation?.automationId === automation.id, 3);
    const codes = commands.map((c) => c.event.data.variables.offer.code as string);
    expect(new Set(codes).size).toBe(3);
    for (const c of commands) {
      expect(c.event.data.variables.offer).toEqual({
        code: expect.stringMatching(/^BACK-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/),
        discountPercent: 15,
        expiresAt: new Date(firedAt.getTime() + 7 * DAY).toISOString(),
      });
      expect(c.event.data.variables.event).toMatchObject({ days: 30 });
    }
    const rows = await app.deps.db.selectFrom('offer_codes').selectAll().where('automation_id', '=', automation.id).execute();
    expect(rows.map((r) => [r.code, r.contact_id, r.step_id]).sort()).toEqual(
      commands.map((c) => [c.event.data.variables.offer.code, c.event.data.contactId, c.event.data.requestId]).sort(),
    );
    expect(rows.every((r) => r.run_id === commands.find((c) => c.event.data.requestId === r.step_id)!.event.data.correlation.automationRunId)).toBe(true);

    // Messaging's first event names the message the code went out in.
    await env.publish(notifySubject('scheduling', 'messaging.message.queued'), {
      messageId: 'msg-dormant-0',
      contactId: commands[0]!.event.data.contactId,
      to: '+14155550100',
      from: '+15005550006',
      category: 'MARKETING',
      status: 'QUEUED',
      segments: 1,
      correlation: commands[0]!.event.data.correlation,
    });
    await waitFor(async () => {
      const row = await app.deps.db.selectFrom('offer_codes').select('message_id').where('code', '=', codes[0]!).executeTakeFirstOrThrow();
      return row.message_id === 'msg-dormant-0';
    });

    // Contact 0 redeems its code (twice: counted once); contact 1 only comes back; contact 2 does nothing.
    env.clock.advance(HOUR);
    await env.track('order.placed', commands[0]!.event.data.contactId, { code: codes[0] });
    await env.track('order.placed', commands[0]!.event.data.contactId, { code: codes[0] });
    await env.track('app.opened', commands[1]!.event.data.contactId, {});
    await env.handled('EVENTS', 'scheduling-events');
    const stats = await app.gql('query($id: ID!) { automation(id: $id) { offerStats { issued redeemed reactivated } } }', { id: automation.id });
    expect(stats.data.automation.offerStats).toEqual({ issued: 3, redeemed: 1, reactivated: 2 });
  });
});
