import type { Kysely, Migration } from 'kysely';
import type { Logger } from 'pino';
import type { StreamName } from '@textloop/events';
import { systemClock, type Clock } from './clock';
import { openDatabase, type DatabaseTarget } from './db';
import { databaseTarget, dataDir, natsUrl, portOf, type ServiceName } from './env';
import type { HttpService } from './http';
import { createLogger } from './logger';
import { migrateToLatest } from './migrate';
import { connectNats, type Nats } from './nats';
import { OutboxRelay } from './outbox';
import { loadSecret } from './secrets';

/** Everything a service's createServer(deps) needs; built by index.ts or by a test. */
export interface ServiceDeps<DB> {
  name: ServiceName;
  db: Kysely<DB>;
  nats: Nats;
  clock: Clock;
  logger: Logger;
  outbox: OutboxRelay;
  /** Token the gateway sends; undefined disables the check (in-process tests). */
  internalToken?: string;
  /** True once the database and NATS are usable; /healthz reports it. */
  healthy: () => boolean;
  env: NodeJS.ProcessEnv;
}

/** What a service's createServer returns. */
export interface ServiceInstance {
  http: HttpService;
  /** Starts consumers and background workers. */
  start(): Promise<void>;
  /** Stops them, letting in-flight work finish. */
  stop(): Promise<void>;
}

export interface BuildDepsOptions {
  name: ServiceName;
  migrations: Record<string, Migration>;
  streams: StreamName[];
  target: DatabaseTarget;
  natsUrl: string;
  logger?: Logger;
  clock?: Clock;
  internalToken?: string;
  env?: NodeJS.ProcessEnv;
}

export async function buildDeps<DB>(options: BuildDepsOptions): Promise<ServiceDeps<DB> & { close(): Promise<void> }> {
  const logger = options.logger ?? createLogger(options.name);
  const opened = await openDatabase<DB>(options.target, { logger });
  try {
    const applied = await migrateToLatest(opened.db as Kysely<any>, options.migrations);
    if (applied.length) logger.info({ applied, database: opened.kind }, 'migrations applied');
  } catch (err) {
    await opened.close();
    throw err;
  }
  let nats: Nats;
  try {
    nats = await connectNats(options.natsUrl, `textloop-${options.name}`, logger, options.streams);
  } catch (err) {
    await opened.close();
    throw err;
  }
  const outbox = new OutboxRelay(opened.db as Kysely<any>, nats.nc, logger, { lockRows: opened.kind === 'postgres' });
  outbox.start();
  return {
    name: options.name,
    db: opened.db,
    nats,
    clock: options.clock ?? systemClock,
    logger,
    outbox,
    internalToken: options.internalToken,
    healthy: () => !nats.nc.isClosed(),
    env: options.env ?? process.env,
    async close() {
      await outbox.stop();
      // drain() waits for the server; with NATS already gone it would hang shutdown.
      await Promise.race([nats.nc.drain().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
      if (!nats.nc.isClosed()) await nats.nc.close().catch(() => {});
      await opened.close();
    },
  };
}

/**
 * The whole of a subgraph's index.ts: read the environment, migrate, connect, listen, and stop
 * cleanly on SIGINT/SIGTERM.
 */
export async function runService<DB>(options: {
  name: ServiceName;
  migrations: Record<string, Migration>;
  streams: StreamName[];
  create: (deps: ServiceDeps<DB>) => ServiceInstance | Promise<ServiceInstance>;
}): Promise<void> {
  const env = process.env;
  const logger = createLogger(options.name);
  const target = databaseTarget(options.name, env);
  try {
    const deps = await buildDeps<DB>({
      ...options,
      target,
      natsUrl: natsUrl(env),
      logger,
      internalToken: loadSecret(dataDir(env), 'internal-token', env.INTERNAL_TOKEN),
      env,
    });
    const instance = await options.create(deps);
    const port = portOf(options.name, env);
    const { url } = await instance.http.listen(port, env.HOST ?? '127.0.0.1');
    await instance.start();
    logger.info({ url, database: target.kind === 'postgres' ? 'postgres' : `pglite:${target.dir}` }, `${options.name} ready`);
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      await instance.http.close();
      await instance.stop();
      await deps.close();
      process.exit(0);
    };
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, `${options.name} could not start`);
    process.exit(1);
  }
}
