import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createEvent, ensureStream, newId, publishEvent } from '@textloop/events';
import { ManualClock, type ServiceDeps } from '@textloop/service-kit';
import { startTestService, waitFor, type GraphQLResult, type TestService } from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { npsCategory } from './nps';
import { createServer } from './server';

let service: TestService<Database>;
let deps: ServiceDeps<Database> & { close(): Promise<void> };
const clock = new ManualClock('2026-11-27T10:00:00.000Z');

function graphql(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResult> {
  return service.graphql(query, variables);
}

const CREATE = `mutation($input: SurveyInput!) { createSurvey(input: $input) {
  id name question followUp thankYou touchpoint responseWindow createdAt } }`;

beforeAll(async () => {
  service = await startTestService<Database>({ name: 'feedback', migrations, streams: ['FEEDBACK'], create: createServer, clock });
  ({ deps } = service);
});

afterAll(async () => {
  await service?.close();
});

async function insertResponse(surveyId: string, contactId: string, score: number, respondedAt: string, comment: string | null = null) {
  const id = newId();
  await deps.db
    .insertInto('survey_responses')
    .values({ id, survey_id: surveyId, contact_id: contactId, score, category: npsCategory(score), comment, responded_at: respondedAt })
    .execute();
  return id;
}

describe('feedback subgraph', () => {
  it('creates its FEEDBACK stream at start-up', async () => {
    const info = await deps.nats.jsm.streams.info('FEEDBACK');
    expect(info.config.subjects).toEqual(['feedback.>']);
  });

  it('creates a survey with the default response window and lists it', async () => {
    const created = await graphql(CREATE, {
      input: { name: ' Post-purchase NPS ', question: 'How likely are you to recommend us? Reply 0-10', touchpoint: 'purchase', followUp: '' },
    });
    expect(created.errors).toBeUndefined();
    const survey = created.data.createSurvey;
    expect(survey).toMatchObject({
      name: 'Post-purchase NPS',
      question: 'How likely are you to recommend us? Reply 0-10',
      followUp: null,
      thankYou: null,
      touchpoint: 'purchase',
      responseWindow: 'P3D',
      createdAt: '2026-11-27T10:00:00.000Z',
    });
    clock.advance(1000);
    const second = await graphql(CREATE, { input: { name: 'Support', question: 'Rate us', responseWindow: 'pt12h', thankYou: 'Thanks!' } });
    expect(second.data.createSurvey).toMatchObject({ responseWindow: 'PT12H', thankYou: 'Thanks!' });

    const list = await graphql('{ surveys { id name } }');
    expect(list.data.surveys).toEqual([
      { id: second.data.createSurvey.id, name: 'Support' },
      { id: survey.id, name: 'Post-purchase NPS' },
    ]);
    const one = await graphql('query($id: ID!) { survey(id: $id) { id responseWindow } }', { id: survey.id });
    expect(one.data.survey).toEqual({ id: survey.id, responseWindow: 'P3D' });
    expect((await graphql('{ survey(id: "nope") { id } }')).data).toEqual({ survey: null });
  });

  it('rejects bad input with BAD_USER_INPUT naming the field, and writes nothing', async () => {
    const before = await deps.db
      .selectFrom('surveys')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: 'x', question: 'q', responseWindow: '3 days' }, 'responseWindow'],
      [{ name: 'x', question: 'q', responseWindow: 'P0D' }, 'responseWindow'],
      [{ name: 'x', question: 'q', responseWindow: '-P1D' }, 'responseWindow'],
      [{ name: '  ', question: 'q' }, 'name'],
      [{ name: 'x', question: '' }, 'question'],
    ];
    for (const [input, field] of cases) {
      const res = await graphql(CREATE, { input });
      expect(res.data).toBeNull();
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    const window = await graphql(CREATE, { input: { name: 'x', question: 'q', responseWindow: 'three days' } });
    expect(window.errors?.[0]?.message).toMatch(/ISO-8601 duration.*P3D/);
    const after = await deps.db
      .selectFrom('surveys')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it("contributes Contact.surveyResponses: that contact's responses, newest first, with their NPS category", async () => {
    const created = await graphql(CREATE, { input: { name: 'Delivery', question: 'How was the delivery?' } });
    const surveyId = created.data.createSurvey.id;
    const older = await insertResponse(surveyId, 'contact-a', 9, '2026-11-20T10:00:00Z', 'Fast!');
    const newer = await insertResponse(surveyId, 'contact-a', 4, '2026-11-21T10:00:00Z');
    await insertResponse(surveyId, 'contact-b', 7, '2026-11-21T10:00:00Z');
    const res = await graphql(
      `
        query ($reps: [_Any!]!) {
          _entities(representations: $reps) {
            ... on Contact {
              id
              surveyResponses {
                id
                score
                category
                comment
                respondedAt
                contact {
                  id
                }
                survey {
                  id
                  name
                }
              }
            }
          }
        }
      `,
      {
        reps: [
          { __typename: 'Contact', id: 'contact-a' },
          { __typename: 'Contact', id: 'contact-without-responses' },
        ],
      },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data._entities).toEqual([
      {
        id: 'contact-a',
        surveyResponses: [
          {
            id: newer,
            score: 4,
            category: 'DETRACTOR',
            comment: null,
            respondedAt: '2026-11-21T10:00:00.000Z',
            contact: { id: 'contact-a' },
            survey: { id: surveyId, name: 'Delivery' },
          },
          {
            id: older,
            score: 9,
            category: 'PROMOTER',
            comment: 'Fast!',
            respondedAt: '2026-11-20T10:00:00.000Z',
            contact: { id: 'contact-a' },
            survey: { id: surveyId, name: 'Delivery' },
          },
        ],
      },
      { id: 'contact-without-responses', surveyResponses: [] },
    ]);
  });

  it('derives the stored category from the score, whatever the writer gives', async () => {
    const created = await graphql(CREATE, { input: { name: 'Trigger', question: 'Score?' } });
    const surveyId = created.data.createSurvey.id;
    const rows = [
      { id: newId(), survey_id: surveyId, contact_id: 'contact-t', score: 6, responded_at: '2026-11-22T10:00:00Z' },
      { id: newId(), survey_id: surveyId, contact_id: 'contact-t', score: 7, category: 'PROMOTER' as const, responded_at: '2026-11-22T10:00:00Z' },
    ];
    await deps.db.insertInto('survey_responses').values(rows).execute();
    await deps.db.updateTable('survey_responses').set({ score: 10 }).where('id', '=', rows[0]!.id).execute();
    const stored = await deps.db.selectFrom('survey_responses').select(['score', 'category']).where('survey_id', '=', surveyId).orderBy('score').execute();
    expect(stored).toEqual([
      { score: 7, category: 'PASSIVE' },
      { score: 10, category: 'PROMOTER' },
    ]);
  });

  it("erases a deleted contact's link and comment once, even when the event is delivered twice, and keeps the score", async () => {
    const created = await graphql(CREATE, { input: { name: 'Erasure', question: 'Score?' } });
    const surveyId = created.data.createSurvey.id;
    const erased = await insertResponse(surveyId, 'contact-to-erase', 3, '2026-11-22T10:00:00Z', 'Too slow');
    const kept = await insertResponse(surveyId, 'contact-to-keep', 10, '2026-11-22T10:00:00Z');
    await ensureStream(deps.nats.jsm, 'CONTACTS');
    const event = createEvent({ source: 'textloop/contacts', type: 'contacts.contact.deleted', data: { contactId: 'contact-to-erase' } });
    await publishEvent(deps.nats.js, 'contacts.contact.deleted', event);
    await deps.nats.js.publish('contacts.contact.deleted', JSON.stringify(event), { msgID: `${event.id}-again` });
    await waitFor(
      async () => {
        const left = await deps.db.selectFrom('survey_responses').select('id').where('contact_id', '=', 'contact-to-erase').execute();
        const processed = await sql<{ n: number }>`select count(*)::int as n from processed_events where event_id = ${event.id}`.execute(deps.db);
        return left.length === 0 && processed.rows[0]!.n === 1;
      },
      { what: 'the contact to be erased', timeoutMs: 15_000 },
    );
    const rest = await deps.db
      .selectFrom('survey_responses')
      .select(['id', 'contact_id', 'score', 'category', 'comment'])
      .where('survey_id', '=', surveyId)
      .orderBy('score')
      .execute();
    expect(rest).toEqual([
      { id: erased, contact_id: null, score: 3, category: 'DETRACTOR', comment: null },
      { id: kept, contact_id: 'contact-to-keep', score: 10, category: 'PROMOTER', comment: null },
    ]);
  });
});
