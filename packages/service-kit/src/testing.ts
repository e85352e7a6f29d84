import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AckPolicy, connect, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from 'nats';
import { sql, type Kysely, type Migration } from 'kysely';
import { expect } from 'vitest';
import { createEvent, publishEvent, type CloudEvent, type StreamName } from '@textloop/events';
import { buildDeps, type ServiceDeps, type ServiceInstance } from './boot';
import type { Clock } from './clock';
import type { ServiceName } from './env';
import { silentLogger } from './logger';

/** Helpers for integration tests: real PostgreSQL and a real, private NATS server per test file. */

export const TEST_POSTGRES_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A fresh database for one test file; drop() removes it. */
export async function createTestDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tl_test_${prefix.replace(/[^a-z0-9_]/gi, '_')}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
  const admin = new URL(TEST_POSTGRES_URL);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`integration tests need PostgreSQL at ${admin.host} (set TEST_DATABASE_URL): ${(err as Error).message}`);
  }
  await client.query(`create database "${name}"`);
  await client.end();
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin.toString() });
      await c.connect();
      await c.query(`drop database if exists "${name}" with (force)`).catch(() => {});
      await c.end();
    },
  };
}

export interface TestNats {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a private nats-server with JetStream (a temp store) so test files never share streams
 * or durable consumers. Falls back to NATS_URL when nats-server is not installed.
 */
export async function startTestNats(): Promise<TestNats> {
  const haveBinary = spawnSync('sh', ['-c', 'command -v nats-server']).status === 0;
  if (!haveBinary) {
    const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
    return { url, stop: async () => {} };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tl-nats-'));
  const child: ChildProcess = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 500 });
      await nc.close();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`test nats-server did not start on ${url}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until check() returns a truthy value or the timeout passes. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of service integration-test harnesses (nothing service-specific here).
// ---------------------------------------------------------------------------------------------

/** The JSON body of a GraphQL response. */
export interface GraphQLResult {
  data?: any;
  errors?: Array<{ message: string; extensions?: { code?: string; field?: string; [k: string]: unknown } }>;
}

/** POSTs a GraphQL operation to `<url>/graphql` and returns the parsed body. */
export async function postGraphQL(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResult> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as GraphQLResult;
}

/** Asserts a GraphQL error with the contract code (and field); returns its message. */
export function expectError(res: GraphQLResult, code: string, field?: string): string {
  expect(res.data ?? null, JSON.stringify(res)).toBeNull();
  expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res.errors)).toBe(code);
  if (field !== undefined) expect(res.errors?.[0]?.extensions?.field).toBe(field);
  return res.errors![0]!.message;
}

/** One event read back from a stream by a StreamRecorder. */
export interface Recorded {
  stream: StreamName;
  subject: string;
  seq: number;
  event: CloudEvent<any>;
}

/** Reads every message of some streams (from their start) into `recorded`. */
export interface StreamRecorder {
  recorded: Recorded[];
  of(subject: string, predicate?: (e: Recorded) => boolean): Recorded[];
  /** Waits until at least `count` recorded events of `subject` match `predicate`; returns them all. */
  waitFor(subject: string, predicate?: (e: Recorded) => boolean, count?: number): Promise<Recorded[]>;
  /** Waits until every recorded stream has been read up to its current last message. */
  caughtUp(): Promise<void>;
  close(): Promise<void>;
}

export async function startStreamRecorder(js: JetStreamClient, jsm: JetStreamManager, streams: readonly StreamName[]): Promise<StreamRecorder> {
  const recorded: Recorded[] = [];
  const lastSeq = new Map<StreamName, number>();
  const readers: ConsumerMessages[] = [];
  for (const stream of streams) {
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
  const recorder: StreamRecorder = {
    recorded,
    of(subject, predicate = () => true) {
      return recorded.filter((e) => e.subject === subject && predicate(e));
    },
    async waitFor(subject, predicate = () => true, count = 1) {
      return waitFor(
        () => {
          const found = recorder.of(subject, predicate);
          return found.length >= count ? found : undefined;
        },
        { what: `${count} × ${subject}`, timeoutMs: 20_000, intervalMs: 20 },
      );
    },
    async caughtUp() {
      for (const stream of streams) {
        const last = (await jsm.streams.info(stream)).state.last_seq;
        await waitFor(() => (lastSeq.get(stream) ?? 0) >= last, { what: `the recorder to read ${stream}` });
      }
    },
    async close() {
      await Promise.allSettled(readers.map((r) => r.close()));
    },
  };
  return recorder;
}

/** Waits until the kit's outbox table is empty (everything enqueued has been published). */
export async function waitForOutboxEmpty(db: Kysely<any>): Promise<void> {
  await waitFor(async () => (await sql<{ n: number }>`select count(*)::int as n from outbox`.execute(db)).rows[0]!.n === 0, {
    what: 'the outbox to drain',
    timeoutMs: 20_000,
  });
}

/** Waits until a durable consumer has handled everything in its stream so far. */
export async function waitForConsumerHandled(jsm: JetStreamManager, stream: StreamName, durable: string): Promise<void> {
  await waitFor(
    async () => {
      const info = await jsm.consumers.info(stream, durable);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    { what: `${durable} to handle ${stream}`, timeoutMs: 15_000 },
  );
}

/** Publishes a CloudEvent from 'textloop/test' (time = clock.now() unless given) and returns it. */
export async function publishTestEvent(
  js: JetStreamClient,
  clock: Clock,
  subject: string,
  data: unknown,
  options: { time?: Date; id?: string } = {},
): Promise<CloudEvent<any>> {
  const event = createEvent({ source: 'textloop/test', type: subject, data, time: options.time ?? clock.now(), ...(options.id ? { id: options.id } : {}) });
  await publishEvent(js, subject, event);
  return event;
}

/** The items of `map` whose keys are in `ids` (in that order), as rpc stand-ins answer lookups. */
export function pickKnown<V>(map: Map<string, V>, ids: readonly string[]): V[] {
  return ids.flatMap((id) => (map.has(id) ? [map.get(id)!] : []));
}

/** A service started on a fresh test database and private NATS, with its own streams created. */
export interface TestService<DB, I extends ServiceInstance = ServiceInstance> {
  deps: ServiceDeps<DB> & { close(): Promise<void> };
  instance: I;
  url: string;
  nats: TestNats;
  graphql(query: string, variables?: Record<string, unknown>): Promise<GraphQLResult>;
  /** Stops the service and drops its database and NATS. */
  close(): Promise<void>;
}

export async function startTestService<DB, I extends ServiceInstance = ServiceInstance>(options: {
  name: ServiceName;
  migrations: Record<string, Migration>;
  streams: StreamName[];
  create: (deps: ServiceDeps<DB>) => I;
  clock?: Clock;
  /** database name prefix; the service name unless given */
  prefix?: string;
}): Promise<TestService<DB, I>> {
  const nats = await startTestNats();
  const database = await createTestDatabase(options.prefix ?? options.name);
  const deps = await buildDeps<DB>({
    name: options.name,
    migrations: options.migrations,
    streams: options.streams,
    target: { kind: 'postgres', url: database.url },
    natsUrl: nats.url,
    logger: silentLogger,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const instance = options.create(deps);
  const { url } = await instance.http.listen(0);
  await instance.start();
  return {
    deps,
    instance,
    url,
    nats,
    graphql: (query, variables) => postGraphQL(url, query, variables),
    async close() {
      await instance.http.close();
      await instance.stop();
      await deps.close();
      await database.drop();
      await nats.stop();
    },
  };
}
