import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { newId, notifySubject } from '@textloop/events';
import { waitFor } from '@textloop/service-kit/testing';
import { eraseContact } from './automations';
import { expectError, startEnv, type Env, type GraphQLResult, type Instance } from './test-support';

const AUTOMATION_FIELDS =
  'id name enabled triggerEvent triggerFilter runKey cancelOn createdAt steps { type template category surveyId delay relativeTo offset }';
const RUN_FIELDS =
  'id status key failure triggerEvent triggerProperties automation { id } contact { id } steps { index type dueAt status executedAt error message { id } }';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let env: Env;
let app: Instance;

beforeAll(async () => {
  env = await startEnv('sched_automations');
  env.world.templates.set('welcome-code', { category: 'OTP', variables: ['contact.firstName', 'code'] });
  env.world.templates.set('quick-start', { category: 'TRANSACTIONAL', variables: ['contact.firstName'] });
  env.world.templates.set('plain', { category: 'TRANSACTIONAL', variables: [] });
  env.world.templates.set('appt-24h', { category: 'TRANSACTIONAL', variables: ['event.startsAt', 'contact.timezone'] });
  env.world.templates.set('appt-2h', { category: 'TRANSACTIONAL', variables: ['event.startsAt'] });
  env.world.templates.set('appt-confirmed', { category: 'TRANSACTIONAL', variables: ['event.appointmentId'] });
  env.world.templates.set('winback', { category: 'MARKETING', variables: [] });
  env.world.surveys.set('survey-nps', 'NPS');
  app = await env.start();
});

afterAll(async () => {
  await env?.close();
});

async function createAutomation(input: Record<string, unknown>): Promise<GraphQLResult> {
  return app.gql(`mutation($input: AutomationInput!) { createAutomation(input: $input) { ${AUTOMATION_FIELDS} } }`, { input });
}

async function created(input: Record<string, unknown>): Promise<{ id: string; createdAt: string }> {
  const res = await createAutomation(input);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.createAutomation;
}

async function runsOf(contactId: string, automationId?: string): Promise<any[]> {
  const res = await app.gql(`query($c: ID, $a: ID) { automationRuns(contactId: $c, automationId: $a) { ${RUN_FIELDS} } }`, { c: contactId, a: automationId });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  // oldest first reads more naturally in the assertions below
  return [...res.data.automationRuns].reverse();
}

async function stepIds(runId: string): Promise<string[]> {
  const rows = await app.deps.db.selectFrom('scheduled_steps').select('id').where('run_id', '=', runId).orderBy('step_index').execute();
  return rows.map((r) => r.id);
}

/** Moves the manual clock and wakes the timer loop. */
function advance(ms: number): void {
  env.clock.advance(ms);
  app.server.timers.kick();
}

function contactSnapshot(contactId: string, phone: string) {
  return { contactId, phone, timezone: 'America/New_York', firstName: 'Ada', attributes: { plan: 'pro' }, tags: [], subscribed: true };
}

describe('createAutomation validation', () => {
  const sendStep = { type: 'SEND_MESSAGE', template: 'plain' };
  const valid = { name: 'Valid', triggerEvent: 'order.shipped', steps: [sendStep] };

  it('rejects bad input with the contract code and the offending field, and writes nothing', async () => {
    const before = (await app.gql('{ automations { id } }')).data.automations.length;

    expect(expectError(await createAutomation({ ...valid, steps: [{ type: 'SEND_MESSAGE', template: 'no-such-template' }] }), 'NOT_FOUND')).toContain(
      'no-such-template',
    );
    expect(expectError(await createAutomation({ ...valid, steps: [sendStep, { type: 'SEND_SURVEY', surveyId: 'no-such-survey' }] }), 'NOT_FOUND')).toContain(
      'no-such-survey',
    );
    // The code must reach the contact: a verification template without {{ code }} is refused.
    expect(
      expectError(
        await createAutomation({ ...valid, steps: [{ type: 'START_VERIFICATION', template: 'quick-start' }] }),
        'BAD_USER_INPUT',
        'steps[0].template',
      ),
    ).toContain('code');
    expectError(await createAutomation({ ...valid, steps: [{ ...sendStep, delay: '5 minutes' }] }), 'BAD_USER_INPUT', 'steps[0].delay');
    expectError(await createAutomation({ ...valid, steps: [{ ...sendStep, relativeTo: 'startsAt', offset: '24h' }] }), 'BAD_USER_INPUT', 'steps[0].offset');
    for (const triggerFilter of [[{ days: 30 }], 'days=30', 30]) {
      expectError(await createAutomation({ ...valid, triggerFilter }), 'BAD_USER_INPUT', 'triggerFilter');
    }
    expectError(await createAutomation({ ...valid, triggerEvent: 'Order Shipped' }), 'BAD_USER_INPUT', 'triggerEvent');
    expectError(await createAutomation({ ...valid, cancelOn: ['order.cancelled', 'ORDER-REFUNDED'] }), 'BAD_USER_INPUT', 'cancelOn[1]');
    expectError(await app.gql('mutation { setAutomationEnabled(id: "no-such-automation", enabled: false) { id } }'), 'NOT_FOUND');

    expect((await app.gql('{ automations { id } }')).data.automations).toHaveLength(before);
    expect((await app.deps.db.selectFrom('automations').select('id').execute()).length).toBe(before);
  });

  it('accepts the same shapes when they are right, asking messaging and feedback about the references', async () => {
    const res = await createAutomation({
      name: 'Everything valid',
      triggerEvent: 'order.shipped',
      triggerFilter: { carrier: 'UPS' },
      runKey: 'orderId',
      cancelOn: ['order.cancelled'],
      steps: [
        { type: 'START_VERIFICATION', template: 'welcome-code' },
        { type: 'SEND_MESSAGE', template: 'plain', category: 'TRANSACTIONAL', delay: 'PT5M' },
        { type: 'SEND_MESSAGE', template: 'plain', relativeTo: 'deliveredAt', offset: '-PT24H' },
        { type: 'SEND_SURVEY', surveyId: 'survey-nps', delay: 'P1D' },
      ],
      enabled: false,
    });
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    expect(res.data.createAutomation).toMatchObject({
      name: 'Everything valid',
      enabled: false,
      triggerFilter: { carrier: 'UPS' },
      runKey: 'orderId',
      cancelOn: ['order.cancelled'],
      createdAt: env.clock.now().toISOString(),
    });
    expect(res.data.createAutomation.steps.map((s: { type: string }) => s.type)).toEqual(['START_VERIFICATION', 'SEND_MESSAGE', 'SEND_MESSAGE', 'SEND_SURVEY']);
    const enabled = await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: true) { id enabled } }', { id: res.data.createAutomation.id });
    expect(enabled.data.setAutomationEnabled).toEqual({ id: res.data.createAutomation.id, enabled: true });
  });
});

describe('onboarding: contact.created → verification at once, quick start after PT5M', () => {
  it('starts one run per event, fires the verify command at once and the quick start after 5 minutes, not before', async () => {
    const automation = await created({
      name: 'Onboarding',
      triggerEvent: 'contact.created',
      steps: [
        { type: 'START_VERIFICATION', template: 'welcome-code' },
        { type: 'SEND_MESSAGE', template: 'quick-start', delay: 'PT5M' },
      ],
    });
    const contactId = `contact-${newId()}`;
    const t0 = env.clock.now();
    const event = await env.publish('contacts.contact.created', contactSnapshot(contactId, '+14155550101'));
    // A redelivery of the same event (same CloudEvent id; a new Nats-Msg-Id so the stream keeps it).
    await env.js.publish('contacts.contact.created', JSON.stringify(event), { msgID: `${event.id}-again` });

    const [verify] = await env.waitFor('messaging.cmd.verify', (e) => e.event.data.contactId === contactId);
    await env.handled('CONTACTS', 'scheduling-contacts');
    const runs = await runsOf(contactId);
    expect(runs).toHaveLength(1);
    const run = runs[0];
    expect(run).toMatchObject({
      status: 'ACTIVE',
      automation: { id: automation.id },
      contact: { id: contactId },
      triggerEvent: 'contact.created',
      failure: null,
    });
    expect(run.triggerProperties).toMatchObject({ phone: '+14155550101', firstName: 'Ada' });
    const [verifyStepId, quickStartStepId] = await stepIds(run.id);
    expect(verify!.event.data).toEqual({
      requestId: verifyStepId,
      contactId,
      template: 'welcome-code',
      correlation: { automationId: automation.id, automationRunId: run.id, step: 0, stepId: verifyStepId },
    });
    expect(run.steps).toEqual([
      { index: 0, type: 'START_VERIFICATION', dueAt: t0.toISOString(), status: 'DONE', executedAt: t0.toISOString(), error: null, message: null },
      {
        index: 1,
        type: 'SEND_MESSAGE',
        dueAt: new Date(t0.getTime() + 5 * MINUTE).toISOString(),
        status: 'PENDING',
        executedAt: null,
        error: null,
        message: null,
      },
    ]);

    // 4 min 59 s later nothing more is due.
    advance(5 * MINUTE - 1000);
    expect(await app.server.timers.fireSteps(100)).toBe(0);
    await env.settle(app.deps.db);
    expect(env.of('messaging.cmd.send', (e) => e.event.data.contactId === contactId)).toEqual([]);
    expect((await runsOf(contactId))[0].steps[1].status).toBe('PENDING');

    advance(1000);
    const [send] = await env.waitFor('messaging.cmd.send', (e) => e.event.data.contactId === contactId);
    expect(send!.event.data).toMatchObject({
      requestId: quickStartStepId,
      contactId,
      template: 'quick-start',
      correlation: { automationId: automation.id, automationRunId: run.id, step: 1, stepId: quickStartStepId },
    });
    expect(send!.event.data.variables.event).toMatchObject({ phone: '+14155550101', firstName: 'Ada', attributes: { plan: 'pro' } });

    await env.settle(app.deps.db);
    const [after] = await runsOf(contactId);
    expect(after.status).toBe('COMPLETED');
    expect(after.steps.map((s: { status: string }) => s.status)).toEqual(['DONE', 'DONE']);
    expect(env.of('messaging.cmd.verify', (e) => e.event.data.contactId === contactId)).toHaveLength(1);
    expect(env.of('messaging.cmd.send', (e) => e.event.data.contactId === contactId)).toHaveLength(1);
    const ref = { runId: run.id, automationId: automation.id, contactId, key: null };
    expect(env.of('scheduling.run.started', (e) => e.event.data.runId === run.id).map((e) => e.event.data)).toEqual([ref]);
    expect(env.of('scheduling.run.completed', (e) => e.event.data.runId === run.id).map((e) => e.event.data)).toEqual([ref]);

    // Messaging's status events echo the correlation (scheduling reads its copies): the step learns which message it sent.
    await env.publish(notifySubject('scheduling', 'messaging.message.queued'), {
      messageId: 'msg-quick-start',
      contactId,
      to: '+14155550101',
      from: '+15005550006',
      category: 'TRANSACTIONAL',
      status: 'QUEUED',
      segments: 1,
      correlation: send!.event.data.correlation,
    });
    await waitFor(async () => (await runsOf(contactId))[0].steps[1].message?.id === 'msg-quick-start', { what: 'the step to link its message' });
    const [linked] = await runsOf(contactId);
    expect(linked.steps[0].message).toBeNull();
    expect(linked.status).toBe('COMPLETED');
  });
});

describe('appointment reminders: relativeTo startsAt, runKey, cancelOn', () => {
  let automationId: string;
  const contactId = `contact-${newId()}`;
  const booked = (appointmentId: string, startsAt: Date, extra: Record<string, unknown> = {}) =>
    env.track('appointment.booked', contactId, { appointmentId, startsAt: startsAt.toISOString(), doctor: 'Dr. Okafor', ...extra });
  const runFor = async (key: string, status = 'ACTIVE') =>
    waitFor(async () => (await runsOf(contactId, automationId)).find((r) => r.key === key && r.status === status), { what: `a ${status} run for ${key}` });

  beforeAll(async () => {
    ({ id: automationId } = await created({
      name: 'Appointment reminders',
      triggerEvent: 'appointment.booked',
      runKey: 'appointmentId',
      cancelOn: ['appointment.cancelled'],
      steps: [
        { type: 'SEND_MESSAGE', template: 'appt-24h', category: 'TRANSACTIONAL', relativeTo: 'startsAt', offset: '-PT24H' },
        { type: 'SEND_MESSAGE', template: 'appt-2h', relativeTo: 'startsAt', offset: '-PT2H' },
      ],
    }));
  });

  it('plans both reminders, skips the one already past, replaces on re-booking, and cancels on appointment.cancelled', async () => {
    const now = env.clock.now().getTime();

    // Booked 24 h + 10 s ahead: both reminders pending at startsAt − 24 h and − 2 h.
    const startsAt1 = new Date(now + 24 * HOUR + 10_000);
    await booked('A-1', startsAt1);
    const first = await runFor('A-1');
    expect(first.steps).toMatchObject([
      { index: 0, status: 'PENDING', dueAt: new Date(now + 10_000).toISOString() },
      { index: 1, status: 'PENDING', dueAt: new Date(now + 22 * HOUR + 10_000).toISOString() },
    ]);

    // Booked 3 h ahead: the 24 h reminder is already past.
    const startsAt2 = new Date(now + 3 * HOUR);
    await booked('A-2', startsAt2);
    const second = await runFor('A-2');
    expect(second.steps).toMatchObject([
      { index: 0, status: 'SKIPPED', dueAt: new Date(now - 21 * HOUR).toISOString() },
      { index: 1, status: 'PENDING', dueAt: new Date(now + HOUR).toISOString() },
    ]);
    expect((await runsOf(contactId, automationId)).map((r) => [r.key, r.status])).toEqual([
      ['A-1', 'ACTIVE'],
      ['A-2', 'ACTIVE'],
    ]);

    // Re-booking A-1 to a later time replaces its run; A-2 is untouched.
    const startsAt3 = new Date(now + 30 * HOUR);
    await booked('A-1', startsAt3);
    const moved = await waitFor(async () => (await runsOf(contactId, automationId)).find((r) => r.key === 'A-1' && r.id !== first.id));
    expect(moved.status).toBe('ACTIVE');
    expect(moved.steps).toMatchObject([
      { status: 'PENDING', dueAt: new Date(now + 6 * HOUR).toISOString() },
      { status: 'PENDING', dueAt: new Date(now + 28 * HOUR).toISOString() },
    ]);
    const replaced = (await runsOf(contactId, automationId)).find((r) => r.id === first.id);
    expect(replaced.status).toBe('REPLACED');
    expect(replaced.steps.map((s: { status: string }) => s.status)).toEqual(['CANCELED', 'CANCELED']);
    expect((await runsOf(contactId, automationId)).find((r) => r.id === second.id).status).toBe('ACTIVE');
    await env.waitFor('scheduling.run.canceled', (e) => e.event.data.runId === first.id);

    // appointment.cancelled for A-1 cancels the moved run only.
    await env.track('appointment.cancelled', contactId, { appointmentId: 'A-1' });
    const canceled = await runFor('A-1', 'CANCELED');
    expect(canceled.id).toBe(moved.id);
    expect(canceled.steps.map((s: { status: string }) => s.status)).toEqual(['CANCELED', 'CANCELED']);
    expect((await runsOf(contactId, automationId)).find((r) => r.id === second.id).status).toBe('ACTIVE');
    await env.waitFor('scheduling.run.canceled', (e) => e.event.data.runId === moved.id && /appointment\.cancelled/.test(e.event.data.reason));

    // Past every due time: only A-2's 2 h reminder fires, carrying the trigger's properties.
    const a1Steps = [...(await stepIds(first.id)), ...(await stepIds(moved.id))];
    const [a2Skipped, a2Reminder] = await stepIds(second.id);
    advance(31 * HOUR);
    const [reminder] = await env.waitFor('messaging.cmd.send', (e) => e.event.data.requestId === a2Reminder);
    expect(reminder!.event.data).toMatchObject({
      contactId,
      template: 'appt-2h',
      variables: { event: { appointmentId: 'A-2', startsAt: startsAt2.toISOString(), doctor: 'Dr. Okafor' } },
      correlation: { automationRunId: second.id, step: 1, stepId: a2Reminder },
    });
    expect(await app.server.timers.fireSteps(100)).toBe(0);
    await env.settle(app.deps.db);
    const sent = env.of('messaging.cmd.send', (e) => e.event.data.contactId === contactId).map((e) => e.event.data.requestId);
    expect(sent).toEqual([a2Reminder]);
    expect(sent).not.toContain(a2Skipped);
    expect(a1Steps.filter((id) => sent.includes(id))).toEqual([]);
    const final = await runsOf(contactId, automationId);
    expect(final.map((r) => r.status)).toEqual(['REPLACED', 'COMPLETED', 'CANCELED']);
  });

  it('fires the 24 h reminder at its time and not before', async () => {
    const now = env.clock.now().getTime();
    await booked('A-3', new Date(now + 24 * HOUR + 10_000));
    const run = await runFor('A-3');
    const [dayBefore] = await stepIds(run.id);
    advance(9_000);
    expect(await app.server.timers.fireSteps(100)).toBe(0);
    await env.settle(app.deps.db);
    expect(env.of('messaging.cmd.send', (e) => e.event.data.requestId === dayBefore)).toEqual([]);
    advance(1_000);
    const [reminder] = await env.waitFor('messaging.cmd.send', (e) => e.event.data.requestId === dayBefore);
    expect(reminder!.event.data).toMatchObject({ template: 'appt-24h', category: 'TRANSACTIONAL', variables: { event: { appointmentId: 'A-3' } } });
    // Clean up: cancel what is left so later tests see only their own commands.
    await env.track('appointment.cancelled', contactId, { appointmentId: 'A-3' });
    await runFor('A-3', 'CANCELED');
  });

  it('keeps one ACTIVE run per appointment when a booking and its re-booking are handled at the same time', async () => {
    // The consumer handles many events at once (a backlog after a restart, a quick re-booking).
    const burstContact = `contact-${newId()}`;
    const now = env.clock.now().getTime();
    const keys = Array.from({ length: 30 }, (_, i) => `B-${i}`);
    await Promise.all(
      keys.flatMap((appointmentId) => [
        env.track('appointment.booked', burstContact, { appointmentId, startsAt: new Date(now + 5 * HOUR).toISOString() }),
        env.track('appointment.booked', burstContact, { appointmentId, startsAt: new Date(now + 6 * HOUR).toISOString() }),
      ]),
    );
    await env.handled('EVENTS', 'scheduling-events');
    const runs = await app.deps.db.selectFrom('automation_runs').select(['id', 'run_key', 'status']).where('contact_id', '=', burstContact).execute();
    expect(runs).toHaveLength(60);
    const active = runs.filter((r) => r.status === 'ACTIVE');
    expect(active.map((r) => r.run_key).sort()).toEqual([...keys].sort());
    expect(runs.filter((r) => r.status !== 'ACTIVE').map((r) => r.status)).toEqual(Array(30).fill('REPLACED'));
    const pending = await app.deps.db
      .selectFrom('scheduled_steps')
      .select('run_id')
      .where('status', '=', 'PENDING')
      .where(
        'run_id',
        'in',
        runs.map((r) => r.id),
      )
      .execute();
    expect(new Set(pending.map((p) => p.run_id))).toEqual(new Set(active.map((r) => r.id)));
    // Clean up: these reminders are not part of the other tests.
    for (const appointmentId of keys) await env.track('appointment.cancelled', burstContact, { appointmentId });
    await env.handled('EVENTS', 'scheduling-events');
  });

  it('records a FAILED run naming the property when startsAt is missing or not a date-time, while other automations still run', async () => {
    const confirmation = await created({
      name: 'Booking confirmation',
      triggerEvent: 'appointment.booked',
      steps: [{ type: 'SEND_MESSAGE', template: 'appt-confirmed' }],
    });
    for (const [key, properties] of [
      ['A-missing', { appointmentId: 'A-missing' }],
      ['A-garbage', { appointmentId: 'A-garbage', startsAt: 'tomorrow at noon' }],
      ['A-no-zone', { appointmentId: 'A-no-zone', startsAt: '2026-12-03T15:00:00' }],
    ] as const) {
      const event = await env.track('appointment.booked', contactId, properties);
      const failed = await runFor(key, 'FAILED');
      expect(failed.failure).toContain('"startsAt"');
      expect(failed.steps).toEqual([]);
      if ('startsAt' in properties) expect(failed.failure).toContain(properties.startsAt);
      else expect(failed.failure).toContain('missing');
      // The confirmation automation started its run for the same event and sent at once.
      const [run] = await waitFor(async () => {
        const rows = await app.deps.db
          .selectFrom('automation_runs')
          .selectAll()
          .where('automation_id', '=', confirmation.id)
          .where('trigger_event_id', '=', event.id)
          .execute();
        return rows.length ? rows : undefined;
      });
      const [stepId] = await stepIds(run!.id);
      await env.waitFor('messaging.cmd.send', (e) => e.event.data.requestId === stepId && e.event.data.variables.event.appointmentId === key);
    }
  });
});

describe('which events start runs', () => {
  it('matches triggerFilter by equality: {"days": 30} starts a run for days 30, not 60', async () => {
    const automation = await created({
      name: 'Win-back 30',
      triggerEvent: 'contact.dormant',
      triggerFilter: { days: 30 },
      steps: [{ type: 'SEND_MESSAGE', template: 'winback' }],
    });
    const at60 = `contact-${newId()}`;
    const at30 = `contact-${newId()}`;
    await env.publish('contacts.contact.dormant', { contactId: at60, days: 60, lastActiveAt: '2026-10-01T00:00:00Z' });
    await env.publish('contacts.contact.dormant', { contactId: at30, days: 30, lastActiveAt: '2026-10-31T00:00:00Z' });
    await env.handled('CONTACTS', 'scheduling-contacts');
    expect(await runsOf(at60, automation.id)).toEqual([]);
    const [run] = await runsOf(at30, automation.id);
    expect(run).toMatchObject({ triggerEvent: 'contact.dormant', triggerProperties: { days: 30 } });
  });

  it('message.delivered (built in) starts a run from messaging.message.delivered, once, not again from scheduling’s copy', async () => {
    const automation = await created({
      name: 'After delivery',
      triggerEvent: 'message.delivered',
      triggerFilter: { messageId: 'msg-builtin-1' },
      steps: [{ type: 'SEND_MESSAGE', template: 'plain' }],
    });
    // Deliveries are read only while an automation uses them: the durable appears once this one exists.
    await waitFor(() => env.jsm.consumers.info('MESSAGING', 'scheduling-delivered').then(() => true), { what: 'the scheduling-delivered durable' });
    const contactId = `contact-${newId()}`;
    const delivered = {
      messageId: 'msg-builtin-1',
      contactId,
      to: '+14155550102',
      from: '+15005550006',
      category: 'TRANSACTIONAL',
      status: 'DELIVERED',
      segments: 1,
      correlation: { stepId: 'some-step' },
    };
    // Messaging publishes the status for everyone and, for a message scheduling asked for, a copy (own event id).
    const event = await env.publish('messaging.message.delivered', delivered);
    await env.publish(notifySubject('scheduling', 'messaging.message.delivered'), delivered);
    // Without a contact there is nothing to start a run for.
    await env.publish('messaging.message.delivered', { ...delivered, contactId: null });
    await env.handled('MESSAGING', 'scheduling-delivered');
    await env.handled('MESSAGING', 'scheduling-message-status');
    const runs = await runsOf(contactId, automation.id);
    expect(runs.map((r) => [r.triggerEvent, r.triggerProperties.messageId])).toEqual([['message.delivered', 'msg-builtin-1']]);
    // Nor for anyone else (the contact-less event).
    const all = await app.gql('query($a: ID) { automationRuns(automationId: $a) { id } }', { a: automation.id });
    expect(all.data.automationRuns).toHaveLength(1);
    // Processed under the name of the durable that triggered these before (an upgraded install's replay starts nothing twice).
    const processed = await sql<{ consumer: string }>`select consumer from processed_events where event_id = ${event.id}`.execute(app.deps.db);
    expect(processed.rows.map((r) => r.consumer)).toEqual(['scheduling-messages']);
    await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: false) { id } }', { id: automation.id });
  });

  it('a disabled automation starts nothing; enabled again, it does', async () => {
    const automation = await created({ name: 'Shipping update', triggerEvent: 'order.shipped', steps: [{ type: 'SEND_MESSAGE', template: 'plain' }] });
    const off = await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: false) { enabled } }', { id: automation.id });
    expect(off.data.setAutomationEnabled.enabled).toBe(false);
    const contactId = `contact-${newId()}`;
    await env.track('order.shipped', contactId, { orderId: 'O-1' });
    await env.handled('EVENTS', 'scheduling-events');
    expect(await runsOf(contactId, automation.id)).toEqual([]);

    await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: true) { enabled } }', { id: automation.id });
    await env.track('order.shipped', contactId, { orderId: 'O-2' });
    await env.handled('EVENTS', 'scheduling-events');
    const runs = await runsOf(contactId, automation.id);
    expect(runs.map((r) => r.triggerProperties.orderId)).toEqual(['O-2']);
  });

  it('an automation created after an event was published does not start a run for it when the event is replayed', async () => {
    advance(10 * MINUTE);
    const automation = await created({ name: 'Invoice paid', triggerEvent: 'invoice.paid', steps: [{ type: 'SEND_MESSAGE', template: 'plain' }] });
    const createdAt = Date.parse(automation.createdAt);
    const contactId = `contact-${newId()}`;
    // An event from 5 minutes before the automation existed, delivered only now (a replay).
    const old = await env.track('invoice.paid', contactId, { invoiceId: 'I-old' }, { time: new Date(createdAt - 5 * MINUTE) });
    await env.handled('EVENTS', 'scheduling-events');
    const processed = await sql<{ n: number }>`select count(*)::int as n from processed_events where event_id = ${old.id}`.execute(app.deps.db);
    expect(processed.rows[0]!.n).toBe(1);
    expect(await runsOf(contactId, automation.id)).toEqual([]);
    // A new event starts one.
    await env.track('invoice.paid', contactId, { invoiceId: 'I-new' });
    await env.handled('EVENTS', 'scheduling-events');
    expect((await runsOf(contactId, automation.id)).map((r) => r.triggerProperties.invoiceId)).toEqual(['I-new']);
  });
});

describe('erasure before the contact’s other events', () => {
  // The erasure consumer and the trigger consumers are separate durables: contacts.contact.deleted
  // can be handled before the same contact's contact.created or application events.
  it('starts no run and sends nothing for a contact whose deletion was handled first', async () => {
    const onboarding = await created({
      name: 'Onboarding after erasure',
      triggerEvent: 'contact.created',
      steps: [{ type: 'SEND_MESSAGE', template: 'plain' }],
    });
    const follow = await created({
      name: 'Order follow-up',
      triggerEvent: 'order.placed',
      steps: [{ type: 'SEND_MESSAGE', template: 'plain', delay: 'PT1H' }],
    });
    const erased = `contact-${newId()}`;
    const control = `contact-${newId()}`;

    await env.publish('contacts.contact.deleted', { contactId: erased });
    await env.handled('CONTACTS', 'scheduling-contact-erasure');
    // Late events of the erased contact, and the same events of another contact.
    for (const contactId of [erased, control]) {
      await env.publish('contacts.contact.created', contactSnapshot(contactId, '+14155550177'));
      await env.track('order.placed', contactId, { orderId: `O-${contactId}` });
    }
    await env.handled('CONTACTS', 'scheduling-contacts');
    await env.handled('EVENTS', 'scheduling-events');

    const ours = [onboarding.id, follow.id];
    expect((await runsOf(control)).filter((r) => ours.includes(r.automation.id))).toHaveLength(2);
    expect(await runsOf(erased)).toEqual([]);
    expect(await app.deps.db.selectFrom('automation_runs').select('id').where('contact_id', '=', erased).execute()).toEqual([]);
    advance(HOUR);
    await env.waitFor('messaging.cmd.send', (e) => e.event.data.contactId === control && e.event.data.correlation.automationId === follow.id);
    expect(await app.server.timers.fireSteps(100)).toBe(0);
    await env.settle(app.deps.db);
    expect(env.recorded.filter((e) => e.event.data?.contactId === erased)).toEqual([]);
  });

  it('starts no run for an event handled while the erasure is still being committed', async () => {
    const automation = await created({ name: 'Payment receipt', triggerEvent: 'payment.received', steps: [{ type: 'SEND_MESSAGE', template: 'plain' }] });
    const contactId = `contact-${newId()}`;
    // An erasure that has deleted the contact's rows but not committed yet.
    let commit!: () => void;
    let erasedUncommitted!: () => void;
    const uncommitted = new Promise<void>((resolve) => (erasedUncommitted = resolve));
    const erasure = app.deps.db.transaction().execute(async (trx) => {
      await eraseContact(trx, contactId, env.clock.now());
      erasedUncommitted();
      await new Promise<void>((resolve) => (commit = resolve));
    });
    await uncommitted;
    await env.track('payment.received', contactId, { paymentId: 'P-1' });
    // The trigger consumer either handles the event or waits for the erasure to commit.
    const waitingForLock = sql<{ n: number }>`
      select count(*)::int as n from pg_locks
       where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`;
    await waitFor(
      async () => {
        if ((await waitingForLock.execute(app.deps.db)).rows[0]!.n > 0) return true;
        const info = await env.jsm.consumers.info('EVENTS', 'scheduling-events');
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      { what: 'the event to be handled or to wait for the erasure' },
    );
    commit();
    await erasure;
    await env.handled('EVENTS', 'scheduling-events');
    expect(await runsOf(contactId, automation.id)).toEqual([]);
  });

  it('the timer loop drops, never fires, steps of an erased contact', async () => {
    // A run that exists for an erased contact all the same (written before the erasure was
    // recorded, restored from a backup): its due step is deleted, not sent.
    const automation = await created({ name: 'Stray', triggerEvent: 'stray.tick', steps: [{ type: 'SEND_MESSAGE', template: 'plain' }] });
    const contactId = `contact-${newId()}`;
    await env.publish('contacts.contact.deleted', { contactId });
    await env.handled('CONTACTS', 'scheduling-contact-erasure');
    const runId = newId();
    const now = env.clock.now();
    await app.deps.db
      .insertInto('automation_runs')
      .values({ id: runId, automation_id: automation.id, contact_id: contactId, created_at: now, updated_at: now })
      .execute();
    await app.deps.db.insertInto('scheduled_steps').values({ id: newId(), run_id: runId, step_index: 0, type: 'SEND_MESSAGE', due_at: now }).execute();
    advance(MINUTE);
    await waitFor(async () => (await app.deps.db.selectFrom('automation_runs').select('id').where('id', '=', runId).execute()).length === 0, {
      what: 'the stray run to be dropped',
    });
    await env.settle(app.deps.db);
    expect(env.recorded.filter((e) => e.event.data?.contactId === contactId)).toEqual([]);
  });
});

describe('switching an automation off and on', () => {
  it('starts nothing for an event from while it was off, even when that event is read after it is back on', async () => {
    const automation = await created({ name: 'Order follow-up', triggerEvent: 'order.delivered', steps: [{ type: 'SEND_MESSAGE', template: 'plain' }] });
    const offAt = env.clock.now();
    expect((await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: false) { id } }', { id: automation.id })).errors).toBeUndefined();
    advance(10 * 60_000);
    expect((await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: true) { id } }', { id: automation.id })).errors).toBeUndefined();
    const late = `contact-${newId()}`;
    const fresh = `contact-${newId()}`;
    // Happened five minutes into the pause, read only now (a lagging producer, a replayed stream).
    await env.track('order.delivered', late, {}, { time: new Date(offAt.getTime() + 5 * 60_000) });
    await env.track('order.delivered', fresh, {});
    await env.handled('EVENTS', 'scheduling-events');
    expect(await runsOf(late, automation.id)).toEqual([]);
    expect(await runsOf(fresh, automation.id)).toHaveLength(1);
    // Enabling what is already on does not move its start.
    const before = await app.deps.db.selectFrom('automations').select('enabled_at').where('id', '=', automation.id).executeTakeFirstOrThrow();
    advance(60_000);
    await app.gql('mutation($id: ID!) { setAutomationEnabled(id: $id, enabled: true) { id } }', { id: automation.id });
    const after = await app.deps.db.selectFrom('automations').select('enabled_at').where('id', '=', automation.id).executeTakeFirstOrThrow();
    expect(after.enabled_at.getTime()).toBe(before.enabled_at.getTime());
  });
});
