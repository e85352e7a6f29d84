import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@textloop/service-kit/testing';
import { startE2E, type E2E } from './support/e2e';

// The foundation issue's first real flow, end to end: six processes, real Postgres and NATS,
// driven only through the gateway, the carrier simulator's HTTP API and a NATS subscriber.

let e2e: E2E;
let nc: NatsConnection;

beforeAll(async () => {
  // A short lease so that a restarted messaging takes over what the killed one had claimed.
  e2e = await startE2E({ prefix: 'e2e', env: { DISPATCH_LEASE_MS: '2000' } });
  nc = await connect({ servers: e2e.nats.url });
}, 240_000);

afterAll(async () => {
  await nc?.close();
  await e2e?.close();
}, 60_000);

const MESSAGE_FIELDS = `id status to body segments encoding category errorCode providerMessageId
  price { amount currency } statusHistory { status at } contact { id firstName phone }`;

describe('a contact created from a national number gets a templated SMS and it is delivered', () => {
  it('is visible through the gateway, the handset and NATS', async () => {
    const created = await e2e.gql(
      `mutation { createContact(input: { phone: "(415) 555-0100", defaultCountry: "US", firstName: "Ada", attributes: { plan: "pro" } }) {
         id phone country timezone subscribed } }`,
    );
    const contact = created.createContact;
    expect(contact).toMatchObject({ phone: '+14155550100', country: 'US', timezone: 'America/Los_Angeles', subscribed: true });

    await e2e.gql(
      `mutation { createTemplate(input: { name: "order_shipped", body: "Hi {{ contact.firstName }}, order {{ orderId }} ({{ contact.attributes.plan }}) has shipped." }) { id } }`,
    );

    const delivered: any[] = [];
    const sub = nc.subscribe('messaging.message.delivered');
    (async () => {
      for await (const m of sub) delivered.push({ data: JSON.parse(m.string()), msgId: m.headers?.get('Nats-Msg-Id') });
    })();

    const sent = await e2e.gql(
      `mutation($c: ID!) { sendMessage(input: { contactId: $c, template: "order_shipped", variables: { orderId: "A-1001" } }) { id status } }`,
      { c: contact.id },
    );
    const id = sent.sendMessage.id;
    expect(['QUEUED', 'SENDING', 'SENT', 'DELIVERED']).toContain(sent.sendMessage.status);

    const message = await waitFor(
      async () => {
        const { message } = await e2e.gql(`query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`, { id });
        return message.status === 'DELIVERED' ? message : undefined;
      },
      { timeoutMs: 20_000, what: 'the message to be DELIVERED' },
    );
    expect(message).toMatchObject({
      to: '+14155550100',
      body: 'Hi Ada, order A-1001 (pro) has shipped.',
      encoding: 'GSM7',
      segments: 1,
      category: 'TRANSACTIONAL',
      contact: { id: contact.id, firstName: 'Ada', phone: '+14155550100' },
      price: { currency: 'USD' },
    });
    expect(message.providerMessageId).toBeTruthy();
    const history = message.statusHistory.map((h: { status: string }) => h.status);
    expect(history[0]).toBe('QUEUED');
    expect(history.indexOf('SENT')).toBeGreaterThan(0);
    expect(history.at(-1)).toBe('DELIVERED');

    const handset = await e2e.sim(`/api/handsets/${encodeURIComponent('+14155550100')}/messages`);
    expect(handset.map((m: { text: string }) => m.text)).toEqual(['Hi Ada, order A-1001 (pro) has shipped.']);

    const event = await waitFor(() => delivered.find((d) => d.data.data.messageId === id), { what: 'messaging.message.delivered on NATS' });
    expect(event.data).toMatchObject({
      specversion: '1.0',
      type: 'messaging.message.delivered',
      source: 'textloop/messaging',
      datacontenttype: 'application/json',
      data: { messageId: id, contactId: contact.id, to: '+14155550100', status: 'DELIVERED', segments: 1 },
    });
    expect(event.msgId).toBe(event.data.id);
    sub.unsubscribe();

    // Contact.messages is contributed by messaging through federation.
    const { contact: withMessages } = await e2e.gql(`query($c: ID!) { contact(id: $c) { phone messages { totalCount nodes { id status } } } }`, {
      c: contact.id,
    });
    expect(withMessages.messages).toEqual({ totalCount: 1, nodes: [{ id, status: 'DELIVERED' }] });
  }, 60_000);

  it('answers bad input with the contract error codes and writes nothing', async () => {
    const national = await e2e.gqlRaw(`mutation { createContact(input: { phone: "0412 345 678" }) { id } }`);
    expect(national.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'phone' });
    expect(national.errors?.[0]?.message).toMatch(/defaultCountry/);

    const unknownTemplate = await e2e.gqlRaw(`mutation { sendMessage(input: { to: "+14155550101", template: "nope" }) { id } }`);
    expect(unknownTemplate.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    const unknownVariable = await e2e.gqlRaw(`mutation { sendMessage(input: { to: "+14155550101", body: "Hi {{ nobody }}" }) { id } }`);
    expect(unknownVariable.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const tooLong = await e2e.gqlRaw(`mutation($b: String!) { sendMessage(input: { to: "+14155550101", body: $b }) { id } }`, { b: 'x'.repeat(1601) });
    expect(tooLong.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'body' });

    const { messages } = await e2e.gql(`{ messages(filter: { direction: OUTBOUND }) { totalCount nodes { to } } }`);
    expect(messages.nodes.filter((m: { to: string }) => m.to === '+14155550101')).toEqual([]);
  });
});

describe('killing messaging mid-send', () => {
  it('neither loses nor duplicates a message', async () => {
    const count = 300;
    const phones = Array.from({ length: count }, (_, i) => `+1415555${String(2000 + i).padStart(4, '0')}`);
    // Reports take a moment, so some messages are in flight at every stage when the process dies.
    await e2e.sim('/api/rules', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ match: '+1415555', outcome: 'DELIVERED', dlrDelayMs: 300 }]),
    });
    const before = await e2e.sim('/api/stats');

    const { sendMessages } = await e2e.gql(`mutation($inputs: [SendMessageInput!]!) { sendMessages(inputs: $inputs) { id } }`, {
      inputs: phones.map((to, i) => ({ to, body: `Crash test ${i}`, idempotencyKey: `crash-${i}` })),
    });
    expect(sendMessages).toHaveLength(count);

    await waitFor(async () => (await e2e.sim('/api/stats')).accepted - before.accepted >= 20, { timeoutMs: 20_000, intervalMs: 5, what: 'sending to begin' });
    await e2e.platform.kill('messaging');
    const acceptedAtKill = (await e2e.sim('/api/stats')).accepted - before.accepted;
    expect(acceptedAtKill).toBeLessThan(count);

    await e2e.platform.restart('messaging');
    await waitFor(
      async () => {
        const { messages } = await e2e.gql(`{ messages(filter: { status: DELIVERED }, first: 1) { totalCount } }`);
        return messages.totalCount >= count + 1;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: 'every message to be DELIVERED after the restart' },
    );

    const after = await e2e.sim('/api/stats');
    expect(after.accepted - before.accepted).toBe(count);
    for (const phone of phones) {
      const received = await e2e.sim(`/api/handsets/${encodeURIComponent(phone)}/messages`);
      expect(received, phone).toHaveLength(1);
    }
    const { messages } = await e2e.gql(`{ messages(filter: { direction: OUTBOUND }, first: 1) { totalCount } }`);
    expect(messages.totalCount).toBe(count + 1);
  }, 240_000);
});
