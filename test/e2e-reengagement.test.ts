import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@textloop/service-kit/testing';
import { gatewayClient, seedExamples } from '../scripts/seed';
import { startE2E, type E2E } from './support/e2e';

// Flow 4 end to end (re-engagement issue): six real processes on Postgres and NATS, driven through
// the gateway and the carrier simulator. The 30-day win-back automation is the one `pnpm seed`
// creates; the campaign runs at 1,000 msg/s (CAMPAIGN_RATE_PER_SECOND; the default 50/s paces a
// single provider account) so 2,000 recipients take seconds.

const DAY_MS = 24 * 3600_000;
/** Codes are PREFIX-XXXXXX over an alphabet without 0/O/1/I/L. */
const code = (prefix: string) => new RegExp(`\\b${prefix}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}\\b`);

let e2e: E2E;

beforeAll(async () => {
  e2e = await startE2E({ prefix: 'e2e_reeng', env: { CAMPAIGN_RATE_PER_SECOND: '1000' } });
  const created = await seedExamples(gatewayClient(e2e.platform.urls.graphql, e2e.platform.devApiKey!));
  expect(created.automations).toContain('Win-back after 30 days');
  expect(created.templates).toContain('win-back-30');
}, 240_000);

afterAll(async () => {
  await e2e?.close();
}, 60_000);

type HandsetMessage = { text: string; receivedAt: string };
const handset = (phone: string): Promise<HandsetMessage[]> => e2e.sim(`/api/handsets/${encodeURIComponent(phone)}/messages`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const setPolicy = (quietHoursStart: string, quietHoursEnd: string) =>
  e2e.gql(`mutation($s: String!, $e: String!) { updateMessagingPolicy(input: { quietHoursStart: $s, quietHoursEnd: $e }) { quietHoursStart quietHoursEnd } }`, {
    s: quietHoursStart,
    e: quietHoursEnd,
  });

/** In parallel, at most `limit` at a time, results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** Local wall-clock minutes after midnight in tz. */
function localMinutes(at: Date, tz: string): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', hour: 'numeric', minute: 'numeric' }).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return (get('hour') % 24) * 60 + get('minute');
}
const hhmm = (minutes: number) => {
  const m = ((minutes % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};
/** [start, end) on the wall clock, crossing midnight when start > end. */
const insideWindow = (m: number, start: number, end: number) => {
  const s = ((start % 1440) + 1440) % 1440;
  const e = ((end % 1440) + 1440) % 1440;
  return s < e ? m >= s && m < e : m >= s || m < e;
};

describe('30-day win-back (seed automation on contact.dormant)', () => {
  it('texts a contact inactive for 45 days its first name and a unique code once, and counts the redemption', async () => {
    // Quiet hours off for this test: the win-back is MARKETING and would otherwise wait for 08:00.
    expect(await setPolicy('00:00', '00:00')).toEqual({ updateMessagingPolicy: { quietHoursStart: '00:00', quietHoursEnd: '00:00' } });

    const phone = '+14155550181';
    const { createContact: contact } = await e2e.gql(`mutation { createContact(input: { phone: "${phone}", firstName: "Margaret" }) { id timezone } }`);
    expect(contact.timezone).toBe('America/Los_Angeles');
    const lastActive = new Date(Date.now() - 45 * DAY_MS);
    await e2e.gql(`mutation($c: ID!, $at: DateTime!) { trackEvent(input: { contactId: $c, name: "app.opened", occurredAt: $at }) { id } }`, {
      c: contact.id,
      at: lastActive.toISOString(),
    });
    await waitFor(
      async () => {
        const { contact: c } = await e2e.gql(`query($id: ID!) { contact(id: $id) { lastActiveAt } }`, { id: contact.id });
        return c.lastActiveAt && Math.abs(Date.parse(c.lastActiveAt) - lastActive.getTime()) < 1000;
      },
      { timeoutMs: 10_000, what: 'lastActiveAt 45 days ago' },
    );
    // The onboarding automation welcomes the new contact first; the win-back must be the only other text.
    await waitFor(async () => (await handset(phone)).some((m) => m.text.startsWith('Welcome')), { timeoutMs: 10_000, what: 'the welcome SMS' });

    const before = Date.now();
    const { runDormancySweep } = await e2e.gql('mutation { runDormancySweep }');
    expect(runDormancySweep, 'one contact crossed the 30-day threshold').toBe(1);
    const winBack = await waitFor(async () => (await handset(phone)).find((m) => m.text.startsWith('Hi Margaret')), {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'the win-back SMS',
    });
    const after = Date.now();
    const offerCode = code('BACK').exec(winBack.text)?.[0];
    expect(offerCode, winBack.text).toBeDefined();
    // Expires 14 days after issue, shown in the contact's zone ("%b %e": "Dec 11", "Dec  1").
    const expiry = (at: number) => {
      const d = new Date(at + 14 * DAY_MS);
      const zone = { timeZone: 'America/Los_Angeles' } as const;
      const month = new Intl.DateTimeFormat('en-US', { ...zone, month: 'short' }).format(d);
      const day = new Intl.DateTimeFormat('en-US', { ...zone, day: 'numeric' }).format(d).padStart(2, ' ');
      return `valid until ${month} ${day}.`;
    };
    expect(winBack.text).toBe(
      `Hi Margaret, we miss you! Take 20% off your next order with code ${offerCode}, ${
        winBack.text.includes(expiry(before)) ? expiry(before) : expiry(after)
      } Reply STOP to opt out.`,
    );

    const { automations } = await e2e.gql('{ automations { id name offerStats { issued redeemed reactivated } } }');
    const automation = automations.find((a: any) => a.name === 'Win-back after 30 days');
    const { contact: withRuns } = await e2e.gql(
      `query($id: ID!) { contact(id: $id) { automationRuns { status automation { name } steps { status message { category body } } } } }`,
      { id: contact.id },
    );
    const runs = withRuns.automationRuns.filter((r: any) => r.automation.name === 'Win-back after 30 days');
    expect(runs).toHaveLength(1);
    expect(runs[0].steps[0].message).toMatchObject({ category: 'MARKETING' });

    // The next sweep flags nobody: one win-back per threshold per inactivity spell.
    expect((await e2e.gql('mutation { runDormancySweep }')).runDormancySweep).toBe(0);
    await sleep(3000);
    expect((await handset(phone)).filter((m) => m.text.startsWith('Hi Margaret'))).toHaveLength(1);

    // Issued, not yet redeemed; then the customer uses the code (typed in lower case).
    await waitFor(async () => {
      const { automation: a } = await e2e.gql(`query($id: ID!) { automation(id: $id) { offerStats { issued redeemed reactivated } } }`, { id: automation.id });
      return a.offerStats.issued === 1 ? a : undefined;
    });
    await e2e.gql(`mutation($c: ID!, $p: JSON) { trackEvent(input: { contactId: $c, name: "order.completed", properties: $p }) { id } }`, {
      c: contact.id,
      p: { orderId: 'A-4501', code: offerCode!.toLowerCase() },
    });
    const stats = await waitFor(
      async () => {
        const { automation: a } = await e2e.gql(`query($id: ID!) { automation(id: $id) { offerStats { issued redeemed reactivated } } }`, {
          id: automation.id,
        });
        return a.offerStats.redeemed === 1 && a.offerStats.reactivated === 1 ? a.offerStats : undefined;
      },
      { timeoutMs: 10_000, what: 'the redemption in offerStats' },
    );
    expect(stats).toEqual({ issued: 1, redeemed: 1, reactivated: 1 });
    // A code redeems once.
    await e2e.gql(`mutation($c: ID!, $p: JSON) { trackEvent(input: { contactId: $c, name: "order.completed", properties: $p }) { id } }`, {
      c: contact.id,
      p: { orderId: 'A-4502', code: offerCode },
    });
    await sleep(1500);
    const { automation: again } = await e2e.gql(`query($id: ID!) { automation(id: $id) { offerStats { issued redeemed reactivated } } }`, {
      id: automation.id,
    });
    expect(again.offerStats).toEqual({ issued: 1, redeemed: 1, reactivated: 1 });
  }, 60_000);
});

describe('a campaign to 2,000 contacts', () => {
  it('sends exactly one message with a distinct code to each eligible contact, defers the quiet-hours ones, skips the unsubscribed, and its stats add up', async () => {
    // Imports are contact.created events: pause the seeded onboarding automation so 2,000 welcome
    // codes do not share the send queue with the campaign.
    const { automations } = await e2e.gql('{ automations { id name } }');
    const onboarding = automations.find((a: any) => a.name.startsWith('Onboarding'));
    await e2e.gql(`mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: false) { enabled } }`, { id: onboarding.id });

    // 1,800 numbers in New York and 200 in Sydney: 14–16 hours apart all year.
    const NY = 'America/New_York';
    const SYD = 'Australia/Sydney';
    const nyPhones = Array.from({ length: 1800 }, (_, i) => `+1212555${String(i).padStart(4, '0')}`);
    const sydPhones = Array.from({ length: 200 }, (_, i) => `+61412${String(i).padStart(6, '0')}`);
    const all = [...nyPhones, ...sydPhones];
    for (const [i, chunk] of [all.slice(0, 1000), all.slice(1000)].entries()) {
      const { importContacts } = await e2e.gql(
        `mutation($c: [CreateContactInput!]!) { importContacts(contacts: $c) { created updated failed { index message } } }`,
        {
          c: chunk.map((phone, j) => ({ phone, firstName: `Vip${i * 1000 + j}`, tags: ['vip'] })),
        },
      );
      expect(importContacts).toEqual({ created: 1000, updated: 0, failed: [] });
    }
    const idByPhone = new Map<string, string>();
    const zoneByPhone = new Map<string, string>();
    let after: string | null = null;
    do {
      const { contacts }: any = await e2e.gql(
        `query($after: String) { contacts(filter: { tag: "vip" }, first: 1000, after: $after) { nodes { id phone timezone } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      for (const c of contacts.nodes) {
        idByPhone.set(c.phone, c.id);
        zoneByPhone.set(c.phone, c.timezone);
      }
      after = contacts.pageInfo.hasNextPage ? contacts.pageInfo.endCursor : null;
    } while (after);
    expect(idByPhone.size).toBe(2000);
    expect(nyPhones.every((p) => zoneByPhone.get(p) === NY) && sydPhones.every((p) => zoneByPhone.get(p) === SYD)).toBe(true);

    // Every 20th contact unsubscribes: 90 in New York, 10 in Sydney.
    const unsubscribed = all.filter((_, i) => i % 20 === 7);
    expect(unsubscribed).toHaveLength(100);
    await mapLimit(unsubscribed, 10, (phone) => e2e.gql(`mutation($id: ID!) { unsubscribeContact(id: $id) { subscribed } }`, { id: idByPhone.get(phone) }));
    const gone = new Set(unsubscribed);
    const eligibleNow = nyPhones.filter((p) => !gone.has(p));
    const eligibleQuiet = sydPhones.filter((p) => !gone.has(p));
    expect([eligibleNow.length, eligibleQuiet.length]).toEqual([1710, 190]);

    // Quiet hours from an hour before to three hours after Sydney's current time: Sydney is inside
    // them, New York (8–10 hours ahead on the wall clock) is not.
    const now = new Date();
    const syd = localMinutes(now, SYD);
    const start = syd - 60;
    const end = syd + 180;
    expect(insideWindow(localMinutes(now, SYD), start, end)).toBe(true);
    expect(insideWindow(localMinutes(now, NY), start, end)).toBe(false);
    await setPolicy(hhmm(start), hhmm(end));

    const { createCampaign } = await e2e.gql(`mutation($input: CampaignInput!) { createCampaign(input: $input) { id status warnings createdAt } }`, {
      input: {
        name: 'VIP win-back',
        audience: { tags: ['vip'] },
        template: 'win-back-30',
        offer: { codePrefix: 'VIP', discountPercent: 15, validDays: 7 },
      },
    });
    expect(createCampaign).toMatchObject({ status: 'DRAFT', warnings: [] });
    const id = createCampaign.id;
    const { launchCampaign } = await e2e.gql(`mutation($id: ID!) { launchCampaign(id: $id) { status } }`, { id });
    expect(['RUNNING', 'COMPLETED']).toContain(launchCampaign.status);
    const again = await e2e.gqlRaw(`mutation($id: ID!) { launchCampaign(id: $id) { status } }`, { id });
    expect(again.errors?.[0]?.extensions?.code).toBe('CONFLICT');

    const STATS = 'status stats { recipients sent delivered failed suppressed optedOut replied reactivated redeemed cost { amount currency } }';
    const campaign = async () => (await e2e.gql(`query($id: ID!) { campaign(id: $id) { ${STATS} } }`, { id })).campaign;
    await waitFor(async () => ((await campaign()).status === 'COMPLETED' ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'the campaign to complete',
    });
    const settled = await waitFor(
      async () => {
        const c = await campaign();
        return c.stats.delivered >= eligibleNow.length ? c : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'the campaign messages outside quiet hours to be delivered' },
    );

    // The campaign's messages, through the gateway.
    const messages: Array<{ to: string; status: string; body: string; correlation: any; statusHistory: Array<{ status: string; detail: string | null }> }> = [];
    let cursor: string | null = null;
    do {
      const page: any = await e2e.gql(
        `query($since: DateTime, $after: String) { messages(filter: { category: MARKETING, direction: OUTBOUND, since: $since }, first: 500, after: $after) {
           nodes { to status body correlation statusHistory { status detail } } pageInfo { hasNextPage endCursor } } }`,
        { since: createCampaign.createdAt, after: cursor },
      );
      messages.push(...page.messages.nodes.filter((m: any) => m.correlation?.campaignId === id));
      cursor = page.messages.pageInfo.hasNextPage ? page.messages.pageInfo.endCursor : null;
    } while (cursor);

    const eligible = [...eligibleNow, ...eligibleQuiet];
    expect(messages).toHaveLength(eligible.length);
    expect(new Set(messages.map((m) => m.to))).toEqual(new Set(eligible));
    const codes = messages.map((m) => code('VIP').exec(m.body)?.[0]);
    expect(codes.every(Boolean), 'every message shows a VIP-XXXXXX code').toBe(true);
    expect(new Set(codes).size, 'codes are distinct').toBe(eligible.length);
    const byPhone = new Map(messages.map((m) => [m.to, m]));
    for (const phone of unsubscribed) expect(byPhone.has(phone), `${phone} unsubscribed`).toBe(false);
    for (const phone of eligibleNow) expect(byPhone.get(phone)!.status, phone).toBe('DELIVERED');
    for (const phone of eligibleQuiet) {
      const m = byPhone.get(phone)!;
      expect(m.status, phone).toBe('SCHEDULED');
      expect(m.statusHistory.at(-1)!.detail).toContain(`quiet hours ${hhmm(start)}–${hhmm(end)} in ${SYD}`);
    }
    const first = byPhone.get(eligibleNow[0]!)!;
    expect(first.body).toMatch(/^Hi Vip0, we miss you! Take 15% off your next order with code VIP-\w{6}, valid until \w{3} [ \d]\d\. Reply STOP to opt out\.$/);

    // The handsets: one text each in New York with its message's code, nothing in Sydney yet, nothing for the unsubscribed.
    const received = await mapLimit(all, 32, handset);
    all.forEach((phone, i) => {
      const texts = received[i]!.map((m) => m.text);
      if (eligibleNow.includes(phone)) expect(texts, phone).toEqual([byPhone.get(phone)!.body]);
      else expect(texts, phone).toEqual([]);
    });

    // Stats add up: every recipient was handed over once; each is delivered, failed, suppressed, or still waiting for its window.
    const { stats } = settled;
    const deferred = messages.filter((m) => m.status === 'SCHEDULED').length;
    expect(stats).toMatchObject({
      recipients: eligible.length,
      sent: eligible.length,
      delivered: eligibleNow.length,
      failed: 0,
      suppressed: 0,
      optedOut: 0,
      replied: 0,
      reactivated: 0,
      redeemed: 0,
    });
    expect(stats.delivered + stats.failed + stats.suppressed + deferred).toBe(stats.sent);
    expect(Number(stats.cost.amount)).toBeGreaterThan(0);

    // Deferred, not dropped: ending the quiet hours releases the Sydney messages.
    await setPolicy('00:00', '00:00');
    const done = await waitFor(
      async () => {
        const c = await campaign();
        return c.stats.delivered === eligible.length ? c : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'the held messages to be released and delivered' },
    );
    expect(done.stats).toMatchObject({ recipients: eligible.length, sent: eligible.length, delivered: eligible.length, failed: 0, suppressed: 0 });
    const late = await mapLimit(sydPhones, 32, handset);
    sydPhones.forEach((phone, i) =>
      expect(
        late[i]!.map((m) => m.text),
        phone,
      ).toEqual(gone.has(phone) ? [] : [byPhone.get(phone)!.body]),
    );
  }, 120_000);
});
