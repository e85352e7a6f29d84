import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '@textloop/events';
import { ManualClock } from '@textloop/service-kit';
import { toInsertable } from './sending';
import { contactData, MESSAGE_FIELDS, startHarness, waitForRow, type GqlResult, type Harness, type Running } from './test-harness';

// Quiet hours depend on the time of day, so the instance under test runs on a ManualClock. The
// harness's own instance (on the system clock) neither dispatches nor releases; every request
// below goes to the instance with the manual clock.
let h: Harness;
let app: Running;
const clock = new ManualClock('2026-11-27T15:00:00.000Z');

beforeAll(async () => {
  h = await startHarness('msg_policy', { DISPATCH_ENABLED: 'false' });
  app = await h.startInstance({ DISPATCH_ENABLED: 'true' }, { clock });
});
afterAll(async () => {
  await h?.close();
});

async function gql<T = any>(query: string, variables?: Record<string, unknown>, role?: string): Promise<GqlResult<T>> {
  const res = await fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(role ? { 'x-textloop-role': role } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as GqlResult<T>;
}

const POLICY = `{ messagingPolicy { quietHoursStart quietHoursEnd marketingWeeklyCap } }`;
const UPDATE = `mutation($input: MessagingPolicyInput!) { updateMessagingPolicy(input: $input) { quietHoursStart quietHoursEnd marketingWeeklyCap } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`;
const SEND_MANY = `mutation($inputs: [SendMessageInput!]!) { sendMessages(inputs: $inputs) { id status errorCode errorMessage price { amount } } }`;

async function send(input: Record<string, unknown>) {
  const res = await gql(SEND, { input });
  expect(res.errors).toBeUndefined();
  return res.data.sendMessage;
}

async function seedContact(phone: string, extra: Record<string, unknown> = {}): Promise<string> {
  const contactId = newId();
  await h.publish('contacts.contact.created', contactData(contactId, phone, extra));
  await waitForRow(() => app.deps.db.selectFrom('contacts').select('id').where('id', '=', contactId).executeTakeFirst(), 'the projection');
  return contactId;
}

async function message(id: string) {
  return (await gql(`query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`, { id })).data.message;
}

async function waitStatus(id: string, status: string) {
  return waitForRow(async () => {
    const m = await message(id);
    return m.status === status ? m : undefined;
  }, `message ${id} ${status}`);
}

async function notBefore(id: string): Promise<string> {
  const row = await app.deps.db.selectFrom('messages').select('not_before').where('id', '=', id).executeTakeFirstOrThrow();
  return row.not_before.toISOString();
}

/**
 * Kicks the release loop and waits for a pass that started after the kick: the first pass to end
 * may have been under way already, the one after the second kick was not.
 */
async function releasePass(): Promise<void> {
  const start = app.instance.release.stats.passes;
  app.instance.release.kick();
  await waitForRow(async () => app.instance.release.stats.passes >= start + 1, 'a release pass');
  app.instance.release.kick();
  await waitForRow(async () => app.instance.release.stats.passes >= start + 2, 'a second release pass');
}

function errorOf(res: GqlResult) {
  expect(res.errors).toBeDefined();
  return res.errors![0]!;
}

describe('messagingPolicy', () => {
  it('is the compliance defaults until changed', async () => {
    const res = await gql(POLICY);
    expect(res.errors).toBeUndefined();
    expect(res.data.messagingPolicy).toEqual({ quietHoursStart: '21:00', quietHoursEnd: '08:00', marketingWeeklyCap: 3 });
  });

  it('refuses bad times and caps with BAD_USER_INPUT naming the field, and non-admins', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ quietHoursStart: '25:00' }, 'quietHoursStart'],
      [{ quietHoursStart: '9pm' }, 'quietHoursStart'],
      [{ quietHoursEnd: '8:00' }, 'quietHoursEnd'],
      [{ quietHoursEnd: '07:60' }, 'quietHoursEnd'],
      [{ marketingWeeklyCap: -1 }, 'marketingWeeklyCap'],
      [{ marketingWeeklyCap: 1001 }, 'marketingWeeklyCap'],
      [{ quietHoursStart: '22:00', marketingWeeklyCap: 5000 }, 'marketingWeeklyCap'],
    ];
    for (const [input, field] of cases) {
      const err = errorOf(await gql(UPDATE, { input }));
      expect(err.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(err.message).toContain(field);
    }
    expect(errorOf(await gql(UPDATE, { input: { marketingWeeklyCap: 5 } }, 'app')).extensions?.code).toBe('FORBIDDEN');
    // Nothing was half-applied.
    expect((await gql(POLICY)).data.messagingPolicy).toEqual({ quietHoursStart: '21:00', quietHoursEnd: '08:00', marketingWeeklyCap: 3 });
    // Fields left out keep their value.
    const partial = await gql(UPDATE, { input: { marketingWeeklyCap: 4 } });
    expect(partial.data.updateMessagingPolicy).toEqual({ quietHoursStart: '21:00', quietHoursEnd: '08:00', marketingWeeklyCap: 4 });
    const back = await gql(UPDATE, { input: { marketingWeeklyCap: 3, quietHoursStart: null } });
    expect(back.data.updateMessagingPolicy).toEqual({ quietHoursStart: '21:00', quietHoursEnd: '08:00', marketingWeeklyCap: 3 });
  });
});

describe('quiet hours', () => {
  it('sends a TRANSACTIONAL message at 23:00 local at once', async () => {
    clock.set('2026-11-28T04:00:00.000Z'); // 23:00 in New York
    const contactId = await seedContact('+12125550101');
    const m = await send({ contactId, body: 'Your order shipped', category: 'TRANSACTIONAL' });
    expect(m.status).toBe('QUEUED');
    await waitStatus(m.id, 'DELIVERED');
  });

  it('holds a MARKETING message at 23:00 local until 08:00 local, then sends it', async () => {
    clock.set('2026-11-28T04:00:00.000Z'); // 23:00 in New York, 20:00 in Los Angeles
    const contactId = await seedContact('+12125550102');
    const m = await send({ contactId, body: 'Weekend sale: 20% off', category: 'MARKETING' });
    expect(m).toMatchObject({ status: 'SCHEDULED', errorCode: null, errorMessage: null });
    expect(m.statusHistory).toEqual([
      { status: 'SCHEDULED', at: '2026-11-28T04:00:00.000Z', detail: 'quiet hours 21:00–08:00 in America/New_York; sends at 2026-11-28T13:00:00.000Z' },
    ]);
    expect(await notBefore(m.id)).toBe('2026-11-28T13:00:00.000Z');
    const event = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.scheduled' && e.data.messageId === m.id),
      'scheduled event',
    );
    expect(event.data).toMatchObject({ status: 'SCHEDULED', contactId, category: 'MARKETING' });
    expect((await gql(`{ messagingQueue { scheduled } }`)).data.messagingQueue.scheduled).toBeGreaterThanOrEqual(1);

    // The recipient's own evening counts: a number in Los Angeles (20:00 there) gets a survey now.
    const survey = await send({ to: '+14155550290', body: 'How did we do? Reply 0-10', category: 'SURVEY' });
    expect(survey.status).toBe('QUEUED');
    await waitStatus(survey.id, 'DELIVERED');

    await releasePass();
    expect((await message(m.id)).status).toBe('SCHEDULED');
    expect(await h.handset('+12125550102')).toEqual([]);

    clock.set('2026-11-28T13:00:01.000Z'); // 08:00:01 in New York
    app.instance.release.kick();
    const delivered = await waitStatus(m.id, 'DELIVERED');
    expect(delivered.statusHistory.map((s: { status: string }) => s.status)).toEqual(['SCHEDULED', 'QUEUED', 'SENDING', 'SENT', 'DELIVERED']);
    expect(delivered.statusHistory[1].detail).toBe('released: outside quiet hours 21:00–08:00 in America/New_York');
    expect((await h.handset('+12125550102')).map((x) => x.text)).toEqual(['Weekend sale: 20% off']);
    expect(h.events.some((e) => e.subject === 'messaging.message.queued' && e.data.messageId === m.id)).toBe(true);
  });

  it('suppresses a waiting message when the contact unsubscribes', async () => {
    clock.set('2026-11-29T03:00:00.000Z'); // 22:00 in New York
    const contactId = await seedContact('+12125550103');
    const m = await send({ contactId, body: 'Flash sale', category: 'MARKETING' });
    expect(m.status).toBe('SCHEDULED');
    await h.publish('contacts.contact.unsubscribed', { contactId, phone: '+12125550103', reason: 'API' });
    const suppressed = await waitStatus(m.id, 'SUPPRESSED');
    expect(suppressed.errorCode).toBe('OPTED_OUT');
    clock.set('2026-11-29T13:00:01.000Z');
    await releasePass();
    expect((await message(m.id)).status).toBe('SUPPRESSED');
    expect(await h.handset('+12125550103')).toEqual([]);
  });

  it('re-evaluates waiting messages when the quiet hours change, and leaves other scheduled messages alone', async () => {
    clock.set('2026-11-30T03:00:00.000Z'); // 22:00 in New York
    const contactId = await seedContact('+12125550104');
    const m = await send({ contactId, body: 'New arrivals', category: 'MARKETING' });
    expect(m.status).toBe('SCHEDULED');
    expect(await notBefore(m.id)).toBe('2026-11-30T13:00:00.000Z');

    // A message scheduled for a chosen time, not for quiet hours.
    const other = {
      ...(await app.deps.db.selectFrom('messages').selectAll().where('id', '=', m.id).executeTakeFirstOrThrow()),
      id: newId(),
      category: 'TRANSACTIONAL' as const,
      not_before: new Date('2027-01-01T00:00:00.000Z'),
    };
    await app.deps.db.insertInto('messages').values(toInsertable(other)).execute();

    // Still quiet under the new hours: held to the new end.
    const earlier = await gql(UPDATE, { input: { quietHoursEnd: '06:00' } });
    expect(earlier.data.updateMessagingPolicy).toEqual({ quietHoursStart: '21:00', quietHoursEnd: '06:00', marketingWeeklyCap: 3 });
    await waitForRow(async () => (await notBefore(m.id)) === '2026-11-30T11:00:00.000Z', 'the new end of quiet hours');
    const held = await message(m.id);
    expect(held.status).toBe('SCHEDULED');
    expect(held.statusHistory.at(-1).detail).toBe('quiet hours 21:00–06:00 in America/New_York; sends at 2026-11-30T11:00:00.000Z');

    // The window is over for it under these hours: it goes now.
    await gql(UPDATE, { input: { quietHoursStart: '23:00', quietHoursEnd: '07:00' } });
    const delivered = await waitStatus(m.id, 'DELIVERED');
    expect(delivered.statusHistory.find((s: { status: string }) => s.status === 'QUEUED').detail).toBe(
      'released: outside quiet hours 23:00–07:00 in America/New_York',
    );
    expect(await notBefore(other.id)).toBe('2027-01-01T00:00:00.000Z');
    expect((await message(other.id)).status).toBe('SCHEDULED');

    await gql(UPDATE, { input: { quietHoursStart: '21:00', quietHoursEnd: '08:00' } });
  });
});

describe('weekly MARKETING cap', () => {
  it('suppresses the 4th MARKETING message in 7 days with FREQUENCY_CAP while the 3rd is sent', async () => {
    clock.set('2026-11-30T15:00:00.000Z'); // 10:00 in New York
    const contactId = await seedContact('+12125550105');
    const first = await send({ contactId, body: 'Offer 1', category: 'MARKETING' });
    const second = await send({ contactId, body: 'Offer 2', category: 'MARKETING' });
    expect([first.status, second.status]).toEqual(['QUEUED', 'QUEUED']);
    const batch = await gql(SEND_MANY, {
      inputs: [
        { contactId, body: 'Offer 3', category: 'MARKETING' },
        { contactId, body: 'Offer 4', category: 'MARKETING' },
        { contactId, body: 'Receipt', category: 'TRANSACTIONAL' },
      ],
    });
    expect(batch.errors).toBeUndefined();
    const [third, fourth, receipt] = batch.data.sendMessages;
    expect(third.status).toBe('QUEUED');
    expect(receipt.status).toBe('QUEUED');
    expect(fourth).toMatchObject({ status: 'SUPPRESSED', errorCode: 'FREQUENCY_CAP', price: null });
    expect(fourth.errorMessage).toMatch(/already has 3 MARKETING messages in the last 7 days; the weekly cap \(marketingWeeklyCap\) is 3/);
    const event = await waitForRow(async () => h.events.find((e) => e.subject === 'messaging.message.suppressed' && e.data.messageId === fourth.id), 'event');
    expect(event.data.errorCode).toBe('FREQUENCY_CAP');
    for (const m of [first, second, third, receipt]) await waitStatus(m.id, 'DELIVERED');
    expect((await h.handset('+12125550105')).map((x) => x.text).sort()).toEqual(['Offer 1', 'Offer 2', 'Offer 3', 'Receipt']);

    clock.set('2026-12-03T15:00:00.000Z');
    expect((await send({ contactId, body: 'Offer 5', category: 'MARKETING' })).errorCode).toBe('FREQUENCY_CAP');
    // A rolling window: once the first three are more than 7 days old there is room again.
    clock.set('2026-12-07T15:00:01.000Z');
    const later = await send({ contactId, body: 'Offer 6', category: 'MARKETING' });
    expect(later.status).toBe('QUEUED');
    await waitStatus(later.id, 'DELIVERED');
  });

  it('lets exactly the cap through when sends to one contact race', async () => {
    clock.set('2026-12-08T15:00:00.000Z');
    const contactId = await seedContact('+12125550106');
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => send({ contactId, body: `Race ${i}`, category: 'MARKETING' })));
    const statuses = results.map((m) => m.status).sort();
    expect(statuses).toEqual(['QUEUED', 'QUEUED', 'QUEUED', 'SUPPRESSED', 'SUPPRESSED', 'SUPPRESSED']);
    for (const m of results.filter((r) => r.status === 'QUEUED')) await waitStatus(m.id, 'DELIVERED');
  });

  it('counts waiting messages, and checks the cap again when they are released', async () => {
    clock.set('2026-12-09T03:00:00.000Z'); // 22:00 in New York
    const contactId = await seedContact('+12125550107');
    const a = await send({ contactId, body: 'Night offer A', category: 'MARKETING' });
    const b = await send({ contactId, body: 'Night offer B', category: 'MARKETING' });
    expect([a.status, b.status]).toEqual(['SCHEDULED', 'SCHEDULED']);
    await gql(UPDATE, { input: { marketingWeeklyCap: 1 } });
    const c = await send({ contactId, body: 'Night offer C', category: 'MARKETING' });
    expect(c.errorCode).toBe('FREQUENCY_CAP');

    clock.set('2026-12-09T13:00:01.000Z');
    app.instance.release.kick();
    await waitStatus(a.id, 'DELIVERED');
    const late = await waitStatus(b.id, 'SUPPRESSED');
    expect(late.errorCode).toBe('FREQUENCY_CAP');
    expect((await h.handset('+12125550107')).map((x) => x.text)).toEqual(['Night offer A']);
    await gql(UPDATE, { input: { marketingWeeklyCap: 3 } });
  });
});
