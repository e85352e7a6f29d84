import { createTestDatabase, startTestNats, type TestNats } from '@textloop/service-kit/testing';
import { startPlatform, type Platform } from '../../scripts/platform';

/** The whole platform as six real processes on free ports, with fresh Postgres databases and a private NATS. */
export interface E2E {
  platform: Platform;
  nats: TestNats;
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** Like gql, but returns the errors instead of throwing on them. */
  gqlRaw(
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<{ data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> }>;
  sim(path: string, init?: RequestInit): Promise<any>;
  close(): Promise<void>;
}

const SERVICES = ['contacts', 'messaging', 'scheduling', 'feedback'] as const;

export async function startE2E(options: { prefix: string; env?: NodeJS.ProcessEnv; dataDir?: string; embedded?: boolean; nats?: TestNats }): Promise<E2E> {
  const nats = options.nats ?? (await startTestNats());
  const databases: Array<{ drop(): Promise<void> }> = [];
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...options.env };
  delete env.API_KEYS;
  if (options.embedded) {
    delete env.DATABASE_URL;
    for (const s of SERVICES) delete env[`${s.toUpperCase()}_DATABASE_URL`];
  } else {
    for (const s of SERVICES) {
      const db = await createTestDatabase(`${options.prefix}_${s}`);
      databases.push(db);
      env[`${s.toUpperCase()}_DATABASE_URL`] = db.url;
    }
  }
  const platform = await startPlatform({ env, dataDir: options.dataDir, ports: 'free', natsUrl: nats.url, quiet: true, readyTimeoutMs: 180_000 });
  const gqlRaw = async (query: string, variables?: Record<string, unknown>) => {
    const res = await fetch(platform.urls.graphql, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${platform.devApiKey}` },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as any;
  };
  return {
    platform,
    nats,
    gqlRaw,
    async gql(query, variables) {
      const body = await gqlRaw(query, variables);
      if (body.errors?.length) throw new Error(`GraphQL error: ${JSON.stringify(body.errors)}`);
      return body.data;
    },
    async sim(path, init) {
      const res = await fetch(new URL(path, platform.urls.carrierSim), init);
      return res.status === 204 ? undefined : res.json();
    },
    async close() {
      await platform.stop();
      for (const db of databases) await db.drop();
      if (!options.nats) await nats.stop();
    },
  };
}
