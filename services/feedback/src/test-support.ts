import { expect } from 'vitest';
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
import { buildDeps, ManualClock, silentLogger, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import { createTestDatabase, startTestNats, waitFor, type TestNats } from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer } from './server';

// ---------------------------------------------------------------------------------------------
// Harness for the feedback integration tests (after services/scheduling/src/test-support.ts):
// real Postgres, a private real NATS, a ManualClock. Contacts and messaging are stood in for at
// their NATS boundary: rpc.contacts.get answers from `contacts`, replies are published as
// messaging.message.received, and what feedback sends (messaging.cmd.send, feedback.*) is read
// back from the MESSAGING and FEEDBACK streams.
// ---------------------------------------------------------------------------------------------

export interface GraphQLResult {
  data?: any;
  errors?: Array<{ message: string; extensions?: { code?: string; field?: string; [k: string]: unknown } }>;
}

export interface Recorded {
  stream: StreamName;
  subject: string;
  seq: number;
  event: CloudEvent<any>;
}

export interface Env {
  clock: ManualClock;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  deps: ServiceDeps<Database> & { close(): Promise<void> };
  server: ServiceInstance;
  /** What contacts knows (rpc.contacts.get). */
  contacts: Map<string, ContactSummary>;
  recorded: Recorded[];
  gql(query: string, variables?: Record<string, unknown>): Promise<GraphQLResult>;
  /** A subscribed contact contacts knows. */
  contact(id: string, fields?: Partial<ContactSummary>): ContactSummary;
  /** Publishes a CloudEvent (time = the manual clock unless given) and returns it. */
  publish(subject: string, data: unknown, options?: { time?: Date; id?: string }): Promise<CloudEvent<any>>;
  /**
   * The handset answers `to` (a recorded messaging.cmd.send) with `body`, as messaging reports it:
   * inReplyTo carries that message's category and correlation. Waits until feedback handled it
   * and everything it published was recorded.
   */
  reply(to: Recorded, body: string, options?: { keyword?: 'STOP' | 'START' | 'HELP' }): Promise<CloudEvent<any>>;
  /** A reply with an inReplyTo of our choosing (or none); waits like reply. */
  receive(contactId: string, body: string, inReplyTo: { category: string; correlation?: Record<string, unknown> | null } | null): Promise<CloudEvent<any>>;
  /** Waits until a durable consumer of feedback has handled everything in its stream so far. */
  handled(stream: StreamName, durable: string): Promise<void>;
  /** Waits until the outbox is empty and the recorder has read both streams to their end. */
  settle(): Promise<void>;
  of(subject: string, predicate?: (e: Recorded) => boolean): Recorded[];
  /** The messaging.cmd.send commands of an invitation, in order. */
  messagesOf(invitationId: string): Recorded[];
  waitFor(subject: string, predicate?: (e: Recorded) => boolean, count?: number): Promise<Recorded[]>;
  close(): Promise<void>;
}

const RECORDED_STREAMS: StreamName[] = ['MESSAGING', 'FEEDBACK'];

export async function startEnv(prefix: string): Promise<Env> {
  const clock = new ManualClock('2026-12-01T10:00:00.000Z');
  const nats: TestNats = await startTestNats();
  const database = await createTestDatabase(prefix);
  const nc = await connect({ servers: nats.url });
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  // The streams other services own exist before feedback starts, as in a running platform.
  for (const stream of ['CONTACTS', 'MESSAGING', 'FEEDBACK'] as const) await ensureStream(jsm, stream);

  const contacts = new Map<string, ContactSummary>();
  const rpc: Subscription[] = [
    serveRpc(
      nc,
      'rpc.contacts.get',
      'contacts',
      async ({ ids }) => ({ contacts: ids.flatMap((id) => (contacts.has(id) ? [contacts.get(id)!] : [])) }),
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

  const deps = await buildDeps<Database>({
    name: 'feedback',
    migrations,
    streams: ['FEEDBACK'],
    target: { kind: 'postgres', url: database.url },
    natsUrl: nats.url,
    logger: silentLogger,
    clock,
  });
  const server = createServer(deps);
  const { url } = await server.http.listen(0);
  await server.start();
  // The consumers of messaging's stream attach in the background; the status one only sees new events.
  for (const durable of ['feedback-replies', 'feedback-question-status']) {
    await waitFor(() => jsm.consumers.info('MESSAGING', durable).then(() => true), { what: `consumer ${durable}`, timeoutMs: 15_000 });
  }

  let handsetMessages = 0;
  const env: Env = {
    clock,
    nc,
    js,
    jsm,
    deps,
    server,
    contacts,
    recorded,
    async gql(query, variables = {}) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as GraphQLResult;
    },
    contact(id, fields = {}) {
      const phone = `+1415555${String(1000 + contacts.size).padStart(4, '0')}`;
      const summary: ContactSummary = { contactId: id, phone, timezone: 'UTC', firstName: 'Ada', subscribed: true, ...fields };
      contacts.set(id, summary);
      return summary;
    },
    async publish(subject, data, options = {}) {
      const event = createEvent({ source: 'textloop/test', type: subject, data, time: options.time ?? clock.now(), ...(options.id ? { id: options.id } : {}) });
      await publishEvent(js, subject, event);
      return event;
    },
    async reply(to, body, options = {}) {
      const command = to.event.data;
      return send(
        command.contactId,
        body,
        { messageId: `out-${to.seq}`, category: command.category, correlation: command.correlation ?? null },
        options.keyword,
      );
    },
    async receive(contactId, body, inReplyTo) {
      return send(contactId, body, inReplyTo ? { messageId: `out-${newId()}`, ...inReplyTo } : null);
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
    async settle() {
      await waitFor(async () => (await sql<{ n: number }>`select count(*)::int as n from outbox`.execute(deps.db)).rows[0]!.n === 0, {
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
    messagesOf(invitationId) {
      return env.of('messaging.cmd.send', (e) => e.event.data.correlation?.surveyInvitationId === invitationId);
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
      await server.http.close();
      await server.stop();
      await deps.close();
      await Promise.allSettled(readers.map((r) => r.close()));
      rpc.forEach((s) => s.unsubscribe());
      await nc.close();
      await database.drop();
      await nats.stop();
    },
  };

  async function send(
    contactId: string,
    body: string,
    inReplyTo: { messageId: string; category: string; correlation?: Record<string, unknown> | null } | null,
    keyword?: 'STOP' | 'START' | 'HELP',
  ): Promise<CloudEvent<any>> {
    const contact = contacts.get(contactId);
    const event = await env.publish('messaging.message.received', {
      messageId: `in-${++handsetMessages}-${newId()}`,
      contactId,
      from: contact?.phone ?? '+14155550000',
      to: '+14155559999',
      body,
      inReplyTo,
      ...(keyword ? { keyword } : {}),
    });
    await env.handled('MESSAGING', 'feedback-replies');
    await env.settle();
    return event;
  }

  return env;
}

/** Asserts a GraphQL error with the contract code (and field); returns its message. */
export function expectError(res: GraphQLResult, code: string, field?: string): string {
  expect(res.data ?? null, JSON.stringify(res)).toBeNull();
  expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res.errors)).toBe(code);
  if (field !== undefined) expect(res.errors?.[0]?.extensions?.field).toBe(field);
  return res.errors![0]!.message;
}
