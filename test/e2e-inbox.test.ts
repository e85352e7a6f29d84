import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@textloop/service-kit/testing';
import { createLiveClient, type LiveClient } from '../services/gateway/src/live-client';
import { startE2E, type E2E } from './support/e2e';

// The live inbox (two-way issue, parts 5 and 6): subscriptions over graphql-ws at the gateway,
// fed from NATS and resolved through the federated API, and the roles of runtime.md. Six real
// processes on Postgres and NATS; the gateway runs with one key per role.

const KEYS = { admin: 'dev-admin-key', app: 'inbox-app-key', agent: 'inbox-agent-key', viewer: 'inbox-viewer-key' };
type Role = keyof typeof KEYS;

let e2e: E2E;
const clients: LiveClient[] = [];
const contacts: Record<'a' | 'b' | 'c', { id: string; phone: string }> = {} as never;

beforeAll(async () => {
  e2e = await startE2E({ prefix: 'e2e_inbox' });
  // startE2E runs without API_KEYS (the development admin key); this file needs every role.
  await e2e.platform.restart('gateway', {
    API_KEYS: Object.entries(KEYS)
      .map(([role, key]) => `${role}:${key}`)
      .join(','),
  });
  for (const [name, phone] of [
    ['a', '+14155550141'],
    ['b', '+14155550142'],
    ['c', '+14155550143'],
  ] as const) {
    const { createContact } = await e2e.gql(`mutation($p: String!) { createContact(input: { phone: $p, firstName: "${name}" }) { id phone } }`, { p: phone });
    contacts[name] = createContact;
  }
}, 240_000);

afterAll(async () => {
  for (const client of clients) await client.dispose();
  await e2e?.close();
}, 60_000);

function live(role: Role | string): LiveClient {
  const client = createLiveClient(e2e.platform.urls.graphql, role in KEYS ? KEYS[role as Role] : role);
  clients.push(client);
  return client;
}

interface Collected {
  payloads: any[];
  arrivals: number[];
  error?: any;
  stop(): void;
}

function collect(client: LiveClient, query: string, variables?: Record<string, unknown>): Collected {
  const c: Collected = { payloads: [], arrivals: [], stop: () => {} };
  c.stop = client.subscribe(
    { query, variables },
    {
      next: (result) => {
        c.payloads.push(result);
        c.arrivals.push(Date.now());
      },
      error: (err) => (c.error = err),
      complete: () => {},
    },
  );
  return c;
}

/** One round trip over the socket: the subscriptions sent before it are in place when it answers. */
function once(client: LiveClient, query: string): Promise<any> {
  return new Promise((resolve, reject) => {
    let result: unknown;
    client.subscribe({ query }, { next: (r) => (result = r), error: reject, complete: () => resolve(result) });
  });
}

/** The error a subscription ends with (a close event or GraphQL errors). */
function failure(client: LiveClient, query: string): Promise<any> {
  return new Promise((resolve) => client.subscribe({ query }, { next: () => {}, error: resolve, complete: () => resolve(undefined) }));
}

async function http(role: Role, query: string, variables?: Record<string, unknown>) {
  const res = await fetch(e2e.platform.urls.graphql, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS[role]}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const reply = (phone: string, text: string) =>
  fetch(new URL(`/api/handsets/${phone.replace('+', '')}/reply`, e2e.platform.urls.carrierSim), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to: 'Textloop', text }),
  });

describe('messageReceived', () => {
  it('brings a handset reply to an agent within one second, with fields of several subgraphs', async () => {
    const agent = live('agent');
    const admin = live('admin');
    const received = collect(agent, 'subscription { messageReceived { id body from contact { id phone } } }');
    const alsoAdmin = collect(admin, 'subscription Inbox { inbound: messageReceived { body direction status } }');
    await once(agent, '{ __typename }');
    await once(admin, '{ __typename }');

    const postedAt = Date.now();
    expect((await reply(contacts.a.phone, 'Where is my order?')).status).toBe(202);
    await waitFor(() => received.payloads.length > 0, { timeoutMs: 5000, what: 'messageReceived' });
    const latency = received.arrivals[0]! - postedAt;
    expect(latency).toBeLessThan(1000);

    expect(received.payloads[0]).toEqual({
      data: {
        messageReceived: {
          id: expect.any(String),
          body: 'Where is my order?',
          from: contacts.a.phone,
          contact: { id: contacts.a.id, phone: contacts.a.phone },
        },
      },
    });
    await waitFor(() => alsoAdmin.payloads.length > 0, { timeoutMs: 5000, what: 'the admin subscriber' });
    expect(alsoAdmin.payloads[0]).toEqual({ data: { inbound: { body: 'Where is my order?', direction: 'INBOUND', status: 'RECEIVED' } } });
    received.stop();
    alsoAdmin.stop();
  });

  it('is refused to a viewer with FORBIDDEN, naming the roles that may', async () => {
    const errors = await failure(live('viewer'), 'subscription { messageReceived { id } }');
    expect(errors).toEqual([
      expect.objectContaining({
        message: 'A viewer key may not subscribe to messageReceived; it needs a key with role admin or agent.',
        extensions: { code: 'FORBIDDEN' },
      }),
    ]);
  });
});

describe('messageStatusChanged', () => {
  it("follows one contact's message through QUEUED, SENT and DELIVERED, and not another contact's", async () => {
    const app = live('app');
    const viewer = live('viewer');
    const forA = collect(
      app,
      `subscription Progress($c: ID) { update: messageStatusChanged(contactId: $c) { id st: status ...Who } }
       fragment Who on Message { to contact { id } }`,
      { c: contacts.a.id },
    );
    const all = collect(viewer, 'subscription { messageStatusChanged { id status } }');
    await once(app, '{ __typename }');
    await once(viewer, '{ __typename }');

    const send = async (contactId: string) =>
      (await http('app', 'mutation($c: ID!) { sendMessage(input: { contactId: $c, body: "Your order shipped" }) { id } }', { c: contactId })).body.data
        .sendMessage.id as string;
    const [toA, toB] = [await send(contacts.a.id), await send(contacts.b.id)];

    const delivered = (c: Collected, key: string, id: string, status = 'status') =>
      c.payloads.some((p) => p.data[key].id === id && p.data[key][status] === 'DELIVERED');
    await waitFor(() => delivered(forA, 'update', toA, 'st') && delivered(all, 'messageStatusChanged', toB), {
      timeoutMs: 20_000,
      what: 'both messages DELIVERED',
    });
    expect(forA.error).toBeUndefined();
    expect(forA.payloads.map((p) => p.data.update.id)).toEqual(forA.payloads.map(() => toA));
    expect(forA.payloads.map((p) => p.data.update.st)).toEqual(['QUEUED', 'SENT', 'DELIVERED']);
    expect(forA.payloads[0].data.update).toMatchObject({ to: contacts.a.phone, contact: { id: contacts.a.id } });
    expect(all.payloads.filter((p) => p.data.messageStatusChanged.id === toB).map((p) => p.data.messageStatusChanged.status)).toEqual([
      'QUEUED',
      'SENT',
      'DELIVERED',
    ]);
    forA.stop();
    all.stop();
  });
});

describe('connections', () => {
  it('are closed with 4401 without a known API key', async () => {
    const wrong = await failure(live('not-a-key'), 'subscription { messageStatusChanged { id } }');
    expect(wrong).toMatchObject({ code: 4401, reason: 'Unauthorized: this API key is not known' });
    const none = createLiveClient(e2e.platform.urls.graphql, '', { connectionParams: {} });
    clients.push(none);
    expect(await failure(none, 'subscription { messageStatusChanged { id } }')).toMatchObject({ code: 4401, reason: expect.stringContaining('no API key') });
  });

  it('run queries and mutations through the federated API with the same role checks', async () => {
    const viewer = live('viewer');
    expect(await once(viewer, `{ contact(id: "${contacts.b.id}") { phone } }`)).toEqual({
      data: { contact: { phone: contacts.b.phone } },
    });
    const refused = await once(viewer, 'mutation { createTemplate(input: { name: "nope", body: "x" }) { id } }');
    expect(refused.errors[0]).toMatchObject({
      extensions: { code: 'FORBIDDEN' },
      message: 'A viewer key may only read; createTemplate needs a key with role admin.',
    });
  });
});

describe('roles over HTTP', () => {
  it('lets a viewer read and nothing else', async () => {
    expect((await http('viewer', '{ templates { name } }')).body.errors).toBeUndefined();
    const res = await http('viewer', 'mutation { createContact(input: { phone: "+14155550199" }) { id } }');
    expect(res.status).toBe(403);
    expect(res.body.errors[0]).toMatchObject({
      message: 'A viewer key may only read; createContact needs a key with role admin or app.',
      extensions: { code: 'FORBIDDEN' },
    });
  });

  it('lets an app send but not change templates', async () => {
    const template = await http('app', 'mutation { createTemplate(input: { name: "app_made", body: "hi" }) { id } }');
    expect(template.status).toBe(403);
    expect(template.body.errors[0]).toMatchObject({
      message: 'An app key may not run createTemplate; it needs a key with role admin.',
      extensions: { code: 'FORBIDDEN' },
    });
    expect((await http('admin', '{ template(name: "app_made") { id } }')).body.data.template).toBeNull();
    const sent = await http('app', 'mutation($c: ID!) { sendMessage(input: { contactId: $c, body: "from the app" }) { id status } }', { c: contacts.c.id });
    expect(sent.body.errors).toBeUndefined();
    expect(sent.body.data.sendMessage.id).toBeTruthy();
  });

  it('keeps automations and policy from an agent, and sending too', async () => {
    for (const [query, field, roles] of [
      ['mutation { createAutomation(input: { name: "x", triggerEvent: "order.shipped", steps: [] }) { id } }', 'createAutomation', 'admin'],
      ['mutation { updateMessagingPolicy(input: { marketingWeeklyCap: 3 }) { marketingWeeklyCap } }', 'updateMessagingPolicy', 'admin'],
      [`mutation { sendMessage(input: { contactId: "${contacts.c.id}", body: "x" }) { id } }`, 'sendMessage', 'admin or app'],
    ]) {
      const res = await http('agent', query!);
      expect(res.status, field).toBe(403);
      expect(res.body.errors[0].message).toBe(`An agent key may not run ${field}; it needs a key with role ${roles}.`);
    }
    expect((await http('agent', '{ automations { id } }')).body.errors).toBeUndefined();
  });
});

describe('conversationUpdated', () => {
  it('shows an agent a conversation open, get assigned and resolve; a status filter sees only its status', async () => {
    const agent = live('agent');
    const everything = collect(agent, 'subscription { conversationUpdated { id status assignee contact { id phone } } }');
    const open = collect(agent, 'subscription { conversationUpdated(status: OPEN) { id status } }');
    await once(agent, '{ __typename }');
    const mine = (c: Collected) => c.payloads.map((p) => p.data.conversationUpdated).filter((u) => u.contact?.id === contacts.c.id || u.id === conversationId);
    let conversationId = '';

    expect((await reply(contacts.c.phone, 'Can someone help me?')).status).toBe(202);
    const opened = await waitFor(() => mine(everything).find((u) => u.status === 'OPEN'), { timeoutMs: 5000, what: 'the conversation to open' });
    conversationId = opened.id;
    expect(opened.contact).toEqual({ id: contacts.c.id, phone: contacts.c.phone });

    const assigned = await http('agent', 'mutation($id: ID!) { assignConversation(conversationId: $id, assignee: "sam") { id } }', { id: conversationId });
    expect(assigned.body.errors).toBeUndefined();
    await waitFor(() => mine(everything).some((u) => u.assignee === 'sam'), { timeoutMs: 5000, what: 'the assignment' });
    const resolved = await http('agent', 'mutation($id: ID!) { resolveConversation(conversationId: $id) { id } }', { id: conversationId });
    expect(resolved.body.errors).toBeUndefined();
    await waitFor(() => mine(everything).some((u) => u.status === 'RESOLVED'), { timeoutMs: 5000, what: 'the resolution' });

    const onlyOpen = open.payloads.map((p) => p.data.conversationUpdated).filter((u) => u.id === conversationId);
    expect(onlyOpen.length).toBeGreaterThan(0);
    expect(onlyOpen.every((u) => u.status === 'OPEN')).toBe(true);
    everything.stop();
    open.stop();
  });
});
