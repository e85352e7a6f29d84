import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, freePort } from '@textloop/service-kit/testing';
import { PROCESSES, PlatformStartError, startPlatform, type Platform } from '../scripts/platform';

// startPlatform as `pnpm start`, the end-to-end tests and the benchmark use it: six real processes.

const SERVICES = ['contacts', 'messaging', 'scheduling', 'feedback'] as const;

let natsUrl: string;
let dataDir: string;
const databases: Array<{ url: string; drop(): Promise<void> }> = [];
let platform: Platform;

async function graphql(query: string, headers: Record<string, string> = { authorization: 'Bearer dev-admin-key' }, url = platform.urls.graphql) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query }) });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  // Nothing answers here, so startPlatform runs its own nats-server (as on a fresh machine).
  natsUrl = `nats://127.0.0.1:${await freePort()}`;
  dataDir = mkdtempSync(join(tmpdir(), 'tl-platform-'));
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  delete env.API_KEYS;
  for (const service of SERVICES) {
    const database = await createTestDatabase(`platform_${service}`);
    databases.push(database);
    env[`${service.toUpperCase()}_DATABASE_URL`] = database.url;
  }
  platform = await startPlatform({ env, dataDir, ports: 'free', natsUrl, quiet: true });
}, 180_000);

afterAll(async () => {
  await platform?.stop();
  for (const database of databases) await database.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('startPlatform', () => {
  it('starts every process and says where they are', () => {
    expect(Object.keys(platform.ports).sort()).toEqual([...PROCESSES].sort());
    expect(platform.urls.graphql).toBe(`http://127.0.0.1:${platform.ports.gateway}/graphql`);
    expect(platform.devApiKey).toBe('dev-admin-key');
    expect(platform.startedNats).toBe(true);
    expect(platform.urls.nats).toBe(natsUrl);
    expect(platform.webhookSecret.length).toBeGreaterThan(16);
  });

  it('serves the federated API through the gateway with the development key', async () => {
    const created = await graphql(
      'mutation { createContact(input: { phone: "+14155550142", firstName: "Ann" }) { id automationRuns { id } surveyResponses { id } } }',
    );
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data.createContact).toMatchObject({ automationRuns: [], surveyResponses: [] });
    const listed = await graphql('{ contacts { totalCount } automations { id } surveys { id } }');
    expect(listed.body).toEqual({ data: { contacts: { totalCount: 1 }, automations: [], surveys: [] } });
  });

  it('wants an API key at the gateway and answers nobody but the gateway at the subgraphs', async () => {
    const anonymous = await graphql('{ contacts { totalCount } }', {});
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    for (const url of Object.values(platform.urls.subgraphs)) {
      const direct = await graphql('{ __typename }', {}, url);
      expect(direct.status, url).toBe(403);
    }
  });

  it('runs the carrier simulator and messaging webhooks that want the shared secret', async () => {
    expect((await fetch(platform.urls.carrierSim)).status).toBe(200);
    const unsigned = await fetch(platform.urls.webhooks.inbound, { method: 'POST', body: 'mocean-from=14155550142&mocean-to=Textloop&mocean-text=hi' });
    expect(unsigned.status).toBe(401);
  });

  it('refuses to start next to something that holds its ports', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const ports = Object.fromEntries(await Promise.all(PROCESSES.map(async (name) => [name, await freePort()])));
    try {
      await expect(startPlatform({ env: process.env, ports: { ...ports, gateway: port }, dataDir, natsUrl, quiet: true })).rejects.toThrow(
        new RegExp(`Port ${port} \\(gateway, GATEWAY_PORT\\) is already in use`),
      );
    } finally {
      blocker.close();
    }
  });

  it('chooses other free ports when another program takes a chosen one before its process binds it', async () => {
    // The impostor answers /healthz 200 like any service, so only its pid tells it apart.
    const impostor = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","pid":1}'));
    let calls = 0;
    let taken: number | undefined;
    const choosePort = async () => {
      const port = await freePort();
      // The gateway's port (the last chosen) is taken once the free-port check has passed.
      if (++calls === PROCESSES.length) {
        taken = port;
        setTimeout(() => impostor.listen(port, '127.0.0.1'), 200);
      }
      return port;
    };
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
    delete env.API_KEYS;
    for (const service of SERVICES) env[`${service.toUpperCase()}_DATABASE_URL`] = databases.find((d) => d.url.includes(`platform_${service}`))!.url;
    const second = await startPlatform({ env, dataDir, ports: 'free', natsUrl: platform.urls.nats, quiet: true, choosePort });
    try {
      expect(calls).toBe(PROCESSES.length * 2);
      expect(second.ports.gateway).not.toBe(taken);
      const answered = await graphql('{ contacts { totalCount } }', undefined, second.urls.graphql);
      expect(answered.body).toEqual({ data: { contacts: { totalCount: 1 } } });
    } finally {
      await second.stop();
      impostor.close();
    }
  }, 180_000);

  it('refuses to start in production without API_KEYS', async () => {
    await expect(
      startPlatform({ env: { ...process.env, NODE_ENV: 'production', API_KEYS: '' }, dataDir, ports: 'free', natsUrl, quiet: true }),
    ).rejects.toThrow(/API_KEYS is not set/);
  });

  it('stops every process, and the nats-server it started', async () => {
    await platform.stop();
    for (const name of PROCESSES) {
      const answered = await fetch(`http://127.0.0.1:${platform.ports[name]}/healthz`).then(
        () => true,
        () => false,
      );
      expect(answered, name).toBe(false);
    }
    const natsPort = Number(new URL(natsUrl).port);
    const natsAnswers = await new Promise<boolean>((resolve) => {
      const socket = connect(natsPort, '127.0.0.1', () => resolve(true)).on('error', () => resolve(false));
      socket.unref();
    });
    expect(natsAnswers).toBe(false);
  });
});
