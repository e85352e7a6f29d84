// The inbound pipeline against real Postgres, a private NATS, the real carrier simulator and a real
// contacts service: unknown numbers become contacts, STOP/START/HELP, bad input, inReplyTo's window.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { buildDeps, ManualClock, silentLogger, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import { createTestDatabase } from '@textloop/service-kit/testing';
import type { Database as ContactsDatabase } from '../../contacts/src/db/database';
import { migrations as contactsMigrations } from '../../contacts/src/db/migrations';
import { createServer as createContactsServer } from '../../contacts/src/server';
import { DEFAULT_REPLIES } from './keywords';
import { MESSAGE_FIELDS, startHarness, waitForRow, WEBHOOK_SECRET, type GqlResult, type Harness, type Running } from './test-harness';

// Everything runs on one ManualClock (messaging under test and contacts), so quiet hours and the
// 7-day window can be crossed. 20:00Z: 12:00 in California, 05:00 in Tokyo (quiet hours), 20:00 in London.
const clock = new ManualClock('2026-11-27T20:00:00.000Z');
const DAY = 24 * 60 * 60 * 1000;
const STOP_REPLY = DEFAULT_REPLIES.STOP.replace('{{ program }}', 'Textloop');
const START_REPLY = DEFAULT_REPLIES.START.replace('{{ program }}', 'Textloop');

let h: Harness;
let app: Running;
let contacts: {
  deps: ServiceDeps<ContactsDatabase> & { close(): Promise<void> };
  instance: ServiceInstance;
  url: string;
  started: boolean;
  drop(): Promise<void>;
};

beforeAll(async () => {
  // The harness's own instance neither dispatches nor releases; the one on the manual clock does both.
  h = await startHarness('msg_inbound', { DISPATCH_ENABLED: 'false' });
  app = await h.startInstance({ DISPATCH_ENABLED: 'true' }, { clock });
  const db = await createTestDatabase('msg_inbound_contacts');
  const deps = await buildDeps<ContactsDatabase>({
    name: 'contacts',
    migrations: contactsMigrations,
    streams: ['CONTACTS', 'EVENTS'],
    target: { kind: 'postgres', url: db.url },
    natsUrl: `nats://${h.main.deps.nats.nc.getServer()}`,
    logger: silentLogger,
    clock,
    env: { DORMANCY_SWEEP_INTERVAL_MS: '0' },
  });
  const instance = createContactsServer(deps);
  const { url } = await instance.http.listen(0);
  // Not started yet: the first test needs contacts to be unreachable.
  contacts = { deps, instance, url, started: false, drop: () => db.drop() };
  await h.simJson('PUT', '/api/config', { inboundUrl: `${app.url}/webhooks/mocean/inbound?secret=${WEBHOOK_SECRET}` });
});

afterAll(async () => {
  if (contacts) {
    await contacts.instance.http.close();
    if (contacts.started) await contacts.instance.stop();
    await contacts.deps.close();
    await contacts.drop();
  }
  await h?.close();
});

async function startContacts(): Promise<void> {
  if (contacts.started) return;
  contacts.started = true;
  await contacts.instance.start();
}

async function gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>> {
  const res = await fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as GqlResult<T>;
}

async function contactsGql(query: string, variables?: Record<string, unknown>): Promise<any> {
  const res = await fetch(`${contacts.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as GqlResult;
  expect(body.errors).toBeUndefined();
  return body.data;
}

/** A contact created in contacts, once messaging's projection has its profile. */
async function newContact(phone: string, timezone?: string): Promise<string> {
  await startContacts();
  const data = await contactsGql(`mutation($input: CreateContactInput!) { createContact(input: $input) { id } }`, {
    input: { phone, ...(timezone ? { timezone } : {}) },
  });
  const id = data.createContact.id as string;
  await waitForRow(
    () => app.deps.db.selectFrom('contacts').select('id').where('id', '=', id).where('profile_version', 'is not', null).executeTakeFirst(),
    `contact ${phone} in messaging's projection`,
  );
  return id;
}

async function send(input: Record<string, unknown>) {
  const res = await gql(`mutation($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`, { input });
  expect(res.errors).toBeUndefined();
  return res.data.sendMessage;
}

async function row(id: string) {
  return app.deps.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

async function untilStatus(id: string, ...statuses: string[]) {
  return waitForRow(
    async () => {
      const r = await row(id);
      return statuses.includes(r.status) ? r : undefined;
    },
    `message ${id} to reach ${statuses.join('/')}`,
  );
}

/** Webhook POST as Mocean makes it; `time` is mocean-time, which makes a redelivery recognisable. */
async function postInbound(fields: Record<string, string>, query = `?secret=${WEBHOOK_SECRET}`) {
  const res = await fetch(`${app.url}/webhooks/mocean/inbound${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, text: await res.text() };
}

let mtime = 0;
/** A well-formed inbound report from a handset (digits without +) to our sender; each call gets a new mocean-time. */
function inbound(phone: string, text: string, extra: Record<string, string> = {}): Record<string, string> {
  const at = new Date(Date.parse('2026-11-27T00:00:00Z') + ++mtime * 1000);
  return {
    'mocean-from': phone.replace(/^\+/, ''),
    'mocean-to': 'Textloop',
    'mocean-text': text,
    'mocean-keyword': text.trim().split(/\s+/)[0]!.toUpperCase(),
    'mocean-time': at.toISOString().slice(0, 19).replace('T', ' '),
    ...extra,
  };
}

async function inboundFrom(phone: string) {
  return app.deps.db.selectFrom('messages').selectAll().where('direction', '=', 'INBOUND').where('from_number', '=', phone).orderBy('created_at').execute();
}

async function projection(phone: string) {
  return app.deps.db.selectFrom('contacts').selectAll().where('phone', '=', phone).executeTakeFirst();
}

async function handsetTexts(phone: string): Promise<string[]> {
  return (await h.handset(phone)).map((m) => m.text);
}

/** Waits for `text` on the handset, then a little longer, and returns how many times it arrived. */
async function deliveredCount(phone: string, text: string): Promise<number> {
  await waitForRow(async () => (await handsetTexts(phone)).includes(text), `"${text.slice(0, 30)}…" on ${phone}`);
  await new Promise((r) => setTimeout(r, 400));
  return (await handsetTexts(phone)).filter((t) => t === text).length;
}

async function ledger(contactId: string) {
  return contacts.deps.db.selectFrom('consent_ledger').selectAll().where('contact_id', '=', contactId).orderBy('at').orderBy('id').execute();
}

/** A durable consumer has handled and acknowledged everything published so far. */
async function consumerCaughtUp(stream: string, durable: string, on: Running): Promise<void> {
  await waitForRow(async () => {
    const info = await on.deps.nats.jsm.consumers.info(stream, durable);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  }, `${durable} to catch up`);
}

async function releasePass(): Promise<void> {
  const start = app.instance.release.stats.passes;
  app.instance.release.kick();
  await waitForRow(async () => app.instance.release.stats.passes >= start + 1, 'a release pass');
  app.instance.release.kick();
  await waitForRow(async () => app.instance.release.stats.passes >= start + 2, 'a second release pass');
}

describe('inbound pipeline', () => {
  it('answers 503 and stores nothing while contacts cannot create an unknown number; the retried delivery makes it a contact', async () => {
    const direct = '+14155550301';
    const res = await postInbound(inbound(direct, 'Hello?'));
    expect(res.status).toBe(503);
    expect(await inboundFrom(direct)).toHaveLength(0);
    expect(await projection(direct)).toBeUndefined();
    expect(h.events.filter((e) => e.subject === 'messaging.message.received' && e.data.from === direct)).toHaveLength(0);

    // Through the simulator: refused while contacts is down, retried by the simulator until it lands.
    const phone = '+14155550302';
    const before = (await h.simJson('GET', '/api/stats')).inboundFailed;
    await h.simJson('POST', `/api/handsets/${encodeURIComponent(phone)}/reply`, { to: 'Textloop', text: 'Do you deliver on Sundays?' });
    await waitForRow(async () => (await h.simJson('GET', '/api/stats')).inboundFailed > before, 'a refused inbound post');
    expect(await inboundFrom(phone)).toHaveLength(0);
    await startContacts();

    const [stored] = await waitForRow(async () => {
      const rows = await inboundFrom(phone);
      return rows.length > 0 ? rows : undefined;
    }, 'the retried inbound message');
    expect(stored!.contact_id).toBeTruthy();
    expect(await inboundFrom(phone)).toHaveLength(1);
    const created = await contacts.deps.db.selectFrom('contacts').selectAll().where('phone', '=', phone).executeTakeFirstOrThrow();
    expect(created.id).toBe(stored!.contact_id);
    expect(created.subscribed).toBe(true);
    expect(await ledger(created.id)).toMatchObject([{ subscribed: true, reason: 'CREATED', source: 'sms_inbound' }]);
    const received = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.received' && e.data.messageId === stored!.id),
      'messaging.message.received',
    );
    expect(received.data).toMatchObject({ contactId: created.id, from: phone, body: 'Do you deliver on Sundays?' });
    expect(received.data.keyword).toBeUndefined();
    // The projection's stub takes the full profile from contacts.contact.created when it arrives.
    const profiled = await waitForRow(async () => {
      const p = await projection(phone);
      return p?.profile_version ? p : undefined;
    }, 'the created snapshot over the stub');
    expect(profiled).toMatchObject({ id: created.id, timezone: 'America/Los_Angeles', country: 'US', subscribed: true });
    // The inbound message counts as activity in contacts.
    await waitForRow(
      async () => (await contacts.deps.db.selectFrom('contacts').select('last_active_at').where('id', '=', created.id).executeTakeFirst())?.last_active_at,
      'lastActiveAt',
    );
    expect((await postInbound(inbound(direct, 'Hello?'))).status).toBe(200);
    expect((await inboundFrom(direct))[0]!.contact_id).toBeTruthy();
  });

  it('refuses bad input with the right status and stores nothing', async () => {
    const phone = '+14155550310';
    const good = inbound(phone, 'Fine');
    const { 'mocean-from': _f, ...noFrom } = good;
    const { 'mocean-text': _t, ...noText } = good;
    const { 'mocean-to': _to, ...noTo } = good;
    await startContacts();
    const count = async () =>
      Number(
        (
          await app.deps.db
            .selectFrom('messages')
            .select(sql<number>`count(*)`.as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const received = () => h.events.filter((e) => e.subject === 'messaging.message.received' && e.data.from === phone).length;
    const before = await count();
    const cases: Array<[Record<string, string>, string, number]> = [
      [noFrom, `?secret=${WEBHOOK_SECRET}`, 400],
      [{ ...good, 'mocean-from': 'Mallory' }, `?secret=${WEBHOOK_SECRET}`, 400],
      [{ ...good, 'mocean-from': '+1-415-555-0310' }, `?secret=${WEBHOOK_SECRET}`, 400],
      [noTo, `?secret=${WEBHOOK_SECRET}`, 400],
      [noText, `?secret=${WEBHOOK_SECRET}`, 400],
      [{ ...good, 'mocean-text': '' }, `?secret=${WEBHOOK_SECRET}`, 400],
      [{ ...good, 'mocean-text': '   ' }, `?secret=${WEBHOOK_SECRET}`, 400],
      [{ ...good, 'mocean-text': 'x'.repeat(1601) }, `?secret=${WEBHOOK_SECRET}`, 413],
      [{ ...good, 'mocean-text': 'STOP'.padEnd(5000, '!') }, `?secret=${WEBHOOK_SECRET}`, 413],
      [good, '?secret=wrong', 401],
      [good, '', 401],
    ];
    for (const [fields, query, status] of cases) {
      const res = await postInbound(fields, query);
      expect(res.status, `${JSON.stringify(fields).slice(0, 100)} ${query}`).toBe(status);
      expect(res.text.length).toBeGreaterThan(0);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(await count()).toBe(before);
    expect(received()).toBe(0);
    expect(await inboundFrom(phone)).toHaveLength(0);
    expect(await projection(phone)).toBeUndefined();
    expect(await contacts.deps.db.selectFrom('contacts').select('id').where('phone', '=', phone).executeTakeFirst()).toBeUndefined();
    // Exactly 1,600 characters is accepted.
    expect((await postInbound({ ...good, 'mocean-text': 'y'.repeat(1600) })).status).toBe(200);
    expect(await inboundFrom(phone)).toHaveLength(1);
  });

  it('STOP in any case, with spaces or punctuation, unsubscribes at once and is confirmed exactly once, even when delivered twice', async () => {
    const variants = ['stop', ' Stop! ', 'STOP.', 'Unsubscribe'];
    const phones = variants.map((_, i) => `+1415555032${i}`);
    const ids = await Promise.all(phones.map((p) => newContact(p)));
    // A message waiting in the queue (to be retried after a provider error) must not go out after STOP either.
    await h.simJson('PUT', '/api/rules', [{ match: phones[0]!, outcome: 'HTTP_500' }]);
    const waiting = await send({ contactId: ids[0], body: 'Your order shipped', category: 'TRANSACTIONAL' });
    // Its retry is due later on the manual clock, which stands still until STOP has been handled.
    await waitForRow(async () => {
      const r = await row(waiting.id);
      return r.status === 'QUEUED' && r.attempts >= 1 ? r : undefined;
    }, 'the first failed attempt');
    await h.simJson('PUT', '/api/rules', [{ match: '+141555503', outcome: 'DELIVERED', duplicateInbound: true }]);

    // The same inbound report posted twice: one message, one confirmation.
    const report = inbound(phones[0]!, variants[0]!);
    expect((await postInbound(report)).status).toBe(200);
    // At once: the projection says unsubscribed before the webhook answered, and the waiting message is suppressed.
    expect((await projection(phones[0]!))!.subscribed).toBe(false);
    expect(await row(waiting.id)).toMatchObject({ status: 'SUPPRESSED', error_code: 'OPTED_OUT' });
    expect((await postInbound(report)).status).toBe(200);
    // The others through the simulator, which delivers each reply twice.
    for (let i = 1; i < variants.length; i++) {
      await h.simJson('POST', `/api/handsets/${encodeURIComponent(phones[i]!)}/reply`, { to: 'Textloop', text: variants[i] });
    }
    for (let i = 0; i < variants.length; i++) {
      expect(await deliveredCount(phones[i]!, STOP_REPLY), variants[i]).toBe(1);
      expect(await inboundFrom(phones[i]!), variants[i]).toHaveLength(1);
      expect((await projection(phones[i]!))!.subscribed).toBe(false);
    }
    const stored = (await inboundFrom(phones[0]!))[0]!;
    const received = h.events.filter((e) => e.subject === 'messaging.message.received' && e.data.messageId === stored.id);
    expect(received).toHaveLength(1);
    expect(received[0]!.data).toMatchObject({ keyword: 'STOP', contactId: ids[0] });
    const reply = await app.deps.db.selectFrom('messages').selectAll().where('idempotency_key', '=', `keyword-reply:${stored.id}`).executeTakeFirstOrThrow();
    expect(reply).toMatchObject({ direction: 'OUTBOUND', category: 'SUPPORT', contact_id: ids[0], to_number: phones[0], from_number: 'Textloop' });

    // Contacts records the opt-out in its ledger from the event, once, and says so on NATS.
    for (const id of ids) {
      const entries = await waitForRow(async () => {
        const l = await ledger(id);
        return l.some((e) => e.reason === 'STOP_KEYWORD') ? l : undefined;
      }, `the STOP_KEYWORD ledger entry of ${id}`);
      expect(entries.map((e) => [e.subscribed, e.reason, e.source])).toEqual([
        [true, 'CREATED', 'graphql'],
        [false, 'STOP_KEYWORD', 'sms'],
      ]);
      const c = await contacts.deps.db.selectFrom('contacts').select(['subscribed', 'unsubscribed_at']).where('id', '=', id).executeTakeFirstOrThrow();
      expect(c.subscribed).toBe(false);
    }

    // Every later send is SUPPRESSED OPTED_OUT, by contact and by number, and nothing reaches the handset.
    const later = await send({ contactId: ids[1], body: 'Big sale!', category: 'MARKETING' });
    expect(later).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT' });
    const byNumber = await send({ to: phones[2], body: 'Your code is 1234', category: 'TRANSACTIONAL' });
    expect(byNumber).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT' });
    expect(await handsetTexts(phones[1]!)).toEqual([STOP_REPLY]);
    expect(await handsetTexts(phones[0]!)).toEqual([STOP_REPLY]);
    await h.simJson('PUT', '/api/rules', []);

    // A keyword inside a sentence is an ordinary message: no answer, still subscribed.
    const chatty = '+14155550330';
    const chattyId = await newContact(chatty);
    expect((await postInbound(inbound(chatty, 'stop sending me deals'))).status).toBe(200);
    const [ordinary] = await inboundFrom(chatty);
    const event = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.received' && e.data.messageId === ordinary!.id),
      'the received event',
    );
    expect(event.data.keyword).toBeUndefined();
    expect((await projection(chatty))!.subscribed).toBe(true);
    const answer = await send({ contactId: chattyId, body: 'Noted, fewer deals.', category: 'SUPPORT' });
    await untilStatus(answer.id, 'DELIVERED');
    expect(await handsetTexts(chatty)).toEqual(['Noted, fewer deals.']);
  });

  it('START resubscribes and confirms; HELP is answered, even when unsubscribed', async () => {
    const phone = '+14155550340';
    const id = await newContact(phone);
    expect((await postInbound(inbound(phone, 'STOP'))).status).toBe(200);
    expect(await deliveredCount(phone, STOP_REPLY)).toBe(1);

    const help = inbound(phone, 'help?');
    expect((await postInbound(help)).status).toBe(200);
    expect((await postInbound(help)).status).toBe(200);
    const helpText = app.instance.ctx.config.keywords.replies.HELP;
    expect(helpText).toBe('Textloop: for help, contact support@example.com. Reply STOP to unsubscribe.');
    expect(await deliveredCount(phone, helpText)).toBe(1);
    expect((await projection(phone))!.subscribed).toBe(false);

    expect((await postInbound(inbound(phone, ' Start '))).status).toBe(200);
    expect((await projection(phone))!.subscribed).toBe(true);
    expect(await deliveredCount(phone, START_REPLY)).toBe(1);
    // Contacts' event about the STOP, arriving (late) after the START was applied here, does not undo the START.
    const stop = (await inboundFrom(phone)).find((m) => m.body === 'STOP')!;
    await h.publish(
      'contacts.contact.unsubscribed',
      { contactId: id, phone, reason: 'STOP_KEYWORD', messageId: stop.id },
      { time: new Date(clock.now().getTime() + 60_000) },
    );
    await consumerCaughtUp('CONTACTS', 'messaging-contacts', app);
    expect((await projection(phone))!.subscribed).toBe(true);
    await waitForRow(async () => (await ledger(id)).some((e) => e.reason === 'START_KEYWORD'), 'the START_KEYWORD ledger entry');
    expect((await ledger(id)).map((e) => [e.subscribed, e.reason])).toEqual([
      [true, 'CREATED'],
      [false, 'STOP_KEYWORD'],
      [true, 'START_KEYWORD'],
    ]);
    // Contacts' own events (unsubscribed, then resubscribed) arrive after the local changes and agree with them.
    contacts.deps.outbox.kick();
    await waitForRow(
      async () => (await sql<{ n: number }>`select count(*)::int as n from outbox`.execute(contacts.deps.db)).rows[0]!.n === 0,
      'contacts to publish its consent events',
    );
    await consumerCaughtUp('CONTACTS', 'messaging-contacts', app);
    expect((await projection(phone))!.subscribed).toBe(true);
    const after = await send({ contactId: id, body: 'Welcome back', category: 'MARKETING' });
    expect(after.status).toBe('QUEUED');
    await untilStatus(after.id, 'DELIVERED');
    expect(await handsetTexts(phone)).toEqual([STOP_REPLY, helpText, START_REPLY, 'Welcome back']);
  });

  it('inReplyTo is the latest outbound message within 7 days, keyword answers excepted', async () => {
    const phone = '+14155550350';
    const id = await newContact(phone);
    const survey = await send({ contactId: id, body: 'How did we do? Reply 0-10', category: 'SURVEY' });
    await untilStatus(survey.id, 'DELIVERED');
    const receivedFor = async (text: string) => {
      const res = await postInbound(inbound(phone, text));
      expect(res.status).toBe(200);
      const stored = (await inboundFrom(phone)).find((m) => m.body === text)!;
      return waitForRow(
        async () => h.events.find((e) => e.subject === 'messaging.message.received' && e.data.messageId === stored.id),
        `the received event of "${text}"`,
      );
    };
    // HELP is answered; the answer is not what a later reply answers.
    await receivedFor('INFO');
    const helpReply = await app.deps.db
      .selectFrom('messages')
      .select('id')
      .where('to_number', '=', phone)
      .where('category', '=', 'SUPPORT')
      .executeTakeFirstOrThrow();
    await untilStatus(helpReply.id, 'DELIVERED');
    clock.advance(6 * DAY);
    const within = await receivedFor('9');
    expect(within.data.inReplyTo).toEqual({ messageId: survey.id, category: 'SURVEY', correlation: null });
    clock.advance(2 * DAY);
    const tooOld = await receivedFor('Still there?');
    expect(tooOld.data.inReplyTo ?? null).toBeNull();
  });

  it('a MARKETING message held for quiet hours before STOP ends SUPPRESSED and stays so when its time comes', async () => {
    // 2026-12-05T20:00Z (after the test above): 05:00 on Sunday in Tokyo, quiet until 08:00 (23:00Z).
    clock.set('2026-12-05T20:00:00.000Z');
    const phone = '+14155550360';
    const id = await newContact(phone, 'Asia/Tokyo');
    const held = await send({ contactId: id, body: 'Weekend deals!', category: 'MARKETING' });
    expect(held.status).toBe('SCHEDULED');
    expect((await postInbound(inbound(phone, 'quit'))).status).toBe(200);
    expect(await row(held.id)).toMatchObject({ status: 'SUPPRESSED', error_code: 'OPTED_OUT' });
    clock.set('2026-12-05T23:30:00.000Z');
    await releasePass();
    expect((await row(held.id)).status).toBe('SUPPRESSED');
    expect(await deliveredCount(phone, STOP_REPLY)).toBe(1);
    expect(await handsetTexts(phone)).toEqual([STOP_REPLY]);
  });

  it('the release loop re-checks consent: a held message whose contact unsubscribed meanwhile is SUPPRESSED, not sent', async () => {
    // 23:30Z is 23:30 in London: quiet until 08:00Z.
    const phone = '+14155550370';
    const id = await newContact(phone, 'Europe/London');
    const held = await send({ contactId: id, body: 'Monday deals!', category: 'MARKETING' });
    expect(held.status).toBe('SCHEDULED');
    // An opt-out that raced the acceptance of the message: the projection says unsubscribed, the message still waits.
    await app.deps.db.updateTable('contacts').set({ subscribed: false }).where('id', '=', id).execute();
    expect((await row(held.id)).status).toBe('SCHEDULED');
    clock.set('2026-12-06T08:30:00.000Z');
    await releasePass();
    expect(await row(held.id)).toMatchObject({ status: 'SUPPRESSED', error_code: 'OPTED_OUT' });
    const history = await app.deps.db
      .selectFrom('message_status_history')
      .select(['status', 'detail'])
      .where('message_id', '=', held.id)
      .orderBy('id')
      .execute();
    expect(history.at(-1)).toEqual({ status: 'SUPPRESSED', detail: 'contact unsubscribed' });
    await new Promise((r) => setTimeout(r, 200));
    expect(await handsetTexts(phone)).toEqual([]);
  });
});
