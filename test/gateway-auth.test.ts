import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { newId } from '@textloop/events';
import { buildDeps, silentLogger, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import { createTestDatabase, startTestNats, type TestNats } from '@textloop/service-kit/testing';
import { parseApiKeys } from '../services/gateway/src/auth';
import { composeSupergraph, readSubgraphSources } from '../services/gateway/src/compose';
import { createGateway, type GatewayInstance } from '../services/gateway/src/server';
import { migrations as feedbackMigrations } from '../services/feedback/src/db/migrations';
import { createServer as createFeedback } from '../services/feedback/src/server';
import { migrations as schedulingMigrations } from '../services/scheduling/src/db/migrations';
import { createServer as createScheduling } from '../services/scheduling/src/server';

// The gateway in front of the real scheduling and feedback subgraphs (real Postgres and NATS).

const INTERNAL_TOKEN = 'test-internal-token';
const KEYS = 'admin:admin-key,app:app-key,viewer:viewer-key';

interface Running {
  deps: ServiceDeps<any> & { close(): Promise<void> };
  instance: ServiceInstance;
  url: string;
  drop(): Promise<void>;
}

let nats: TestNats;
const subgraphs: Record<string, Running> = {};
let gateway: GatewayInstance;
let gatewayUrl: string;
let spy: Server;
const seenBySubgraph: Array<Record<string, string | string[] | undefined>> = [];

async function startSubgraph(name: 'scheduling' | 'feedback', migrations: Record<string, any>, create: (deps: any) => ServiceInstance): Promise<Running> {
  const database = await createTestDatabase(`gw_${name}`);
  const deps = await buildDeps<any>({
    name,
    migrations,
    // Each creates the stream it owns, as runService would (feedback consumes its own commands).
    streams: [name === 'feedback' ? 'FEEDBACK' : 'SCHEDULING'],
    target: { kind: 'postgres', url: database.url },
    natsUrl: nats.url,
    logger: silentLogger,
    internalToken: INTERNAL_TOKEN,
  });
  const instance = create(deps);
  const { url } = await instance.http.listen(0);
  await instance.start();
  return { deps, instance, url, drop: database.drop };
}

type Result = { status: number; headers: Headers; body: any };

async function post(body: unknown, headers: Record<string, string> = {}, url = `${gatewayUrl}/graphql`): Promise<Result> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

const as = (key: string) => ({ authorization: `Bearer ${key}` });

/** A gateway over scheduling and feedback only, so this test needs neither contacts nor messaging. */
function gatewayOver(subgraphUrls: Record<string, string>, internalToken = INTERNAL_TOKEN): GatewayInstance {
  const composition = composeSupergraph(readSubgraphSources().sources.filter((s) => s.name === 'scheduling' || s.name === 'feedback'));
  if (!composition.ok) throw new Error(composition.errors.join('\n'));
  return createGateway({ supergraphSdl: composition.supergraphSdl, subgraphUrls, internalToken, keys: parseApiKeys(KEYS), logger: pino({ level: 'silent' }) });
}

beforeAll(async () => {
  nats = await startTestNats();
  subgraphs.scheduling = await startSubgraph('scheduling', schedulingMigrations, createScheduling);
  subgraphs.feedback = await startSubgraph('feedback', feedbackMigrations, createFeedback);
  // Records what the gateway sends to feedback, then passes the request on.
  spy = createHttpServer(async (req, res) => {
    seenBySubgraph.push(req.headers);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const forwarded = await fetch(`${subgraphs.feedback!.url}/graphql`, {
      method: 'POST',
      headers: req.headers as Record<string, string>,
      body: Buffer.concat(chunks),
    });
    res.writeHead(forwarded.status, { 'content-type': forwarded.headers.get('content-type') ?? 'application/json' });
    res.end(Buffer.from(await forwarded.arrayBuffer()));
  });
  await new Promise<void>((r) => spy.listen(0, '127.0.0.1', r));

  gateway = gatewayOver({ scheduling: `${subgraphs.scheduling.url}/graphql`, feedback: `http://127.0.0.1:${(spy.address() as AddressInfo).port}/graphql` });
  ({ url: gatewayUrl } = await gateway.http.listen(0));
});

afterAll(async () => {
  await gateway?.http.close();
  await gateway?.stop();
  if (spy) await new Promise((r) => spy.close(r));
  for (const s of Object.values(subgraphs)) {
    await s.instance.http.close();
    await s.instance.stop();
    await s.deps.close();
    await s.drop();
  }
  await nats?.stop();
});

describe('gateway', () => {
  it('answers /healthz 503 until the supergraph is loaded, then 200', async () => {
    expect((await fetch(`${gatewayUrl}/healthz`)).status).toBe(503);
    await gateway.start();
    expect((await fetch(`${gatewayUrl}/healthz`)).status).toBe(200);
  });

  it('refuses requests without a known API key with UNAUTHENTICATED and says how to send one', async () => {
    for (const headers of [{}, as('wrong-key'), { authorization: 'admin-key' }]) {
      const res = await post({ query: '{ surveys { id } }' }, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect(res.body.errors[0].message).toContain('Authorization: Bearer <key>');
    }
  });

  it('serves the federated API to a valid key, joining entities across subgraphs', async () => {
    // Designing surveys is an admin's job (runtime.md roles); reading them is everyone's.
    const created = await post(
      { query: 'mutation { createSurvey(input: { name: "NPS", question: "Score us 0-10" }) { id responseWindow } }' },
      as('admin-key'),
    );
    expect(created.status).toBe(200);
    expect(created.body.errors).toBeUndefined();
    const surveyId = created.body.data.createSurvey.id;
    expect(created.body.data.createSurvey.responseWindow).toBe('P3D');

    const automationId = newId();
    const scheduling = subgraphs.scheduling!.deps.db;
    await scheduling
      .insertInto('automations')
      .values({ id: automationId, name: 'Ask after delivery', trigger_event: 'order.delivered', steps: '[]' })
      .execute();
    await scheduling.insertInto('automation_runs').values({ id: newId(), automation_id: automationId, contact_id: 'contact-1' }).execute();
    await subgraphs
      .feedback!.deps.db.insertInto('survey_responses')
      .values({ id: newId(), survey_id: surveyId, contact_id: 'contact-1', score: 10, responded_at: '2026-11-27T10:00:00Z' })
      .execute();

    const joined = await post(
      { query: '{ automationRuns { automation { name } contact { id surveyResponses { score category survey { name } } } } }' },
      as('viewer-key'),
    );
    expect(joined.body).toEqual({
      data: {
        automationRuns: [
          {
            automation: { name: 'Ask after delivery' },
            contact: { id: 'contact-1', surveyResponses: [{ score: 10, category: 'PROMOTER', survey: { name: 'NPS' } }] },
          },
        ],
      },
    });
  });

  it('tells subgraphs who is calling, with the internal token they require', async () => {
    seenBySubgraph.length = 0;
    await post({ query: '{ surveys { id } }' }, as('app-key'));
    expect(seenBySubgraph).toHaveLength(1);
    expect(seenBySubgraph[0]).toMatchObject({ 'x-textloop-internal-token': INTERNAL_TOKEN, 'x-textloop-role': 'app' });
    expect(seenBySubgraph[0]!['x-textloop-key']).toMatch(/^app-[0-9a-f]{8}$/);
    expect(JSON.stringify(seenBySubgraph[0])).not.toContain('app-key');
  });

  it('keeps the extensions.code of subgraph errors', async () => {
    const res = await post({ query: 'mutation { createSurvey(input: { name: "x", question: "q", responseWindow: "3 days" }) { id } }' }, as('admin-key'));
    expect(res.body.data).toBeNull();
    expect(res.body.errors[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'responseWindow' } });
    expect(res.body.errors[0].message).toContain('P3D');
  });

  it('lets a viewer key read but not write', async () => {
    const before = await post({ query: '{ surveys { id } }' }, as('viewer-key'));
    const res = await post({ query: 'mutation { createSurvey(input: { name: "Nope", question: "q" }) { id } }' }, as('viewer-key'));
    expect(res.status).toBe(403);
    expect(res.body.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(res.body.errors[0].message).toMatch(/viewer key may only read/);
    const after = await post({ query: '{ surveys { id } }' }, as('viewer-key'));
    expect(after.body.data.surveys).toEqual(before.body.data.surveys);
  });

  it('runs batched requests', async () => {
    const res = await post([{ query: '{ surveys { id } }' }, { query: '{ automations { name } }' }], as('admin-key'));
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(2);
    expect(res.body[1].data.automations).toEqual([{ name: 'Ask after delivery' }]);
  });

  it('is the only client subgraphs answer', async () => {
    const direct = await post({ query: '{ surveys { id } }' }, as('admin-key'), `${subgraphs.feedback!.url}/graphql`);
    expect(direct.status).toBe(403);
    expect(direct.body.errors[0].extensions.code).toBe('FORBIDDEN');
  });

  it('shows browsers the Sandbox at / and /graphql, and other clients a pointer', async () => {
    for (const path of ['/', '/graphql']) {
      const res = await fetch(`${gatewayUrl}${path}`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      const html = await res.text();
      expect(html).toContain('EmbeddedSandbox');
    }
    // The Sandbox posts to the address it was opened at.
    const atRoot = await post({ query: '{ surveys { id } }' }, as('admin-key'), `${gatewayUrl}/`);
    expect(atRoot.body.data.surveys).toBeInstanceOf(Array);
    const res = await fetch(`${gatewayUrl}/`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { message: string }).message).toContain('/graphql');
    // A browser-looking GET with a query string still runs nothing without a key.
    const sneaky = await fetch(`${gatewayUrl}/graphql?query=${encodeURIComponent('{ surveys { id } }')}`, { headers: { accept: 'text/html' } });
    expect(await sneaky.text()).not.toContain('"surveys"');
  });

  it('allows cross-origin browser clients', async () => {
    const preflight = await fetch(`${gatewayUrl}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const res = await post({ query: '{ surveys { id } }' }, { ...as('admin-key'), origin: 'https://app.example.com' });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('gateway with a subgraph it cannot use', () => {
  it('answers with SERVICE_UNAVAILABLE naming the service, and still serves the other subgraphs', async () => {
    const lonely = gatewayOver({ scheduling: `${subgraphs.scheduling!.url}/graphql`, feedback: 'http://127.0.0.1:9/graphql' });
    const { url } = await lonely.http.listen(0);
    await lonely.start();
    try {
      const res = await post({ query: '{ surveys { id } }' }, as('admin-key'), `${url}/graphql`);
      expect(res.body.data).toBeNull();
      expect(res.body.errors[0]).toMatchObject({
        message: 'The feedback service is not reachable right now; try again shortly.',
        extensions: { code: 'SERVICE_UNAVAILABLE', service: 'feedback' },
      });
      const other = await post({ query: '{ automations { name } }' }, as('admin-key'), `${url}/graphql`);
      expect(other.body).toEqual({ data: { automations: [{ name: 'Ask after delivery' }] } });
    } finally {
      await lonely.http.close();
      await lonely.stop();
    }
  });

  it('says the gateway is misconfigured when subgraphs refuse its internal token', async () => {
    const stranger = gatewayOver({ scheduling: `${subgraphs.scheduling!.url}/graphql`, feedback: `${subgraphs.feedback!.url}/graphql` }, 'not-the-token');
    const { url } = await stranger.http.listen(0);
    await stranger.start();
    try {
      const res = await post({ query: '{ automations { name } }' }, as('admin-key'), `${url}/graphql`);
      expect(res.body.errors[0]).toMatchObject({ extensions: { code: 'INTERNAL_SERVER_ERROR', service: 'scheduling' } });
      expect(res.body.errors[0].message).toContain('not configured to reach the scheduling service');
      expect(JSON.stringify(res.body)).not.toContain('127.0.0.1');
    } finally {
      await stranger.http.close();
      await stranger.stop();
    }
  });
});
