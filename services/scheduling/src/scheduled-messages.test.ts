import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type Subscription,
} from 'nats';
import { sql } from 'kysely';
import { createEvent, ensureStream, newId, publishEvent, serveRpc, type CloudEvent, type ContactSummary, type StreamName } from '@textloop/events';
import { buildDeps, ManualClock, silentLogger, type ServiceDeps } from '@textloop/service-kit';
import { createTestDatabase, startTestNats, waitFor, type TestNats } from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer, type SchedulingInstance } from './server';

// ---------------------------------------------------------------------------------------------
// Harness (the same block in every scheduling integration test file): real Postgres, a private
// real NATS, a ManualClock. Messaging, feedback and contacts are stood in for at their NATS
// boundary: their rpc.* methods answer from `world`, and the commands scheduling sends them are
// read back from their JetStream streams.
// ---------------------------------------------------------------------------------------------

interface GraphQLResult {
  data?: any;
  errors?: Array<{ message: string; extensions?: { code?: string; field?: string; [k: string]: unknown } }>;
}

interface Recorded {
  stream: StreamName;
  subject: string;
  seq: number;
  event: CloudEvent<any>;
}

/** What the other services know: templates (with the variables their bodies read), surveys, contacts. */
interface World {
  templates: Map<string, { category: string; variables: string[] }>;
  surveys: Map<string, string>;
  contacts: Map<string, ContactSummary>;
}

interface Instance {
  deps: ServiceDeps<Database> & { close(): Promise<void> };
  server: SchedulingInstance;
  url: string;
  gql(query: string, variables?: Record<string, unknown>): Promise<GraphQLResult>;
  stop(): Promise<void>;
}

interface Env {
  clock: ManualClock;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  world: World;
  recorded: Recorded[];
  /** A scheduling instance on this environment's database and NATS. */
  start(env?: NodeJS.ProcessEnv): Promise<Instance>;
  /** Publishes a CloudEvent (time = the manual clock unless given) and returns it. */
  publish(subject: string, data: unknown, options?: { time?: Date; id?: string }): Promise<CloudEvent<any>>;
  /** Publishes an application event on events.<name>. */
  track(name: string, contactId: string, properties: Record<string, unknown>, options?: { time?: Date }): Promise<CloudEvent<any>>;
  /** Waits until a durable consumer of scheduling has handled everything in its stream so far. */
  handled(stream: StreamName, durable: string): Promise<void>;
  /** Waits until the outbox is empty and every stream scheduling writes to has been read to its end. */
  settle(db: ServiceDeps<Database>['db']): Promise<void>;
  of(subject: string, predicate?: (e: Recorded) => boolean): Recorded[];
  waitFor(subject: string, predicate?: (e: Recorded) => boolean, count?: number): Promise<Recorded[]>;
  close(): Promise<void>;
}

const RECORDED_STREAMS: StreamName[] = ['MESSAGING', 'FEEDBACK', 'SCHEDULING'];

async function startEnv(prefix: string, clock = new ManualClock('2026-12-01T08:00:00.000Z')): Promise<Env> {
  const nats: TestNats = await startTestNats();
  const database = await createTestDatabase(prefix);
  const nc = await connect({ servers: nats.url });
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  // The streams other services own exist before scheduling starts, as in a running platform.
  for (const stream of ['CONTACTS', 'EVENTS', 'MESSAGING', 'FEEDBACK', 'SCHEDULING'] as const) await ensureStream(jsm, stream);

  const world: World = { templates: new Map(), surveys: new Map(), contacts: new Map() };
  const rpc: Subscription[] = [
    serveRpc(
      nc,
      'rpc.messaging.templates',
      'messaging',
      async ({ names }) => ({ templates: names.flatMap((name) => (world.templates.has(name) ? [{ name, ...world.templates.get(name)! }] : [])) }),
      silentLogger,
    ),
    serveRpc(
      nc,
      'rpc.feedback.surveys',
      'feedback',
      async ({ ids }) => ({ surveys: ids.flatMap((surveyId) => (world.surveys.has(surveyId) ? [{ surveyId, name: world.surveys.get(surveyId)! }] : [])) }),
      silentLogger,
    ),
    serveRpc(
      nc,
      'rpc.contacts.get',
      'contacts',
      async ({ ids }) => ({ contacts: ids.flatMap((id) => (world.contacts.has(id) ? [world.contacts.get(id)!] : [])) }),
      silentLogger,
    ),
  ];

  const recorded: Recorded[] = [];
  const lastSeq = new Map<StreamName, number>();
  const readers: ConsumerMessages[] = [];
  for (const stream of RECORDED_STREAMS) {
    const name = `test-recorder-${stream.toLowerCase()}`;
    await jsm.consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
    const messages = await (await js.consumers.get(stream, name)).consume();
    readers.push(messages);
    void (async () => {
      for await (const m of messages) {
        recorded.push({ stream, subject: m.subject, seq: m.seq, event: JSON.parse(m.string()) });
        lastSeq.set(stream, m.seq);
      }
    })().catch(() => {});
  }

  const instances = new Set<Instance>();
  const env: Env = {
    clock,
    nc,
    js,
    jsm,
    world,
    recorded,
    async start(extraEnv = {}) {
      const deps = await buildDeps<Database>({
        name: 'scheduling',
        migrations,
        streams: ['SCHEDULING'],
        target: { kind: 'postgres', url: database.url },
        natsUrl: nats.url,
        logger: silentLogger,
        clock,
        env: { ...extraEnv },
      });
      const server = createServer(deps);
      const { url } = await server.http.listen(0);
      await server.start();
      let stopped = false;
      const instance: Instance = {
        deps,
        server,
        url,
        async gql(query, variables = {}) {
          const res = await fetch(`${url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query, variables }),
          });
          return (await res.json()) as GraphQLResult;
        },
        async stop() {
          if (stopped) return;
          stopped = true;
          instances.delete(instance);
          await server.http.close();
          await server.stop();
          await deps.close();
        },
      };
      instances.add(instance);
      return instance;
    },
    async publish(subject, data, options = {}) {
      const event = createEvent({ source: 'textloop/test', type: subject, data, time: options.time ?? clock.now(), ...(options.id ? { id: options.id } : {}) });
      await publishEvent(js, subject, event);
      return event;
    },
    async track(name, contactId, properties, options = {}) {
      const time = options.time ?? clock.now();
      return env.publish(`events.${name}`, { eventId: newId(), contactId, name, properties, occurredAt: time.toISOString() }, { time });
    },
    async handled(stream, durable) {
      await waitFor(
        async () => {
          const info = await jsm.consumers.info(stream, durable);
          return info.num_pending === 0 && info.num_ack_pending === 0;
        },
        { what: `${durable} to handle ${stream}`, timeoutMs: 15_000 },
      );
    },
    async settle(db) {
      await waitFor(async () => (await sql<{ n: number }>`select count(*)::int as n from outbox`.execute(db)).rows[0]!.n === 0, {
        what: 'the outbox to drain',
        timeoutMs: 20_000,
      });
      for (const stream of RECORDED_STREAMS) {
        const last = (await jsm.streams.info(stream)).state.last_seq;
        await waitFor(() => (lastSeq.get(stream) ?? 0) >= last, { what: `the recorder to read ${stream}` });
      }
    },
    of(subject, predicate = () => true) {
      return recorded.filter((e) => e.subject === subject && predicate(e));
    },
    async waitFor(subject, predicate = () => true, count = 1) {
      return waitFor(
        () => {
          const found = env.of(subject, predicate);
          return found.length >= count ? found : undefined;
        },
        { what: `${count} × ${subject}`, timeoutMs: 20_000, intervalMs: 20 },
      );
    },
    async close() {
      for (const instance of [...instances]) await instance.stop();
      await Promise.allSettled(readers.map((r) => r.close()));
      rpc.forEach((s) => s.unsubscribe());
      await nc.close();
      await database.drop();
      await nats.stop();
    },
  };
  return env;
}

function expectError(res: GraphQLResult, code: string, field?: string): string {
  expect(res.data ?? null, JSON.stringify(res)).toBeNull();
  expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res.errors)).toBe(code);
  if (field !== undefined) expect(res.errors?.[0]?.extensions?.field).toBe(field);
  return res.errors![0]!.message;
}

// ---------------------------------------------------------------------------------------------

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

    // Messaging reports the message: queued links it, failed marks the scheduled message FAILED.
    await env.publish('messaging.message.queued', statusEvent('msg-sm-1', command!.event.data.correlation, 'QUEUED'));
    await waitFor(async () => (await find(toContact.id)).message?.id === 'msg-sm-1', { what: 'the scheduled message to link its message' });
    expect((await find(toContact.id)).status).toBe('SENT');
    await env.publish('messaging.message.failed', statusEvent('msg-sm-1', command!.event.data.correlation, 'FAILED', 'TEMPLATE_VARIABLE_MISSING'));
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
});
