import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, headers, type NatsConnection } from 'nats';
import pino from 'pino';
import { createEvent } from '@textloop/events';
import { freePort, startTestNats, waitFor, type TestNats } from '@textloop/service-kit/testing';
import { parseApiKeys } from '../services/gateway/src/auth';
import { composeSupergraph, readSubgraphSources } from '../services/gateway/src/compose';
import { LiveFeed, type LiveEvent } from '../services/gateway/src/live-feed';
import { createLiveClient, type LiveClient } from '../services/gateway/src/live-client';
import { createGateway, type GatewayInstance } from '../services/gateway/src/server';

// The gateway's live updates in process, without subgraphs: the graphql-ws protocol, NATS
// availability, shutdown, and the NATS side of the feed. Delivery through the federated API is
// covered end to end in e2e-inbox.test.ts.

const silent = pino({ level: 'silent' });
const KEYS = 'admin:admin-key,agent:agent-key';
let nats: TestNats;
let nc: NatsConnection;
const clients: LiveClient[] = [];

function gatewayWith(natsUrl: string | undefined): GatewayInstance {
  const composition = composeSupergraph(readSubgraphSources().sources);
  if (!composition.ok) throw new Error(composition.errors.join('\n'));
  return createGateway({ supergraphSdl: composition.supergraphSdl, subgraphUrls: {}, internalToken: 't', keys: parseApiKeys(KEYS), logger: silent, natsUrl });
}

async function running(natsUrl: string | undefined) {
  const gateway = gatewayWith(natsUrl);
  const { url } = await gateway.http.listen(0);
  await gateway.start();
  return { gateway, url: `${url}/graphql` };
}

function client(url: string, key = 'agent-key'): LiveClient {
  const c = createLiveClient(url, key);
  clients.push(c);
  return c;
}

function first(c: LiveClient, query: string): Promise<{ next?: any; error?: any }> {
  return new Promise((resolve) => c.subscribe({ query }, { next: (r) => resolve({ next: r }), error: (e) => resolve({ error: e }), complete: () => {} }));
}

async function publish(subject: string, data: Record<string, unknown>, id?: string) {
  const h = headers();
  h.set('content-type', 'application/cloudevents+json');
  nc.publish(subject, JSON.stringify(createEvent({ source: 'textloop/test', type: subject, data, ...(id ? { id } : {}) })), { headers: h });
  await nc.flush();
}

beforeAll(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const c of clients) await c.dispose();
  await nc?.close();
  await nats?.stop();
});

describe('live updates at the gateway', () => {
  it('says subscriptions are unavailable while NATS is down, and still answers queries', async () => {
    const { gateway, url } = await running(`nats://127.0.0.1:${await freePort()}`);
    try {
      const health = (await (await fetch(url.replace('/graphql', '/healthz'))).json()) as Record<string, string>;
      expect(health).toEqual({ status: 'ok', liveUpdates: 'unavailable', pid: expect.any(Number) });
      const { error } = await first(client(url), 'subscription { messageReceived { id } }');
      expect(error[0]).toMatchObject({ extensions: { code: 'SERVICE_UNAVAILABLE' } });
      expect(error[0].message).toMatch(/cannot reach NATS.*Queries and mutations still work/);
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer agent-key' },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
    } finally {
      await gateway.http.close();
      await gateway.stop();
    }
  });

  it('says they are not configured without a NATS_URL', async () => {
    const { gateway, url } = await running(undefined);
    try {
      const { error } = await first(client(url), 'subscription { messageStatusChanged { id } }');
      expect(error[0].message).toMatch(/not configured/);
    } finally {
      await gateway.http.close();
      await gateway.stop();
    }
  });

  it('refuses invalid subscriptions with the validation errors', async () => {
    const { gateway, url } = await running(nats.url);
    try {
      const { error } = await first(client(url), 'subscription { messageReceived { id nope } }');
      expect(error[0].message).toContain('Cannot query field "nope" on type "Message"');
      const two = await first(client(url), 'subscription { messageReceived { id } messageStatusChanged { id } }');
      expect(two.error[0].message).toMatch(/must select only one top level field/);
    } finally {
      await gateway.http.close();
      await gateway.stop();
    }
  });

  it('delivers once per event even when the outbox publishes it twice, with the federated errors when a subgraph is down', async () => {
    const { gateway, url } = await running(nats.url);
    try {
      const agent = client(url);
      const payloads: any[] = [];
      agent.subscribe({ query: 'subscription { messageReceived { id } }' }, { next: (r) => payloads.push(r), error: () => {}, complete: () => {} });
      await waitFor(async () => {
        const health = (await (await fetch(url.replace('/graphql', '/healthz'))).json()) as Record<string, string>;
        return health.liveUpdates === 'ok';
      });
      // The subscription is in place once a later operation on the same socket has answered.
      await new Promise((resolve) => agent.subscribe({ query: '{ __typename }' }, { next: () => {}, error: resolve, complete: () => resolve(undefined) }));
      const data = { messageId: 'm-1', contactId: 'c-1', from: '+14155550100', to: 'Textloop', body: 'hi' };
      await publish('messaging.message.received', data, 'event-1');
      await publish('messaging.message.received', data, 'event-1');
      await waitFor(() => payloads.length > 0, { what: 'a payload' });
      await new Promise((r) => setTimeout(r, 200));
      expect(payloads).toHaveLength(1);
      // No messaging subgraph runs here: the payload says so instead of inventing data.
      expect(payloads[0].data).toBeNull();
      expect(payloads[0].errors[0].extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', service: 'messaging' });
    } finally {
      await gateway.http.close();
      await gateway.stop();
    }
  });

  it('closes open sockets with 1001 when it stops', async () => {
    const { gateway, url } = await running(nats.url);
    const agent = client(url);
    const closed = new Promise<{ code: number }>((resolve) => agent.on('closed', (e) => resolve(e as { code: number })));
    agent.subscribe({ query: 'subscription { messageReceived { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    await new Promise((resolve) => agent.on('connected', resolve));
    // An open socket must not keep the server from closing (a hang here fails on the test timeout).
    await gateway.http.close();
    await gateway.stop();
    expect((await closed).code).toBe(1001);
  });
});

describe('the NATS feed of conversation changes', () => {
  async function feedOf(): Promise<{ events: LiveEvent[]; feed: LiveFeed }> {
    const feed = new LiveFeed(nats.url, silent);
    const events: LiveEvent[] = [];
    feed.on('conversation', (e) => events.push(e));
    feed.start();
    await waitFor(() => feed.state === 'ok');
    await new Promise((r) => setTimeout(r, 50));
    return { events, feed };
  }

  it('takes each change once from messaging.conversation.updated, dropping its specific twin', async () => {
    const { events, feed } = await feedOf();
    try {
      await publish('messaging.conversation.opened', { conversationId: 'k-1', contactId: 'c-1' });
      await publish('messaging.conversation.updated', { conversationId: 'k-1', contactId: 'c-1', status: 'OPEN', assignee: null, change: 'opened' });
      await publish('messaging.conversation.resolved', { conversationId: 'k-1', contactId: 'c-1' });
      await publish('messaging.conversation.updated', { conversationId: 'k-1', contactId: 'c-1', status: 'RESOLVED', assignee: null, change: 'resolved' });
      await new Promise((r) => setTimeout(r, 400));
      expect(events.map((e) => [e.subject, e.data.status])).toEqual([
        ['messaging.conversation.updated', 'OPEN'],
        ['messaging.conversation.updated', 'RESOLVED'],
      ]);
    } finally {
      await feed.stop();
    }
  });

  it('falls back to .opened and .resolved when messaging does not publish the catch-all', async () => {
    const { events, feed } = await feedOf();
    try {
      await publish('messaging.conversation.opened', { conversationId: 'k-2', contactId: 'c-2' });
      await publish('messaging.conversation.resolved', { conversationId: 'k-2', contactId: 'c-2', assignee: 'sam' });
      await waitFor(() => events.length === 2, { what: 'both changes' });
      expect(events.map((e) => e.data.status)).toEqual(['OPEN', 'RESOLVED']);
    } finally {
      await feed.stop();
    }
  });
});
