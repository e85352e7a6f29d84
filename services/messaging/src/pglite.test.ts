import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '@textloop/events';
import { contactData, MESSAGE_FIELDS, startHarness, waitForRow, type Harness } from './test-harness';

// Without DATABASE_URL the platform runs on embedded PGlite: the queue, the batched status writes
// and the delivery reports must work there too.
let h: Harness;
beforeAll(async () => {
  h = await startHarness('msg_pglite', {}, { pglite: true });
});
afterAll(async () => {
  await h?.close();
});

describe('on embedded PGlite', () => {
  it('sends, retries, delivers and reads', async () => {
    const contactId = newId();
    await h.publish('contacts.contact.created', contactData(contactId, '+14155550201', { firstName: 'Pat' }));
    await h.gql(`mutation { createTemplate(input: { name: "hello", body: "Hello {{ contact.firstName }} {{ n }}" }) { id } }`);
    await h.simJson('PUT', '/api/rules', [{ match: '+1202555', outcome: 'THROTTLED' }]);
    const res = await h.gql(`mutation($inputs: [SendMessageInput!]!) { sendMessages(inputs: $inputs) { id status body } }`, {
      inputs: [
        { contactId, template: 'hello', variables: { n: 1 } },
        { to: '+12025550201', body: 'Throttled first' },
      ],
    });
    expect(res.errors).toBeUndefined();
    const [a, b] = res.data.sendMessages;
    expect(a.body).toBe('Hello Pat 1');
    await waitForRow(async () => {
      const row = await h.main.deps.db.selectFrom('messages').select('attempts').where('id', '=', b.id).executeTakeFirstOrThrow();
      return row.attempts >= 2;
    }, 'a retry');
    await h.simJson('PUT', '/api/rules', []);
    for (const id of [a.id, b.id]) {
      const m = await waitForRow(async () => {
        const r = await h.gql(`query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`, { id });
        return r.data.message.status === 'DELIVERED' ? r.data.message : undefined;
      }, 'delivery');
      expect(m.statusHistory.at(-1).status).toBe('DELIVERED');
    }
    const stats = await h.gql(`{ messagingStats { sent delivered cost { amount currency } } messagingQueue { queued sending } }`);
    expect(stats.data.messagingStats).toEqual({ sent: 2, delivered: 2, cost: { amount: '0.0158', currency: 'USD' } });
    const page = await h.gql(`{ messages(first: 1) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } }`);
    expect(page.data.messages.totalCount).toBe(2);
  });
});
