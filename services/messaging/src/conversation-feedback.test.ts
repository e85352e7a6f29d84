import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStream, newId, type CloudEvent } from '@textloop/events';
import { DETRACTOR_DURABLE } from './conversation-feedback';
import { contactData, startHarness, waitForRow, WEBHOOK_SECRET, type Harness } from './test-harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('msg_conv_feedback');
  await h.simJson('PUT', '/api/config', { inboundUrl: `${h.main.url}/webhooks/mocean/inbound?secret=${WEBHOOK_SECRET}` });
  // FEEDBACK belongs to feedback; here it is created so that messaging's detractor consumer attaches.
  await ensureStream(h.main.deps.nats.jsm, 'FEEDBACK');
});
afterAll(async () => {
  await h?.close();
});

const FEEDBACK = `feedback { responseId surveyId score comment at commentedAt }`;
const CONV = `id status assignee lastMessageAt createdAt contact { id } messages { id body } ${FEEDBACK}`;

type Event = CloudEvent<any> & { subject: string };

let phoneSeq = 0;
async function newContact(): Promise<{ contactId: string; phone: string }> {
  const contactId = newId();
  const phone = `+1415557${String(1000 + ++phoneSeq).slice(-4)}`;
  await h.publish('contacts.contact.created', contactData(contactId, phone));
  await waitForRow(() => h.main.instance.ctx.db.selectFrom('contacts').select('id').where('id', '=', contactId).executeTakeFirst(), `contact ${contactId}`);
  return { contactId, phone };
}

async function gqlOk(query: string, variables?: Record<string, unknown>) {
  const res = await h.gql(query, variables);
  expect(res.errors).toBeUndefined();
  return res.data;
}

async function conversation(id: string) {
  return (await gqlOk(`query($id: ID!) { conversation(id: $id) { ${CONV} } }`, { id })).conversation;
}

async function conversationIdOf(contactId: string): Promise<string> {
  const row = await waitForRow(
    () => h.main.instance.ctx.db.selectFrom('conversations').select('id').where('contact_id', '=', contactId).executeTakeFirst(),
    `the conversation of ${contactId}`,
  );
  return row.id;
}

/** Waits until the consumer has processed this many feedback events in all. */
async function processed(count: number): Promise<void> {
  await waitForRow(async () => {
    const rows = await h.main.instance.ctx.db
      .selectFrom('processed_events' as any)
      .select('event_id')
      .where('consumer', '=', DETRACTOR_DURABLE)
      .execute();
    return rows.length >= count;
  }, `${count} feedback events processed`);
}

let published = 0;
async function feedbackEvent(subject: string, data: Record<string, unknown>, options: { id?: string; time?: Date } = {}) {
  if (!options.id) published++;
  return h.publish(subject, data, { source: 'textloop/feedback', ...options });
}

function conversationEvents(conversationId: string): string[] {
  return h.events
    .filter((e: Event) => e.subject.startsWith('messaging.conversation.') && e.data.conversationId === conversationId)
    .map((e) => (e.subject === 'messaging.conversation.updated' ? `updated:${e.data.change}` : e.subject.slice('messaging.conversation.'.length)));
}

async function eventsOf(conversationId: string, count: number): Promise<string[]> {
  return waitForRow(async () => {
    const seen = conversationEvents(conversationId);
    return seen.length >= count ? seen : undefined;
  }, `${count} events of conversation ${conversationId}`);
}

describe('closed loop for NPS detractors', () => {
  it('opens the conversation with the score, adds the comment, reopens a resolved one, and sends nothing to the handset', async () => {
    const { contactId, phone } = await newContact();
    const surveyId = newId();
    const responseId = newId();
    const scoredAt = new Date('2026-11-27T10:00:00.000Z');
    const detected = await feedbackEvent('feedback.detractor.detected', { responseId, contactId, score: 3, surveyId }, { time: scoredAt });

    const id = await conversationIdOf(contactId);
    const opened = await conversation(id);
    expect(opened).toMatchObject({ id, status: 'OPEN', assignee: null, contact: { id: contactId }, messages: [] });
    expect(opened.feedback).toEqual([{ responseId, surveyId, score: 3, comment: null, at: scoredAt.toISOString(), commentedAt: null }]);
    expect(await eventsOf(id, 2)).toEqual(['opened', 'updated:opened']);
    const openedEvent = h.events.find((e) => e.subject === 'messaging.conversation.opened' && e.data.conversationId === id)!;
    expect(openedEvent.data).toMatchObject({ contactId, reopened: false, messageId: null });

    // The comment follows: it is shown with its score.
    const commentedAt = new Date(scoredAt.getTime() + 60_000);
    await feedbackEvent('feedback.comment.recorded', { responseId, contactId, comment: 'The parcel came two weeks late' }, { time: commentedAt });
    const withComment = await waitForRow(async () => {
      const c = await conversation(id);
      return c.feedback[0]?.comment ? c : undefined;
    }, 'the comment on the conversation');
    expect(withComment.status).toBe('OPEN');
    expect(withComment.feedback).toEqual([
      { responseId, surveyId, score: 3, comment: 'The parcel came two weeks late', at: scoredAt.toISOString(), commentedAt: commentedAt.toISOString() },
    ]);
    expect(withComment.messages).toEqual([]);
    expect(await eventsOf(id, 3)).toEqual(['opened', 'updated:opened', 'updated:message']);

    // Redelivery, and another report of the same response, change nothing.
    await feedbackEvent('feedback.detractor.detected', { responseId, contactId, score: 3, surveyId }, { id: detected.id });
    await feedbackEvent('feedback.detractor.detected', { responseId, contactId, score: 3, surveyId });
    await processed(published);
    await new Promise((r) => setTimeout(r, 200));
    expect((await conversation(id)).feedback).toHaveLength(1);
    expect(conversationEvents(id)).toEqual(['opened', 'updated:opened', 'updated:message']);

    // The agent resolves it; the next detractor score of the contact reopens it.
    const resolved = await gqlOk(`mutation($c: ID!) { resolveConversation(conversationId: $c) { status } }`, { c: id });
    expect(resolved.resolveConversation.status).toBe('RESOLVED');
    const second = newId();
    await feedbackEvent('feedback.detractor.detected', { responseId: second, contactId, score: 0, surveyId });
    const reopened = await waitForRow(async () => {
      const c = await conversation(id);
      return c.status === 'OPEN' ? c : undefined;
    }, 'the conversation reopened');
    expect(reopened.feedback.map((f: { responseId: string; score: number }) => [f.responseId, f.score])).toEqual([
      [responseId, 3],
      [second, 0],
    ]);
    expect(await eventsOf(id, 7)).toEqual(['opened', 'updated:opened', 'updated:message', 'resolved', 'updated:resolved', 'opened', 'updated:reopened']);
    expect(h.events.filter((e) => e.subject === 'messaging.conversation.opened' && e.data.conversationId === id).map((e) => e.data.reopened)).toEqual([
      false,
      true,
    ]);
    // Still one conversation per contact, and nothing went to the handset.
    expect(await h.main.instance.ctx.db.selectFrom('conversations').select('id').where('contact_id', '=', contactId).execute()).toEqual([{ id }]);
    expect(await h.handset(phone)).toEqual([]);
  });

  it('puts the score beside the messages of a conversation the contact already has', async () => {
    const { contactId, phone } = await newContact();
    const res = await fetch(`${h.simUrl}/api/handsets/${encodeURIComponent(phone)}/reply`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'Textloop', text: 'Hello?' }),
    });
    expect(res.status).toBe(202);
    const id = await conversationIdOf(contactId);
    const answered = await gqlOk(`mutation($c: ID!) { replyToConversation(conversationId: $c, body: "How can we help?") { id } }`, { c: id });
    expect(answered.replyToConversation.id).toBeTruthy();
    expect((await conversation(id)).status).toBe('PENDING');

    const responseId = newId();
    await feedbackEvent('feedback.detractor.detected', { responseId, contactId, score: 6, surveyId: newId() });
    await waitForRow(async () => (await conversation(id)).feedback.length > 0, 'the score on the conversation');
    // Read again: the status and the feedback are two reads, and the first may predate the score.
    const c = await conversation(id);
    // The customer's feedback makes it the agent's turn again; the thread is unchanged.
    expect(c.status).toBe('OPEN');
    expect(c.messages.map((m: { body: string }) => m.body)).toEqual(['Hello?', 'How can we help?']);
    expect(c.feedback).toMatchObject([{ responseId, score: 6, comment: null }]);
  });

  it('keeps no comment of a response that was not a detractor, and nothing of an erased contact', async () => {
    const { contactId } = await newContact();
    const before = published;
    await feedbackEvent('feedback.comment.recorded', { responseId: newId(), contactId, comment: 'Great service!' });
    await processed(before + 1);
    expect(await h.main.instance.ctx.db.selectFrom('conversations').select('id').where('contact_id', '=', contactId).execute()).toEqual([]);

    // Erasure takes the conversation with its feedback; a late detractor event opens nothing.
    const responseId = newId();
    await feedbackEvent('feedback.detractor.detected', { responseId, contactId, score: 2, surveyId: newId() });
    const id = await conversationIdOf(contactId);
    await h.publish('contacts.contact.deleted', { contactId });
    await waitForRow(async () => (await h.gql(`query($id: ID!) { conversation(id: $id) { id } }`, { id })).data.conversation === null, 'the conversation gone');
    expect(await h.main.instance.ctx.db.selectFrom('conversation_feedback').select('response_id').where('response_id', '=', responseId).execute()).toEqual([]);
    await feedbackEvent('feedback.detractor.detected', { responseId: newId(), contactId, score: 1, surveyId: newId() });
    await feedbackEvent('feedback.comment.recorded', { responseId, contactId, comment: 'late' });
    await processed(published);
    expect(await h.main.instance.ctx.db.selectFrom('conversations').select('id').where('contact_id', '=', contactId).execute()).toEqual([]);
  });
});
