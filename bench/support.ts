// What the benchmarks share: options, progress lines, tables, clean-up, and the running platform
// (fresh databases, a private nats-server, the gateway's GraphQL, contacts imported and projected).
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import pg from 'pg';
import { createTestDatabase, startTestNats, type TestNats } from '@textloop/service-kit/testing';
import { startPlatform, type Platform, type ProcessExit } from '../scripts/platform';
import { cpuShares, sampleCpu, type CpuSample } from './cpu';

// ── options and formatting ──────────────────────────────────────────────────────────────────────

/** A numeric option from `--flag N`, else the environment variable, else the default, so sizes can be set either way. */
export function option(flag: string, fallback: number, envName?: string): number {
  const i = process.argv.indexOf(flag);
  const raw = i > 0 ? process.argv[i + 1] : envName === undefined ? undefined : process.env[envName];
  return raw === undefined || raw.trim() === '' ? fallback : Number(raw);
}

/** Progress goes to stderr, so stdout holds only the tables. */
export const log = (line: string) => process.stderr.write(`${line}\n`);
/** Waits in polling loops. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A whole number with thousands separators, the same whatever the machine's locale. */
export const fmt = (n: number) => Math.round(n).toLocaleString('en');
/** Milliseconds shown as seconds with two decimals, the unit of the platform benchmarks' tables. */
export const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The nearest-rank percentile (p in 0..1) of unsorted values, as every table reports it. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** Prints a Markdown table with padded columns, so the results read well in a terminal and paste into the README. */
export function table(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n${line(headers)}\n| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
  for (const r of rows) console.log(line(r));
}

/** A stretch of a benchmark whose CPU use is reported: a sample when it starts, one when it ends. */
export interface CpuPhase {
  name: string;
  from?: CpuSample;
  to?: CpuSample;
}

/** Samples CPU (processes and PostgreSQL backends, via db) as named phases start and end, for cpuTable. */
export class CpuPhases {
  readonly list: CpuPhase[] = [];
  constructor(
    private readonly db: pg.Pool,
    private readonly databaseLabels: Record<string, string>,
  ) {}

  /** Starts a phase: it shows in the table once ended. */
  async start(name: string): Promise<CpuPhase> {
    const phase: CpuPhase = { name, from: await sampleCpu(this.db, this.databaseLabels) };
    this.list.push(phase);
    return phase;
  }

  async end(phase: CpuPhase): Promise<void> {
    phase.to = await sampleCpu(this.db, this.databaseLabels);
  }
}

/** CPU by process in each phase, in % of one core (200 % = both cores of a 2-core machine), to show where the time went. */
export function cpuTable(phases: CpuPhase[]): void {
  const measured = phases.filter((p) => p.from && p.to);
  if (measured.length === 0) return;
  const shares = measured.map((p) => new Map(cpuShares(p.from!, p.to!)));
  // Rows that round to 0 % everywhere (tsx's esbuild, an idle service's database) are left out.
  const labels = [...new Set(shares.flatMap((m) => [...m.keys()]))].filter((l) => l === 'idle' || shares.some((m) => (m.get(l) ?? 0) >= 0.005));
  const order = (l: string) => (l === 'idle' ? 2 : l.startsWith('everything else') ? 1 : 0);
  labels.sort((a, b) => order(a) - order(b) || Math.max(...shares.map((m) => m.get(b) ?? 0)) - Math.max(...shares.map((m) => m.get(a) ?? 0)));
  table(
    ['CPU, % of one core', ...measured.map((p) => p.name)],
    labels.map((l) => [l, ...shares.map((m) => `${Math.round((m.get(l) ?? 0) * 100)} %`)]),
  );
}

// ── running and cleaning up ─────────────────────────────────────────────────────────────────────

/** Runs a benchmark's main and exits non-zero with its error, so `pnpm bench` can tell it failed. */
export function runMain(main: () => Promise<unknown>): void {
  main().catch((err) => {
    console.error(`bench failed: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });
}

/** Clean-up steps, run newest first, so whatever a run started is stopped and dropped even when it fails half-way. */
export class Teardown {
  private readonly steps: Array<() => Promise<unknown>> = [];

  /** Registers a step to run at the end (before the ones registered earlier). */
  defer(step: () => Promise<unknown>): void {
    this.steps.unshift(step);
  }

  /** A pg pool closed at the end; an idle connection failing is logged rather than crashing the run. */
  pool(url: string, max: number): pg.Pool {
    const p = new pg.Pool({ connectionString: url, max });
    p.on('error', (err) => log(`bench: idle database connection failed: ${err.message}`));
    this.defer(() => p.end());
    return p;
  }

  /** A fresh PostgreSQL database (DATABASE_URL or postgres://root@127.0.0.1:5432/), dropped at the end. */
  async database(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
    const database = await createTestDatabase(prefix);
    this.defer(() => database.drop());
    return database;
  }

  /** A private nats-server, stopped at the end, so runs never see each other's streams. */
  async nats(): Promise<TestNats> {
    const nats = await startTestNats();
    this.defer(() => nats.stop());
    return nats;
  }

  /** Runs every step, logging (not throwing) a failed one so the others still run. */
  async run(): Promise<void> {
    for (const step of this.steps.splice(0)) await step().catch((err: unknown) => log(`bench: clean-up failed: ${err instanceof Error ? err.message : err}`));
  }
}

/** Runs body with a Teardown and always runs it afterwards, logging farewell first (what the wait is for). */
export async function withTeardown<T>(body: (teardown: Teardown) => Promise<T>, farewell?: string): Promise<T> {
  const teardown = new Teardown();
  try {
    return await body(teardown);
  } finally {
    if (farewell) log(farewell);
    await teardown.run();
  }
}

// ── GraphQL ─────────────────────────────────────────────────────────────────────────────────────

/** Sends one GraphQL operation and resolves to its data; a response with errors (or no data) throws. */
export type Gql = <T = any>(query: string, variables?: Record<string, unknown>) => Promise<T>;

/** A GraphQL client for the gateway (with the API key) or a subgraph (without), failing loudly on any error. */
export function graphqlClient(url: string, apiKey?: string): Gql {
  return async <T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: T; errors?: unknown[] };
    if (body.errors || !body.data) throw new Error(JSON.stringify(body.errors ?? body));
    return body.data;
  };
}

// ── the platform ────────────────────────────────────────────────────────────────────────────────

export const SERVICES = ['contacts', 'messaging', 'scheduling', 'feedback'] as const;
export type Service = (typeof SERVICES)[number];

export interface BenchPlatform {
  platform: Platform;
  /** A pool on a service's database, closed at the end. */
  pool(service: Service, max: number): pg.Pool;
  /** Database name → `postgres (service)`, for sampleCpu. */
  databaseLabels: Record<string, string>;
  /** The gateway's GraphQL, with the dev API key. */
  gql: Gql;
  /** Throws when a process died or the run was interrupted, so a wait loop never outlives the platform. */
  alive(): void;
  /** False once a process died or the run was interrupted, for background loops that must end quietly. */
  running(): boolean;
  /** A connection to the private nats-server (closed at the end), for watching events and consumers. */
  connectNats(): Promise<NatsConnection>;
}

/**
 * The six processes on free ports, each service on a fresh PostgreSQL database, with a private
 * nats-server: what a benchmark measures, isolated from anything else running. Everything is
 * registered with the teardown; Ctrl-C makes alive() throw so the run stops and cleans up.
 */
export async function startBenchPlatform(teardown: Teardown, extraEnv: NodeJS.ProcessEnv = {}): Promise<BenchPlatform> {
  let interrupted = false;
  const onSignal = () => (interrupted = true);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  teardown.defer(async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });

  const nats = await teardown.nats();
  const list = await Promise.all(SERVICES.map((s) => createTestDatabase(`bench_${s}`)));
  teardown.defer(() => Promise.all(list.map((d) => d.drop())));
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', ...extraEnv };
  delete env.API_KEYS;
  SERVICES.forEach((s, i) => (env[`${s.toUpperCase()}_DATABASE_URL`] = list[i]!.url));
  const platform = await startPlatform({ env, ports: 'free', natsUrl: nats.url, quiet: true });
  teardown.defer(() => platform.stop());
  let crashed: ProcessExit | undefined;
  void platform.unexpectedExit.then((exit) => (crashed = exit));

  return {
    platform,
    pool: (service, max) => teardown.pool(list[SERVICES.indexOf(service)]!.url, max),
    databaseLabels: Object.fromEntries(SERVICES.map((s, i) => [new URL(list[i]!.url).pathname.slice(1), `postgres (${s})`])),
    gql: graphqlClient(platform.urls.graphql, platform.devApiKey),
    alive: () => {
      if (interrupted) throw new Error('interrupted');
      if (crashed) throw new Error(`${crashed.name} exited (${crashed.signal ?? crashed.code}):\n${crashed.lastLines.join('\n')}`);
    },
    running: () => !interrupted && !crashed,
    connectNats: async () => {
      const nc = await connect({ servers: nats.url });
      teardown.defer(() => nc.close());
      return nc;
    },
  };
}

/** Consumers of a stream and how many events each has still to handle, to wait for the platform to catch up. */
export async function consumerBacklogs(jsm: JetStreamManager, stream: string): Promise<Array<{ name: string; backlog: number }>> {
  try {
    const list = await jsm.consumers.list(stream).next();
    return list.map((c) => ({ name: c.name, backlog: c.num_pending + c.num_ack_pending }));
  } catch {
    return []; // the stream does not exist yet
  }
}

const IMPORT_CHUNK = 10_000; // importContacts' limit per call
const IMPORT_IN_FLIGHT = 3;
const PROJECTION_PROGRESS_MS = 3_000;
const PROJECTION_TIMEOUT_MS = 10 * 60_000;

/**
 * Imports a contact per phone through the gateway (10,000 a call, 3 calls in flight), then waits
 * until messaging's projection has them all and the CONTACTS consumers of messaging and scheduling
 * are idle, so sends find their contact and catching up does not run into the measurement.
 */
export async function importContacts(
  { gql, alive }: Pick<BenchPlatform, 'gql' | 'alive'>,
  messagingDb: pg.Pool,
  jsm: JetStreamManager,
  phones: string[],
  tags?: string[],
): Promise<void> {
  const N = phones.length;
  const importStarted = performance.now();
  let next = 0;
  let imported = 0;
  await Promise.all(
    Array.from({ length: IMPORT_IN_FLIGHT }, async () => {
      while (next < N) {
        const start = next;
        next += IMPORT_CHUNK;
        const slice = phones.slice(start, start + IMPORT_CHUNK);
        // Half the contacts have a first name, so the templates' default filter is exercised too.
        const contacts = slice.map((phone, k) => ({ phone, ...(tags ? { tags } : {}), ...((start + k) % 2 === 0 ? { firstName: `Bench${start + k}` } : {}) }));
        const { importContacts: result } = await gql<{ importContacts: { created: number; failed: Array<{ index: number; message: string }> } }>(
          'mutation($c: [CreateContactInput!]!) { importContacts(contacts: $c) { created failed { index message } } }',
          { c: contacts },
        );
        if (result.failed.length > 0) throw new Error(`importContacts rejected ${result.failed.length} rows; first: ${result.failed[0]!.message}`);
        if (result.created !== slice.length) throw new Error(`importContacts created ${result.created} of ${slice.length} (fresh database, all new numbers)`);
        imported += slice.length;
        log(`bench:   imported ${fmt(imported)} / ${fmt(N)} contacts`);
      }
    }),
  );
  log(`bench: imported ${fmt(N)} contacts in ${secs(performance.now() - importStarted)}; waiting for messaging and scheduling to see them…`);
  const projectionDeadline = performance.now() + PROJECTION_TIMEOUT_MS;
  for (let shown = 0; ;) {
    alive();
    const { rows } = await messagingDb.query('select count(*)::int as n from contacts');
    const projected: number = rows[0].n;
    const consumers = await consumerBacklogs(jsm, 'CONTACTS');
    const busy = consumers.filter((c) => c.backlog > 0);
    const present = ['messaging-contacts', 'scheduling-contacts'].every((d) => consumers.some((c) => c.name === d));
    if (projected >= N && present && busy.length === 0) break;
    if (performance.now() - shown > PROJECTION_PROGRESS_MS) {
      const backlog = consumers.map((c) => `${c.name} ${fmt(c.backlog)}`).join(', ');
      log(`bench:   messaging's projection has ${fmt(projected)} / ${fmt(N)}; CONTACTS backlog: ${backlog || 'no consumers yet'}`);
      shown = performance.now();
    }
    if (performance.now() > projectionDeadline) throw new Error(`messaging's projection had ${projected} of ${N} contacts after 10 minutes`);
    await sleep(500);
  }
  log(`bench: messaging and scheduling have seen all ${fmt(N)} contacts (${secs(performance.now() - importStarted)} after the first import)`);
}

// ── messages sent for an automation or a campaign ───────────────────────────────────────────────

/** Final statuses other than DELIVERED: a message in one of them will never be delivered. */
export const NOT_DELIVERED = ['UNDELIVERED', 'FAILED', 'EXPIRED', 'SUPPRESSED', 'CANCELED'];

/** Which correlation field ties messaging's messages to what sent them. */
export type CorrelationKey = 'automationId' | 'campaignId';

/** Messages by status for one automation or campaign, to follow its progress to DELIVERED. */
export async function messageStatuses(db: pg.Pool, key: CorrelationKey, id: string): Promise<Record<string, number>> {
  const { rows } = await db.query(`select status, count(*)::int as n from messages where correlation->>'${key}' = $1 group by status order by status`, [id]);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** The commonest reasons messages of one automation or campaign were not delivered, for the error a failed run throws. */
export async function failureSummary(db: pg.Pool, key: CorrelationKey, id: string): Promise<string> {
  const { rows } = await db.query(
    `select status, error_code, min(error_message) as example, count(*)::int as n from messages
      where correlation->>'${key}' = $1 and status <> 'DELIVERED' group by status, error_code order by n desc limit 5`,
    [id],
  );
  return rows.map((r) => `${r.n} ${r.status} ${r.error_code ?? ''} (${r.example ?? 'no message'})`).join('; ');
}
