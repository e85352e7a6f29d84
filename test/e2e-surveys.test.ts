import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@textloop/service-kit/testing';
import { startE2E, type E2E } from './support/e2e';

// SMS surveys end to end (surveys issue, "Done when"): six real processes on Postgres and NATS,
// driven only through the gateway and the carrier simulator's handsets. An automation on
// order.delivered sends the NPS question after its delay; replies are parsed into scores, the
// follow-up comment is stored and thanked for; a detractor opens a support conversation; unusable
// and late replies reach the inbox; npsReport matches hand-computed numbers.

const REPROMPT = 'Please reply with a number from 0 to 10';
const QUESTION = 'Hi {{ contact.firstName }}, how likely are you to recommend us to a friend? Reply 0-10';
const FOLLOW_UP = 'Thanks! What is the main reason for your score?';
const THANK_YOU = 'Thank you for your feedback, {{ contact.firstName }}!';
const SURVEY_DELAY_S = 3;

let e2e: E2E;
/** Whether messaging's Conversation has the survey feedback (score and comment) of detractors. */
let conversationFeedback = false;

beforeAll(async () => {
  e2e = await startE2E({ prefix: 'e2e_surveys' });
  // SURVEY messages are held during quiet hours (by default at night): none in these tests.
  await e2e.gql('mutation($i: MessagingPolicyInput!) { updateMessagingPolicy(input: $i) { quietHoursStart } }', {
    i: { quietHoursStart: '00:00', quietHoursEnd: '00:00' },
  });
  const { __type } = await e2e.gql('{ __type(name: "Conversation") { fields { name } } }');
  conversationFeedback = __type.fields.some((f: { name: string }) => f.name === 'feedback');
}, 240_000);

afterAll(async () => {
  await e2e?.close();
}, 60_000);

type HandsetMessage = { text: string; receivedAt: string };
const handset = (phone: string): Promise<HandsetMessage[]> => e2e.sim(`/api/handsets/${encodeURIComponent(phone)}/messages`);
const texts = async (phone: string) => (await handset(phone)).map((m) => m.text);

/** The n-th (0-based) SMS on the handset, once it arrived. */
const nthSms = (phone: string, n: number, what: string, timeoutMs = 10_000) =>
  waitFor(async () => (await handset(phone))[n], { timeoutMs, intervalMs: 50, what });

/** The handset texts the platform back (the simulator posts it to messaging's inbound webhook). */
async function reply(phone: string, text: string): Promise<void> {
  const res = await fetch(new URL(`/api/handsets/${phone.slice(1)}/reply`, e2e.platform.urls.carrierSim), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to: 'Textloop', text }),
  });
  expect(res.status, await res.text()).toBe(202);
}

async function createContact(phone: string, firstName: string): Promise<string> {
  const { createContact } = await e2e.gql(`mutation($p: String!, $f: String) { createContact(input: { phone: $p, firstName: $f }) { id } }`, {
    p: phone,
    f: firstName,
  });
  return createContact.id;
}

interface SurveyInput {
  name: string;
  question: string;
  followUp?: string;
  thankYou?: string;
  touchpoint?: string;
  responseWindow?: string;
}
const SURVEY_FIELDS = 'id name question followUp thankYou touchpoint responseWindow createdAt';
async function createSurvey(input: SurveyInput) {
  return (await e2e.gql(`mutation($i: SurveyInput!) { createSurvey(input: $i) { ${SURVEY_FIELDS} } }`, { i: input })).createSurvey;
}

const INVITATION_FIELDS = 'id status sentAt survey { id touchpoint } contact { id } response { id score category comment }';
async function sendSurvey(surveyId: string, contactId: string) {
  return (await e2e.gql(`mutation($s: ID!, $c: ID!) { sendSurvey(surveyId: $s, contactId: $c) { ${INVITATION_FIELDS} } }`, { s: surveyId, c: contactId }))
    .sendSurvey;
}
async function invitation(id: string) {
  return (await e2e.gql(`query($id: ID!) { surveyInvitation(id: $id) { ${INVITATION_FIELDS} } }`, { id })).surveyInvitation;
}

const RESPONSE_FIELDS = 'id score category comment respondedAt survey { id touchpoint } contact { id firstName }';
async function responses(surveyId: string) {
  return (
    await e2e.gql(`query($s: ID) { surveyResponses(surveyId: $s, first: 100) { totalCount nodes { ${RESPONSE_FIELDS} } } }`, {
      s: surveyId,
    })
  ).surveyResponses as { totalCount: number; nodes: any[] };
}
async function contactResponses(contactId: string): Promise<any[]> {
  return (await e2e.gql(`query($id: ID!) { contact(id: $id) { surveyResponses { ${RESPONSE_FIELDS} } } }`, { id: contactId })).contact.surveyResponses;
}

/** The contact's messages, newest first, with their correlation (a survey message names its invitation). */
async function messagesOf(contactId: string): Promise<any[]> {
  const { contact } = await e2e.gql(
    `query($id: ID!) { contact(id: $id) { messages(first: 100) { nodes { id direction category body status correlation conversation { id } } } } }`,
    { id: contactId },
  );
  return contact.messages.nodes;
}

/** The contact's conversation among all of them (any status), or undefined. */
async function conversationOf(contactId: string): Promise<any | undefined> {
  const feedback = conversationFeedback ? 'feedback { responseId surveyId score comment at commentedAt }' : '';
  const { conversations } = await e2e.gql(
    `{ conversations(first: 500) { nodes { id status contact { id firstName } messages { id direction body category } ${feedback} } } }`,
  );
  return conversations.nodes.find((c: any) => c.contact.id === contactId);
}
async function openConversationIds(): Promise<string[]> {
  const { conversations } = await e2e.gql(`{ conversations(status: OPEN, first: 500) { nodes { id contact { id } } } }`);
  return conversations.nodes.map((c: any) => c.contact.id);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('post-delivery NPS: order.delivered → question after the delay → score → follow-up → comment → thanks', () => {
  it('runs the whole loop for a promoter replying "nine"', async () => {
    const phone = '+14155550201';
    const survey = await createSurvey({
      name: 'Delivery NPS',
      question: QUESTION,
      followUp: FOLLOW_UP,
      thankYou: THANK_YOU,
      touchpoint: 'delivery',
      responseWindow: 'PT10M',
    });
    expect(survey).toMatchObject({
      name: 'Delivery NPS',
      question: QUESTION,
      followUp: FOLLOW_UP,
      thankYou: THANK_YOU,
      touchpoint: 'delivery',
      responseWindow: 'PT10M',
    });
    const { createAutomation } = await e2e.gql(
      `mutation($i: AutomationInput!) { createAutomation(input: $i) { id enabled triggerEvent steps { type surveyId delay } } }`,
      {
        i: { name: 'Post-delivery NPS', triggerEvent: 'order.delivered', steps: [{ type: 'SEND_SURVEY', surveyId: survey.id, delay: `PT${SURVEY_DELAY_S}S` }] },
      },
    );
    expect(createAutomation).toMatchObject({
      enabled: true,
      triggerEvent: 'order.delivered',
      steps: [{ type: 'SEND_SURVEY', surveyId: survey.id, delay: `PT${SURVEY_DELAY_S}S` }],
    });

    const contactId = await createContact(phone, 'Maya');
    const t0 = Date.now();
    await e2e.gql(`mutation($c: ID!) { trackEvent(input: { contactId: $c, name: "order.delivered", properties: { orderId: "D-5001" } }) { id } }`, {
      c: contactId,
    });
    const run = await waitFor(
      async () => {
        const { automationRuns } = await e2e.gql(`query($c: ID!) { automationRuns(contactId: $c) { status steps { type status dueAt } } }`, { c: contactId });
        return automationRuns[0];
      },
      { what: 'the automation run' },
    );
    expect(run.steps).toHaveLength(1);
    expect(run.steps[0].type).toBe('SEND_SURVEY');
    const dueAt = Date.parse(run.steps[0].dueAt);
    expect(dueAt - t0, 'the step is due after its delay').toBeGreaterThanOrEqual(SURVEY_DELAY_S * 1000 - 1000);

    // Not before the delay …
    if (Date.now() < dueAt - 500) expect(await handset(phone)).toEqual([]);
    // … then the question, rendered with the contact's first name.
    const question = await nthSms(phone, 0, 'the survey question', SURVEY_DELAY_S * 1000 + 15_000);
    expect(question.text).toBe('Hi Maya, how likely are you to recommend us to a friend? Reply 0-10');
    expect(Date.parse(question.receivedAt), 'the question arrives after the step is due').toBeGreaterThanOrEqual(dueAt);

    // The question is a SURVEY message naming its invitation.
    const sent = await waitFor(async () => (await messagesOf(contactId)).find((m) => m.correlation?.kind === 'question'), { what: 'the question message' });
    expect(sent).toMatchObject({ direction: 'OUTBOUND', category: 'SURVEY', correlation: { surveyId: survey.id } });
    const invitationId: string = sent.correlation.surveyInvitationId;
    expect(await invitation(invitationId)).toMatchObject({
      status: 'SENT',
      survey: { id: survey.id, touchpoint: 'delivery' },
      contact: { id: contactId },
      response: null,
    });
    await waitFor(
      async () => (await e2e.gql(`query($c: ID!) { automationRuns(contactId: $c) { status } }`, { c: contactId })).automationRuns[0].status === 'COMPLETED',
      {
        what: 'the run to complete',
      },
    );

    // "nine" is a 9: a PROMOTER.
    await reply(phone, 'nine');
    const scored = await waitFor(async () => (await responses(survey.id)).nodes[0], { what: 'the response' });
    expect(scored).toMatchObject({
      score: 9,
      category: 'PROMOTER',
      comment: null,
      survey: { id: survey.id, touchpoint: 'delivery' },
      contact: { id: contactId, firstName: 'Maya' },
    });
    expect(Date.parse(scored.respondedAt)).toBeGreaterThan(Date.parse(question.receivedAt));
    const answered = await invitation(invitationId);
    expect(['ANSWERED', 'COMPLETED']).toContain(answered.status); // ANSWERED until the comment arrives
    expect(answered.response).toMatchObject({ id: scored.id, score: 9, category: 'PROMOTER' });

    // The follow-up question; its answer is stored as the comment; then the thanks.
    const followUp = await nthSms(phone, 1, 'the follow-up question');
    expect(followUp.text).toBe(FOLLOW_UP);
    expect((await invitation(invitationId)).status).toBe('ANSWERED');
    await reply(phone, 'Fast delivery and a friendly driver');
    const commented = await waitFor(
      async () => {
        const r = (await responses(survey.id)).nodes[0];
        return r.comment ? r : undefined;
      },
      { what: 'the comment' },
    );
    expect(commented).toMatchObject({ id: scored.id, score: 9, category: 'PROMOTER', comment: 'Fast delivery and a friendly driver' });
    const thanks = await nthSms(phone, 2, 'the thank-you');
    expect(thanks.text).toBe('Thank you for your feedback, Maya!');
    expect(await invitation(invitationId)).toMatchObject({ status: 'COMPLETED', response: { id: scored.id, comment: 'Fast delivery and a friendly driver' } });
    expect(await contactResponses(contactId)).toEqual([expect.objectContaining({ id: scored.id, score: 9, comment: 'Fast delivery and a friendly driver' })]);

    // A promoter's replies were taken by feedback: no support conversation, nothing more on the handset.
    await sleep(500);
    expect(await texts(phone)).toEqual([question.text, FOLLOW_UP, 'Thank you for your feedback, Maya!']);
    expect(await conversationOf(contactId)).toBeUndefined();
    const inbound = (await messagesOf(contactId)).filter((m) => m.direction === 'INBOUND');
    expect(inbound.map((m) => [m.body, m.conversation])).toEqual([
      ['Fast delivery and a friendly driver', null],
      ['nine', null],
    ]);
  }, 40_000);
});

describe('closed loop', () => {
  it('a "3" is a DETRACTOR and opens a support conversation with the score (and then the comment)', async () => {
    const phone = '+14155550202';
    const survey = await createSurvey({ name: 'Support NPS', question: QUESTION, followUp: FOLLOW_UP, thankYou: THANK_YOU, touchpoint: 'support' });
    expect(survey.responseWindow).toBe('P3D');
    const contactId = await createContact(phone, 'Omar');
    const sent = await sendSurvey(survey.id, contactId);
    expect(sent).toMatchObject({ status: 'SENT', survey: { id: survey.id }, contact: { id: contactId }, response: null });
    // A second invitation to the same survey while this one is open: CONFLICT.
    const again = await e2e.gqlRaw(`mutation($s: ID!, $c: ID!) { sendSurvey(surveyId: $s, contactId: $c) { id } }`, { s: survey.id, c: contactId });
    expect(again.errors?.[0]?.extensions?.code).toBe('CONFLICT');

    expect((await nthSms(phone, 0, 'the survey question')).text).toBe('Hi Omar, how likely are you to recommend us to a friend? Reply 0-10');
    await reply(phone, '3');
    const scored = await waitFor(async () => (await responses(survey.id)).nodes[0], { what: 'the response' });
    expect(scored).toMatchObject({ score: 3, category: 'DETRACTOR', contact: { id: contactId } });
    const detractors = (await e2e.gql(`query($s: ID) { surveyResponses(surveyId: $s, category: DETRACTOR) { nodes { id } } }`, { s: survey.id }))
      .surveyResponses.nodes;
    expect(detractors).toEqual([{ id: scored.id }]);

    // messaging opens the contact's support conversation for an agent.
    const opened = await waitFor(async () => ((await openConversationIds()).includes(contactId) ? conversationOf(contactId) : undefined), {
      what: "the detractor's conversation among the OPEN ones",
    });
    expect(opened).toMatchObject({ status: 'OPEN', contact: { id: contactId, firstName: 'Omar' } });
    if (conversationFeedback) {
      expect(opened.feedback).toEqual([expect.objectContaining({ responseId: scored.id, surveyId: survey.id, score: 3, comment: null, commentedAt: null })]);
    } else {
      console.warn('Conversation has no feedback field: the score on the conversation is not checked');
    }

    // The follow-up; the comment is stored, shown on the conversation, and thanked for.
    expect((await nthSms(phone, 1, 'the follow-up question')).text).toBe(FOLLOW_UP);
    await reply(phone, 'The box arrived crushed');
    const commented = await waitFor(
      async () => {
        const r = (await responses(survey.id)).nodes[0];
        return r.comment ? r : undefined;
      },
      { what: 'the comment' },
    );
    expect(commented).toMatchObject({ id: scored.id, score: 3, comment: 'The box arrived crushed' });
    expect((await nthSms(phone, 2, 'the thank-you')).text).toBe('Thank you for your feedback, Omar!');
    if (conversationFeedback) {
      const withComment = await waitFor(
        async () => {
          const c = await conversationOf(contactId);
          return c?.feedback?.[0]?.comment ? c : undefined;
        },
        { what: 'the comment on the conversation' },
      );
      expect(withComment).toMatchObject({ id: opened.id, status: 'OPEN' });
      expect(withComment.feedback).toEqual([expect.objectContaining({ responseId: scored.id, score: 3, comment: 'The box arrived crushed' })]);
      expect(withComment.feedback[0].commentedAt).toEqual(expect.any(String));
    }
  }, 30_000);
});

describe('replies the survey cannot use', () => {
  it('"maybe" gets exactly one re-prompt; a second unusable reply lands in the inbox and the invitation stays unanswered', async () => {
    const phone = '+14155550203';
    const survey = await createSurvey({ name: 'Purchase NPS', question: QUESTION, followUp: FOLLOW_UP, thankYou: THANK_YOU, touchpoint: 'purchase' });
    const contactId = await createContact(phone, 'Lena');
    const sent = await sendSurvey(survey.id, contactId);
    expect((await nthSms(phone, 0, 'the survey question')).text).toBe('Hi Lena, how likely are you to recommend us to a friend? Reply 0-10');

    await reply(phone, 'maybe');
    expect((await nthSms(phone, 1, 'the re-prompt')).text).toBe(REPROMPT);
    await reply(phone, 'not sure, ask me later');
    const conversation = await waitFor(async () => ((await openConversationIds()).includes(contactId) ? conversationOf(contactId) : undefined), {
      what: 'the conversation with the unusable reply',
    });
    expect(conversation).toMatchObject({ status: 'OPEN', contact: { id: contactId } });
    // Only the second reply was handed over ("maybe" got the re-prompt).
    expect(conversation.messages.map((m: any) => [m.direction, m.body])).toEqual([['INBOUND', 'not sure, ask me later']]);

    await sleep(500);
    expect(await texts(phone), 'one re-prompt and nothing else').toEqual(['Hi Lena, how likely are you to recommend us to a friend? Reply 0-10', REPROMPT]);
    expect(await invitation(sent.id)).toMatchObject({ status: 'SENT', response: null });
    expect((await responses(survey.id)).totalCount).toBe(0);
    expect(await contactResponses(contactId)).toEqual([]);
  }, 30_000);

  it('a reply after the response window goes to the inbox and is not recorded', async () => {
    const phone = '+14155550204';
    const survey = await createSurvey({ name: 'Pickup pulse', question: QUESTION, thankYou: THANK_YOU, touchpoint: 'pickup', responseWindow: 'PT2S' });
    expect(survey.responseWindow).toBe('PT2S');
    const contactId = await createContact(phone, 'Theo');
    const sent = await sendSurvey(survey.id, contactId);
    const question = await nthSms(phone, 0, 'the survey question');
    expect(question.text).toBe('Hi Theo, how likely are you to recommend us to a friend? Reply 0-10');

    // The window runs from when the question left; wait well past it.
    await sleep(3500);
    expect((await invitation(sent.id)).status).toBe('EXPIRED');
    await reply(phone, '10');
    const conversation = await waitFor(async () => ((await openConversationIds()).includes(contactId) ? conversationOf(contactId) : undefined), {
      what: 'the conversation with the late reply',
    });
    expect(conversation.messages.map((m: any) => [m.direction, m.body])).toEqual([['INBOUND', '10']]);

    await sleep(500);
    expect((await responses(survey.id)).totalCount).toBe(0);
    expect(await invitation(sent.id)).toMatchObject({ status: 'EXPIRED', response: null });
    expect(await texts(phone), 'no re-prompt, follow-up or thanks').toEqual([question.text]);
  }, 30_000);
});

describe('npsReport', () => {
  it('matches hand-computed NPS, counts, rate, touchpoints and daily trend for mixed responses across two touchpoints', async () => {
    // Only what this test sends: earlier tests' invitations and responses are before `since`.
    const since = new Date(Date.now() - 1).toISOString();
    const delivery = await createSurvey({ name: 'Delivery NPS (report)', question: 'How likely are you to recommend us? Reply 0-10', touchpoint: 'delivery' });
    const support = await createSurvey({
      name: 'Support NPS (report)',
      question: 'How likely are you to recommend our support? Reply 0-10',
      touchpoint: 'support',
    });
    // delivery: 10, 9, 7, 3 → 2 promoters, 1 passive, 1 detractor of 4 → NPS 25
    // support:  9, 6, 5, 8 → 1 promoter, 1 passive, 2 detractors of 4 → NPS −25
    // overall: 3 promoters, 2 passives, 3 detractors of 8 → NPS 0
    const plan = [
      { survey: delivery.id, text: '10', score: 10 },
      { survey: delivery.id, text: '9/10', score: 9 },
      { survey: delivery.id, text: 'seven', score: 7 },
      { survey: delivery.id, text: "I'd say 3", score: 3 },
      { survey: support.id, text: ' 9 ', score: 9 },
      { survey: support.id, text: '6 out of 10', score: 6 },
      { survey: support.id, text: 'Five!', score: 5 },
      { survey: support.id, text: '8!!!', score: 8 },
    ].map((p, i) => ({ ...p, phone: `+1415555021${i}` }));

    const people = await Promise.all(plan.map(async (p, i) => ({ ...p, contactId: await createContact(p.phone, `Report${i}`) })));
    await Promise.all(people.map((p) => sendSurvey(p.survey, p.contactId)));
    await Promise.all(people.map((p) => nthSms(p.phone, 0, `the question to ${p.phone}`, 15_000)));
    await Promise.all(people.map((p) => reply(p.phone, p.text)));
    const recorded = await waitFor(
      async () => {
        const [d, s] = await Promise.all([responses(delivery.id), responses(support.id)]);
        return d.totalCount === 4 && s.totalCount === 4 ? [...d.nodes, ...s.nodes] : undefined;
      },
      { timeoutMs: 15_000, what: 'all eight responses' },
    );
    const scoreOf = new Map(recorded.map((r) => [r.contact.id, r.score]));
    for (const p of people) expect(scoreOf.get(p.contactId), `${JSON.stringify(p.text)} reads as ${p.score}`).toBe(p.score);

    const REPORT = `query($since: DateTime, $s: ID, $t: String) { npsReport(since: $since, surveyId: $s, touchpoint: $t) {
      nps responses promoters passives detractors invitations responseRate lowSample
      byTouchpoint { touchpoint nps responses } trend(interval: DAY) { at nps responses } } }`;
    const report = (vars: Record<string, unknown>) => e2e.gql(REPORT, { since, ...vars }).then((d) => d.npsReport);

    const overall = await report({});
    expect(overall).toMatchObject({
      nps: 0,
      responses: 8,
      promoters: 3,
      passives: 2,
      detractors: 3,
      invitations: 8,
      responseRate: 1,
      lowSample: true,
      byTouchpoint: [
        { touchpoint: 'delivery', nps: 25, responses: 4 },
        { touchpoint: 'support', nps: -25, responses: 4 },
      ],
    });
    // Daily UTC buckets, computed by hand from the responses' times (one bucket unless the test straddles midnight UTC).
    const buckets = new Map<string, number[]>();
    for (const r of recorded) {
      const day = `${r.respondedAt.slice(0, 10)}T00:00:00.000Z`;
      buckets.set(day, [...(buckets.get(day) ?? []), r.score]);
    }
    const nps = (scores: number[]) => Math.round(((scores.filter((s) => s >= 9).length - scores.filter((s) => s <= 6).length) * 1000) / scores.length) / 10 + 0;
    const expectedTrend = [...buckets.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([at, scores]) => ({ at, nps: nps(scores), responses: scores.length }));
    expect(overall.trend.map((p: any) => ({ ...p, at: new Date(p.at).toISOString() }))).toEqual(expectedTrend);
    if (expectedTrend.length === 1) expect(overall.trend).toEqual([{ at: expect.any(String), nps: 0, responses: 8 }]);

    // By survey and by touchpoint.
    expect(await report({ s: delivery.id })).toMatchObject({
      nps: 25,
      responses: 4,
      promoters: 2,
      passives: 1,
      detractors: 1,
      invitations: 4,
      responseRate: 1,
      lowSample: true,
      byTouchpoint: [{ touchpoint: 'delivery', nps: 25, responses: 4 }],
    });
    expect(await report({ t: 'support' })).toMatchObject({
      nps: -25,
      responses: 4,
      promoters: 1,
      passives: 1,
      detractors: 2,
      invitations: 4,
      responseRate: 1,
      byTouchpoint: [{ touchpoint: 'support', nps: -25, responses: 4 }],
    });
    // A window with nothing in it: no NPS, no trend.
    expect(await report({ since: new Date(Date.now() + 60_000).toISOString() })).toMatchObject({
      nps: null,
      responses: 0,
      invitations: 0,
      responseRate: 0,
      lowSample: true,
      byTouchpoint: [],
      trend: [],
    });
  }, 40_000);
});
