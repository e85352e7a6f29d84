import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { waitFor } from '@textloop/service-kit/testing';
import { addContact, expectError, startEnv, type Env, type Instance, type Recorded } from './test-support';

// The campaign sender: paced by CAMPAIGN_RATE_PER_SECOND on the manual clock, resumable after a
// crash (mid-send and mid-resolution) without sending twice, and cancellable mid-way.

const SECOND = 1000;

function commandsOf(env: Env, campaignId: string): Recorded[] {
  return env.of('messaging.cmd.send', (e) => e.event.data.correlation?.campaignId === campaignId);
}

function contacts(env: Env, tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => addContact(env.world, `c-${tag}-${String(i).padStart(3, '0')}`, { tags: [tag] }));
}

async function create(app: Instance, input: Record<string, unknown>): Promise<string> {
  const res = await app.gql('mutation($input: CampaignInput!) { createCampaign(input: $input) { id } }', { input });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.createCampaign.id;
}

async function launch(app: Instance, id: string): Promise<any> {
  const res = await app.gql('mutation($id: ID!) { launchCampaign(id: $id) { id status error stats { recipients sent } } }', { id });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.launchCampaign;
}

async function status(app: Instance, id: string): Promise<{ status: string; finishedAt: string | null; stats: { recipients: number; sent: number } }> {
  const res = await app.gql('query($id: ID!) { campaign(id: $id) { status finishedAt stats { recipients sent } } }', { id });
  return res.data.campaign;
}

/** Commands per requestId, over every campaign command recorded. */
function requestCounts(commands: Recorded[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of commands) counts.set(c.event.data.requestId, (counts.get(c.event.data.requestId) ?? 0) + 1);
  return counts;
}

describe('paced sending and cancellation (10 messages a second)', () => {
  let env: Env;
  let app: Instance;

  beforeAll(async () => {
    env = await startEnv('sched_campaign_pace');
    env.world.templates.set('promo', { category: 'MARKETING', variables: ['offer.code'] });
    app = await env.start({ CAMPAIGN_RATE_PER_SECOND: '10', CAMPAIGN_BATCH_SIZE: '4' });
  });

  afterAll(async () => {
    await env?.close();
  });

  /** Moves the clock and wakes the sender, then waits until `total` commands of the campaign were published. */
  async function tick(campaignId: string, ms: number, total: number): Promise<void> {
    env.clock.advance(ms);
    app.server.campaigns.kick();
    await waitFor(() => commandsOf(env, campaignId).length >= total, { what: `${total} commands` });
    await env.settle(app.deps.db);
    // The budget of this second is spent: nothing more goes until the clock moves.
    expect((await app.server.campaigns.sendBatch()).sent).toBe(0);
    await env.settle(app.deps.db);
    expect(commandsOf(env, campaignId)).toHaveLength(total);
  }

  it('sends 10 a second, one command per eligible recipient, each with its own code, then completes', async () => {
    const ids = contacts(env, 'paced', 25);
    addContact(env.world, 'c-paced-unsubscribed', { tags: ['paced'], subscribed: false });
    const id = await create(app, { name: 'Paced', audience: { tags: ['paced'] }, template: 'promo', offer: { codePrefix: 'PACE', discountPercent: 10 } });
    const launched = await launch(app, id);
    expect(launched).toMatchObject({ status: 'RUNNING', stats: { recipients: 25 } });

    await tick(id, 0, 10);
    expect((await status(app, id)).stats).toEqual({ recipients: 25, sent: 10 });
    await tick(id, SECOND, 20);
    env.clock.advance(SECOND);
    app.server.campaigns.kick();
    await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === id);
    await env.settle(app.deps.db);

    const commands = commandsOf(env, id);
    expect(commands).toHaveLength(25);
    expect(commands.map((c) => c.event.data.contactId).sort()).toEqual(ids);
    expect([...requestCounts(commands).values()].every((n) => n === 1)).toBe(true);
    const codes = commands.map((c) => c.event.data.variables.offer.code);
    expect(new Set(codes).size).toBe(25);
    expect(codes.every((code) => /^PACE-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/.test(code))).toBe(true);
    const recipients = await app.deps.db.selectFrom('campaign_recipients').selectAll().where('campaign_id', '=', id).execute();
    expect(recipients.every((r) => r.status === 'SENT')).toBe(true);
    expect(new Set(recipients.map((r) => r.id))).toEqual(new Set(requestCounts(commands).keys()));
    expect(recipients.map((r) => r.offer_code).sort()).toEqual([...codes].sort());
    expect(await status(app, id)).toMatchObject({ status: 'COMPLETED', stats: { recipients: 25, sent: 25 } });
    expect(env.of('scheduling.campaign.completed', (e) => e.event.data.campaignId === id).map((e) => e.event.data)).toEqual([
      { campaignId: id, recipients: 25 },
    ]);
  });

  it('cancelling mid-way stops the send; an erased contact is never sent and forgotten', async () => {
    contacts(env, 'cancel', 25);
    const id = await create(app, { name: 'Cancelled', audience: { tags: ['cancel'] }, template: 'promo', offer: { codePrefix: 'STOP' } });
    env.clock.advance(SECOND);
    await launch(app, id);
    await tick(id, 0, 10);

    // Erase a contact already sent and one still pending.
    const rows = await app.deps.db.selectFrom('campaign_recipients').selectAll().where('campaign_id', '=', id).orderBy('id').execute();
    const sent = rows.find((r) => r.status === 'SENT')!;
    const pending = rows.filter((r) => r.status === 'PENDING')[0]!;
    await env.publish('contacts.contact.deleted', { contactId: sent.contact_id });
    await env.publish('contacts.contact.deleted', { contactId: pending.contact_id });
    await env.handled('CONTACTS', 'scheduling-contact-erasure');
    const after = await app.deps.db.selectFrom('campaign_recipients').selectAll().where('id', 'in', [sent.id, pending.id]).execute();
    expect(after.find((r) => r.id === sent.id)).toMatchObject({ status: 'SENT', contact_id: null });
    expect(after.find((r) => r.id === pending.id)).toMatchObject({ status: 'CANCELED', contact_id: null });
    expect(
      (await app.deps.db.selectFrom('offer_codes').select('contact_id').where('code', '=', sent.offer_code!).executeTakeFirstOrThrow()).contact_id,
    ).toBeNull();

    await tick(id, SECOND, 20);
    expect(commandsOf(env, id).some((c) => c.event.data.contactId === pending.contact_id)).toBe(false);

    const res = await app.gql('mutation($id: ID!) { cancelCampaign(id: $id) { status finishedAt stats { recipients sent } } }', { id });
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    expect(res.data.cancelCampaign).toEqual({ status: 'CANCELED', finishedAt: env.clock.now().toISOString(), stats: { recipients: 25, sent: 20 } });
    env.clock.advance(5 * SECOND);
    app.server.campaigns.kick();
    expect((await app.server.campaigns.sendBatch()).sent).toBe(0);
    await env.settle(app.deps.db);
    expect(commandsOf(env, id)).toHaveLength(20);
    const counts = await sql<{ status: string; n: number }>`
      select status, count(*)::int as n from campaign_recipients where campaign_id = ${id} group by status order by status`.execute(app.deps.db);
    expect(counts.rows).toEqual([
      { status: 'CANCELED', n: 5 },
      { status: 'SENT', n: 20 },
    ]);
    expect(env.of('scheduling.campaign.completed', (e) => e.event.data.campaignId === id)).toEqual([]);
    expect(expectError(await app.gql('mutation($id: ID!) { cancelCampaign(id: $id) { id } }', { id }), 'CONFLICT')).toContain('CANCELED');
    expectError(await app.gql('mutation($id: ID!) { launchCampaign(id: $id) { id } }', { id }), 'CONFLICT');
  });
});

describe('crash and restart', () => {
  let env: Env;

  beforeAll(async () => {
    env = await startEnv('sched_campaign_restart');
    env.world.templates.set('promo', { category: 'MARKETING', variables: ['offer.code'] });
  });

  afterAll(async () => {
    await env?.close();
  });

  it('resumes sending on another instance without sending anything twice, including commands committed but not yet published', async () => {
    const ids = contacts(env, 'restart', 30);
    const first = await env.start({ CAMPAIGN_RATE_PER_SECOND: '10' });
    const id = await create(first, { name: 'Restart', audience: { tags: ['restart'] }, template: 'promo', offer: { codePrefix: 'AGAIN' } });
    await launch(first, id);
    await waitFor(() => commandsOf(env, id).length >= 10, { what: 'the first 10 commands' });
    await env.settle(first.deps.db);

    // The next second's batch is committed, but the process dies before its outbox is published.
    await first.deps.outbox.stop();
    env.clock.advance(SECOND);
    first.server.campaigns.kick();
    const sent = sql<{ n: number }>`select count(*)::int as n from campaign_recipients where status = 'SENT'`;
    await waitFor(async () => (await sent.execute(first.deps.db)).rows[0]!.n === 20, { what: '20 recipients SENT' });
    await first.stop();
    expect(commandsOf(env, id)).toHaveLength(10);

    env.clock.advance(SECOND);
    const second = await env.start({ CAMPAIGN_RATE_PER_SECOND: '10' });
    await waitFor(() => commandsOf(env, id).length >= 30, { what: '30 commands after the restart' });
    await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === id);
    await env.settle(second.deps.db);

    const commands = commandsOf(env, id);
    expect(commands).toHaveLength(30);
    const counts = requestCounts(commands);
    expect(counts.size).toBe(30);
    expect(commands.map((c) => c.event.data.contactId).sort()).toEqual(ids);
    expect(new Set(commands.map((c) => c.event.data.variables.offer.code)).size).toBe(30);
    expect((await status(second, id)).stats).toEqual({ recipients: 30, sent: 30 });
    expect(env.of('scheduling.campaign.completed', (e) => e.event.data.campaignId === id)).toHaveLength(1);
    expect(env.of('scheduling.campaign.launched', (e) => e.event.data.campaignId === id)).toHaveLength(1);
    await second.stop();
  });

  it('resumes resolving the audience from the stored cursor after a crash mid-resolution', async () => {
    const ids = contacts(env, 'resolve', 12);
    const isOurs = (r: { tags?: string[] }) => r.tags?.includes('resolve') ?? false;
    let ours = 0;
    // contacts answers the first page, then fails: the instance dies before it can retry.
    env.world.audienceFailure = (request) => (isOurs(request) && ++ours === 2 ? 'contacts database unavailable' : undefined);
    const settings = { CAMPAIGN_RATE_PER_SECOND: '100000', CAMPAIGN_AUDIENCE_PAGE_SIZE: '5' };
    const first = await env.start(settings);
    const id = await create(first, { name: 'Resolve', audience: { tags: ['resolve'] }, template: 'promo', offer: { codePrefix: 'RES' } });
    const launched = await launch(first, id);
    expect(launched).toMatchObject({ status: 'RUNNING', stats: { recipients: 5 } });
    expect(launched.error).toContain('contacts database unavailable');
    const stored = await first.deps.db
      .selectFrom('campaigns')
      .select(['resolve_cursor', 'resolve_error', 'resolved_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(stored.resolve_cursor!)).toEqual({ chunk: 0, after: ids[4] });
    expect(stored.resolve_error).toContain('contacts database unavailable');
    expect(stored.resolved_at).toBeNull();
    await first.stop();
    env.world.audienceFailure = undefined;

    const second = await env.start(settings);
    env.clock.advance(10 * SECOND);
    second.server.campaigns.kick();
    await env.waitFor('scheduling.campaign.completed', (e) => e.event.data.campaignId === id);
    await env.settle(second.deps.db);

    const requests = env.world.audienceRequests.filter(isOurs);
    expect(requests.map((r) => r.after ?? null)).toEqual([null, ids[4], ids[4], ids[9]]);
    expect(requests.every((r) => r.subscribedOnly === true && r.limit === 5)).toBe(true);
    const commands = commandsOf(env, id);
    expect(commands.map((c) => c.event.data.contactId).sort()).toEqual(ids);
    expect(requestCounts(commands).size).toBe(12);
    expect(env.of('scheduling.campaign.launched', (e) => e.event.data.campaignId === id).map((e) => e.event.data)).toEqual([
      { campaignId: id, recipients: 12 },
    ]);
    expect(await status(second, id)).toMatchObject({ status: 'COMPLETED', stats: { recipients: 12, sent: 12 } });
  });
});
