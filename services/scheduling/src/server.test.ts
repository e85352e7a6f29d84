import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createEvent, ensureStream, newId, publishEvent } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import { startTestService, waitFor, type GraphQLResult, type TestService } from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer } from './server';

let service: TestService<Database>;
let deps: ServiceDeps<Database> & { close(): Promise<void> };

function graphql(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResult> {
  return service.graphql(query, variables);
}

beforeAll(async () => {
  service = await startTestService<Database>({ name: 'scheduling', migrations, streams: ['SCHEDULING'], create: createServer });
  ({ deps } = service);
});

afterAll(async () => {
  await service?.close();
});

async function insertAutomation(name: string, createdAt: string) {
  const id = newId();
  await deps.db
    .insertInto('automations')
    .values({
      id,
      name,
      trigger_event: 'appointment.booked',
      trigger_filter: JSON.stringify({ kind: 'dental' }),
      run_key: 'appointmentId',
      cancel_on: ['appointment.cancelled'],
      steps: JSON.stringify([
        { type: 'SEND_MESSAGE', template: 'reminder', category: 'TRANSACTIONAL', relativeTo: 'startsAt', offset: '-PT24H' },
        { type: 'SEND_SURVEY', surveyId: 'survey-1', delay: 'PT2H' },
      ]),
      created_at: createdAt,
      enabled_at: createdAt,
    })
    .execute();
  return id;
}

async function insertRun(automationId: string, contactId: string) {
  const id = newId();
  await deps.db
    .insertInto('automation_runs')
    .values({ id, automation_id: automationId, contact_id: contactId, run_key: 'appt-1', created_at: '2026-11-27T10:00:00Z' })
    .execute();
  await deps.db
    .insertInto('scheduled_steps')
    .values([
      { id: newId(), run_id: id, step_index: 1, type: 'SEND_SURVEY', due_at: '2026-11-28T12:00:00Z' },
      {
        id: newId(),
        run_id: id,
        step_index: 0,
        type: 'SEND_MESSAGE',
        due_at: '2026-11-27T10:00:00Z',
        status: 'DONE',
        message_id: 'msg-1',
        executed_at: '2026-11-27T10:00:01Z',
      },
    ])
    .execute();
  return id;
}

describe('scheduling subgraph', () => {
  it('creates its SCHEDULING stream at start-up', async () => {
    const info = await deps.nats.jsm.streams.info('SCHEDULING');
    expect(info.config.subjects).toEqual(['scheduling.>']);
  });

  it('lists automations newest first and finds one by id', async () => {
    const older = await insertAutomation('Welcome', '2026-11-01T00:00:00Z');
    const newer = await insertAutomation('Reminders', '2026-11-02T00:00:00Z');
    const list = await graphql(`
      {
        automations {
          id
          name
          enabled
          triggerEvent
          triggerFilter
          runKey
          cancelOn
          createdAt
          steps {
            type
            template
            category
            surveyId
            delay
            relativeTo
            offset
            offer {
              codePrefix
            }
          }
        }
      }
    `);
    expect(list.errors).toBeUndefined();
    expect(list.data.automations.map((a: { id: string }) => a.id)).toEqual([newer, older]);
    expect(list.data.automations[0]).toEqual({
      id: newer,
      name: 'Reminders',
      enabled: true,
      triggerEvent: 'appointment.booked',
      triggerFilter: { kind: 'dental' },
      runKey: 'appointmentId',
      cancelOn: ['appointment.cancelled'],
      createdAt: '2026-11-02T00:00:00.000Z',
      steps: [
        {
          type: 'SEND_MESSAGE',
          template: 'reminder',
          category: 'TRANSACTIONAL',
          surveyId: null,
          delay: null,
          relativeTo: 'startsAt',
          offset: '-PT24H',
          offer: null,
        },
        { type: 'SEND_SURVEY', template: null, category: null, surveyId: 'survey-1', delay: 'PT2H', relativeTo: null, offset: null, offer: null },
      ],
    });
    const one = await graphql('query($id: ID!) { automation(id: $id) { name } }', { id: older });
    expect(one.data.automation).toEqual({ name: 'Welcome' });
    const none = await graphql('query($id: ID!) { automation(id: $id) { name } }', { id: 'no-such-automation' });
    expect(none).toEqual({ data: { automation: null } });
  });

  it('contributes Contact.automationRuns, empty for a contact without runs', async () => {
    const automationId = await insertAutomation('Reminders for runs', '2026-11-03T00:00:00Z');
    const runId = await insertRun(automationId, 'contact-with-run');
    const res = await graphql(
      `
        query ($reps: [_Any!]!) {
          _entities(representations: $reps) {
            ... on Contact {
              id
              automationRuns {
                id
                status
                key
                createdAt
                automation {
                  id
                  name
                }
                contact {
                  id
                }
                steps {
                  index
                  type
                  dueAt
                  status
                  message {
                    id
                  }
                  executedAt
                }
              }
            }
          }
        }
      `,
      {
        reps: [
          { __typename: 'Contact', id: 'contact-with-run' },
          { __typename: 'Contact', id: 'contact-without-runs' },
        ],
      },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data._entities[1]).toEqual({ id: 'contact-without-runs', automationRuns: [] });
    expect(res.data._entities[0].automationRuns).toEqual([
      {
        id: runId,
        status: 'ACTIVE',
        key: 'appt-1',
        createdAt: '2026-11-27T10:00:00.000Z',
        automation: { id: automationId, name: 'Reminders for runs' },
        contact: { id: 'contact-with-run' },
        steps: [
          {
            index: 0,
            type: 'SEND_MESSAGE',
            dueAt: '2026-11-27T10:00:00.000Z',
            status: 'DONE',
            message: { id: 'msg-1' },
            executedAt: '2026-11-27T10:00:01.000Z',
          },
          { index: 1, type: 'SEND_SURVEY', dueAt: '2026-11-28T12:00:00.000Z', status: 'PENDING', message: null, executedAt: null },
        ],
      },
    ]);
    const filtered = await graphql('query($id: ID) { automationRuns(contactId: $id, status: ACTIVE) { id } }', { id: 'contact-with-run' });
    expect(filtered.data.automationRuns).toEqual([{ id: runId }]);
  });

  it('erases a deleted contact once, even when the event is delivered twice, and waits for the CONTACTS stream', async () => {
    const automationId = await insertAutomation('Erasure', '2026-11-04T00:00:00Z');
    await insertRun(automationId, 'contact-to-erase');
    await insertRun(automationId, 'contact-to-keep');
    // The consumer was started before contacts created its stream; it attaches once the stream exists.
    await ensureStream(deps.nats.jsm, 'CONTACTS');
    const event = createEvent({ source: 'textloop/contacts', type: 'contacts.contact.deleted', data: { contactId: 'contact-to-erase' } });
    await publishEvent(deps.nats.js, 'contacts.contact.deleted', event);
    // A redelivery: same event id, a different publish id so the stream keeps both.
    await deps.nats.js.publish('contacts.contact.deleted', JSON.stringify(event), { msgID: `${event.id}-again` });
    await waitFor(
      async () => {
        const left = await deps.db.selectFrom('automation_runs').select('contact_id').where('contact_id', '=', 'contact-to-erase').execute();
        const processed = await sql<{ n: number }>`select count(*)::int as n from processed_events where event_id = ${event.id}`.execute(deps.db);
        return left.length === 0 && processed.rows[0]!.n === 1;
      },
      { what: 'the contact to be erased', timeoutMs: 15_000 },
    );
    const steps = await sql<{
      n: number;
    }>`select count(*)::int as n from scheduled_steps s join automation_runs r on r.id = s.run_id where r.contact_id = 'contact-to-keep'`.execute(deps.db);
    expect(steps.rows[0]!.n).toBe(2);
    const orphans = await sql<{ n: number }>`select count(*)::int as n from scheduled_steps where run_id not in (select id from automation_runs)`.execute(
      deps.db,
    );
    expect(orphans.rows[0]!.n).toBe(0);
    const res = await graphql(
      '{ _entities(representations: [{ __typename: "Contact", id: "contact-to-erase" }]) { ... on Contact { automationRuns { id } } } }',
    );
    expect(res.data._entities[0].automationRuns).toEqual([]);
  });
});
