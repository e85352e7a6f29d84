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

const HOUR = 3_600_000;
const MINUTE = 60_000;

function worldWithTemplates(env: Env): void {
  env.world.templates.set('bulk-first', { category: 'TRANSACTIONAL', variables: [] });
  env.world.templates.set('bulk-second', { category: 'TRANSACTIONAL', variables: [] });
  env.world.surveys.set('survey-bulk', 'Bulk NPS');
}

async function createAutomation(instance: Instance, input: Record<string, unknown>): Promise<string> {
  const res = await instance.gql('mutation($input: AutomationInput!) { createAutomation(input: $input) { id } }', { input });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.createAutomation.id;
}

async function count(db: Instance['deps']['db'], query: ReturnType<typeof sql<{ n: number }>>): Promise<number> {
  return (await query.execute(db)).rows[0]!.n;
}

/** requestIds of every command scheduling sent, with how often each was sent. */
function commandCounts(env: Env): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of env.recorded) {
    if (!['messaging.cmd.send', 'messaging.cmd.verify', 'feedback.cmd.send_survey'].includes(e.subject)) continue;
    counts.set(e.event.data.requestId, (counts.get(e.event.data.requestId) ?? 0) + 1);
  }
  return counts;
}

describe('two scheduling instances on one database', () => {
  let env: Env;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    env = await startEnv('sched_timers_pair');
    worldWithTemplates(env);
    // Small batches, so the two instances claim the 300 due steps in many interleaved transactions.
    a = await env.start({ TIMER_BATCH_SIZE: '10' });
    b = await env.start({ TIMER_BATCH_SIZE: '10' });
  });

  afterAll(async () => {
    await env?.close();
  });

  it('fires each of 300 steps due at the same time exactly once, and completes every run', async () => {
    // 100 runs × 3 steps, all due one hour after the trigger: two messages and a survey.
    const automationId = await createAutomation(a, {
      name: 'Bulk',
      triggerEvent: 'bulk.tick',
      steps: [
        { type: 'SEND_MESSAGE', template: 'bulk-first', delay: 'PT1H' },
        { type: 'SEND_MESSAGE', template: 'bulk-second' },
        { type: 'SEND_SURVEY', surveyId: 'survey-bulk' },
      ],
    });
    const contacts = Array.from({ length: 100 }, (_, i) => `contact-bulk-${i}`);
    for (const contactId of contacts) await env.track('bulk.tick', contactId, {});
    await env.handled('EVENTS', 'scheduling-events');
    const steps = sql<{ n: number }>`select count(*)::int as n from scheduled_steps where status = 'PENDING'`;
    expect(await count(a.deps.db, steps)).toBe(300);
    expect(await a.server.timers.fireSteps(1000)).toBe(0);

    env.clock.advance(HOUR);
    a.server.timers.kick();
    b.server.timers.kick();
    await waitFor(() => commandCounts(env).size >= 300, { what: '300 commands', timeoutMs: 30_000 });
    await env.settle(a.deps.db);

    const counts = commandCounts(env);
    expect(counts.size).toBe(300);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(env.of('messaging.cmd.send')).toHaveLength(200);
    expect(env.of('feedback.cmd.send_survey')).toHaveLength(100);
    const stepIds = (await a.deps.db.selectFrom('scheduled_steps').select(['id', 'status']).execute()).map((s) => [s.id, s.status]);
    expect(new Set(stepIds.map(([id]) => id))).toEqual(new Set(counts.keys()));
    expect(stepIds.filter(([, status]) => status !== 'DONE')).toEqual([]);
    // Both instances took part, and between them fired each step once.
    expect(a.server.timers.stats.steps).toBeGreaterThan(0);
    expect(b.server.timers.stats.steps).toBeGreaterThan(0);
    expect(a.server.timers.stats.steps + b.server.timers.stats.steps).toBe(300);
    // Each run completes once, even when its steps were fired by different instances at the same time.
    const runs = await a.deps.db.selectFrom('automation_runs').select(['id', 'status']).where('automation_id', '=', automationId).execute();
    expect(runs.filter((r) => r.status !== 'COMPLETED')).toEqual([]);
    const completed = env.of('scheduling.run.completed').map((e) => e.event.data.runId);
    expect(completed.sort()).toEqual(runs.map((r) => r.id).sort());
  });
});

describe('restart', () => {
  let env: Env;

  beforeAll(async () => {
    env = await startEnv('sched_timers_restart');
    worldWithTemplates(env);
  });

  afterAll(async () => {
    await env?.close();
  });

  it('fires every step once across a restart, including commands committed but not yet published', async () => {
    const first = await env.start();
    await createAutomation(first, {
      name: 'Two reminders',
      triggerEvent: 'restart.tick',
      steps: [
        { type: 'SEND_MESSAGE', template: 'bulk-first', delay: 'PT10M' },
        { type: 'SEND_MESSAGE', template: 'bulk-second', delay: 'PT10M' },
      ],
    });
    for (let i = 0; i < 20; i++) await env.track('restart.tick', `contact-restart-${i}`, { i });
    await env.handled('EVENTS', 'scheduling-events');

    // The first steps fire, but the process dies before its outbox relay publishes them.
    await first.deps.outbox.stop();
    env.clock.advance(10 * MINUTE);
    first.server.timers.kick();
    const done = sql<{ n: number }>`select count(*)::int as n from scheduled_steps where status = 'DONE'`;
    await waitFor(async () => (await count(first.deps.db, done)) === 20, { what: 'the first steps to fire' });
    expect(await count(first.deps.db, sql<{ n: number }>`select count(*)::int as n from outbox where subject = 'messaging.cmd.send'`)).toBe(20);
    await first.stop();
    expect(commandCounts(env).size).toBe(0);

    // Down while the second steps come due.
    env.clock.advance(15 * MINUTE);
    const second = await env.start();
    await waitFor(() => commandCounts(env).size >= 40, { what: '40 commands after the restart' });
    await env.settle(second.deps.db);
    const counts = commandCounts(env);
    expect(counts.size).toBe(40);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    const steps = await second.deps.db.selectFrom('scheduled_steps').select(['id', 'status']).execute();
    expect(steps.filter((s) => s.status !== 'DONE')).toEqual([]);
    expect(new Set(steps.map((s) => s.id))).toEqual(new Set(counts.keys()));
    const runs = await second.deps.db.selectFrom('automation_runs').select('status').execute();
    expect(runs.map((r) => r.status)).toEqual(Array(20).fill('COMPLETED'));
  });
});
