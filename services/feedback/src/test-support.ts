import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection, type Subscription } from 'nats';
import { ensureStream, newId, serveRpc, type CloudEvent, type ContactSummary, type StreamName } from '@textloop/events';
import { buildDeps, ManualClock, silentLogger, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import {
  createTestDatabase,
  pickKnown,
  postGraphQL,
  publishTestEvent,
  startStreamRecorder,
  startTestNats,
  waitFor,
  waitForConsumerHandled,
  waitForOutboxEmpty,
  type GraphQLResult,
  type Recorded,
  type TestNats,
} from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer } from './server';

export { expectError, type GraphQLResult, type Recorded } from '@textloop/service-kit/testing';

// ---------------------------------------------------------------------------------------------
// Harness for the feedback integration tests (after services/scheduling/src/test-support.ts):
// real Postgres, a private real NATS, a ManualClock. Contacts and messaging are stood in for at
// their NATS boundary: rpc.contacts.get answers from `contacts`, replies are published as
// messaging.message.received, and what feedback sends (messaging.cmd.send, feedback.*) is read
// back from the MESSAGING and FEEDBACK streams.
// ---------------------------------------------------------------------------------------------

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
  const rpc: Subscription[] = [serveRpc(nc, 'rpc.contacts.get', 'contacts', async ({ ids }) => ({ contacts: pickKnown(contacts, ids) }), silentLogger)];

  const recorder = await startStreamRecorder(js, jsm, RECORDED_STREAMS);
  const { recorded } = recorder;

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
  // The consumers of messaging's stream attach in the background.
  for (const durable of ['feedback-replies', 'feedback-message-status']) {
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
    gql: (query, variables) => postGraphQL(url, query, variables),
    contact(id, fields = {}) {
      const phone = `+1415555${String(1000 + contacts.size).padStart(4, '0')}`;
      const summary: ContactSummary = { contactId: id, phone, timezone: 'UTC', firstName: 'Ada', subscribed: true, ...fields };
      contacts.set(id, summary);
      return summary;
    },
    publish: (subject, data, options) => publishTestEvent(js, clock, subject, data, options),
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
    handled: (stream, durable) => waitForConsumerHandled(jsm, stream, durable),
    async settle() {
      await waitForOutboxEmpty(deps.db);
      await recorder.caughtUp();
    },
    of: (subject, predicate) => recorder.of(subject, predicate),
    messagesOf(invitationId) {
      return env.of('messaging.cmd.send', (e) => e.event.data.correlation?.surveyInvitationId === invitationId);
    },
    waitFor: (subject, predicate, count) => recorder.waitFor(subject, predicate, count),
    async close() {
      await server.http.close();
      await server.stop();
      await deps.close();
      await recorder.close();
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
