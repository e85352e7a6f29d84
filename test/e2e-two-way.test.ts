import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@textloop/service-kit/testing';
import { createLiveClient, type LiveClient } from '../services/gateway/src/live-client';
import { startE2E, type E2E } from './support/e2e';

// Two-way SMS end to end (two-way issue, "Done when"): six real processes on Postgres and NATS,
// driven only through the gateway (one key per role), the carrier simulator's handsets, and — for
// the redelivery check — messaging's inbound webhook itself, the way a provider calls it.

const KEYS = { admin: 'dev-admin-key', app: 'two-way-app-key', agent: 'two-way-agent-key' };
type Role = keyof typeof KEYS;

const PHONES = {
  support: '+14155550171',
  stop: '+14155550172',
  redelivered: '+14155550173',
  help: '+14155550174',
};

let e2e: E2E;
let agentLive: LiveClient;
/** Every messageReceived the agent's live inbox got, with its arrival time. */
const inbox: Array<{ at: number; message: { id: string; body: string; from: string; contact: { id: string; phone: string } | null } }> = [];

async function as<T = any>(role: Role, query: string, variables?: Record<string, unknown>): Promise<T> {
  const res = await fetch(e2e.platform.urls.graphql, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS[role]}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors?.length) throw new Error(`GraphQL error as ${role}: ${JSON.stringify(body.errors)}`);
  return body.data!;
}

type HandsetMessage = { text: string; receivedAt: string };
const handset = (phone: string): Promise<HandsetMessage[]> => e2e.sim(`/api/handsets/${encodeURIComponent(phone)}/messages`);

/** The handset texts the platform back, as a person would (the simulator posts it to messaging's inbound webhook). */
async function reply(phone: string, text: string): Promise<void> {
  const res = await fetch(new URL(`/api/handsets/${phone.slice(1)}/reply`, e2e.platform.urls.carrierSim), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to: 'Textloop', text }),
  });
  expect(res.status, await res.text()).toBe(202);
}

const setQuietHours = (start: string, end: string) =>
  as('admin', 'mutation($i: MessagingPolicyInput!) { updateMessagingPolicy(input: $i) { quietHoursStart quietHoursEnd } }', {
    i: { quietHoursStart: start, quietHoursEnd: end },
  });

/** HH:MM in `timeZone`, `offsetMinutes` from now. */
function localTime(timeZone: string, offsetMinutes: number): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(
    new Date(Date.now() + offsetMinutes * 60_000),
  );
}

const MESSAGE_FIELDS = 'id status errorCode category direction body conversation { id status }';
const message = async (id: string) => (await as('agent', `query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`, { id })).message;

const CONSENT = 'subscribed unsubscribedAt consentHistory { subscribed reason source at }';
const contact = async (id: string) => (await as('agent', `query($id: ID!) { contact(id: $id) { id phone ${CONSENT} } }`, { id })).contact;

beforeAll(async () => {
  e2e = await startE2E({ prefix: 'e2e_two_way' });
  // startE2E runs with the development admin key only; agents and apps need their own keys.
  await e2e.platform.restart('gateway', {
    API_KEYS: Object.entries(KEYS)
      .map(([role, key]) => `${role}:${key}`)
      .join(','),
  });
  // MARKETING sends may be held for quiet hours depending on the time of day: none unless a test sets them.
  await setQuietHours('00:00', '00:00');

  agentLive = createLiveClient(e2e.platform.urls.graphql, KEYS.agent);
  agentLive.subscribe(
    { query: 'subscription { messageReceived { id body from contact { id phone } } }' },
    {
      next: (r: any) => inbox.push({ at: Date.now(), message: r.data.messageReceived }),
      error: (err) => console.error('messageReceived failed', err),
      complete: () => {},
    },
  );
  // One round trip on the same socket: the subscription above is in place when it answers.
  await new Promise<void>((resolve, reject) => agentLive.subscribe({ query: '{ __typename }' }, { next: () => {}, error: reject, complete: resolve }));
}, 240_000);

afterAll(async () => {
  await agentLive?.dispose();
  await e2e?.close();
}, 60_000);

describe('a handset reply reaches the support inbox', () => {
  it('opens a conversation an agent lists, answers (the handset gets it), assigns and resolves', async () => {
    const phone = PHONES.support;
    const { createContact } = await as('app', `mutation { createContact(input: { phone: "${phone}", firstName: "Rosa" }) { id } }`);
    const { sendMessage: shipped } = await as(
      'app',
      `mutation($c: ID!) { sendMessage(input: { contactId: $c, body: "Your order A-77 has shipped." }) { id } }`,
      {
        c: createContact.id,
      },
    );
    await waitFor(async () => (await handset(phone)).length === 1, { timeoutMs: 10_000, what: 'the shipping SMS on the handset' });

    const postedAt = Date.now();
    await reply(phone, 'It has not arrived yet, can you check?');
    const live = await waitFor(() => inbox.find((m) => m.message.from === phone), { timeoutMs: 5000, intervalMs: 20, what: 'messageReceived' });
    expect(live.at - postedAt, 'the live inbox shows the reply within one second').toBeLessThan(1000);
    expect(live.message).toMatchObject({ body: 'It has not arrived yet, can you check?', contact: { id: createContact.id, phone } });

    // The agent finds it among the OPEN conversations, newest activity first.
    const LIST = `query($s: ConversationStatus, $a: String) { conversations(status: $s, assignee: $a) { totalCount nodes {
      id status assignee lastMessageAt contact { id phone firstName } messages { direction status body category } } } }`;
    const open = await waitFor(async () => (await as('agent', LIST, { s: 'OPEN' })).conversations.nodes.find((c: any) => c.contact.id === createContact.id), {
      what: 'the conversation among the OPEN ones',
    });
    expect(open).toMatchObject({
      status: 'OPEN',
      assignee: null,
      contact: { phone, firstName: 'Rosa' },
      messages: [{ direction: 'INBOUND', status: 'RECEIVED', body: 'It has not arrived yet, can you check?' }],
    });
    // The reply was to the shipping message, so it counts as a reply in its category; the message knows its thread.
    expect(open.messages[0].category).toBe('TRANSACTIONAL');
    expect((await message(live.message.id)).conversation).toEqual({ id: open.id, status: 'OPEN' });
    expect((await message(shipped.id)).conversation).toBeNull();

    // The agent answers in the thread: a SUPPORT message the handset receives; the conversation waits for the customer.
    const { replyToConversation: answer } = await as(
      'agent',
      `mutation($id: ID!) { replyToConversation(conversationId: $id, body: "Sorry Rosa, it is with the courier and arrives tomorrow.") { ${MESSAGE_FIELDS} } }`,
      { id: open.id },
    );
    expect(answer).toMatchObject({ direction: 'OUTBOUND', category: 'SUPPORT', conversation: { id: open.id, status: 'PENDING' } });
    const received = await waitFor(async () => (await handset(phone))[1], { timeoutMs: 10_000, what: "the agent's answer on the handset" });
    expect(received.text).toBe('Sorry Rosa, it is with the courier and arrives tomorrow.');
    await waitFor(async () => ['SENT', 'DELIVERED'].includes((await message(answer.id)).status), { what: 'the answer SENT' });

    // Assigned to sam: listed under sam, and no longer among the unassigned.
    const { assignConversation } = await as('agent', `mutation($id: ID!) { assignConversation(conversationId: $id, assignee: "sam") { id status assignee } }`, {
      id: open.id,
    });
    expect(assignConversation).toEqual({ id: open.id, status: 'PENDING', assignee: 'sam' });
    expect((await as('agent', LIST, { a: 'sam' })).conversations.nodes.map((c: any) => c.id)).toEqual([open.id]);
    expect((await as('agent', LIST, { a: '' })).conversations.nodes.map((c: any) => c.id)).not.toContain(open.id);

    // The customer writes again: OPEN again, same thread, same assignee.
    await reply(phone, 'Thanks!');
    const reopened = await waitFor(
      async () => (await as('agent', LIST, { s: 'OPEN' })).conversations.nodes.find((c: any) => c.id === open.id && c.messages.length === 3),
      { what: 'the second reply in the thread' },
    );
    expect(reopened.assignee).toBe('sam');
    expect(reopened.messages.map((m: any) => [m.direction, m.body])).toEqual([
      ['INBOUND', 'It has not arrived yet, can you check?'],
      ['OUTBOUND', 'Sorry Rosa, it is with the courier and arrives tomorrow.'],
      ['INBOUND', 'Thanks!'],
    ]);

    const { resolveConversation } = await as('agent', `mutation($id: ID!) { resolveConversation(conversationId: $id) { id status assignee } }`, {
      id: open.id,
    });
    expect(resolveConversation).toEqual({ id: open.id, status: 'RESOLVED', assignee: 'sam' });
    expect((await as('agent', LIST, { s: 'OPEN' })).conversations.nodes.map((c: any) => c.id)).not.toContain(open.id);
    expect((await as('agent', LIST, { s: 'RESOLVED' })).conversations.nodes.map((c: any) => c.id)).toContain(open.id);
    // An agent works conversations; sending outside them needs an app (or admin) key.
    const refused = await fetch(e2e.platform.urls.graphql, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.agent}` },
      body: JSON.stringify({ query: `mutation { sendMessage(input: { contactId: "${createContact.id}", body: "x" }) { id } }` }),
    });
    expect(refused.status).toBe(403);
  }, 30_000);
});

describe('STOP, START and HELP', () => {
  it('STOP: one confirmation (even when the carrier delivers it twice), unsubscribed in contacts; held, later and scheduled sends SUPPRESSED', async () => {
    const phone = PHONES.stop;
    const { createContact: created } = await as('app', `mutation { createContact(input: { phone: "${phone}", firstName: "Sven" }) { id timezone } }`);

    // A MARKETING message held for quiet hours (a window around the contact's local time now) …
    await setQuietHours(localTime(created.timezone, -60), localTime(created.timezone, 60));
    const { sendMessage: held } = await as(
      'app',
      `mutation($c: ID!) { sendMessage(input: { contactId: $c, body: "Weekend sale: 20% off everything.", category: MARKETING }) { id status } }`,
      { c: created.id },
    );
    expect(held.status).toBe('SCHEDULED');
    // … and one scheduled with scheduleMessage, due a few seconds after the STOP.
    const sendAt = new Date(Date.now() + 6000);
    const SCHEDULED = `query($id: ID!) { scheduledMessage(id: $id) { status message { id status errorCode category } } }`;
    const { scheduleMessage: scheduled } = await as(
      'app',
      `mutation($c: ID!, $at: DateTime!) { scheduleMessage(input: { contactId: $c, body: "New arrivals are in!", category: MARKETING, sendAt: $at }) { id status } }`,
      { c: created.id, at: sendAt.toISOString() },
    );
    expect(scheduled.status).toBe('PENDING');

    // The carrier delivers this handset's replies twice.
    await e2e.sim('/api/rules', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ match: phone, outcome: 'DELIVERED', duplicateInbound: true }]),
    });
    try {
      const postedBefore: number = (await e2e.sim('/api/stats')).inboundPosted;
      await reply(phone, ' Stop! ');
      await waitFor(async () => (await e2e.sim('/api/stats')).inboundPosted === postedBefore + 2, { what: 'the STOP to reach messaging twice' });
      const confirmation = await waitFor(async () => (await handset(phone))[0], { timeoutMs: 10_000, what: 'the STOP confirmation' });
      expect(confirmation.text).toBe('You are unsubscribed from Textloop and will receive no more messages. Reply START to resubscribe.');
      const unsubscribed = await waitFor(
        async () => {
          const c = await contact(created.id);
          return c.subscribed ? undefined : c;
        },
        { what: 'contacts to record the opt-out' },
      );
      expect(unsubscribed.unsubscribedAt).toEqual(expect.any(String));
      expect(unsubscribed.consentHistory.map(({ subscribed, reason, source }: any) => ({ subscribed, reason, source }))).toEqual([
        { subscribed: true, reason: 'CREATED', source: expect.stringMatching(/^graphql/) },
        { subscribed: false, reason: 'STOP_KEYWORD', source: 'sms' },
      ]);
    } finally {
      await e2e.sim('/api/rules', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '[]' });
    }
    expect(Date.now(), 'the STOP was handled before the scheduled message fell due').toBeLessThan(sendAt.getTime() - 1000);
    expect((await as('app', SCHEDULED, { id: scheduled.id })).scheduledMessage).toEqual({ status: 'PENDING', message: null });
    await setQuietHours('00:00', '00:00');

    // The held message was suppressed by the STOP (ending quiet hours did not release it) …
    expect(await message(held.id)).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT' });
    // … a later send is suppressed …
    const { sendMessage: later } = await as(
      'app',
      `mutation($c: ID!) { sendMessage(input: { contactId: $c, body: "Your receipt is ready." }) { id status errorCode } }`,
      {
        c: created.id,
      },
    );
    expect(later).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT' });
    // … and so is the scheduled one when its time comes.
    const fired = await waitFor(async () => (await as('app', SCHEDULED, { id: scheduled.id })).scheduledMessage.message, {
      timeoutMs: 20_000,
      what: 'the scheduled message to fall due',
    });
    expect(fired).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT', category: 'MARKETING' });

    // Exactly one confirmation reached the handset, and nothing else.
    await new Promise((r) => setTimeout(r, 500));
    expect((await handset(phone)).map((m) => m.text)).toEqual([
      'You are unsubscribed from Textloop and will receive no more messages. Reply START to resubscribe.',
    ]);
  }, 45_000);

  it('START resubscribes with a confirmation; sends go out again', async () => {
    const phone = PHONES.stop;
    const { contactByPhone } = await as('agent', `query { contactByPhone(phone: "${phone}") { id } }`);
    await reply(phone, 'start');
    const confirmation = await waitFor(async () => (await handset(phone))[1], { timeoutMs: 10_000, what: 'the START confirmation' });
    expect(confirmation.text).toBe('You are resubscribed to Textloop messages. Reply HELP for help, STOP to unsubscribe.');
    const resubscribed = await waitFor(
      async () => {
        const c = await contact(contactByPhone.id);
        return c.subscribed ? c : undefined;
      },
      { what: 'contacts to record the opt-in' },
    );
    expect(resubscribed.consentHistory.map((e: any) => [e.subscribed, e.reason])).toEqual([
      [true, 'CREATED'],
      [false, 'STOP_KEYWORD'],
      [true, 'START_KEYWORD'],
    ]);
    const { sendMessage } = await as('app', `mutation($c: ID!) { sendMessage(input: { contactId: $c, body: "Welcome back, Sven." }) { id } }`, {
      c: contactByPhone.id,
    });
    expect((await waitFor(async () => (await handset(phone))[2], { timeoutMs: 10_000, what: 'a send after START' })).text).toBe('Welcome back, Sven.');
    expect((await message(sendMessage.id)).status).toMatch(/SENT|DELIVERED/);
    // Keywords are not support requests: no conversation for this contact.
    expect(inbox.filter((m) => m.message.from === phone).map((m) => m.message.body)).toEqual([' Stop! ', 'start']);
    const { conversations } = await as('agent', '{ conversations { nodes { contact { id } } } }');
    expect(conversations.nodes.map((c: any) => c.contact.id)).not.toContain(contactByPhone.id);
  }, 30_000);

  it('HELP is answered, to a number the platform has never seen too (it becomes a contact)', async () => {
    const phone = PHONES.help;
    await reply(phone, 'help');
    const answer = await waitFor(async () => (await handset(phone))[0], { timeoutMs: 10_000, what: 'the HELP answer' });
    expect(answer.text).toBe('Textloop: for help, contact support@example.com. Reply STOP to unsubscribe.');
    const { contactByPhone } = await waitFor(async () => {
      const data = await as('agent', `query { contactByPhone(phone: "${phone}") { id subscribed consentHistory { reason source } } }`);
      return data.contactByPhone ? data : undefined;
    });
    expect(contactByPhone).toMatchObject({ subscribed: true, consentHistory: [{ reason: 'CREATED', source: 'sms_inbound' }] });
    await new Promise((r) => setTimeout(r, 300));
    expect(await handset(phone)).toHaveLength(1);
  }, 20_000);
});

describe('redelivery', () => {
  it('stores the same inbound message posted twice to the webhook once', async () => {
    const phone = PHONES.redelivered;
    const url = `${e2e.platform.urls.webhooks.inbound}?secret=${encodeURIComponent(e2e.platform.webhookSecret)}`;
    const form = new URLSearchParams({
      'mocean-from': phone.slice(1),
      'mocean-to': 'Textloop',
      'mocean-text': 'Do you ship to Canada?',
      'mocean-keyword': 'DO',
      'mocean-coding': '1',
      'mocean-time': new Date().toISOString().slice(0, 19).replace('T', ' '),
    });
    const post = () =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() }).then(async (r) => [
        r.status,
        await r.text(),
      ]);
    // Twice at the same moment (a carrier retrying on a timeout), then once more later.
    expect(await Promise.all([post(), post()])).toEqual([
      [200, 'OK'],
      [200, 'OK'],
    ]);
    expect(await post()).toEqual([200, 'OK']);

    const { contactByPhone } = await as(
      'agent',
      `query { contactByPhone(phone: "${phone}") { id messages { nodes { id direction body status conversation { id messages { id } } } } } }`,
    );
    expect(contactByPhone.messages.nodes).toHaveLength(1);
    const [stored] = contactByPhone.messages.nodes;
    expect(stored).toMatchObject({ direction: 'INBOUND', body: 'Do you ship to Canada?', status: 'RECEIVED' });
    expect(stored.conversation.messages).toEqual([{ id: stored.id }]);
    // Published once: the live inbox saw it once.
    await waitFor(() => inbox.some((m) => m.message.from === phone), { what: 'messageReceived' });
    await new Promise((r) => setTimeout(r, 500));
    expect(inbox.filter((m) => m.message.from === phone).map((m) => m.message.id)).toEqual([stored.id]);
  }, 20_000);
});
