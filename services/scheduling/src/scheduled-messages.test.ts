import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifySubject } from '@textloop/events';
import { waitFor } from '@textloop/service-kit/testing';
import { expectError, startEnv, type Env, type GraphQLResult, type Instance } from './test-support';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const SM_FIELDS = 'id to sendAt status error createdAt contact { id } message { id }';

let env: Env;
let app: Instance;
const known = { contactId: 'contact-known', phone: '+14155550111', timezone: 'Europe/Berlin', firstName: 'Lin', subscribed: true };

beforeAll(async () => {
  env = await startEnv('sched_messages');
  env.world.contacts.set(known.contactId, known);
  env.world.templates.set('order-reminder', { category: 'TRANSACTIONAL', variables: ['orderId'] });
  env.world.templates.set('welcome', { category: 'TRANSACTIONAL', variables: [] });
  app = await env.start();
});

afterAll(async () => {
  await env?.close();
});

function at(msFromNow: number): string {
  return new Date(env.clock.now().getTime() + msFromNow).toISOString();
}

async function schedule(input: Record<string, unknown>): Promise<GraphQLResult> {
  return app.gql(`mutation($input: ScheduleMessageInput!) { scheduleMessage(input: $input) { ${SM_FIELDS} } }`, { input });
}

async function scheduled(input: Record<string, unknown>): Promise<any> {
  const res = await schedule(input);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.scheduleMessage;
}

async function find(id: string): Promise<any> {
  const res = await app.gql(`query($id: ID!) { scheduledMessage(id: $id) { ${SM_FIELDS} } }`, { id });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.scheduledMessage;
}

async function cancel(id: string): Promise<GraphQLResult> {
  return app.gql(`mutation($id: ID!) { cancelScheduledMessage(id: $id) { ${SM_FIELDS} } }`, { id });
}

function advance(ms: number): void {
  env.clock.advance(ms);
  app.server.timers.kick();
}

const sends = (id: string) => env.of('messaging.cmd.send', (e) => e.event.data.requestId === id);

function statusEvent(messageId: string, correlation: Record<string, unknown>, status: string, errorCode?: string) {
  return {
    messageId,
    contactId: known.contactId,
    to: known.phone,
    from: '+15005550006',
    category: 'TRANSACTIONAL',
    status,
    segments: 1,
    correlation,
    errorCode,
  };
}

describe('scheduleMessage', () => {
  it('rejects a bad time, recipient or template with the contract code, and writes nothing', async () => {
    const rows = () => app.deps.db.selectFrom('scheduled_messages').select('id').execute();
    const before = (await rows()).length;
    const base = { to: '+14155550123', body: 'Hello', sendAt: at(HOUR) };
    expectError(await schedule({ ...base, sendAt: at(-MINUTE) }), 'BAD_USER_INPUT', 'sendAt');
    expectError(await schedule({ ...base, sendAt: at(0) }), 'BAD_USER_INPUT', 'sendAt');
    expectError(await schedule({ ...base, sendAt: at(400 * DAY) }), 'BAD_USER_INPUT', 'sendAt');
    expectError(await schedule({ ...base, sendAt: 'next tuesday' }), 'BAD_USER_INPUT', 'sendAt');
    expectError(await schedule({ ...base, contactId: known.contactId }), 'BAD_USER_INPUT', 'to');
    expectError(await schedule({ body: 'Hello', sendAt: at(HOUR) }), 'BAD_USER_INPUT', 'to');
    expect(expectError(await schedule({ contactId: 'contact-nobody', body: 'Hello', sendAt: at(HOUR) }), 'NOT_FOUND')).toContain('contact-nobody');
    expect(expectError(await schedule({ contactId: known.contactId, template: 'no-such-template', sendAt: at(HOUR) }), 'NOT_FOUND')).toContain(
      'no-such-template',
    );
    expect(await rows()).toHaveLength(before);

    // Just inside a year is fine.
    const ok = await scheduled({ ...base, sendAt: at(364 * DAY) });
    expect(ok).toMatchObject({ status: 'PENDING', to: '+14155550123', contact: null, message: null, createdAt: env.clock.now().toISOString() });
    await cancel(ok.id);
  });

  it('returns the first scheduled message for a repeated idempotencyKey', async () => {
    const input = { contactId: known.contactId, template: 'welcome', sendAt: at(2 * HOUR), idempotencyKey: 'welcome-known-1' };
    const first = await scheduled(input);
    const again = await scheduled({ ...input, sendAt: at(3 * HOUR) });
    expect(again.id).toBe(first.id);
    expect(again.sendAt).toBe(first.sendAt);
    const rows = await app.deps.db.selectFrom('scheduled_messages').select('id').where('idempotency_key', '=', 'welcome-known-1').execute();
    expect(rows).toHaveLength(1);
    await cancel(first.id);
  });

  it('fires at sendAt, not before, as messaging.cmd.send with requestId = its id', async () => {
    const toContact = await scheduled({
      contactId: known.contactId,
      template: 'order-reminder',
      variables: { orderId: 'A-1001' },
      category: 'MARKETING',
      sendAt: at(HOUR),
    });
    expect(toContact).toMatchObject({ status: 'PENDING', to: known.phone, contact: { id: known.contactId }, sendAt: at(HOUR) });
    const toNumber = await scheduled({ to: '+1 (415) 555-0199', body: 'Your table is ready', sendAt: at(HOUR) });
    expect(toNumber.to).toBe('+14155550199');

    advance(HOUR - 1000);
    expect(await app.server.timers.fireMessages(100)).toBe(0);
    await env.settle(app.deps.db);
    expect([...sends(toContact.id), ...sends(toNumber.id)]).toEqual([]);
    expect((await find(toContact.id)).status).toBe('PENDING');

    advance(1000);
    const [command] = await env.waitFor('messaging.cmd.send', (e) => e.event.data.requestId === toContact.id);
    expect(command!.event.data).toEqual({
      requestId: toContact.id,
      contactId: known.contactId,
      template: 'order-reminder',
      variables: { orderId: 'A-1001' },
      category: 'MARKETING',
      correlation: { scheduledMessageId: toContact.id },
    });
    const [byNumber] = await env.waitFor('messaging.cmd.send', (e) => e.event.data.requestId === toNumber.id);
    expect(byNumber!.event.data).toEqual({
      requestId: toNumber.id,
      to: '+14155550199',
      body: 'Your table is ready',
      variables: {},
      category: 'TRANSACTIONAL',
      correlation: { scheduledMessageId: toNumber.id },
    });
    expect((await find(toContact.id)).status).toBe('SENT');
    await env.settle(app.deps.db);
    expect(sends(toContact.id)).toHaveLength(1);

    // Already sent: too late to cancel.
    expectError(await cancel(toContact.id), 'CONFLICT');

    // Messaging reports the message (on scheduling's copies): queued links it, failed marks the scheduled message FAILED.
    await env.publish(notifySubject('scheduling', 'messaging.message.queued'), statusEvent('msg-sm-1', command!.event.data.correlation, 'QUEUED'));
    await waitFor(async () => (await find(toContact.id)).message?.id === 'msg-sm-1', { what: 'the scheduled message to link its message' });
    expect((await find(toContact.id)).status).toBe('SENT');
    await env.publish(
      notifySubject('scheduling', 'messaging.message.failed'),
      statusEvent('msg-sm-1', command!.event.data.correlation, 'FAILED', 'TEMPLATE_VARIABLE_MISSING'),
    );
    const failed = await waitFor(async () => {
      const row = await find(toContact.id);
      return row.status === 'FAILED' ? row : undefined;
    });
    expect(failed.message).toEqual({ id: 'msg-sm-1' });
    expect(failed.error).toContain('TEMPLATE_VARIABLE_MISSING');
  });

  it('cancels a pending message, which then never fires', async () => {
    const canceled = await scheduled({ contactId: known.contactId, template: 'welcome', sendAt: at(30 * MINUTE) });
    const control = await scheduled({ contactId: known.contactId, template: 'welcome', sendAt: at(30 * MINUTE) });
    const res = await cancel(canceled.id);
    expect(res.errors).toBeUndefined();
    expect(res.data.cancelScheduledMessage).toMatchObject({ id: canceled.id, status: 'CANCELED' });
    // Canceling twice is harmless; an unknown id is NOT_FOUND.
    expect((await cancel(canceled.id)).data.cancelScheduledMessage.status).toBe('CANCELED');
    expectError(await cancel('no-such-scheduled-message'), 'NOT_FOUND');

    advance(HOUR);
    await env.waitFor('messaging.cmd.send', (e) => e.event.data.requestId === control.id);
    expect(await app.server.timers.fireMessages(100)).toBe(0);
    await env.settle(app.deps.db);
    expect(sends(canceled.id)).toEqual([]);
    expect((await find(canceled.id)).status).toBe('CANCELED');
  });
});

describe('erasure', () => {
  it('contacts.contact.deleted removes the contact’s runs and scheduled messages, and nobody else’s', async () => {
    const other = { ...known, contactId: 'contact-other', phone: '+14155550112' };
    env.world.contacts.set(other.contactId, other);
    const automation = await app.gql('mutation($input: AutomationInput!) { createAutomation(input: $input) { id } }', {
      input: { name: 'Follow-up', triggerEvent: 'order.placed', steps: [{ type: 'SEND_MESSAGE', template: 'welcome', delay: 'P1D' }] },
    });
    expect(automation.errors).toBeUndefined();
    for (const contactId of [known.contactId, other.contactId]) {
      await env.track('order.placed', contactId, { orderId: `O-${contactId}` });
      await scheduled({ contactId, template: 'welcome', sendAt: at(DAY) });
    }
    await env.handled('EVENTS', 'scheduling-events');
    const rowsOf = async (contactId: string) => ({
      runs: (await app.deps.db.selectFrom('automation_runs').select('id').where('contact_id', '=', contactId).execute()).length,
      steps: (
        await app.deps.db
          .selectFrom('scheduled_steps')
          .innerJoin('automation_runs', 'automation_runs.id', 'scheduled_steps.run_id')
          .select('scheduled_steps.id')
          .where('contact_id', '=', contactId)
          .execute()
      ).length,
      messages: (await app.deps.db.selectFrom('scheduled_messages').select('id').where('contact_id', '=', contactId).execute()).length,
    });
    expect(await rowsOf(known.contactId)).toMatchObject({ runs: 1, steps: 1 });
    const otherBefore = await rowsOf(other.contactId);
    expect(otherBefore).toMatchObject({ runs: 1, steps: 1, messages: 1 });

    await env.publish('contacts.contact.deleted', { contactId: known.contactId });
    await waitFor(
      async () => {
        const left = await rowsOf(known.contactId);
        return left.runs === 0 && left.steps === 0 && left.messages === 0;
      },
      { what: 'the contact to be erased' },
    );
    expect(await rowsOf(other.contactId)).toEqual(otherBefore);
    const res = await app.gql('query($id: ID!) { automationRuns(contactId: $id) { id } }', { id: known.contactId });
    expect(res.data.automationRuns).toEqual([]);
  });

  it('refuses to schedule for an erased contact, even while contacts still answers for it, and never fires one', async () => {
    const gone = { ...known, contactId: 'contact-gone', phone: '+14155550113' };
    // Contacts has not caught up yet (or answers from a stale replica): rpc.contacts.get still finds it.
    env.world.contacts.set(gone.contactId, gone);
    await env.publish('contacts.contact.deleted', { contactId: gone.contactId });
    await env.handled('CONTACTS', 'scheduling-contact-erasure');
    expect(expectError(await schedule({ contactId: gone.contactId, template: 'welcome', sendAt: at(HOUR) }), 'NOT_FOUND')).toContain(gone.contactId);
    expect(await app.deps.db.selectFrom('scheduled_messages').select('id').where('contact_id', '=', gone.contactId).execute()).toEqual([]);

    // A message that exists for it all the same (written before the erasure was recorded): dropped when due, not sent.
    const id = `sm-${gone.contactId}`;
    const now = env.clock.now();
    await app.deps.db
      .insertInto('scheduled_messages')
      .values({
        id,
        contact_id: gone.contactId,
        to_number: gone.phone,
        template: 'welcome',
        category: 'TRANSACTIONAL',
        send_at: now,
        created_at: now,
        updated_at: now,
      })
      .execute();
    advance(MINUTE);
    await waitFor(async () => (await app.deps.db.selectFrom('scheduled_messages').select('id').where('id', '=', id).execute()).length === 0, {
      what: 'the stray scheduled message to be dropped',
    });
    await env.settle(app.deps.db);
    expect(sends(id)).toEqual([]);
  });
});
