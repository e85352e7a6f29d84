// Shared by the integration tests: real Postgres, a private NATS, the real carrier simulator over
// HTTP, and a messaging instance on a free port.
import { createEvent, publishEvent, type CloudEvent } from '@textloop/events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDeps, silentLogger, type DatabaseTarget, type ServiceDeps } from '@textloop/service-kit';
import { createTestDatabase, freePort, startTestNats, waitFor, type TestNats } from '@textloop/service-kit/testing';
import { createCarrierSim, type CarrierSim } from '../../carrier-sim/src/server';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer, type MessagingInstance, type MessagingOptions } from './server';

export const WEBHOOK_SECRET = 'test-webhook-secret';

export interface GqlResult<T = any> {
  data?: T;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

export interface Running {
  deps: ServiceDeps<Database> & { close(): Promise<void> };
  instance: MessagingInstance;
  url: string;
  stop(): Promise<void>;
}

export interface Harness {
  simUrl: string;
  sim: CarrierSim;
  main: Running;
  /** every messaging.> event seen on NATS, parsed */
  events: Array<CloudEvent<any> & { subject: string }>;
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>>;
  handset(phone: string): Promise<Array<{ msgid: string; from: string; to: string; text: string; segments: number; coding: number }>>;
  simJson(method: string, path: string, body?: unknown): Promise<any>;
  publish(subject: string, data: unknown, options?: { id?: string; source?: string; time?: Date }): Promise<CloudEvent>;
  /** Another messaging instance on the same database and NATS. */
  startInstance(env?: Record<string, string>, options?: MessagingOptions & { start?: boolean }): Promise<Running>;
  close(): Promise<void>;
}

export async function startHarness(prefix: string, env: Record<string, string> = {}, options: { pglite?: boolean } = {}): Promise<Harness> {
  const nats: TestNats = await startTestNats();
  let target: DatabaseTarget;
  let database: { drop(): Promise<void> };
  if (options.pglite) {
    // Embedded PGlite is single-process, so every instance of the harness shares one folder only when run one at a time.
    const dir = mkdtempSync(join(tmpdir(), `tl-${prefix}-`));
    target = { kind: 'pglite', dir };
    database = { drop: async () => rmSync(dir, { recursive: true, force: true }) };
  } else {
    const pg = await createTestDatabase(prefix);
    target = { kind: 'postgres', url: pg.url };
    database = pg;
  }
  const sim = createCarrierSim({ apiKey: 'textloop-sim', apiSecret: 'textloop-sim-secret', defaultDlrDelayMs: 40, logger: silentLogger });
  const { url: simUrl } = await sim.listen(0);
  const running: Running[] = [];

  const startInstance = async (extraEnv: Record<string, string> = {}, options: MessagingOptions & { start?: boolean } = {}): Promise<Running> => {
    const port = await freePort();
    const deps = await buildDeps<Database>({
      name: 'messaging',
      migrations,
      streams: ['MESSAGING', 'CONTACTS'],
      target,
      natsUrl: nats.url,
      logger: silentLogger,
      env: {
        MOCEAN_API_URL: simUrl,
        PUBLIC_WEBHOOK_URL: `http://127.0.0.1:${port}`,
        WEBHOOK_SECRET,
        DISPATCH_LEASE_MS: '3000',
        PROVIDER_TIMEOUT_MS: '1000',
        SEND_RETRY_BASE_MS: '50',
        SEND_RETRY_MAX_MS: '200',
        SEND_MAX_ATTEMPTS: '8',
        CONTACT_WAIT_MS: '2000',
        SMS_SENDERS: 'GB:TextloopUK',
        ...env,
        ...extraEnv,
      },
    });
    const instance = createServer(deps, options);
    const { url } = await instance.http.listen(port);
    if (options.start !== false) await instance.start();
    let stopped = false;
    const r: Running = {
      deps,
      instance,
      url,
      async stop() {
        if (stopped) return;
        stopped = true;
        await instance.http.close();
        await instance.stop();
        await deps.close();
      },
    };
    running.push(r);
    return r;
  };

  const main = await startInstance();
  const events: Harness['events'] = [];
  const sub = main.deps.nats.nc.subscribe('messaging.>');
  void (async () => {
    for await (const m of sub) {
      try {
        events.push({ ...(JSON.parse(m.string()) as CloudEvent), subject: m.subject });
      } catch {
        // commands and garbage published by tests
      }
    }
  })();

  const gqlAt = async (url: string, query: string, variables?: Record<string, unknown>) => {
    const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    return (await res.json()) as GqlResult;
  };

  return {
    simUrl,
    sim,
    main,
    events,
    gql: (query, variables) => gqlAt(main.url, query, variables),
    async handset(phone) {
      const res = await fetch(`${simUrl}/api/handsets/${encodeURIComponent(phone)}/messages`);
      return (await res.json()) as any;
    },
    async simJson(method, path, body) {
      const res = await fetch(`${simUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return res.json();
    },
    async publish(subject, data, options = {}) {
      const event = createEvent({
        source: options.source ?? 'textloop/contacts',
        type: subject,
        data,
        ...(options.id ? { id: options.id } : {}),
        ...(options.time ? { time: options.time } : {}),
      });
      await publishEvent(main.deps.nats.js, subject, event);
      return event;
    },
    startInstance,
    async close() {
      sub.unsubscribe();
      for (const r of running.reverse()) await r.stop().catch(() => {});
      await sim.close();
      await database.drop();
      await nats.stop();
    },
  };
}

/** A contacts.contact.created payload with every field set. */
export function contactData(contactId: string, phone: string, extra: Record<string, unknown> = {}) {
  return {
    contactId,
    externalId: null,
    phone,
    country: 'US',
    timezone: 'America/New_York',
    locale: 'en-US',
    firstName: 'Ada',
    lastName: 'Lovelace',
    email: 'ada@example.com',
    attributes: { plan: 'gold' },
    tags: ['vip'],
    subscribed: true,
    ...extra,
  };
}

export async function waitForRow<T>(check: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000): Promise<T> {
  return waitFor(check, { what, timeoutMs, intervalMs: 25 }) as Promise<T>;
}

export const MESSAGE_FIELDS = `id direction category status to from body encoding segments price { amount currency } provider providerMessageId errorCode errorMessage correlation createdAt sentAt deliveredAt contact { id } template { name } statusHistory { status at detail }`;
