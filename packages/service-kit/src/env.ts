import { join, resolve } from 'node:path';

export type ServiceName = 'contacts' | 'messaging' | 'scheduling' | 'feedback';

export const DEFAULT_PORTS = {
  gateway: 4000,
  contacts: 4001,
  messaging: 4002,
  scheduling: 4003,
  feedback: 4004,
  'carrier-sim': 4010,
} as const;

/** The variable that sets each process's port (runtime.md). */
export const PORT_VARS = {
  gateway: 'GATEWAY_PORT',
  contacts: 'CONTACTS_PORT',
  messaging: 'MESSAGING_PORT',
  scheduling: 'SCHEDULING_PORT',
  feedback: 'FEEDBACK_PORT',
  'carrier-sim': 'CARRIER_SIM_PORT',
} as const;

export type ProcessName = keyof typeof DEFAULT_PORTS;

export class ConfigError extends Error {}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name} must be a port number (0-65535), got "${raw}"`);
  return n;
}

export function portOf(name: ProcessName, env: NodeJS.ProcessEnv = process.env): number {
  return intFrom(env, PORT_VARS[name], DEFAULT_PORTS[name]);
}

export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.DATA_DIR || '.data');
}

/**
 * Where a service keeps its data: an explicit per-service URL, else database textloop_<service>
 * on the DATABASE_URL server, else an embedded PGlite folder under DATA_DIR.
 */
export function databaseTarget(
  service: ServiceName,
  env: NodeJS.ProcessEnv = process.env,
): { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string } {
  const own = env[`${service.toUpperCase()}_DATABASE_URL`];
  if (own) return { kind: 'postgres', url: own };
  if (env.DATABASE_URL) {
    const url = new URL(env.DATABASE_URL);
    url.pathname = `/textloop_${service}`;
    return { kind: 'postgres', url: url.toString() };
  }
  return { kind: 'pglite', dir: join(dataDir(env), service) };
}

export function natsUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.NATS_URL || 'nats://127.0.0.1:4222';
}
