import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { newId } from '@textloop/events';
import { waitForOutboxEmpty } from '@textloop/service-kit/testing';
import { contactData, MESSAGE_FIELDS, startHarness, waitForRow, type Harness } from './test-harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('msg_sending', { CONTACT_WAIT_MS: '500' });
});
afterAll(async () => {
  await h?.close();
});

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`;
const SEND_MANY = `mutation($inputs: [SendMessageInput!]!) { sendMessages(inputs: $inputs) { id status to body } }`;
const PREVIEW = `query($input: PreviewMessageInput!) { previewMessage(input: $input) { body encoding segments characters price { amount currency } warnings } }`;

/** Rows a new message writes (earlier messages keep changing in the background as they are delivered). */
/**
 * Rows written and their events seen on NATS. Events arrive after their commit (the outbox relay
 * publishes them), so this first waits until the outbox is empty and no event has come in for a
 * moment: a count taken right after a send would otherwise miss the events still on their way.
 */
async function counts() {
  const db = h.main.deps.db;
  await waitForOutboxEmpty(db);
  for (let seen = -1; seen !== h.events.length;) {
    seen = h.events.length;
    await new Promise((r) => setTimeout(r, 100));
  }
  const messages = await db
    .selectFrom('messages')
    .select(sql<number>`count(*)`.as('n'))
    .executeTakeFirstOrThrow();
  const created = await db
    .selectFrom('message_status_history')
    .select(sql<number>`count(*)`.as('n'))
    .where('status', 'in', ['QUEUED', 'SUPPRESSED'])
    .executeTakeFirstOrThrow();
  const queuedEvents = h.events.filter((e) => e.subject === 'messaging.message.queued' || e.subject === 'messaging.message.suppressed').length;
  return { messages: Number(messages.n), history: Number(created.n), queuedEvents };
}

async function seedContact(phone: string, extra: Record<string, unknown> = {}): Promise<string> {
  const contactId = newId();
  await h.publish('contacts.contact.created', contactData(contactId, phone, extra));
  await waitForRow(() => h.main.deps.db.selectFrom('contacts').select('id').where('id', '=', contactId).executeTakeFirst(), 'the projection');
  return contactId;
}

function errorOf(res: { errors?: Array<{ message: string; extensions?: Record<string, unknown> }> }) {
  expect(res.errors).toBeDefined();
  return res.errors![0]!;
}

describe('templates', () => {
  it('creates, lists and updates templates with their variables', async () => {
    const created = await h.gql(
      `mutation { createTemplate(input: { name: "welcome", body: "Hi {{ contact.firstName | default: \\"there\\" }}, your order {{ orderId }} is in." }) { id name category variables } }`,
    );
    expect(created.errors).toBeUndefined();
    expect(created.data.createTemplate).toMatchObject({ name: 'welcome', category: 'TRANSACTIONAL', variables: ['contact.firstName', 'orderId'] });
    const updated = await h.gql(
      `mutation { updateTemplate(name: "welcome", input: { name: "welcome", body: "Welcome {{ contact.firstName | default: \\"friend\\" }}!", category: MARKETING }) { name category variables body } }`,
    );
    expect(updated.data.updateTemplate).toMatchObject({ category: 'MARKETING', variables: ['contact.firstName'] });
    const listed = await h.gql(`{ templates { name } template(name: "welcome") { body } missing: template(name: "nope") { id } }`);
    expect(listed.data.templates.map((t: { name: string }) => t.name)).toContain('welcome');
    expect(listed.data.template.body).toBe('Welcome {{ contact.firstName | default: "friend" }}!');
    expect(listed.data.missing).toBeNull();
  });

  it('rejects bad Liquid, taken names and unknown templates', async () => {
    const bad = errorOf(await h.gql(`mutation { createTemplate(input: { name: "broken", body: "Hi {{ name | shout }}" }) { id } }`));
    expect(bad.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'body' });
    expect(bad.message).toMatch(/undefined filter: shout/);
    const unclosed = errorOf(await h.gql(`mutation { createTemplate(input: { name: "broken", body: "Hi {{ name " }) { id } }`));
    expect(unclosed.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'body' });
    await h.gql(`mutation { createTemplate(input: { name: "dup", body: "x" }) { id } }`);
    expect(errorOf(await h.gql(`mutation { createTemplate(input: { name: "dup", body: "y" }) { id } }`)).extensions?.code).toBe('CONFLICT');
    expect(errorOf(await h.gql(`mutation { updateTemplate(name: "ghost", input: { name: "ghost", body: "y" }) { id } }`)).extensions?.code).toBe('NOT_FOUND');
    expect(errorOf(await h.gql(`mutation { updateTemplate(name: "dup", input: { name: "welcome", body: "y" }) { id } }`)).extensions?.code).toBe('CONFLICT');
    expect(errorOf(await h.gql(SEND, { input: { to: '+14155550150', template: 'ghost' } })).extensions?.code).toBe('NOT_FOUND');
  });
});

describe('sendMessage', () => {
  it('refuses an unknown variable with BAD_USER_INPUT and writes nothing', async () => {
    await h.gql(
      `mutation { createTemplate(input: { name: "shipped", body: "Order {{ orderId }} shipped, {{ contact.firstName | default: \\"there\\" }}" }) { id } }`,
    );
    const contactId = await seedContact('+14155550151', { firstName: null });
    const before = await counts();
    const err = errorOf(await h.gql(SEND, { input: { contactId, template: 'shipped', variables: { orderID: 'typo' } } }));
    expect(err.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'variables' });
    expect(err.message).toMatch(/"orderId"/);
    expect(await counts()).toEqual(before);
    // A body is Liquid too, just as strict.
    const inline = errorOf(await h.gql(SEND, { input: { to: '+14155550101', body: 'Hi {{ nobody }}' } }));
    expect(inline.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'variables' });
    expect(inline.message).toMatch(/"nobody"/);
    expect(errorOf(await h.gql(SEND, { input: { to: '+14155550101', body: 'Hi {{ nobody ' } })).extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'body',
    });
    expect(await counts()).toEqual(before);
    const personal = await h.gql(SEND, { input: { contactId, body: 'Hi {{ contact.firstName | default: "you" }}, {{ contact.attributes.plan }} plan' } });
    expect(personal.data.sendMessage.body).toBe('Hi you, gold plan');
    // With the variable given, a null firstName falls back to the default.
    const ok = await h.gql(SEND, { input: { contactId, template: 'shipped', variables: { orderId: 'A-1' } } });
    expect(ok.data.sendMessage.body).toBe('Order A-1 shipped, there');
  });

  it('validates recipients, bodies and senders', async () => {
    const before = await counts();
    const long = errorOf(await h.gql(SEND, { input: { to: '+14155550152', body: 'x'.repeat(1601) } }));
    expect(long.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'body' });
    expect(long.message).toMatch(/1601 characters.*1600/);
    expect(errorOf(await h.gql(SEND, { input: { body: 'hi' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' });
    expect(errorOf(await h.gql(SEND, { input: { to: '+14155550152', contactId: 'x', body: 'hi' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(errorOf(await h.gql(SEND, { input: { to: '+14155550152' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'body' });
    expect(errorOf(await h.gql(SEND, { input: { to: '+14155550152', body: 'hi', template: 'shipped' } })).extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'body',
    });
    const phone = errorOf(await h.gql(SEND, { input: { to: '12', body: 'hi' } }));
    expect(phone.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' });
    expect(phone.message).toMatch(/too short/);
    expect(errorOf(await h.gql(SEND, { input: { to: '020 7946 0958', body: 'hi' } })).extensions).toMatchObject({ field: 'to' });
    expect(errorOf(await h.gql(SEND, { input: { to: '+14155550152', body: 'hi', from: 'A sender that is far too long' } })).extensions).toMatchObject({
      field: 'from',
    });
    expect(errorOf(await h.gql(SEND, { input: { to: '+14155550152', body: 'hi', variables: [1] } })).extensions).toMatchObject({ field: 'variables' });
    expect(await counts()).toEqual(before);
    // A national number with defaultCountry; the sender follows the destination country.
    const gb = await h.gql(SEND, { input: { to: '020 7946 0958', defaultCountry: 'GB', body: 'Cheerio' } });
    expect(gb.data.sendMessage).toMatchObject({ to: '+442079460958', from: 'TextloopUK', price: { amount: '0.0400', currency: 'USD' } });
    const own = await h.gql(SEND, { input: { to: '+14155550152', body: 'hi', from: '+15005550006' } });
    expect(own.data.sendMessage.from).toBe('+15005550006');
  });

  it('waits briefly for a contact the projection has not seen, then says NOT_FOUND', async () => {
    const err = errorOf(await h.gql(SEND, { input: { contactId: newId(), body: 'hi' } }));
    expect(err.extensions?.code).toBe('NOT_FOUND');
  });

  it('returns the first message for a repeated idempotency key and sends one copy', async () => {
    const input = { to: '+14155550153', body: 'Only once', idempotencyKey: 'order-42-confirmation' };
    const [a, b] = await Promise.all([h.gql(SEND, { input }), h.gql(SEND, { input })]);
    const c = await h.gql(SEND, { input });
    expect(a.errors).toBeUndefined();
    expect(b.data.sendMessage.id).toBe(a.data.sendMessage.id);
    expect(c.data.sendMessage.id).toBe(a.data.sendMessage.id);
    await waitForRow(
      async () => (await h.gql(`query($id: ID!) { message(id: $id) { status } }`, { id: a.data.sendMessage.id })).data.message.status === 'DELIVERED',
      'delivery',
    );
    expect(await h.handset('+14155550153')).toHaveLength(1);
    const rows = await h.main.deps.db.selectFrom('messages').select('id').where('to_number', '=', '+14155550153').execute();
    expect(rows).toHaveLength(1);
    // The same key twice in one batch is one message too.
    const batch = await h.gql(SEND_MANY, {
      inputs: [
        { to: '+14155550155', body: 'Twice', idempotencyKey: 'k-2' },
        { to: '+14155550155', body: 'Twice', idempotencyKey: 'k-2' },
      ],
    });
    expect(batch.data.sendMessages[0].id).toBe(batch.data.sendMessages[1].id);
  });

  it('suppresses a message still waiting to be sent when the contact opts out', async () => {
    const contactId = await seedContact('+14155550156');
    await h.simJson('PUT', '/api/rules', [{ match: '+14155550156', outcome: 'HTTP_500' }]);
    try {
      const sent = await h.gql(SEND, { input: { contactId, body: 'Still interested?' } });
      const id = sent.data.sendMessage.id;
      // The provider is down, so it waits for a retry; then the contact unsubscribes.
      await waitForRow(
        async () => (await h.gql(`query($id: ID!) { message(id: $id) { statusHistory { status } } }`, { id })).data.message.statusHistory.length >= 3,
        'a failed attempt',
      );
      await h.publish('contacts.contact.unsubscribed', { contactId, phone: '+14155550156', reason: 'API' });
      const message = await waitForRow(async () => {
        const m = (await h.gql(`query($id: ID!) { message(id: $id) { status errorCode } }`, { id })).data.message;
        return m.status === 'SUPPRESSED' ? m : undefined;
      }, 'the waiting message to be suppressed');
      expect(message.errorCode).toBe('OPTED_OUT');
      await h.simJson('PUT', '/api/rules', []);
      await new Promise((r) => setTimeout(r, 500));
      expect(await h.handset('+14155550156')).toHaveLength(0);
      expect((await h.gql(`query($id: ID!) { message(id: $id) { status } }`, { id })).data.message.status).toBe('SUPPRESSED');
    } finally {
      await h.simJson('PUT', '/api/rules', []);
    }
  });

  it('suppresses messages to unsubscribed contacts, by contact and by number', async () => {
    const contactId = await seedContact('+14155550154');
    await h.publish('contacts.contact.unsubscribed', { contactId, phone: '+14155550154', reason: 'STOP_KEYWORD' });
    await waitForRow(async () => {
      const row = await h.main.deps.db.selectFrom('contacts').select('subscribed').where('id', '=', contactId).executeTakeFirst();
      return row && !row.subscribed;
    }, 'the unsubscribe');
    // An older snapshot arriving late does not resubscribe them.
    await h.publish('contacts.contact.updated', contactData(contactId, '+14155550154', { subscribed: true }), { time: new Date(Date.now() - 60_000) });
    const byContact = await h.gql(SEND, { input: { contactId, body: 'Deal!' } });
    expect(byContact.data.sendMessage).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT', price: null });
    expect(byContact.data.sendMessage.statusHistory.map((s: { status: string }) => s.status)).toEqual(['SUPPRESSED']);
    const byNumber = await h.gql(SEND, { input: { to: '(415) 555-0154', defaultCountry: 'US', body: 'Deal!' } });
    expect(byNumber.data.sendMessage).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT', contact: { id: contactId } });
    const event = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.suppressed' && e.data.messageId === byNumber.data.sendMessage.id),
      'suppressed event',
    );
    expect(event.data.errorCode).toBe('OPTED_OUT');
    await h.publish('contacts.contact.resubscribed', { contactId, phone: '+14155550154', reason: 'API' });
    await waitForRow(
      async () => (await h.main.deps.db.selectFrom('contacts').select('subscribed').where('id', '=', contactId).executeTakeFirst())?.subscribed,
      'the resubscribe',
    );
    const again = await h.gql(SEND, { input: { contactId, body: 'Welcome back' } });
    expect(again.data.sendMessage.status).toBe('QUEUED');
    await new Promise((r) => setTimeout(r, 200));
    expect((await h.handset('+14155550154')).map((m) => m.text)).toEqual(['Welcome back']);
  });
});

describe('sendMessages', () => {
  it('queues 1,000 messages in one call and delivers them all', async () => {
    const inputs = Array.from({ length: 1000 }, (_, i) => ({ to: `+1512300${String(i).padStart(4, '0')}`, body: `Bulk ${i}` }));
    const res = await h.gql(SEND_MANY, { inputs });
    expect(res.errors).toBeUndefined();
    const sent: Array<{ id: string; status: string; to: string; body: string }> = res.data.sendMessages;
    expect(sent).toHaveLength(1000);
    expect(new Set(sent.map((m) => m.id)).size).toBe(1000);
    expect(sent[999]).toMatchObject({ status: 'QUEUED', to: '+15123000999', body: 'Bulk 999' });
    await waitForRow(
      async () => {
        const r = await h.main.deps.db
          .selectFrom('messages')
          .select(sql<number>`count(*)`.as('n'))
          .where('to_number', 'like', '+1512300%')
          .where('status', '=', 'DELIVERED')
          .executeTakeFirstOrThrow();
        return Number(r.n) === 1000;
      },
      'all 1,000 delivered',
      60_000,
    );
    expect(await h.handset('+15123000500')).toHaveLength(1);
  }, 90_000);

  it('is all or nothing: one bad input fails the call and names its index', async () => {
    const before = await counts();
    const inputs = Array.from({ length: 20 }, (_, i) => ({ to: `+1512400${String(i).padStart(4, '0')}`, body: `Batch ${i}` }));
    inputs[13] = { to: 'not a phone', body: 'bad' };
    const err = errorOf(await h.gql(SEND_MANY, { inputs }));
    expect(err.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to', index: 13 });
    expect(err.message).toMatch(/^inputs\[13\]/);
    const tooMany = errorOf(await h.gql(SEND_MANY, { inputs: Array.from({ length: 1001 }, () => ({ to: '+15124000000', body: 'x' })) }));
    expect(tooMany.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await counts()).toEqual(before);
  });
});

describe('previewMessage', () => {
  it('reports encoding, segments, price and warnings', async () => {
    const gsm = await h.gql(PREVIEW, { input: { body: 'Your parcel is on its way', to: '+14155550160' } });
    expect(gsm.data.previewMessage).toEqual({
      body: 'Your parcel is on its way',
      encoding: 'GSM7',
      segments: 1,
      characters: 25,
      price: { amount: '0.0079', currency: 'USD' },
      warnings: [],
    });
    const curly = await h.gql(PREVIEW, { input: { body: `Don’t miss “this” ${'x'.repeat(60)}` } });
    expect(curly.data.previewMessage).toMatchObject({ encoding: 'UCS2', segments: 2, price: null });
    expect(curly.data.previewMessage.warnings.join(' ')).toMatch(/UCS-2.*1 segment instead of 2/);
    const long = await h.gql(PREVIEW, { input: { body: 'y'.repeat(1700), to: '+442079460958' } });
    expect(long.data.previewMessage.segments).toBe(12);
    expect(long.data.previewMessage.price).toEqual({ amount: '0.4800', currency: 'USD' });
    expect(long.data.previewMessage.warnings.join(' ')).toMatch(/at most 1600/);
    const contactId = await seedContact('+14155550161', { firstName: 'Lin' });
    const templated = await h.gql(PREVIEW, { input: { template: 'shipped', contactId, variables: { orderId: 'Z-9' } } });
    expect(templated.data.previewMessage).toMatchObject({ body: 'Order Z-9 shipped, Lin', price: { amount: '0.0079', currency: 'USD' } });
    expect(errorOf(await h.gql(PREVIEW, { input: { template: 'shipped' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'variables' });
  });
});

describe('reads', () => {
  it('paginates a contact’s messages, resolves the entity and counts stats', async () => {
    const contactId = await seedContact('+14155550170');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await h.gql(SEND, { input: { contactId, body: `Note ${i} “quoted”`, category: 'SUPPORT' } });
      ids.push(r.data.sendMessage.id);
    }
    const page1 = await h.gql(
      `query($f: MessageFilter) { messages(filter: $f, first: 2) { totalCount pageInfo { hasNextPage endCursor } nodes { id body } } }`,
      { f: { contactId } },
    );
    expect(page1.data.messages.totalCount).toBe(5);
    expect(page1.data.messages.nodes.map((n: { id: string }) => n.id)).toEqual([ids[4], ids[3]]);
    expect(page1.data.messages.pageInfo.hasNextPage).toBe(true);
    const page3 = await h.gql(
      `query($f: MessageFilter, $after: String) { messages(filter: $f, first: 2, after: $after) { pageInfo { hasNextPage endCursor } nodes { id } } }`,
      { f: { contactId }, after: page1.data.messages.pageInfo.endCursor },
    );
    expect(page3.data.messages.nodes.map((n: { id: string }) => n.id)).toEqual([ids[2], ids[1]]);
    expect(errorOf(await h.gql(`{ messages(after: "garbage") { totalCount } }`)).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });

    const entity = await h.gql(
      `query($r: [_Any!]!) { _entities(representations: $r) { ... on Contact { id messages(first: 10) { totalCount nodes { id } } } ... on Message { id body } } }`,
      {
        r: [
          { __typename: 'Contact', id: contactId },
          { __typename: 'Message', id: ids[0] },
        ],
      },
    );
    expect(entity.errors).toBeUndefined();
    expect(entity.data._entities[0].messages.totalCount).toBe(5);
    expect(entity.data._entities[1]).toEqual({ id: ids[0], body: 'Note 0 “quoted”' });

    await waitForRow(async () => {
      const r = await h.main.deps.db
        .selectFrom('messages')
        .select(sql<number>`count(*)`.as('n'))
        .where('id', 'in', ids)
        .where('status', '=', 'DELIVERED')
        .executeTakeFirstOrThrow();
      return Number(r.n) === 5;
    }, 'the notes delivered');
    const stats = await h.gql(
      `{ messagingStats(category: SUPPORT) { sent delivered failed deliveryRate segments inbound cost { amount currency } suppressed } messagingQueue { queued sending scheduled retrying oldestQueuedAt } }`,
    );
    expect(stats.data.messagingStats).toEqual({
      sent: 5,
      delivered: 5,
      failed: 0,
      deliveryRate: 1,
      segments: 5,
      inbound: 0,
      cost: { amount: '0.0395', currency: 'USD' },
      suppressed: 0,
    });
    expect(stats.data.messagingQueue).toMatchObject({ scheduled: 0 });
    const none = await h.gql(`{ messagingStats(since: "2000-01-01T00:00:00Z", until: "2000-01-02T00:00:00Z") { sent deliveryRate cost { amount currency } } }`);
    expect(none.data.messagingStats).toEqual({ sent: 0, deliveryRate: 0, cost: { amount: '0.0000', currency: 'USD' } });
  });

  it('erases a deleted contact’s personal data and stops sending to it', async () => {
    const contactId = await seedContact('+14155550180');
    const r = await h.gql(SEND, { input: { contactId, body: 'Private stuff' } });
    const id = r.data.sendMessage.id;
    await waitForRow(async () => (await h.gql(`query($id: ID!) { message(id: $id) { status } }`, { id })).data.message.status === 'DELIVERED', 'delivery');
    await h.publish('contacts.contact.deleted', { contactId });
    await waitForRow(
      async () => !(await h.main.deps.db.selectFrom('contacts').select('id').where('id', '=', contactId).executeTakeFirst()),
      'the projection row to go',
    );
    const erased = await waitForRow(async () => {
      const m = (await h.gql(`query($id: ID!) { message(id: $id) { body to status segments } }`, { id })).data.message;
      return m.to === '[erased]' ? m : undefined;
    }, 'erasure');
    expect(erased).toEqual({ body: '', to: '[erased]', status: 'DELIVERED', segments: 1 });
    // A late update must not bring the contact back.
    await h.publish('contacts.contact.updated', contactData(contactId, '+14155550180'));
    await new Promise((res) => setTimeout(res, 200));
    expect(await h.main.deps.db.selectFrom('contacts').select('id').where('id', '=', contactId).executeTakeFirst()).toBeUndefined();
    expect(errorOf(await h.gql(SEND, { input: { contactId, body: 'Hello?' } })).extensions?.code).toBe('NOT_FOUND');
  });

  it('enforces roles on mutations', async () => {
    const res = await fetch(`${h.main.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-textloop-role': 'viewer' },
      body: JSON.stringify({ query: 'mutation { sendMessage(input: { to: "+14155550190", body: "x" }) { id } }' }),
    });
    const body = (await res.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0]!.extensions.code).toBe('FORBIDDEN');
  });
});
