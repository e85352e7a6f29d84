import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection, type Subscription } from 'nats';
import { ensureStream, newId, serveRpc, type CloudEvent, type ContactSummary, type RpcRequest, type StreamName } from '@textloop/events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDeps, ManualClock, silentLogger, type DatabaseTarget, type ServiceDeps } from '@textloop/service-kit';
import {
  createTestDatabase,
  pickKnown,
  postGraphQL,
  publishTestEvent,
  startStreamRecorder,
  startTestNats,
  waitForConsumerHandled,
  waitForOutboxEmpty,
  type GraphQLResult,
  type Recorded,
  type TestNats,
} from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer, type SchedulingInstance } from './server';

export { expectError, type GraphQLResult, type Recorded } from '@textloop/service-kit/testing';

// ---------------------------------------------------------------------------------------------
// Harness shared by the scheduling integration test files: real Postgres, a private
// real NATS, a ManualClock. Messaging, feedback and contacts are stood in for at their NATS
// boundary: their rpc.* methods answer from `world`, and the commands scheduling sends them are
// read back from their JetStream streams.
// ---------------------------------------------------------------------------------------------

/** What the other services know: templates (with the variables their bodies read), surveys, contacts. */
export interface World {
  templates: Map<string, { category: string; variables: string[] }>;
  surveys: Map<string, string>;
  contacts: Map<string, ContactSummary>;
  /** contacts' tags and days of inactivity, for rpc.contacts.audience */
  profiles: Map<string, { tags: string[]; inactiveDays: number }>;
  /** every rpc.contacts.audience request, in order */
  audienceRequests: Array<RpcRequest<'rpc.contacts.audience'>>;
  /** when set and returning a message, that audience request fails with it */
  audienceFailure?: (request: RpcRequest<'rpc.contacts.audience'>, index: number) => string | undefined;
}

/** A contact the stand-in contacts service knows, with its tags and inactivity; returns its id. */
export function addContact(
  world: World,
  contactId: string,
  options: { tags?: string[]; inactiveDays?: number; country?: string; subscribed?: boolean; firstName?: string } = {},
): string {
  const n = world.contacts.size + 1;
  world.contacts.set(contactId, {
    contactId,
    phone: `+1415${String(5_000_000 + n).padStart(7, '0')}`,
    country: options.country ?? 'US',
    timezone: 'America/New_York',
    firstName: options.firstName ?? `Contact${n}`,
    lastName: null,
    subscribed: options.subscribed ?? true,
  });
  world.profiles.set(contactId, { tags: options.tags ?? [], inactiveDays: options.inactiveDays ?? 0 });
  return contactId;
}

export interface Instance {
  deps: ServiceDeps<Database> & { close(): Promise<void> };
  server: SchedulingInstance;
  url: string;
  gql(query: string, variables?: Record<string, unknown>): Promise<GraphQLResult>;
  stop(): Promise<void>;
}

export interface Env {
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

export const RECORDED_STREAMS: StreamName[] = ['MESSAGING', 'FEEDBACK', 'SCHEDULING'];

export interface EnvOptions {
  /** The clock every instance of this environment uses; 2026-12-01T08:00:00Z unless given. */
  clock?: ManualClock;
  /** Embedded PGlite instead of Postgres (what the platform runs on without DATABASE_URL); one instance at a time. */
  pglite?: boolean;
}

/**
 * A private NATS and database (named after `prefix`), the stand-ins for messaging, feedback and
 * contacts, and a recorder of the streams scheduling writes to. Instances are started with
 * `env.start(extraEnv)`; `env.close()` stops and drops everything.
 */
export async function startEnv(prefix: string, options: EnvOptions = {}): Promise<Env> {
  const clock = options.clock ?? new ManualClock('2026-12-01T08:00:00.000Z');
  const nats: TestNats = await startTestNats();
  const database = options.pglite ? pgliteDirectory(prefix) : await createTestDatabase(prefix);
  const target: DatabaseTarget = 'dir' in database ? { kind: 'pglite', dir: database.dir } : { kind: 'postgres', url: database.url };
  const nc = await connect({ servers: nats.url });
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  // The streams other services own exist before scheduling starts, as in a running platform.
  for (const stream of ['CONTACTS', 'EVENTS', 'MESSAGING', 'FEEDBACK', 'SCHEDULING'] as const) await ensureStream(jsm, stream);

  const world: World = { templates: new Map(), surveys: new Map(), contacts: new Map(), profiles: new Map(), audienceRequests: [] };
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
    serveRpc(nc, 'rpc.contacts.get', 'contacts', async ({ ids }) => ({ contacts: pickKnown(world.contacts, ids) }), silentLogger),
    // Contacts' audience paging as the contract describes it: AND of the criteria, tags ANY, keyset by contact id.
    serveRpc(
      nc,
      'rpc.contacts.audience',
      'contacts',
      async (request) => {
        const index = world.audienceRequests.push(request) - 1;
        const failure = world.audienceFailure?.(request, index);
        if (failure) throw new Error(failure);
        const ids = request.contactIds ? new Set(request.contactIds) : undefined;
        const matching = [...world.contacts.values()]
          .filter((c) => {
            const profile = world.profiles.get(c.contactId) ?? { tags: [], inactiveDays: 0 };
            if (request.subscribedOnly && !c.subscribed) return false;
            if (request.tags && !request.tags.some((t) => profile.tags.includes(t))) return false;
            if (request.inactiveForDays && profile.inactiveDays < request.inactiveForDays) return false;
            if (request.country && c.country !== request.country.toUpperCase()) return false;
            if (ids && !ids.has(c.contactId)) return false;
            return !request.after || c.contactId > request.after;
          })
          .sort((a, b) => (a.contactId < b.contactId ? -1 : 1));
        const page = matching.slice(0, request.limit);
        return { contacts: page, next: matching.length > page.length ? page[page.length - 1]!.contactId : null };
      },
      silentLogger,
    ),
  ];

  const recorder = await startStreamRecorder(js, jsm, RECORDED_STREAMS);
  const { recorded } = recorder;

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
        target,
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
        gql: (query, variables) => postGraphQL(url, query, variables),
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
    publish: (subject, data, options) => publishTestEvent(js, clock, subject, data, options),
    async track(name, contactId, properties, options = {}) {
      const time = options.time ?? clock.now();
      return env.publish(`events.${name}`, { eventId: newId(), contactId, name, properties, occurredAt: time.toISOString() }, { time });
    },
    handled: (stream, durable) => waitForConsumerHandled(jsm, stream, durable),
    async settle(db) {
      await waitForOutboxEmpty(db);
      await recorder.caughtUp();
    },
    of: (subject, predicate) => recorder.of(subject, predicate),
    waitFor: (subject, predicate, count) => recorder.waitFor(subject, predicate, count),
    async close() {
      for (const instance of [...instances]) await instance.stop();
      await recorder.close();
      rpc.forEach((s) => s.unsubscribe());
      await nc.close();
      await database.drop();
      await nats.stop();
    },
  };
  return env;
}

function pgliteDirectory(prefix: string): { dir: string; drop(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), `tl-${prefix}-`));
  return { dir, drop: async () => rmSync(dir, { recursive: true, force: true }) };
}
