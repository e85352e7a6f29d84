import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '@textloop/events';
import type { ProviderSendResult } from './providers/provider';
import { contactData, MESSAGE_FIELDS, startHarness, waitForRow, WEBHOOK_SECRET, type Harness } from './test-harness';

// The main instance only takes API calls and webhooks; each test starts the dispatching
// instances it needs, so it decides who claims what.
let h: Harness;
beforeAll(async () => {
  h = await startHarness('msg_crash', { DISPATCH_ENABLED: 'false', DISPATCH_LEASE_MS: '2000', PROVIDER_TIMEOUT_MS: '1000' });
});
afterAll(async () => {
  await h?.close();
});

const DISPATCHING = { DISPATCH_ENABLED: 'true' };
const statuses = (m: { statusHistory: Array<{ status: string }> }) => m.statusHistory.map((s) => s.status);

/**
 * An instance that hands `expected` messages to the provider and then "dies": nothing it sent is
 * recorded (the hook's promise never settles), and its dispatcher is stopped by the caller.
 */
async function startDyingInstance(expected: number) {
  const accepted: string[] = [];
  const instance = await h.startInstance(DISPATCHING, {
    dispatcherHooks: {
      beforeRecord: ({ messageId, result }) => {
        if (result.ok) accepted.push(messageId);
        return new Promise<void>(() => {});
      },
    },
  });
  await waitForRow(async () => accepted.length === expected, `the dying instance to hand over all ${expected}`);
  return instance;
}

/** Waits until every one of the messages is DELIVERED, and returns them. */
function allDelivered(ids: string[]) {
  return waitForRow(
    async () => {
      const ms = await messages(ids);
      return ms.every((m) => m.status === 'DELIVERED') ? ms : undefined;
    },
    'every message delivered',
    20_000,
  );
}

async function messages(ids: string[]) {
  const res = await h.gql(`query { ${ids.map((id, i) => `m${i}: message(id: "${id}") { ${MESSAGE_FIELDS} }`).join(' ')} }`);
  expect(res.errors).toBeUndefined();
  return ids.map((_, i) => res.data[`m${i}`]);
}

describe('crash safety', () => {
  it('a dispatcher that dies after the provider accepted is replaced without losing or duplicating anything', async () => {
    // Delivery reports come late, so the replacement has to resend before anything is known.
    await h.simJson('PUT', '/api/rules', [{ match: '+1305555', outcome: 'DELIVERED', dlrDelayMs: 8000 }]);
    const phones = [0, 1, 2, 3, 4].map((i) => `+1305555010${i}`);
    const sent = await h.gql(`mutation($inputs: [SendMessageInput!]!) { sendMessages(inputs: $inputs) { id status } }`, {
      inputs: phones.map((to, i) => ({ to, body: `Message ${i} of the crash test` })),
    });
    expect(sent.errors).toBeUndefined();
    const ids: string[] = sent.data.sendMessages.map((m: { id: string }) => m.id);

    // Instance A hands every message to the provider, then "dies" before recording anything.
    const a = await startDyingInstance(ids.length);
    await a.instance.dispatcher.stop(0);
    const stranded = await h.main.deps.db.selectFrom('messages').select(['status', 'attempts']).where('id', 'in', ids).execute();
    expect(stranded.every((r) => r.status === 'SENDING' && r.attempts === 1)).toBe(true);
    expect((await h.simJson('GET', '/api/stats')).accepted).toBe(5);

    // Instance B finds the expired leases and resends with the same textloop-ref.
    const b = await h.startInstance(DISPATCHING);
    try {
      const done = await allDelivered(ids);
      const stats = await h.simJson('GET', '/api/stats');
      expect(stats.accepted).toBe(5);
      // At least one resend each; on a slow machine a resend can itself outlive its lease and be
      // resent again — the provider still accepts each message once.
      expect(stats.deduplicated).toBeGreaterThanOrEqual(5);
      for (const [i, phone] of phones.entries()) {
        const inbox = await h.handset(phone);
        expect(inbox.map((m) => m.text)).toEqual([`Message ${i} of the crash test`]);
        const history = statuses(done[i]);
        expect(history.slice(0, 3)).toEqual(['QUEUED', 'SENDING', 'SENDING']);
        expect(history.slice(-2)).toEqual(['SENT', 'DELIVERED']);
        expect(done[i].statusHistory[2].detail).toMatch(/lease expired/);
        expect(done[i].providerMessageId).toBe(inbox[0]!.msgid);
      }
      const rows = await h.main.deps.db.selectFrom('messages').select('attempts').where('id', 'in', ids).execute();
      expect(rows.every((r) => r.attempts >= 2)).toBe(true);
    } finally {
      await b.stop();
      await h.simJson('PUT', '/api/rules', []);
    }
  });

  it('a group of one text, resent after the dispatcher died, reaches each handset once', async () => {
    // Same text to five numbers: one request with five receivers and five references. The
    // replacement resends them in other groups; the provider matches each reference alone.
    await h.simJson('PUT', '/api/rules', [{ match: '+1305556', outcome: 'DELIVERED', dlrDelayMs: 8000 }]);
    const before = await h.simJson('GET', '/api/stats');
    const phones = [0, 1, 2, 3, 4].map((i) => `+1305556010${i}`);
    const sent = await h.gql(`mutation($inputs: [SendMessageInput!]!) { sendMessages(inputs: $inputs) { id } }`, {
      inputs: phones.map((to) => ({ to, body: 'Flash sale: 20% off today only' })),
    });
    expect(sent.errors).toBeUndefined();
    const ids: string[] = sent.data.sendMessages.map((m: { id: string }) => m.id);
    const a = await startDyingInstance(ids.length);
    expect(a.instance.dispatcher.stats.requests).toBe(1);
    await a.instance.dispatcher.stop(0);

    // B groups differently (at most two per request), so only per-receiver references can match.
    const b = await h.startInstance({ ...DISPATCHING, PROVIDER_MAX_RECIPIENTS: '2' });
    try {
      const done = await allDelivered(ids);
      expect(b.instance.dispatcher.stats.requests).toBeGreaterThanOrEqual(3);
      const stats = await h.simJson('GET', '/api/stats');
      expect(stats.accepted - before.accepted).toBe(5);
      expect(stats.deduplicated - before.deduplicated).toBeGreaterThanOrEqual(5);
      for (const [i, phone] of phones.entries()) {
        const inbox = await h.handset(phone);
        expect(inbox.map((m) => m.text)).toEqual(['Flash sale: 20% off today only']);
        expect(done[i].providerMessageId).toBe(inbox[0]!.msgid);
        expect(statuses(done[i]).slice(-2)).toEqual(['SENT', 'DELIVERED']);
      }
    } finally {
      await b.stop();
      await h.simJson('PUT', '/api/rules', []);
    }
  });

  it('a late SENT never overwrites DELIVERED, and reports never move a message backwards', async () => {
    await h.simJson('PUT', '/api/rules', [{ match: '+1206555', outcome: 'DELIVERED', dlrDelayMs: 60_000 }]);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let accepted: ProviderSendResult | undefined;
    const c = await h.startInstance(DISPATCHING, {
      dispatcherHooks: {
        beforeRecord: async ({ result }) => {
          accepted = result;
          await gate;
        },
      },
    });
    const sent = await h.gql(`mutation { sendMessage(input: { to: "+12065550101", body: "Out of order" }) { id } }`);
    const id: string = sent.data.sendMessage.id;
    await waitForRow(async () => accepted, 'the provider to accept');
    if (!accepted?.ok) throw new Error('expected the provider to accept');
    const msgid = accepted.providerMessageId;
    const dlr = (status: string, code = '0') =>
      fetch(`${h.main.url}/webhooks/mocean/dlr?secret=${WEBHOOK_SECRET}&mid=${id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ 'mocean-msgid': msgid, 'mocean-dlr-status': status, 'mocean-error-code': code }).toString(),
      });

    // The report overtakes the record of the send.
    expect((await dlr('1')).status).toBe(200);
    let [m] = await messages([id]);
    expect(m.status).toBe('DELIVERED');
    expect(statuses(m)).toEqual(['QUEUED', 'SENDING', 'SENT', 'DELIVERED']);
    // A contradicting and a duplicate report change nothing.
    expect((await dlr('2', '34')).status).toBe(200);
    expect((await dlr('1')).status).toBe(200);
    // Now the send result arrives: it keeps DELIVERED and adds no second SENT.
    release();
    await waitForRow(async () => {
      const row = await h.main.deps.db.selectFrom('messages').select('lease_until').where('id', '=', id).executeTakeFirstOrThrow();
      return c.instance.dispatcher.stats.claimed >= 1 && row.lease_until === null;
    }, 'the late result to be recorded');
    await c.stop();
    [m] = await messages([id]);
    expect(m).toMatchObject({ status: 'DELIVERED', providerMessageId: msgid, errorCode: null });
    expect(m.sentAt).toBeTruthy();
    expect(statuses(m)).toEqual(['QUEUED', 'SENDING', 'SENT', 'DELIVERED']);
    await waitForRow(async () => h.events.some((e) => e.subject === 'messaging.message.delivered' && e.data.messageId === id), 'events');
    const kinds = h.events
      .filter((e) => e.data?.messageId === id)
      .map((e) => e.subject)
      .sort();
    expect(kinds).toEqual(['messaging.message.delivered', 'messaging.message.queued', 'messaging.message.sent']);
    await h.simJson('PUT', '/api/rules', []);
  });
});

describe('erasure', () => {
  it('cancels what a deleted contact still had queued, without keeping the number', async () => {
    const contactId = newId();
    await h.publish('contacts.contact.created', contactData(contactId, '+14155550301'));
    const sent = await h.gql(`mutation($c: ID!) { sendMessage(input: { contactId: $c, body: "Not yet" }) { id status } }`, { c: contactId });
    expect(sent.data.sendMessage.status).toBe('QUEUED'); // nobody dispatches in this file's main instance
    const id: string = sent.data.sendMessage.id;
    await h.publish('contacts.contact.deleted', { contactId });
    const [m] = await waitForRow(async () => {
      const ms = await messages([id]);
      return ms[0].status === 'CANCELED' ? ms : undefined;
    }, 'the cancel');
    expect(m).toMatchObject({ status: 'CANCELED', errorCode: 'CONTACT_DELETED', to: '[erased]', body: '' });
    const event = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.canceled' && e.data.messageId === id),
      'the canceled event',
    );
    expect(event.data.to).toBe('[erased]');
  });
});
