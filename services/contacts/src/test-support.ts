import { AckPolicy, DeliverPolicy, type ConsumerMessages, type MsgHdrs } from 'nats';
import { sql } from 'kysely';
import { ensureStream, type CloudEvent, type StreamName } from '@textloop/events';
import { buildDeps, createLogger, ManualClock, silentLogger, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import { createTestDatabase, startTestNats, waitFor, type TestNats } from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer } from './server';

/** Integration-test harness: a fresh Postgres database, a private NATS, the subgraph on a free port. */

export interface GraphQLResult<T = any> {
  data?: T;
  errors?: Array<{ message: string; path?: string[]; extensions?: { code?: string; field?: string; [k: string]: unknown } }>;
}

export interface RecordedEvent {
  subject: string;
  event: CloudEvent<any>;
  msgId: string | undefined;
  headers: MsgHdrs | undefined;
}

/** Reads CONTACTS and EVENTS from the start through JetStream, as any other service would. */
export class EventRecorder {
  readonly events: RecordedEvent[] = [];
  private readers: ConsumerMessages[] = [];

  static async start(deps: ServiceDeps<Database>, streams: StreamName[]): Promise<EventRecorder> {
    const recorder = new EventRecorder();
    for (const stream of streams) {
      const name = `test-recorder-${stream.toLowerCase()}`;
      await deps.nats.jsm.consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
      const consumer = await deps.nats.js.consumers.get(stream, name);
      const messages = await consumer.consume();
      recorder.readers.push(messages);
      void (async () => {
        for await (const m of messages) {
          recorder.events.push({ subject: m.subject, event: JSON.parse(m.string()), msgId: m.headers?.get('Nats-Msg-Id'), headers: m.headers });
        }
      })().catch(() => {});
    }
    return recorder;
  }

  of(subject: string): RecordedEvent[] {
    return this.events.filter((e) => e.subject === subject);
  }

  forContact(contactId: string, subject?: string): RecordedEvent[] {
    return this.events.filter((e) => e.event.data?.contactId === contactId && (!subject || e.subject === subject));
  }

  async waitFor(subject: string, predicate: (e: RecordedEvent) => boolean = () => true, count = 1, timeoutMs = 20_000): Promise<RecordedEvent[]> {
    return waitFor(
      () => {
        const found = this.events.filter((e) => e.subject === subject && predicate(e));
        return found.length >= count ? found : undefined;
      },
      { what: `${count} × ${subject}`, timeoutMs, intervalMs: 100 },
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close()));
  }
}

export interface Harness {
  deps: ServiceDeps<Database> & { close(): Promise<void> };
  instance: ServiceInstance;
  url: string;
  clock: ManualClock;
  nats: TestNats;
  recorder: EventRecorder;
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResult<T>>;
  /** Waits until the outbox is empty, so everything written so far is on NATS. */
  settle(): Promise<void>;
  /** Rows in the table right now. */
  count(table: 'contacts' | 'consent_ledger' | 'tracked_events' | 'outbox'): Promise<number>;
  stop(): Promise<void>;
}

export async function startHarness(prefix: string, options: { env?: NodeJS.ProcessEnv; clock?: ManualClock; streams?: StreamName[] } = {}): Promise<Harness> {
  const nats = await startTestNats();
  const database = await createTestDatabase(prefix);
  const clock = options.clock ?? new ManualClock('2026-11-27T10:00:00.000Z');
  const deps = await buildDeps<Database>({
    name: 'contacts',
    migrations,
    streams: options.streams ?? ['CONTACTS', 'EVENTS', 'MESSAGING'],
    target: { kind: 'postgres', url: database.url },
    natsUrl: nats.url,
    // TEST_LOG_LEVEL=debug shows what the service logs while a test runs.
    logger: process.env.TEST_LOG_LEVEL ? createLogger('contacts', process.env.TEST_LOG_LEVEL) : silentLogger,
    clock,
    env: { DORMANCY_SWEEP_INTERVAL_MS: '0', ...options.env },
  });
  for (const stream of ['CONTACTS', 'EVENTS'] as const) await ensureStream(deps.nats.jsm, stream);
  const instance = createServer(deps);
  const { url } = await instance.http.listen(0);
  await instance.start();
  const recorder = await EventRecorder.start(deps, ['CONTACTS', 'EVENTS']);
  const count = async (table: string) => {
    const res = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(deps.db);
    return res.rows[0]!.n;
  };
  return {
    deps,
    instance,
    url,
    clock,
    nats,
    recorder,
    async gql(query, variables, headers) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as GraphQLResult;
    },
    async settle() {
      deps.outbox.kick();
      await waitFor(async () => (await count('outbox')) === 0, { what: 'the outbox to drain', timeoutMs: 60_000 });
    },
    count,
    async stop() {
      await recorder.stop();
      await instance.http.close();
      await instance.stop();
      await deps.close();
      await database.drop();
      await nats.stop();
    },
  };
}

export const CONTACT_FIELDS = `
  id externalId phone country timezone locale firstName lastName email attributes tags
  subscribed unsubscribedAt phoneVerified lastActiveAt createdAt updatedAt
`;
