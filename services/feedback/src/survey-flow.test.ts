import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { newId, notifySubject } from '@textloop/events';
import { waitFor } from '@textloop/service-kit/testing';
import { expectError, startEnv, type Env, type Recorded } from './test-support';

let env: Env;

beforeAll(async () => {
  env = await startEnv('feedback_flow');
}, 60_000);

afterAll(async () => {
  await env?.close();
});

const CREATE = `mutation($input: SurveyInput!) { createSurvey(input: $input) { id name question followUp thankYou touchpoint responseWindow } }`;
const SEND = `mutation($surveyId: ID!, $contactId: ID!) { sendSurvey(surveyId: $surveyId, contactId: $contactId) {
  id status sentAt survey { id name } contact { id } response { id } } }`;
const INVITATION = `query($id: ID!) { surveyInvitation(id: $id) {
  id status sentAt contact { id } survey { id } response { id score category comment respondedAt contact { id } } } }`;

async function createSurvey(input: Record<string, unknown>): Promise<string> {
  const res = await env.gql(CREATE, { input: { name: 'NPS', question: 'How likely are you to recommend us? Reply 0-10', ...input } });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.createSurvey.id;
}

/** sendSurvey through the API; returns the invitation and its question command. */
async function send(surveyId: string, contactId: string): Promise<{ invitation: any; question: Recorded }> {
  const res = await env.gql(SEND, { surveyId, contactId });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  const invitation = res.data.sendSurvey;
  const [question] = await env.waitFor('messaging.cmd.send', (e) => e.event.data.correlation?.surveyInvitationId === invitation.id);
  return { invitation, question: question! };
}

async function invitation(id: string) {
  const res = await env.gql(INVITATION, { id });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.surveyInvitation;
}

const kinds = (invitationId: string) => env.messagesOf(invitationId).map((e) => e.event.data.correlation.kind);
const unhandledOf = (messageId: string) => env.of('feedback.reply.unhandled', (e) => e.event.data.messageId === messageId);

describe('createSurvey', () => {
  it('takes a Liquid question with contact fields and refuses one that cannot be rendered, naming the field', async () => {
    const ok = await env.gql(CREATE, {
      input: {
        name: 'Liquid',
        question: 'Hi {{ contact.firstName | default: "there" }}, how likely are you to recommend us? Reply 0-10',
        followUp: 'Why, {{ contact.firstName }}?',
      },
    });
    expect(ok.errors).toBeUndefined();
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ question: 'Hi {{ contact.firstName }' }, 'question', /not valid Liquid: output .* not closed/],
      [{ question: 'Hi {{ firstName }}' }, 'question', /contact\.firstName/],
      [{ question: 'Order {{ orderId }}: rate us' }, 'question', /"orderId"/],
      [{ question: '{% if contact.firstName %}Hi' }, 'question', /not valid Liquid: tag .*if.* not closed/],
      [{ question: '' }, 'question', /must not be empty/],
      [{ question: 'q', followUp: 'Why {{ contact.nope }}?' }, 'followUp', /contact\.nope/],
      [{ question: 'q', thankYou: 'Thanks {{ contact.firstName | shout }}' }, 'thankYou', /not valid Liquid: .*shout/],
      [{ question: 'q', responseWindow: 'soon' }, 'responseWindow', /ISO-8601/],
    ];
    for (const [input, field, message] of cases) {
      const res = await env.gql(CREATE, { input: { name: 'Bad', ...input } });
      expect(expectError(res, 'BAD_USER_INPUT', field)).toMatch(message);
    }
  });
});

describe('sendSurvey', () => {
  it('sends the question as a SURVEY message through messaging.cmd.send, correlated with the invitation', async () => {
    const surveyId = await createSurvey({ question: 'Hi {{ contact.firstName }}, how likely are you to recommend us? Reply 0-10', touchpoint: 'delivery' });
    env.contact('c-send');
    const { invitation: inv, question } = await send(surveyId, 'c-send');
    expect(inv).toMatchObject({ status: 'SENT', sentAt: env.clock.now().toISOString(), survey: { id: surveyId }, contact: { id: 'c-send' }, response: null });
    expect(question.event.data).toEqual({
      requestId: `survey:${inv.id}:question`,
      contactId: 'c-send',
      body: 'Hi {{ contact.firstName }}, how likely are you to recommend us? Reply 0-10',
      category: 'SURVEY',
      correlation: { surveyInvitationId: inv.id, surveyId, kind: 'question' },
    });
    expect(question.event.source).toBe('textloop/feedback');
    const row = await env.deps.db.selectFrom('survey_invitations').selectAll().where('id', '=', inv.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ touchpoint: 'delivery', awaiting: 'score', reprompted: false, request_id: null });
    expect(row.expires_at.toISOString()).toBe('2026-12-04T10:00:00.000Z');
    expect(await invitation(inv.id)).toMatchObject({ id: inv.id, status: 'SENT', response: null });
    expect(await env.gql('{ surveyInvitation(id: "nope") { id } }')).toEqual({ data: { surveyInvitation: null } });
  });

  it('refuses an unknown survey or contact (NOT_FOUND) and an invitation still open for that contact (CONFLICT)', async () => {
    const surveyId = await createSurvey({ responseWindow: 'PT1H' });
    env.contact('c-conflict');
    expect(expectError(await env.gql(SEND, { surveyId: 'nope', contactId: 'c-conflict' }), 'NOT_FOUND')).toMatch(/survey/);
    expect(expectError(await env.gql(SEND, { surveyId, contactId: 'nobody' }), 'NOT_FOUND')).toMatch(/contact/);
    const { invitation: first } = await send(surveyId, 'c-conflict');
    const again = await env.gql(SEND, { surveyId, contactId: 'c-conflict' });
    expect(expectError(again, 'CONFLICT', 'contactId')).toMatch(new RegExp(`open invitation.*${first.id}`));
    // Another survey is another invitation.
    const other = await createSurvey({ name: 'Other' });
    await send(other, 'c-conflict');
    // Once the window has ended, the survey can be sent again; the old one reads EXPIRED.
    env.clock.advance(61 * 60_000);
    expect((await invitation(first.id)).status).toBe('EXPIRED');
    const { invitation: second } = await send(surveyId, 'c-conflict');
    expect(second.id).not.toBe(first.id);
    const rows = await env.deps.db.selectFrom('survey_invitations').select(['id', 'status']).where('survey_id', '=', surveyId).orderBy('sent_at').execute();
    expect(rows).toEqual([
      { id: first.id, status: 'EXPIRED' },
      { id: second.id, status: 'SENT' },
    ]);
  });

  it('sends nothing to an unsubscribed contact: BAD_USER_INPUT, no invitation, no message', async () => {
    const surveyId = await createSurvey({});
    env.contact('c-stopped', { subscribed: false });
    const before = env.of('messaging.cmd.send').length;
    const res = await env.gql(SEND, { surveyId, contactId: 'c-stopped' });
    expect(expectError(res, 'BAD_USER_INPUT', 'contactId')).toMatch(/unsubscribed/);
    await env.settle();
    expect(env.of('messaging.cmd.send')).toHaveLength(before);
    const rows = await env.deps.db.selectFrom('survey_invitations').select('id').where('contact_id', '=', 'c-stopped').execute();
    expect(rows).toEqual([]);
  });
});

describe('replies', () => {
  it('"nine" records 9 as PROMOTER, sends the follow-up, stores the comment, then thanks', async () => {
    const surveyId = await createSurvey({ touchpoint: 'purchase', followUp: 'What is the main reason for your score?', thankYou: 'Thank you!' });
    env.contact('c-nine');
    const { invitation: inv, question } = await send(surveyId, 'c-nine');
    env.clock.advance(60_000);
    const scoreReply = await env.reply(question, 'nine');

    const [recorded] = await env.waitFor('feedback.response.recorded', (e) => e.event.data.invitationId === inv.id);
    const responseId = recorded!.event.data.responseId;
    expect(recorded!.event.data).toEqual({
      responseId,
      surveyId,
      invitationId: inv.id,
      contactId: 'c-nine',
      score: 9,
      category: 'PROMOTER',
      touchpoint: 'purchase',
    });
    expect(env.of('feedback.detractor.detected', (e) => e.event.data.responseId === responseId)).toEqual([]);
    expect(unhandledOf(scoreReply.data.messageId)).toEqual([]);
    const followUp = env.messagesOf(inv.id).find((e) => e.event.data.correlation.kind === 'followup')!;
    expect(followUp.event.data).toMatchObject({
      requestId: `survey:${inv.id}:followup`,
      contactId: 'c-nine',
      body: 'What is the main reason for your score?',
      category: 'SURVEY',
    });
    expect(await invitation(inv.id)).toMatchObject({
      status: 'ANSWERED',
      response: { id: responseId, score: 9, category: 'PROMOTER', comment: null, respondedAt: env.clock.now().toISOString(), contact: { id: 'c-nine' } },
    });

    env.clock.advance(60_000);
    await env.reply(followUp, '  Fast delivery and friendly staff ');
    const [comment] = await env.waitFor('feedback.comment.recorded', (e) => e.event.data.responseId === responseId);
    expect(comment!.event.data).toEqual({ responseId, contactId: 'c-nine', comment: 'Fast delivery and friendly staff' });
    expect(kinds(inv.id)).toEqual(['question', 'followup', 'thanks']);
    const thanks = env.messagesOf(inv.id)[2]!;
    expect(thanks.event.data).toMatchObject({ requestId: `survey:${inv.id}:thanks`, body: 'Thank you!', category: 'SURVEY' });
    expect(await invitation(inv.id)).toMatchObject({ status: 'COMPLETED', response: { comment: 'Fast delivery and friendly staff', score: 9 } });
    const stored = await env.deps.db.selectFrom('survey_responses').selectAll().where('id', '=', responseId).executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ invitation_id: inv.id, contact_id: 'c-nine', score: 9, category: 'PROMOTER', touchpoint: 'purchase' });

    // A reply to the thanks, with nothing open, is the inbox's.
    const chat = await env.reply(thanks, 'You are welcome');
    expect(unhandledOf(chat.data.messageId).map((e) => e.event.data)).toEqual([
      { messageId: chat.data.messageId, contactId: 'c-nine', reason: 'NO_OPEN_INVITATION' },
    ]);
    expect(kinds(inv.id)).toEqual(['question', 'followup', 'thanks']);
  });

  it('"3" is a detractor: feedback.detractor.detected, then thanks at once when there is no follow-up', async () => {
    const surveyId = await createSurvey({ thankYou: 'Thanks, {{ contact.firstName }}' });
    env.contact('c-three');
    const { invitation: inv, question } = await send(surveyId, 'c-three');
    await env.reply(question, '3');
    const [recorded] = await env.waitFor('feedback.response.recorded', (e) => e.event.data.invitationId === inv.id);
    const responseId = recorded!.event.data.responseId;
    expect(recorded!.event.data).toMatchObject({ score: 3, category: 'DETRACTOR', touchpoint: null });
    const [detractor] = await env.waitFor('feedback.detractor.detected', (e) => e.event.data.responseId === responseId);
    expect(detractor!.event.data).toEqual({ responseId, contactId: 'c-three', score: 3, surveyId });
    expect(kinds(inv.id)).toEqual(['question', 'thanks']);
    expect((await invitation(inv.id)).status).toBe('COMPLETED');
  });

  it('"maybe" gets one re-prompt; a second unusable reply goes to the inbox and the invitation stays unanswered', async () => {
    const surveyId = await createSurvey({});
    env.contact('c-maybe');
    const { invitation: inv, question } = await send(surveyId, 'c-maybe');
    const first = await env.reply(question, 'maybe');
    expect(unhandledOf(first.data.messageId)).toEqual([]);
    const reprompt = env.messagesOf(inv.id)[1]!;
    expect(reprompt.event.data).toEqual({
      requestId: `survey:${inv.id}:reprompt`,
      contactId: 'c-maybe',
      body: 'Please reply with a number from 0 to 10',
      category: 'SURVEY',
      correlation: { surveyInvitationId: inv.id, surveyId, kind: 'reprompt' },
    });

    const second = await env.reply(reprompt, '7 or 8');
    expect(unhandledOf(second.data.messageId).map((e) => e.event.data)).toEqual([
      { messageId: second.data.messageId, contactId: 'c-maybe', reason: 'NOT_A_SCORE' },
    ]);
    expect(kinds(inv.id)).toEqual(['question', 'reprompt']);
    expect(await invitation(inv.id)).toMatchObject({ status: 'SENT', response: null });

    // Still open: a score within the window counts.
    await env.reply(reprompt, '8/10');
    expect(await invitation(inv.id)).toMatchObject({ status: 'COMPLETED', response: { score: 8, category: 'PASSIVE' } });
  });

  it('a reply after the response window is an ordinary inbound message (feedback.reply.unhandled) and the invitation EXPIRED', async () => {
    const surveyId = await createSurvey({ responseWindow: 'PT2H' });
    env.contact('c-late');
    const { invitation: inv, question } = await send(surveyId, 'c-late');
    env.clock.advance(2 * 3600_000 + 1000);
    const late = await env.reply(question, '10');
    expect(unhandledOf(late.data.messageId).map((e) => e.event.data)).toEqual([
      { messageId: late.data.messageId, contactId: 'c-late', reason: 'RESPONSE_WINDOW_CLOSED' },
    ]);
    expect(env.of('feedback.response.recorded', (e) => e.event.data.invitationId === inv.id)).toEqual([]);
    const row = await env.deps.db.selectFrom('survey_invitations').select(['status', 'awaiting']).where('id', '=', inv.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'EXPIRED', awaiting: null });
  });

  it('with two open invitations the reply answers the most recent', async () => {
    const older = await createSurvey({ name: 'Older' });
    const newer = await createSurvey({ name: 'Newer' });
    env.contact('c-two');
    const { invitation: first } = await send(older, 'c-two');
    env.clock.advance(60_000);
    const { invitation: second, question } = await send(newer, 'c-two');
    env.clock.advance(60_000);
    // A SURVEY message without the invitation in its correlation: the most recent open one.
    await env.receive('c-two', '10', { category: 'SURVEY', correlation: null });
    expect(await invitation(second.id)).toMatchObject({ status: 'COMPLETED', response: { score: 10 } });
    expect(await invitation(first.id)).toMatchObject({ status: 'SENT', response: null });
    // The next reply (to the newer question, which is closed now) answers the one still open.
    await env.reply(question, '6');
    expect(await invitation(first.id)).toMatchObject({ status: 'COMPLETED', response: { score: 6, category: 'DETRACTOR' } });
  });

  it('leaves keywords and replies to other messages to messaging', async () => {
    const surveyId = await createSurvey({});
    env.contact('c-other');
    const { invitation: inv, question } = await send(surveyId, 'c-other');
    const stop = await env.reply(question, 'STOP', { keyword: 'STOP' });
    const transactional = await env.receive('c-other', '9', { category: 'TRANSACTIONAL', correlation: null });
    const none = await env.receive('c-other', '9', null);
    for (const e of [stop, transactional, none]) expect(unhandledOf(e.data.messageId)).toEqual([]);
    expect(await invitation(inv.id)).toMatchObject({ status: 'SENT', response: null });
    expect(kinds(inv.id)).toEqual(['question']);
  });

  it('handles a redelivered reply once', async () => {
    const surveyId = await createSurvey({ followUp: 'Why?' });
    env.contact('c-twice');
    const { invitation: inv, question } = await send(surveyId, 'c-twice');
    const reply = await env.reply(question, '9');
    // The same event again (as after a crash before the ack): nothing more happens.
    await env.js.publish('messaging.message.received', JSON.stringify(reply), { msgID: `${reply.id}-again` });
    await env.handled('MESSAGING', 'feedback-replies');
    await env.settle();
    expect(env.of('feedback.response.recorded', (e) => e.event.data.invitationId === inv.id)).toHaveLength(1);
    expect(kinds(inv.id)).toEqual(['question', 'followup']);
    expect((await invitation(inv.id)).response.comment).toBeNull();
  });
});

describe('feedback.cmd.send_survey', () => {
  it('sends the survey once per requestId, however often the command comes', async () => {
    const surveyId = await createSurvey({ touchpoint: 'delivery' });
    env.contact('c-cmd');
    const requestId = newId();
    const correlation = { automationId: 'a1', automationRunId: 'r1', step: 1, stepId: requestId };
    const command = await env.publish('feedback.cmd.send_survey', { requestId, surveyId, contactId: 'c-cmd', correlation });
    // Redelivery of the same event, and the same command in a new event.
    await env.js.publish('feedback.cmd.send_survey', JSON.stringify(command), { msgID: `${command.id}-again` });
    await env.publish('feedback.cmd.send_survey', { requestId, surveyId, contactId: 'c-cmd', correlation });
    await env.handled('FEEDBACK', 'feedback-cmd-send-survey');
    await env.settle();
    const rows = await env.deps.db.selectFrom('survey_invitations').selectAll().where('request_id', '=', requestId).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ survey_id: surveyId, contact_id: 'c-cmd', status: 'SENT', touchpoint: 'delivery', correlation });
    const sent = env.messagesOf(rows[0]!.id);
    expect(sent.map((e) => e.event.data)).toEqual([
      {
        requestId: `survey:${rows[0]!.id}:question`,
        contactId: 'c-cmd',
        body: 'How likely are you to recommend us? Reply 0-10',
        category: 'SURVEY',
        correlation: { surveyInvitationId: rows[0]!.id, surveyId, kind: 'question' },
      },
    ]);
    // The reply to it flows like any other.
    await env.reply(sent[0]!, 'Ten!');
    expect(await invitation(rows[0]!.id)).toMatchObject({ status: 'COMPLETED', response: { score: 10 } });
  });

  it('records a FAILED invitation and sends nothing to an unsubscribed contact; skips an unknown survey or contact', async () => {
    const surveyId = await createSurvey({});
    env.contact('c-cmd-stopped', { subscribed: false });
    const before = env.of('messaging.cmd.send').length;
    const stopped = newId();
    await env.publish('feedback.cmd.send_survey', { requestId: stopped, surveyId, contactId: 'c-cmd-stopped' });
    await env.publish('feedback.cmd.send_survey', { requestId: newId(), surveyId: 'no-such-survey', contactId: 'c-cmd-stopped' });
    await env.publish('feedback.cmd.send_survey', { requestId: newId(), surveyId, contactId: 'no-such-contact' });
    await env.handled('FEEDBACK', 'feedback-cmd-send-survey');
    await env.settle();
    expect(env.of('messaging.cmd.send')).toHaveLength(before);
    const rows = await env.deps.db
      .selectFrom('survey_invitations')
      .select(['request_id', 'status', 'failure_reason'])
      .where('survey_id', '=', surveyId)
      .execute();
    expect(rows).toEqual([{ request_id: stopped, status: 'FAILED', failure_reason: 'UNSUBSCRIBED' }]);
  });
});

describe('question status', () => {
  it('fails the invitation when messaging could not deliver the question', async () => {
    const surveyId = await createSurvey({});
    env.contact('c-suppressed');
    const { invitation: inv, question } = await send(surveyId, 'c-suppressed');
    // Messaging copies the statuses of feedback's own messages to messaging.notify.feedback.<status>.
    await env.publish(notifySubject('feedback', 'messaging.message.suppressed'), {
      messageId: 'm-suppressed',
      contactId: 'c-suppressed',
      to: '+14155550100',
      from: 'Textloop',
      category: 'SURVEY',
      status: 'SUPPRESSED',
      segments: 1,
      errorCode: 'OPTED_OUT',
      correlation: question.event.data.correlation,
    });
    await env.handled('MESSAGING', 'feedback-message-status');
    expect(await invitation(inv.id)).toMatchObject({ status: 'FAILED' });
    const row = await env.deps.db.selectFrom('survey_invitations').select('failure_reason').where('id', '=', inv.id).executeTakeFirstOrThrow();
    expect(row.failure_reason).toBe('OPTED_OUT');
  });

  it('takes statuses only from its copies: a status on messaging.message.* alone changes nothing', async () => {
    const surveyId = await createSurvey({});
    env.contact('c-contract-only');
    const { invitation: inv, question } = await send(surveyId, 'c-contract-only');
    const status = (status: string) => ({
      messageId: 'm-contract-only',
      contactId: 'c-contract-only',
      to: '+14155550100',
      from: 'Textloop',
      category: 'SURVEY',
      status,
      segments: 1,
      errorCode: status === 'SUPPRESSED' ? 'OPTED_OUT' : null,
      correlation: question.event.data.correlation,
    });
    // Everyone's subject (bulk traffic lives here), then a copy behind it: once the copy is handled, so would the other be.
    await env.publish('messaging.message.suppressed', status('SUPPRESSED'));
    await env.publish(notifySubject('feedback', 'messaging.message.queued'), status('QUEUED'));
    await env.handled('MESSAGING', 'feedback-message-status');
    expect(await invitation(inv.id)).toMatchObject({ status: 'SENT' });
    await env.publish(notifySubject('feedback', 'messaging.message.suppressed'), status('SUPPRESSED'));
    await env.handled('MESSAGING', 'feedback-message-status');
    expect(await invitation(inv.id)).toMatchObject({ status: 'FAILED' });
  });

  it('starts the response window when the question left, when quiet hours held it back', async () => {
    const surveyId = await createSurvey({ responseWindow: 'PT12H' });
    env.contact('c-quiet');
    const { invitation: inv, question } = await send(surveyId, 'c-quiet');
    const sentAt = new Date(env.clock.now().getTime() + 10 * 3600_000);
    await env.publish(
      notifySubject('feedback', 'messaging.message.sent'),
      {
        messageId: 'm-quiet',
        contactId: 'c-quiet',
        to: '+14155550100',
        from: 'Textloop',
        category: 'SURVEY',
        status: 'SENT',
        segments: 1,
        correlation: question.event.data.correlation,
      },
      { time: sentAt },
    );
    await env.handled('MESSAGING', 'feedback-message-status');
    const row = await env.deps.db.selectFrom('survey_invitations').select('expires_at').where('id', '=', inv.id).executeTakeFirstOrThrow();
    expect(row.expires_at.toISOString()).toBe(new Date(sentAt.getTime() + 12 * 3600_000).toISOString());
    env.clock.advance(20 * 3600_000);
    await env.reply(question, '9');
    expect(await invitation(inv.id)).toMatchObject({ status: 'COMPLETED', response: { score: 9 } });
  });
});

describe('surveyResponses', () => {
  it('pages through one survey newest first, filters by category, and says NOT_FOUND for an unknown survey', async () => {
    const surveyId = await createSurvey({ name: 'Paged' });
    const scores = [10, 3, 9, 7, 0];
    for (const [i, score] of scores.entries()) {
      env.contact(`c-page-${i}`);
      const { question } = await send(surveyId, `c-page-${i}`);
      env.clock.advance(1000);
      await env.reply(question, String(score));
    }
    const PAGE = `query($surveyId: ID, $category: NpsCategory, $first: Int, $after: String) {
      surveyResponses(surveyId: $surveyId, category: $category, first: $first, after: $after) {
        nodes { score category contact { id } survey { id } } pageInfo { hasNextPage endCursor } totalCount } }`;
    const one = await env.gql(PAGE, { surveyId, first: 2 });
    expect(one.errors).toBeUndefined();
    expect(one.data.surveyResponses.nodes.map((n: any) => n.score)).toEqual([0, 7]);
    expect(one.data.surveyResponses).toMatchObject({ pageInfo: { hasNextPage: true }, totalCount: 5 });
    const two = await env.gql(PAGE, { surveyId, first: 2, after: one.data.surveyResponses.pageInfo.endCursor });
    expect(two.data.surveyResponses.nodes.map((n: any) => n.score)).toEqual([9, 3]);
    const three = await env.gql(PAGE, { surveyId, first: 2, after: two.data.surveyResponses.pageInfo.endCursor });
    expect(three.data.surveyResponses.nodes.map((n: any) => n.score)).toEqual([10]);
    expect(three.data.surveyResponses.pageInfo.hasNextPage).toBe(false);

    const detractors = await env.gql(PAGE, { surveyId, category: 'DETRACTOR' });
    expect(detractors.data.surveyResponses.nodes).toEqual([
      { score: 0, category: 'DETRACTOR', contact: { id: 'c-page-4' }, survey: { id: surveyId } },
      { score: 3, category: 'DETRACTOR', contact: { id: 'c-page-1' }, survey: { id: surveyId } },
    ]);
    expect(detractors.data.surveyResponses.totalCount).toBe(2);
    expectError(await env.gql(PAGE, { surveyId: 'nope' }), 'NOT_FOUND');
    expectError(await env.gql(PAGE, { surveyId, after: 'garbage' }), 'BAD_USER_INPUT', 'after');
    expectError(await env.gql(PAGE, { surveyId, first: -1 }), 'BAD_USER_INPUT', 'first');
  });
});

describe('erasure', () => {
  it('keeps the score with no contact, closes what was open and lists the response no more', async () => {
    const surveyId = await createSurvey({ followUp: 'Why?' });
    env.contact('c-erase');
    const { invitation: answered, question } = await send(surveyId, 'c-erase');
    await env.reply(question, '4');
    const followUp = env.messagesOf(answered.id)[1]!;
    await env.reply(followUp, 'My name is Ada and the courier was late');
    const other = await createSurvey({ name: 'Still open' });
    const { invitation: open } = await send(other, 'c-erase');
    const responseId = (await invitation(answered.id)).response.id;

    await env.publish('contacts.contact.deleted', { contactId: 'c-erase' });
    await waitFor(
      async () => (await env.deps.db.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', 'c-erase').executeTakeFirst()) !== undefined,
      { what: 'the erasure', timeoutMs: 15_000 },
    );
    const response = await env.deps.db.selectFrom('survey_responses').selectAll().where('id', '=', responseId).executeTakeFirstOrThrow();
    expect(response).toMatchObject({ contact_id: null, comment: null, score: 4, category: 'DETRACTOR', survey_id: surveyId, invitation_id: answered.id });
    const invitations = await env.deps.db
      .selectFrom('survey_invitations')
      .select(['id', 'contact_id', 'status'])
      .where('id', 'in', [answered.id, open.id])
      .orderBy('sent_at')
      .execute();
    expect(invitations).toEqual([
      { id: answered.id, contact_id: null, status: 'COMPLETED' },
      { id: open.id, contact_id: null, status: 'EXPIRED' },
    ]);
    expect(await invitation(answered.id)).toBeNull();
    const listed = await env.gql(`query($surveyId: ID) { surveyResponses(surveyId: $surveyId) { totalCount nodes { id } } }`, { surveyId });
    expect(listed.data.surveyResponses).toEqual({ totalCount: 0, nodes: [] });
    // A late reply or a new survey for the erased contact writes nothing.
    const late = await env.receive('c-erase', '10', { category: 'SURVEY', correlation: { surveyInvitationId: open.id } });
    expect(unhandledOf(late.data.messageId)).toEqual([]);
    expectError(await env.gql(SEND, { surveyId: other, contactId: 'c-erase' }), 'NOT_FOUND');
    const count = await sql<{ n: number }>`select count(*)::int as n from survey_invitations where contact_id = 'c-erase'`.execute(env.deps.db);
    expect(count.rows[0]!.n).toBe(0);
  });
});
