import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStream, newId, type CloudEvent } from '@textloop/events';
import { conversationStep } from './conversations';
import type { InboundContext } from './inbound';
import type { MessageRow } from './status';
import { contactData, startHarness, waitForRow, WEBHOOK_SECRET, type Harness } from './test-harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('msg_conversations');
  await h.simJson('PUT', '/api/config', { inboundUrl: `${h.main.url}/webhooks/mocean/inbound?secret=${WEBHOOK_SECRET}` });
  // The survey test sends a SURVEY message on the real clock; quiet hours would hold it at night.
  const policy = await h.gql(`mutation { updateMessagingPolicy(input: { quietHoursStart: "00:00", quietHoursEnd: "00:00" }) { quietHoursStart } }`);
  expect(policy.errors).toBeUndefined();
  // FEEDBACK belongs to feedback; here it is created so that messaging's feedback.reply.unhandled consumer attaches.
  await ensureStream(h.main.deps.nats.jsm, 'FEEDBACK');
});
afterAll(async () => {
  await h?.close();
});

const MSG = `id direction category status body errorCode errorMessage correlation createdAt conversation { id status }`;
const CONV = `id status assignee lastMessageAt createdAt contact { id } messages { ${MSG} }`;

type Event = CloudEvent<any> & { subject: string };

let phoneSeq = 0;
/** A contact in messaging's projection, with a phone number of its own. */
async function newContact(extra: Record<string, unknown> = {}): Promise<{ contactId: string; phone: string }> {
  const contactId = newId();
  const phone = `+1415556${String(1000 + ++phoneSeq).slice(-4)}`;
  await h.publish('contacts.contact.created', contactData(contactId, phone, extra));
  await waitForRow(() => h.main.instance.ctx.db.selectFrom('contacts').select('id').where('id', '=', contactId).executeTakeFirst(), `contact ${contactId}`);
  return { contactId, phone };
}

/** The handset texts us; resolves with the messaging.message.received event. */
async function handsetSays(phone: string, text: string): Promise<Event> {
  const seen = new Set(h.events.filter((e) => e.subject === 'messaging.message.received').map((e) => e.id));
  const res = await fetch(`${h.simUrl}/api/handsets/${encodeURIComponent(phone)}/reply`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to: 'Textloop', text }),
  });
  expect(res.status).toBe(202);
  return waitForRow(
    async () => h.events.find((e) => e.subject === 'messaging.message.received' && !seen.has(e.id) && e.data.from === phone && e.data.body === text),
    `messaging.message.received "${text}" from ${phone}`,
  );
}

async function gqlOk(query: string, variables?: Record<string, unknown>) {
  const res = await h.gql(query, variables);
  expect(res.errors).toBeUndefined();
  return res.data;
}

async function conversation(id: string) {
  return (await gqlOk(`query($id: ID!) { conversation(id: $id) { ${CONV} } }`, { id })).conversation;
}

async function reply(conversationId: string, body: string) {
  return (await gqlOk(`mutation($c: ID!, $b: String!) { replyToConversation(conversationId: $c, body: $b) { ${MSG} } }`, { c: conversationId, b: body }))
    .replyToConversation;
}

async function assign(conversationId: string, assignee: string | null) {
  return (await gqlOk(`mutation($c: ID!, $a: String) { assignConversation(conversationId: $c, assignee: $a) { ${CONV} } }`, { c: conversationId, a: assignee }))
    .assignConversation;
}

async function resolve(conversationId: string) {
  return (await gqlOk(`mutation($c: ID!) { resolveConversation(conversationId: $c) { ${CONV} } }`, { c: conversationId })).resolveConversation;
}

async function list(args: { status?: string; assignee?: string | null; first?: number; after?: string | null }) {
  return (
    await gqlOk(
      `query($s: ConversationStatus, $a: String, $f: Int, $after: String) {
        conversations(status: $s, assignee: $a, first: $f, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id status assignee contact { id } } }
      }`,
      { s: args.status, a: args.assignee, f: args.first ?? 50, after: args.after },
    )
  ).conversations;
}

/** messaging.conversation.* events of one conversation, as "<subject tail>" or "updated:<change>". */
function conversationEvents(conversationId: string): string[] {
  return h.events
    .filter((e) => e.subject.startsWith('messaging.conversation.') && e.data.conversationId === conversationId)
    .map((e) => (e.subject === 'messaging.conversation.updated' ? `updated:${e.data.change}` : e.subject.slice('messaging.conversation.'.length)));
}

async function eventsOf(conversationId: string, count: number): Promise<string[]> {
  return waitForRow(async () => {
    const seen = conversationEvents(conversationId);
    return seen.length >= count ? seen : undefined;
  }, `${count} events of conversation ${conversationId}`);
}

function lastEvent(conversationId: string, subject: string): Event {
  const found = h.events.filter((e) => e.subject === subject && e.data.conversationId === conversationId);
  expect(found.length, `a ${subject} event`).toBeGreaterThan(0);
  return found[found.length - 1]!;
}

describe('support conversations', () => {
  it("opens a conversation from a handset's reply; an agent lists, answers, assigns and resolves it; a new message reopens it", async () => {
    const { contactId, phone } = await newContact();
    const received = await handsetSays(phone, 'Where is my order?');
    const conversationId: string = received.data.conversationId;
    expect(conversationId).toBeTruthy();
    expect(received.data).toMatchObject({ contactId, body: 'Where is my order?' });

    // Listed among the OPEN conversations, with the inbound message in it.
    const open = await list({ status: 'OPEN' });
    expect(open.nodes).toContainEqual({ id: conversationId, status: 'OPEN', assignee: null, contact: { id: contactId } });
    const opened = await conversation(conversationId);
    expect(opened).toMatchObject({ id: conversationId, status: 'OPEN', assignee: null, contact: { id: contactId } });
    expect(opened.messages).toHaveLength(1);
    expect(opened.messages[0]).toMatchObject({
      id: received.data.messageId,
      direction: 'INBOUND',
      status: 'RECEIVED',
      body: 'Where is my order?',
      conversation: { id: conversationId, status: 'OPEN' },
    });
    expect(await eventsOf(conversationId, 2)).toEqual(['opened', 'updated:opened']);
    expect(lastEvent(conversationId, 'messaging.conversation.opened').data).toMatchObject({ contactId, reopened: false, messageId: received.data.messageId });

    // The agent answers: the handset receives it, the conversation waits for the customer.
    const answer = await reply(conversationId, 'It ships today.');
    expect(answer).toMatchObject({
      direction: 'OUTBOUND',
      category: 'SUPPORT',
      status: 'QUEUED',
      body: 'It ships today.',
      correlation: { conversationId },
      conversation: { id: conversationId, status: 'PENDING' },
    });
    await waitForRow(async () => (await h.handset(phone)).find((m) => m.text === 'It ships today.'), 'the reply on the handset');
    const pending = await conversation(conversationId);
    expect(pending.status).toBe('PENDING');
    expect(pending.messages.map((m: { direction: string; body: string }) => [m.direction, m.body])).toEqual([
      ['INBOUND', 'Where is my order?'],
      ['OUTBOUND', 'It ships today.'],
    ]);
    expect(new Date(pending.lastMessageAt).getTime()).toBe(new Date(answer.createdAt).getTime());
    const answerRead = (await gqlOk(`query($id: ID!) { message(id: $id) { ${MSG} } }`, { id: answer.id })).message;
    expect(answerRead.conversation).toEqual({ id: conversationId, status: 'PENDING' });
    expect(await eventsOf(conversationId, 4)).toEqual(['opened', 'updated:opened', 'replied', 'updated:replied']);
    expect(lastEvent(conversationId, 'messaging.conversation.replied').data).toMatchObject({
      contactId,
      messageId: answer.id,
      status: 'PENDING',
      messageStatus: 'QUEUED',
    });
    expect(lastEvent(conversationId, 'messaging.conversation.updated').data).toMatchObject({
      contactId,
      status: 'PENDING',
      previousStatus: 'OPEN',
      change: 'replied',
      messageId: answer.id,
    });

    // The customer answers back: OPEN again (an agent's turn), same conversation.
    const again = await handsetSays(phone, 'Thanks! Which carrier?');
    expect(again.data.conversationId).toBe(conversationId);
    expect((await conversation(conversationId)).status).toBe('OPEN');
    expect(await eventsOf(conversationId, 5)).toEqual(['opened', 'updated:opened', 'replied', 'updated:replied', 'updated:message']);

    // Assign, unassign with an empty name, assign again.
    expect(await assign(conversationId, ' alice ')).toMatchObject({ id: conversationId, assignee: 'alice', status: 'OPEN' });
    expect((await list({ assignee: 'alice' })).nodes.map((n: { id: string }) => n.id)).toEqual([conversationId]);
    expect(await assign(conversationId, '')).toMatchObject({ assignee: null });
    expect((await list({ assignee: 'alice' })).totalCount).toBe(0);
    expect((await list({ assignee: '' })).nodes.map((n: { id: string }) => n.id)).toContain(conversationId);
    expect(await assign(conversationId, 'bob')).toMatchObject({ assignee: 'bob' });
    expect(await assign(conversationId, 'bob')).toMatchObject({ assignee: 'bob' }); // no change, no event
    expect(await assign(conversationId, null)).toMatchObject({ assignee: null });
    expect(await assign(conversationId, 'bob')).toMatchObject({ assignee: 'bob' });
    const assigned = await eventsOf(conversationId, 15);
    expect(assigned.slice(5)).toEqual(Array.from({ length: 5 }, () => ['assigned', 'updated:assigned']).flat());
    const assignments = h.events.filter((e) => e.subject === 'messaging.conversation.assigned' && e.data.conversationId === conversationId).map((e) => e.data);
    expect(assignments.map((d) => [d.previousAssignee, d.assignee])).toEqual([
      [null, 'alice'],
      ['alice', null],
      [null, 'bob'],
      ['bob', null],
      [null, 'bob'],
    ]);

    // Resolve; resolving again changes nothing.
    const resolved = await resolve(conversationId);
    expect(resolved).toMatchObject({ status: 'RESOLVED', assignee: 'bob' });
    expect((await resolve(conversationId)).status).toBe('RESOLVED');
    expect((await list({ status: 'RESOLVED' })).nodes.map((n: { id: string }) => n.id)).toContain(conversationId);
    expect((await list({ status: 'OPEN' })).nodes.map((n: { id: string }) => n.id)).not.toContain(conversationId);
    expect((await eventsOf(conversationId, 17)).slice(15)).toEqual(['resolved', 'updated:resolved']);
    expect(lastEvent(conversationId, 'messaging.conversation.resolved').data).toEqual({ conversationId, contactId, assignee: 'bob' });
    expect(lastEvent(conversationId, 'messaging.conversation.updated').data).toMatchObject({ status: 'RESOLVED', previousStatus: 'OPEN', change: 'resolved' });

    // A new inbound message reopens the same conversation.
    const reopening = await handsetSays(phone, 'One more question');
    expect(reopening.data.conversationId).toBe(conversationId);
    const reopened = await conversation(conversationId);
    expect(reopened).toMatchObject({ id: conversationId, status: 'OPEN', assignee: 'bob' });
    expect(reopened.messages.map((m: { body: string }) => m.body)).toEqual([
      'Where is my order?',
      'It ships today.',
      'Thanks! Which carrier?',
      'One more question',
    ]);
    const all = await eventsOf(conversationId, 19);
    expect(all.slice(17)).toEqual(['opened', 'updated:reopened']);
    expect(lastEvent(conversationId, 'messaging.conversation.opened').data).toMatchObject({ reopened: true, messageId: reopening.data.messageId });
    expect(lastEvent(conversationId, 'messaging.conversation.updated').data).toMatchObject({ status: 'OPEN', previousStatus: 'RESOLVED', change: 'reopened' });
    const rows = await h.main.instance.ctx.db.selectFrom('conversations').selectAll().where('contact_id', '=', contactId).execute();
    expect(rows).toHaveLength(1);
  });

  it('lists by status and assignee, newest activity first, page by page', async () => {
    const agent = `pager-${newId()}`;
    const ids: string[] = [];
    for (const text of ['first', 'second', 'third']) {
      const { phone } = await newContact();
      const received = await handsetSays(phone, `Hello, ${text}`);
      ids.push(received.data.conversationId);
      await assign(received.data.conversationId, agent);
    }
    const [a, b, c] = ids as [string, string, string];
    const page1 = await list({ assignee: agent, first: 2 });
    expect(page1.totalCount).toBe(3);
    expect(page1.nodes.map((n: { id: string }) => n.id)).toEqual([c, b]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = await list({ assignee: agent, first: 2, after: page1.pageInfo.endCursor });
    expect(page2.nodes.map((n: { id: string }) => n.id)).toEqual([a]);
    expect(page2.pageInfo.hasNextPage).toBe(false);
    expect(page2.totalCount).toBe(3);

    // New activity moves a conversation to the top.
    const contactOfA = (await conversation(a)).contact.id;
    const phoneOfA = (await h.main.instance.ctx.db.selectFrom('contacts').select('phone').where('id', '=', contactOfA).executeTakeFirstOrThrow()).phone;
    await handsetSays(phoneOfA, 'Still there?');
    expect((await list({ assignee: agent })).nodes.map((n: { id: string }) => n.id)).toEqual([a, c, b]);

    // Status and assignee together.
    await resolve(b);
    await reply(c, 'On it.');
    expect((await list({ assignee: agent, status: 'RESOLVED' })).nodes.map((n: { id: string }) => n.id)).toEqual([b]);
    expect((await list({ assignee: agent, status: 'PENDING' })).nodes.map((n: { id: string }) => n.id)).toEqual([c]);
    expect((await list({ assignee: agent, status: 'OPEN' })).nodes.map((n: { id: string }) => n.id)).toEqual([a]);
    expect((await list({ assignee: agent, first: 0 })).nodes).toEqual([]);

    const bad = await h.gql(`query { conversations(after: "nonsense") { totalCount } }`);
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    const tooMany = await h.gql(`query { conversations(first: 501) { totalCount } }`);
    expect(tooMany.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
  });

  it('reopens a RESOLVED conversation when an agent replies to it', async () => {
    const { phone } = await newContact();
    const received = await handsetSays(phone, 'Can I change my address?');
    const id: string = received.data.conversationId;
    await resolve(id);
    const answer = await reply(id, 'Yes: reply with the new one.');
    expect(answer.conversation).toEqual({ id, status: 'PENDING' });
    expect((await conversation(id)).status).toBe('PENDING');
    const events = await eventsOf(id, 7);
    expect(events).toEqual(['opened', 'updated:opened', 'resolved', 'updated:resolved', 'opened', 'replied', 'updated:replied']);
    expect(lastEvent(id, 'messaging.conversation.opened').data).toMatchObject({ reopened: true, messageId: answer.id });
    expect(lastEvent(id, 'messaging.conversation.updated').data).toMatchObject({ status: 'PENDING', previousStatus: 'RESOLVED', change: 'replied' });
    await waitForRow(async () => (await h.handset(phone)).find((m) => m.text === 'Yes: reply with the new one.'), 'the reply on the handset');
  });

  it('records a reply to an unsubscribed contact as SUPPRESSED (OPTED_OUT) in the thread and sends nothing', async () => {
    const { contactId, phone } = await newContact();
    const received = await handsetSays(phone, 'Please call me');
    const id: string = received.data.conversationId;
    await h.publish('contacts.contact.unsubscribed', { contactId, phone, reason: 'API' });
    await waitForRow(
      () => h.main.instance.ctx.db.selectFrom('contacts').select('id').where('id', '=', contactId).where('subscribed', '=', false).executeTakeFirst(),
      'the opt-out in the projection',
    );
    const answer = await reply(id, 'Calling you now.');
    expect(answer).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT', category: 'SUPPORT', conversation: { id, status: 'OPEN' } });
    expect(answer.errorMessage).toMatch(/unsubscribed/);
    const thread = await conversation(id);
    expect(thread.status).toBe('OPEN'); // nothing went out, so nobody waits for the customer
    expect(thread.messages.map((m: { status: string }) => m.status)).toEqual(['RECEIVED', 'SUPPRESSED']);
    await eventsOf(id, 4);
    expect(lastEvent(id, 'messaging.conversation.replied').data).toMatchObject({ messageId: answer.id, messageStatus: 'SUPPRESSED', status: 'OPEN' });
    await new Promise((r) => setTimeout(r, 200));
    expect((await h.handset(phone)).map((m) => m.text)).not.toContain('Calling you now.');
  });

  it('keeps STOP out of the thread; a reply after it is SUPPRESSED (OPTED_OUT)', async () => {
    const { phone } = await newContact();
    const first = await handsetSays(phone, 'Is my refund through?');
    const id: string = first.data.conversationId;
    await eventsOf(id, 2);
    const stop = await handsetSays(phone, 'STOP');
    expect(stop.data.conversationId ?? null).toBeNull();
    const help = await handsetSays(phone, ' help ');
    expect(help.data.conversationId ?? null).toBeNull();
    const answer = await reply(id, 'Yes, it is.');
    expect(answer).toMatchObject({ status: 'SUPPRESSED', errorCode: 'OPTED_OUT', conversation: { id, status: 'OPEN' } });
    const thread = await conversation(id);
    expect(thread.messages.map((m: { body: string; status: string }) => [m.body, m.status])).toEqual([
      ['Is my refund through?', 'RECEIVED'],
      ['Yes, it is.', 'SUPPRESSED'],
    ]);
    expect(await eventsOf(id, 4)).toEqual(['opened', 'updated:opened', 'replied', 'updated:replied']);
  });

  it('leaves a reply to a SURVEY message to feedback until feedback.reply.unhandled hands it over', async () => {
    const { contactId, phone } = await newContact();
    await h.publish(
      'messaging.cmd.send',
      {
        requestId: `survey-${contactId}`,
        contactId,
        body: 'How likely are you to recommend us? Reply 0-10',
        category: 'SURVEY',
        correlation: { surveyInvitationId: 'inv-1' },
      },
      { source: 'textloop/feedback' },
    );
    await waitForRow(async () => h.events.find((e) => e.subject === 'messaging.message.delivered' && e.data.contactId === contactId), 'the survey delivered');
    const received = await handsetSays(phone, 'My parcel never came');
    expect(received.data.inReplyTo).toMatchObject({ category: 'SURVEY', correlation: { surveyInvitationId: 'inv-1' } });
    expect(received.data.conversationId ?? null).toBeNull();
    const messageId: string = received.data.messageId;
    const msg = async () => (await gqlOk(`query($id: ID!) { message(id: $id) { ${MSG} } }`, { id: messageId })).message;
    expect((await msg()).conversation).toBeNull();
    const none = await h.main.instance.ctx.db.selectFrom('conversations').select('id').where('contact_id', '=', contactId).execute();
    expect(none).toEqual([]);

    // Feedback could not use it: it joins (here: opens) the contact's conversation.
    const handover = await h.publish('feedback.reply.unhandled', { messageId, contactId, reason: 'not a score' }, { source: 'textloop/feedback' });
    const attached = await waitForRow(async () => (await msg()).conversation, 'the reply in a conversation', 15_000);
    expect(attached.status).toBe('OPEN');
    const thread = await conversation(attached.id);
    expect(thread).toMatchObject({ status: 'OPEN', contact: { id: contactId } });
    expect(thread.messages.map((m: { id: string }) => m.id)).toEqual([messageId]);
    expect(await eventsOf(attached.id, 2)).toEqual(['opened', 'updated:opened']);

    // The same event again, and another report about the same message, change nothing.
    await h.publish('feedback.reply.unhandled', { messageId, contactId, reason: 'not a score' }, { source: 'textloop/feedback', id: handover.id });
    await h.publish('feedback.reply.unhandled', { messageId, contactId, reason: 'again' }, { source: 'textloop/feedback' });
    await waitForRow(
      async () =>
        (
          await h.main.instance.ctx.db
            .selectFrom('processed_events' as any)
            .select('event_id')
            .where('consumer', '=', 'messaging-feedback-replies')
            .execute()
        ).length >= 2,
      'the second report processed',
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(conversationEvents(attached.id)).toEqual(['opened', 'updated:opened']);
  });

  it('answers NOT_FOUND for an unknown conversation, BAD_USER_INPUT for an empty reply, FORBIDDEN for a viewer', async () => {
    const unknown = newId();
    for (const mutation of [
      `mutation { replyToConversation(conversationId: "${unknown}", body: "hi") { id } }`,
      `mutation { assignConversation(conversationId: "${unknown}", assignee: "alice") { id } }`,
      `mutation { resolveConversation(conversationId: "${unknown}") { id } }`,
    ]) {
      const res = await h.gql(mutation);
      expect(res.errors?.[0]?.extensions?.code, mutation).toBe('NOT_FOUND');
    }
    expect((await h.gql(`query { conversation(id: "${unknown}") { id } }`)).data.conversation).toBeNull();

    const { phone } = await newContact();
    const id: string = (await handsetSays(phone, 'hello?')).data.conversationId;
    for (const body of ['', '   ']) {
      const res = await h.gql(`mutation($b: String!) { replyToConversation(conversationId: "${id}", body: $b) { id } }`, { b: body });
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'body' });
    }
    const long = await h.gql(`mutation($b: String!) { replyToConversation(conversationId: "${id}", body: $b) { id } }`, { b: 'x'.repeat(1601) });
    expect(long.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'body' });
    const thread = await conversation(id);
    expect(thread.messages).toHaveLength(1);

    const asViewer = await fetch(`${h.main.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-textloop-role': 'viewer' },
      body: JSON.stringify({ query: `mutation { resolveConversation(conversationId: "${id}") { id } }` }),
    });
    expect(((await asViewer.json()) as any).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const asAgent = await fetch(`${h.main.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-textloop-role': 'agent' },
      body: JSON.stringify({ query: `mutation { replyToConversation(conversationId: "${id}", body: "{{ not liquid }}") { body status } }` }),
    });
    expect(((await asAgent.json()) as any).data.replyToConversation).toEqual({ body: '{{ not liquid }}', status: 'QUEUED' });
  });

  it("deletes a deleted contact's conversation and keeps its (erased) messages", async () => {
    const { contactId, phone } = await newContact();
    const received = await handsetSays(phone, 'Delete my data please');
    const id: string = received.data.conversationId;
    await h.publish('contacts.contact.deleted', { contactId });
    await waitForRow(async () => (await h.gql(`query($id: ID!) { conversation(id: $id) { id } }`, { id })).data.conversation === null, 'the conversation gone');
    const message = (await gqlOk(`query($id: ID!) { message(id: $id) { body conversation { id } } }`, { id: received.data.messageId })).message;
    expect(message).toEqual({ body: '', conversation: null });
  });

  it('opens no conversation for a keyword or a message without a contact', async () => {
    const step = conversationStep(h.main.instance.ctx);
    const inbound = (over: Partial<InboundContext>): InboundContext =>
      ({
        trx: h.main.instance.ctx.db,
        message: { id: newId(), contact_id: null, created_at: new Date() } as MessageRow,
        contact: undefined,
        inReplyTo: undefined,
        received: { conversationId: null },
        events: [],
        ...over,
      }) as unknown as InboundContext;
    const anonymous = inbound({});
    await step(anonymous);
    expect(anonymous.events).toEqual([]);
    expect(anonymous.received.conversationId).toBeNull();
    const stop = inbound({ keyword: 'STOP', message: { id: newId(), contact_id: newId(), created_at: new Date() } as MessageRow });
    await step(stop);
    expect(stop.events).toEqual([]);
    expect(stop.received.conversationId).toBeNull();
  });
});
