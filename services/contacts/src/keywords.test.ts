import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callRpc, createEvent, newId, publishEvent, RpcError } from '@textloop/events';
import { waitFor } from '@textloop/service-kit/testing';
import { startHarness, type Harness } from './test-support';

// The contacts side of inbound SMS: rpc.contacts.ensure for unknown numbers, and STOP/START keywords
// (messaging.message.received with `keyword`) in the consent ledger.
let h: Harness;
beforeAll(async () => {
  h = await startHarness('contacts_keywords');
});
afterAll(async () => {
  await h?.stop();
});

const T0 = Date.parse('2026-11-27T10:00:00.000Z');

async function contact(phone: string): Promise<string> {
  const res = await h.gql(`mutation { createContact(input: { phone: "${phone}" }) { id } }`);
  expect(res.errors).toBeUndefined();
  return res.data.createContact.id as string;
}

/** messaging.message.received as messaging publishes it; `at` is messaging's receive time. */
async function received(contactId: string | null, phone: string, body: string, keyword: string | undefined, at: number) {
  const data = { messageId: newId(), contactId, from: phone, to: 'Textloop', body, conversationId: null, inReplyTo: null, ...(keyword ? { keyword } : {}) };
  const event = createEvent({ source: 'textloop/messaging', type: 'messaging.message.received', data, time: new Date(at) });
  await publishEvent(h.deps.nats.js, 'messaging.message.received', event);
  return event;
}

async function ledger(contactId: string) {
  return h.deps.db
    .selectFrom('consent_ledger')
    .select(['subscribed', 'reason', 'source'])
    .where('contact_id', '=', contactId)
    .orderBy('at')
    .orderBy('id')
    .execute();
}

async function subscribed(contactId: string): Promise<boolean> {
  return (await h.deps.db.selectFrom('contacts').select('subscribed').where('id', '=', contactId).executeTakeFirstOrThrow()).subscribed;
}

/** The activity consumer has handled (and acknowledged) everything published so far, and its events are out. */
async function caughtUp(): Promise<void> {
  await waitFor(
    async () => {
      const info = await h.deps.nats.jsm.consumers.info('MESSAGING', 'contacts-activity');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    { what: 'contacts-activity to catch up', timeoutMs: 20_000 },
  );
  await h.settle();
}

describe('rpc.contacts.ensure', () => {
  it('creates an unknown number through the normal create path, and finds it afterwards', async () => {
    const phone = '+14155550700';
    const first = await callRpc(h.deps.nats.nc, 'rpc.contacts.ensure', { phone, source: 'sms_inbound' });
    expect(first.created).toBe(true);
    expect(first.contact).toMatchObject({ phone, country: 'US', subscribed: true });
    expect(await ledger(first.contact.contactId)).toEqual([{ subscribed: true, reason: 'CREATED', source: 'sms_inbound' }]);
    const [created] = await h.recorder.waitFor('contacts.contact.created', (e) => e.event.data.contactId === first.contact.contactId);
    expect(created!.event.data).toMatchObject({ phone, subscribed: true });

    const again = await callRpc(h.deps.nats.nc, 'rpc.contacts.ensure', { phone, source: 'sms_inbound' });
    expect(again).toEqual({ created: false, contact: first.contact });

    // Concurrent calls for one new number make one contact.
    const racing = await Promise.all(
      Array.from({ length: 5 }, () => callRpc(h.deps.nats.nc, 'rpc.contacts.ensure', { phone: '+14155550701', source: 'sms_inbound' })),
    );
    expect(new Set(racing.map((r) => r.contact.contactId)).size).toBe(1);
    expect(racing.filter((r) => r.created)).toHaveLength(1);
    expect(await h.deps.db.selectFrom('contacts').select('id').where('phone', '=', '+14155550701').execute()).toHaveLength(1);
  });

  it('refuses a number that is not E.164 with an answer, not a timeout', async () => {
    await expect(callRpc(h.deps.nats.nc, 'rpc.contacts.ensure', { phone: '4155550100', source: 'sms_inbound' })).rejects.toMatchObject({
      unavailable: false,
    });
    await expect(callRpc(h.deps.nats.nc, 'rpc.contacts.ensure', { phone: '+999', source: 'sms_inbound' })).rejects.toBeInstanceOf(RpcError);
  });
});

describe('STOP/START keywords from messaging.message.received', () => {
  it('STOP unsubscribes with reason STOP_KEYWORD once; START resubscribes with START_KEYWORD; HELP changes nothing', async () => {
    const phone = '+14155550710';
    const id = await contact(phone);
    const other = await contact('+14155550711');
    const stop = await received(id, phone, 'Stop!', 'STOP', T0 + 1000);
    // Not keywords (messaging did not mark them): a sentence with "stop" in it, and a STOP without a known contact.
    await received(other, '+14155550711', 'stop sending me deals', undefined, T0 + 1000);
    await received('no-such-contact', '+14155550712', 'STOP', 'STOP', T0 + 1000);
    await h.recorder.waitFor('contacts.contact.unsubscribed', (e) => e.event.data.contactId === id);
    expect(await subscribed(id)).toBe(false);
    // A redelivery (past the server's duplicate window) changes nothing.
    await h.deps.nats.js.publish('messaging.message.received', JSON.stringify(stop), { msgID: `${stop.id}-again` });
    await received(id, phone, 'help', 'HELP', T0 + 2000);
    await caughtUp();
    expect(await ledger(id)).toEqual([
      { subscribed: true, reason: 'CREATED', source: 'graphql' },
      { subscribed: false, reason: 'STOP_KEYWORD', source: 'sms' },
    ]);
    expect(await subscribed(other)).toBe(true);
    expect(await ledger(other)).toHaveLength(1);
    const unsubscribed = h.recorder.forContact(id, 'contacts.contact.unsubscribed');
    expect(unsubscribed).toHaveLength(1);
    expect(unsubscribed[0]!.event.data).toEqual({ contactId: id, phone, reason: 'STOP_KEYWORD', messageId: stop.data.messageId });

    await received(id, phone, 'START', 'START', T0 + 3000);
    await h.recorder.waitFor('contacts.contact.resubscribed', (e) => e.event.data.contactId === id);
    expect(await subscribed(id)).toBe(true);
    expect((await ledger(id)).at(-1)).toEqual({ subscribed: true, reason: 'START_KEYWORD', source: 'sms' });
  });

  it('an older keyword handled after a newer one changes nothing (START then STOP ends unsubscribed)', async () => {
    const phone = '+14155550720';
    const id = await contact(phone);
    // The customer sent START, then STOP; the STOP is handled first.
    await received(id, phone, 'STOP', 'STOP', T0 + 20_000);
    await h.recorder.waitFor('contacts.contact.unsubscribed', (e) => e.event.data.contactId === id);
    await received(id, phone, 'START', 'START', T0 + 10_000);
    await caughtUp();
    expect(await subscribed(id)).toBe(false);
    expect(h.recorder.forContact(id, 'contacts.contact.resubscribed')).toHaveLength(0);
    expect((await ledger(id)).map((e) => e.reason)).toEqual(['CREATED', 'STOP_KEYWORD']);
  });
});
