import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { newId } from '@textloop/events';
import { contactData, MESSAGE_FIELDS, startHarness, waitForRow, WEBHOOK_SECRET, type Harness } from './test-harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('msg_delivery');
  const created = await h.gql(
    `mutation { createTemplate(input: { name: "order_shipped", body: "Hi {{ contact.firstName | default: \\"there\\" }}, order {{ orderId }} has shipped." }) { name variables } }`,
  );
  expect(created.errors).toBeUndefined();
  // These tests send SURVEY messages on the real clock; quiet hours (policy tests cover them) would hold them at night.
  const policy = await h.gql(`mutation { updateMessagingPolicy(input: { quietHoursStart: "00:00", quietHoursEnd: "00:00" }) { quietHoursStart } }`);
  expect(policy.errors).toBeUndefined();
});
afterAll(async () => {
  await h?.close();
});

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`;
const GET = `query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`;

async function send(input: Record<string, unknown>) {
  const res = await h.gql(SEND, { input });
  expect(res.errors).toBeUndefined();
  return res.data.sendMessage;
}

async function message(id: string) {
  const res = await h.gql(GET, { id });
  expect(res.errors).toBeUndefined();
  return res.data.message;
}

async function untilStatus(id: string, ...statuses: string[]) {
  return waitForRow(
    async () => {
      const m = await message(id);
      return statuses.includes(m.status) ? m : undefined;
    },
    `message ${id} to reach ${statuses.join('/')}`,
  );
}

async function postDlr(fields: Record<string, string>, query: string) {
  const res = await fetch(`${h.main.url}/webhooks/mocean/dlr${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, text: await res.text() };
}

describe('sending through the carrier simulator', () => {
  it('renders a template for a contact, delivers it and publishes CloudEvents', async () => {
    const contactId = newId();
    await h.publish('contacts.contact.created', contactData(contactId, '+14155550101', { firstName: 'Grace' }));
    // Sent at once: the projection may still be catching up, sendMessage waits for it.
    const queued = await send({ contactId, template: 'order_shipped', variables: { orderId: 'A-1001' } });
    expect(queued).toMatchObject({
      status: 'QUEUED',
      direction: 'OUTBOUND',
      category: 'TRANSACTIONAL',
      to: '+14155550101',
      from: 'Textloop',
      body: 'Hi Grace, order A-1001 has shipped.',
      encoding: 'GSM7',
      segments: 1,
      price: { amount: '0.0079', currency: 'USD' },
      contact: { id: contactId },
      template: { name: 'order_shipped' },
    });
    const delivered = await untilStatus(queued.id, 'DELIVERED');
    expect(delivered.statusHistory.map((s: { status: string }) => s.status)).toEqual(['QUEUED', 'SENDING', 'SENT', 'DELIVERED']);
    expect(delivered.provider).toBe('mocean');
    expect(delivered.providerMessageId).toMatch(/^CPASS_/);
    expect(delivered.sentAt).toBeTruthy();
    expect(delivered.deliveredAt).toBeTruthy();
    const inbox = await h.handset('+14155550101');
    expect(inbox.map((m) => m.text)).toEqual(['Hi Grace, order A-1001 has shipped.']);
    expect(inbox[0]).toMatchObject({ from: 'Textloop', msgid: delivered.providerMessageId });

    const event = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.delivered' && e.data.messageId === queued.id),
      'the delivered event',
    );
    expect(event).toMatchObject({
      specversion: '1.0',
      type: 'messaging.message.delivered',
      source: 'textloop/messaging',
      datacontenttype: 'application/json',
      data: {
        messageId: queued.id,
        contactId,
        to: '+14155550101',
        status: 'DELIVERED',
        segments: 1,
        price: { amount: '0.0079', currency: 'USD' },
        providerMessageId: delivered.providerMessageId,
      },
    });
    const kinds = h.events.filter((e) => e.data?.messageId === queued.id).map((e) => e.subject);
    expect(kinds.sort()).toEqual(['messaging.message.delivered', 'messaging.message.queued', 'messaging.message.sent']);
  });

  it('consumes messaging.cmd.send once per requestId and echoes the correlation', async () => {
    const contactId = newId();
    await h.publish('contacts.contact.created', contactData(contactId, '+14155550102', { firstName: null }));
    const command = {
      requestId: 'run-1:step-1',
      contactId,
      template: 'order_shipped',
      variables: { orderId: 'B-7' },
      category: 'TRANSACTIONAL',
      correlation: { automationRunId: 'run-1', step: 1 },
    };
    await h.publish('messaging.cmd.send', command, { source: 'textloop/scheduling' });
    await h.publish('messaging.cmd.send', command, { source: 'textloop/scheduling' }); // same request, another event id
    const delivered = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.delivered' && e.data.contactId === contactId),
      'the delivered event of the command',
    );
    expect(delivered.data.correlation).toEqual({ automationRunId: 'run-1', step: 1 });
    const queuedEvent = h.events.find((e) => e.subject === 'messaging.message.queued' && e.data.contactId === contactId);
    expect(queuedEvent?.data.correlation).toEqual({ automationRunId: 'run-1', step: 1 });
    await new Promise((r) => setTimeout(r, 300)); // give a second send every chance to happen
    const rows = await h.main.deps.db.selectFrom('messages').selectAll().where('contact_id', '=', contactId).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.body).toBe('Hi there, order B-7 has shipped.');
    expect(await h.handset('+14155550102')).toHaveLength(1);
    const m = await message(rows[0]!.id);
    expect(m.correlation).toEqual({ automationRunId: 'run-1', step: 1 });
    // The requester (the command's source) gets each status again on its own subject, same data.
    const ofMessage = h.events.filter((e) => e.data?.messageId === rows[0]!.id);
    const copies = ofMessage.filter((e) => e.subject.startsWith('messaging.notify.'));
    expect(copies.map((e) => e.subject).sort()).toEqual([
      'messaging.notify.scheduling.delivered',
      'messaging.notify.scheduling.queued',
      'messaging.notify.scheduling.sent',
    ]);
    for (const copy of copies) {
      const original = ofMessage.find((e) => e.subject === copy.subject.replace('messaging.notify.scheduling.', 'messaging.message.'));
      expect(copy.type).toBe(copy.subject);
      expect(copy.id).not.toBe(original!.id);
      expect(copy.data).toEqual(original!.data);
    }
  });

  it('copies statuses only for Textloop services: a command from elsewhere gets the contract subjects alone', async () => {
    await h.publish(
      'messaging.cmd.send',
      { requestId: 'shop-1', to: '+14155550109', body: 'Thanks for your order', category: 'TRANSACTIONAL', correlation: { orderId: 'A-1' } },
      { source: 'shop/backend' },
    );
    const delivered = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.delivered' && e.data.correlation?.orderId === 'A-1'),
      'the delivered event',
    );
    const kinds = h.events.filter((e) => e.data?.messageId === delivered.data.messageId).map((e) => e.subject);
    expect(kinds.sort()).toEqual(['messaging.message.delivered', 'messaging.message.queued', 'messaging.message.sent']);
  });

  it('turns a command that cannot succeed into a FAILED message the requester hears about', async () => {
    await h.publish(
      'messaging.cmd.send',
      { requestId: 'bad-1', to: '+14155550103', template: 'no_such_template', category: 'MARKETING', correlation: { surveyInvitationId: 'inv-1' } },
      { source: 'textloop/feedback' },
    );
    const failed = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.failed' && e.data.correlation?.surveyInvitationId === 'inv-1'),
      'the failed event',
    );
    expect(failed.data).toMatchObject({ status: 'FAILED', errorCode: 'TEMPLATE_NOT_FOUND', to: '+14155550103', category: 'MARKETING' });
    const copy = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.notify.feedback.failed' && e.data.messageId === failed.data.messageId),
      'feedback’s copy of the failed event',
    );
    expect(copy.data).toEqual(failed.data);
    expect(await h.handset('+14155550103')).toHaveLength(0);
  });

  it('retries while the provider answers HTTP 500 and delivers once it recovers', async () => {
    await h.simJson('PUT', '/api/rules', [{ match: '+1202555', outcome: 'HTTP_500' }]);
    const queued = await send({ to: '+1 202 555 0101', body: 'Your code is 123456' });
    await waitForRow(async () => {
      const row = await h.main.deps.db.selectFrom('messages').select(['attempts', 'status']).where('id', '=', queued.id).executeTakeFirst();
      return row && row.attempts >= 2 && row.status !== 'FAILED';
    }, 'a few attempts');
    await h.simJson('PUT', '/api/rules', []);
    const delivered = await untilStatus(queued.id, 'DELIVERED');
    const statuses = delivered.statusHistory.map((s: { status: string }) => s.status);
    expect(statuses.slice(0, 4)).toEqual(['QUEUED', 'SENDING', 'QUEUED', 'SENDING']);
    expect(statuses.slice(-2)).toEqual(['SENT', 'DELIVERED']);
    expect(delivered.statusHistory[2].detail).toMatch(/HTTP 500/);
    expect(await h.handset('+12025550101')).toHaveLength(1);
    // Retries are internal: subscribers see queued, sent, delivered once each.
    const kinds = h.events.filter((e) => e.data?.messageId === queued.id).map((e) => e.subject);
    expect(kinds.filter((k) => k === 'messaging.message.queued')).toHaveLength(1);
  });

  it('fails with PROVIDER_UNAVAILABLE when the provider stays down', async () => {
    await h.simJson('PUT', '/api/rules', [{ match: '+1202555', outcome: 'HTTP_500' }]);
    try {
      const queued = await send({ to: '+12025550102', body: 'Still there?' });
      const failed = await untilStatus(queued.id, 'FAILED');
      expect(failed.errorCode).toBe('PROVIDER_UNAVAILABLE');
      expect(failed.errorMessage).toMatch(/8 attempts.*HTTP 500/);
      const row = await h.main.deps.db.selectFrom('messages').select('attempts').where('id', '=', queued.id).executeTakeFirstOrThrow();
      expect(row.attempts).toBe(8);
    } finally {
      await h.simJson('PUT', '/api/rules', []);
    }
  });

  it('sends one text to many numbers in one request, and each number’s result and report reach its own message', async () => {
    await h.simJson('PUT', '/api/rules', [
      { match: '+16465550103', outcome: 'REJECTED' },
      { match: '+16465550104', outcome: 'UNDELIVERED' },
    ]);
    try {
      const requestsBefore = h.main.instance.dispatcher.stats.requests;
      const phones = [0, 1, 2, 3, 4, 5].map((i) => `+1646555010${i}`);
      const res = await h.gql(`mutation($inputs: [SendMessageInput!]!) { sendMessages(inputs: $inputs) { id } }`, {
        inputs: phones.map((to) => ({ to, body: 'Doors open at 9 tomorrow' })),
      });
      expect(res.errors).toBeUndefined();
      const ids: string[] = res.data.sendMessages.map((m: { id: string }) => m.id);
      const done = await waitForRow(async () => {
        const ms = await Promise.all(ids.map(message));
        return ms.every((m) => ['DELIVERED', 'UNDELIVERED', 'FAILED'].includes(m.status)) ? ms : undefined;
      }, 'every message settled');
      expect(done.map((m) => m.status)).toEqual(['DELIVERED', 'DELIVERED', 'DELIVERED', 'FAILED', 'UNDELIVERED', 'DELIVERED']);
      expect(done[3].errorMessage).toBe('Mocean status 5: Destination number black-listed');
      // Six messages committed by one statement, claimed together: one request.
      expect(h.main.instance.dispatcher.stats.requests - requestsBefore).toBe(1);
      for (const [i, phone] of phones.entries()) {
        const inbox = await h.handset(phone);
        // The rejected number got nothing, the undelivered one never reached its handset.
        expect(inbox.map((m) => m.msgid)).toEqual(i === 3 || i === 4 ? [] : [done[i].providerMessageId]);
      }
    } finally {
      await h.simJson('PUT', '/api/rules', []);
    }
  });

  it('records a rejection as FAILED PROVIDER_REJECTED with the provider code', async () => {
    await h.simJson('PUT', '/api/rules', [{ match: '+1212555', outcome: 'REJECTED' }]);
    try {
      const queued = await send({ to: '+12125550101', body: 'Hello' });
      const failed = await untilStatus(queued.id, 'FAILED');
      expect(failed.errorCode).toBe('PROVIDER_REJECTED');
      expect(failed.errorMessage).toBe('Mocean status 5: Destination number black-listed');
      expect(failed.statusHistory.map((s: { status: string }) => s.status)).toEqual(['QUEUED', 'SENDING', 'FAILED']);
      const event = await waitForRow(
        async () => h.events.find((e) => e.subject === 'messaging.message.failed' && e.data.messageId === queued.id),
        'failed event',
      );
      expect(event.data.errorCode).toBe('PROVIDER_REJECTED');
    } finally {
      await h.simJson('PUT', '/api/rules', []);
    }
  });

  it('applies UNDELIVERED and EXPIRED reports, ignoring duplicates', async () => {
    await h.simJson('PUT', '/api/rules', [
      { match: '+1312555', outcome: 'UNDELIVERED', errorCode: 34, duplicateDlr: true },
      { match: '+1617555', outcome: 'EXPIRED' },
      { match: '+1305555', outcome: 'DELIVERED', duplicateDlr: true },
    ]);
    try {
      const undelivered = await send({ to: '+13125550101', body: 'One' });
      const expired = await send({ to: '+16175550101', body: 'Two' });
      const twice = await send({ to: '+13055550101', body: 'Three' });
      const u = await untilStatus(undelivered.id, 'UNDELIVERED');
      expect(u.errorCode).toBe('CARRIER_34');
      expect(u.errorMessage).toMatch(/error code 34/);
      const e = await untilStatus(expired.id, 'EXPIRED');
      expect(e.errorCode).toBe('EXPIRED');
      await untilStatus(twice.id, 'DELIVERED');
      await waitForRow(async () => (await h.simJson('GET', '/api/stats')).dlrPosted >= 5, 'the duplicate reports');
      await new Promise((r) => setTimeout(r, 100));
      for (const id of [undelivered.id, twice.id]) {
        const m = await message(id);
        expect(m.statusHistory.map((s: { status: string }) => s.status)).toEqual(['QUEUED', 'SENDING', 'SENT', id === twice.id ? 'DELIVERED' : 'UNDELIVERED']);
        const terminal = h.events.filter((ev) => ev.data?.messageId === id && /delivered$/.test(ev.subject));
        expect(terminal).toHaveLength(1);
      }
    } finally {
      await h.simJson('PUT', '/api/rules', []);
    }
  });

  it('answers 401 to a wrong secret and 400 to a malformed report, changing nothing', async () => {
    // The simulator's own report comes much later, so only our requests touch the message.
    await h.simJson('PUT', '/api/rules', [{ match: '+1415555019', outcome: 'DELIVERED', dlrDelayMs: 60_000 }]);
    try {
      const queued = await send({ to: '+14155550190', body: 'Secret test' });
      const sent = await untilStatus(queued.id, 'SENT');
      const historyCount = async () =>
        Number(
          (
            await h.main.deps.db
              .selectFrom('message_status_history')
              .select(sql<number>`count(*)`.as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      const before = {
        row: await h.main.deps.db.selectFrom('messages').selectAll().where('id', '=', queued.id).executeTakeFirstOrThrow(),
        history: await historyCount(),
      };
      const form = { 'mocean-msgid': sent.providerMessageId, 'mocean-dlr-status': '2', 'mocean-error-code': '1' };
      expect((await postDlr(form, `?secret=wrong&mid=${queued.id}`)).status).toBe(401);
      expect((await postDlr(form, `?mid=${queued.id}`)).status).toBe(401);
      expect(
        (await postDlr({ 'mocean-msgid': sent.providerMessageId, 'mocean-dlr-status': 'seven' }, `?secret=${WEBHOOK_SECRET}&mid=${queued.id}`)).status,
      ).toBe(400);
      expect((await postDlr({ 'mocean-dlr-status': '1' }, `?secret=${WEBHOOK_SECRET}&mid=${queued.id}`)).status).toBe(400);
      // Unknown message: acknowledged (a retry would not help), nothing recorded.
      expect((await postDlr({ 'mocean-msgid': 'nope', 'mocean-dlr-status': '1' }, `?secret=${WEBHOOK_SECRET}&mid=nope`)).status).toBe(200);
      const after = {
        row: await h.main.deps.db.selectFrom('messages').selectAll().where('id', '=', queued.id).executeTakeFirstOrThrow(),
        history: await historyCount(),
      };
      expect(after).toEqual(before);
      // The header carries the secret as well as the query parameter; without mid, the provider id finds the message.
      const res = await fetch(`${h.main.url}/webhooks/mocean/dlr`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-webhook-secret': WEBHOOK_SECRET },
        body: new URLSearchParams({ 'mocean-msgid': sent.providerMessageId, 'mocean-dlr-status': '1', 'mocean-error-code': '0' }).toString(),
      });
      expect(res.status).toBe(200);
      expect((await message(queued.id)).status).toBe('DELIVERED');
    } finally {
      await h.simJson('PUT', '/api/rules', []);
    }
  });

  it('stores a reply as RECEIVED and links it to the message it answers', async () => {
    const contactId = newId();
    await h.publish('contacts.contact.created', contactData(contactId, '+14155550105'));
    await h.publish(
      'messaging.cmd.send',
      {
        requestId: 'survey-1',
        contactId,
        body: 'How likely are you to recommend us? Reply 0-10',
        category: 'SURVEY',
        correlation: { surveyInvitationId: 'inv-9' },
      },
      { source: 'textloop/feedback' },
    );
    const delivered = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.delivered' && e.data.contactId === contactId),
      'survey delivered',
    );
    await h.simJson('PUT', '/api/config', { inboundUrl: `${h.main.url}/webhooks/mocean/inbound?secret=${WEBHOOK_SECRET}` });
    await h.simJson('PUT', '/api/rules', [{ match: '+1415555010', outcome: 'DELIVERED', duplicateInbound: true }]);
    try {
      await h.simJson('POST', `/api/handsets/${encodeURIComponent('+14155550105')}/reply`, { to: 'Textloop', text: '9' });
      const received = await waitForRow(
        async () => h.events.find((e) => e.subject === 'messaging.message.received' && e.data.contactId === contactId),
        'the received event',
      );
      expect(received.data).toMatchObject({
        contactId,
        from: '+14155550105',
        to: 'Textloop',
        body: '9',
        inReplyTo: { messageId: delivered.data.messageId, category: 'SURVEY', correlation: { surveyInvitationId: 'inv-9' } },
      });
      await waitForRow(async () => (await h.simJson('GET', '/api/stats')).inboundPosted >= 2, 'the duplicate inbound post');
      await new Promise((r) => setTimeout(r, 100));
      const inbound = await h.gql(
        `query($f: MessageFilter) { messages(filter: $f) { totalCount nodes { status direction body from to category contact { id } } } }`,
        { f: { contactId, direction: 'INBOUND' } },
      );
      expect(inbound.data.messages.totalCount).toBe(1);
      expect(inbound.data.messages.nodes[0]).toMatchObject({
        status: 'RECEIVED',
        direction: 'INBOUND',
        body: '9',
        from: '+14155550105',
        category: 'SURVEY',
        contact: { id: contactId },
      });
      expect(h.events.filter((e) => e.subject === 'messaging.message.received' && e.data.contactId === contactId)).toHaveLength(1);
    } finally {
      await h.simJson('PUT', '/api/rules', []);
    }
  });
});
