// Runs the whole platform as child processes: nats-server when needed, the carrier simulator, the
// four subgraphs and the gateway. `pnpm start` is a thin CLI around startPlatform; end-to-end tests
// and the benchmark call it with free ports and their own DATA_DIR or databases.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from 'nats';
import { dataDir as defaultDataDir, loadSecret, PORT_VARS, natsUrl as defaultNatsUrl, portOf, type ProcessName, type ServiceName } from '@textloop/service-kit';
import { freePort } from '@textloop/service-kit/testing';
import { loadApiKeys } from '../services/gateway/src/auth';
import { REPO_ROOT } from '../services/gateway/src/compose';

export type { ProcessName };

/** Start order: the simulator, the subgraphs (they migrate their databases), then the gateway. */
export const PROCESSES: readonly ProcessName[] = ['carrier-sim', 'contacts', 'messaging', 'scheduling', 'feedback', 'gateway'];
const SUBGRAPHS: readonly ServiceName[] = ['contacts', 'messaging', 'scheduling', 'feedback'];
const KEPT_LINES = 40;

export interface PlatformOptions {
  /** Environment of the processes (API_KEYS, DATABASE_URL, LOG_LEVEL, …); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Shared folder for PGlite databases, the NATS store and generated secrets; default $DATA_DIR or .data. */
  dataDir?: string;
  /** Ports by process; unset ones come from *_PORT or the defaults. 'free' picks unused ports for all six. */
  ports?: Partial<Record<ProcessName, number>> | 'free';
  /** NATS server; default $NATS_URL or nats://127.0.0.1:4222. */
  natsUrl?: string;
  /** Do not forward the processes' output (their last lines are still shown when one fails to start). */
  quiet?: boolean;
  /** Where forwarded output goes, one line per call; default standard output. */
  output?: (line: string) => void;
  /** How long to wait for every /healthz; default 120 s. */
  readyTimeoutMs?: number;
  /** How ports: 'free' chooses a port; default an unused one from the OS. Tests replace it to stage a lost race. */
  choosePort?: () => Promise<number>;
}

export interface PlatformUrls {
  /** The GraphQL API: POST with Authorization: Bearer <key>. */
  graphql: string;
  /** The Sandbox, for a browser. */
  sandbox: string;
  /** Each subgraph's /graphql; they answer only the gateway. */
  subgraphs: Record<ServiceName, string>;
  /** The carrier simulator: Mocean-compatible API, control API (/api/…) and the handsets page (/). */
  carrierSim: string;
  /** Provider callbacks on messaging, without the ?secret=<webhookSecret> they need. */
  webhooks: { inbound: string; deliveryReports: string };
  nats: string;
}

export interface ProcessExit {
  name: ProcessName | 'nats-server';
  code: number | null;
  signal: NodeJS.Signals | null;
  lastLines: string[];
}

export interface Platform {
  urls: PlatformUrls;
  ports: Record<ProcessName, number>;
  dataDir: string;
  /** The key that works when API_KEYS is unset outside production; undefined otherwise. */
  devApiKey?: string;
  /** What the webhook URLs carry as ?secret=. */
  webhookSecret: string;
  /** True when NATS was not running and startPlatform started nats-server. */
  startedNats: boolean;
  /** Settles when a process exits by itself after start-up; stop() does not settle it. */
  unexpectedExit: Promise<ProcessExit>;
  /** Stops every process it started (gateway first, nats-server last). Safe to call twice. */
  stop(): Promise<void>;
  /** Kills one process at once (SIGKILL by default), as a crash would; for fault-injection tests. */
  kill(name: ProcessName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a killed or stopped process again, with extra environment, and waits for its /healthz. */
  restart(name: ProcessName, extraEnv?: NodeJS.ProcessEnv): Promise<void>;
}

/** A process failed to start; its last output lines say why. */
export class PlatformStartError extends Error {
  constructor(
    message: string,
    readonly lastLines: string[] = [],
    /** The process that failed, when one did. */
    readonly processName?: ProcessExit['name'],
  ) {
    super(message);
  }
}

/** A child could not listen because its port was taken after it was chosen. */
class PortTakenError extends PlatformStartError {}

interface Child {
  name: ProcessName | 'nats-server';
  process: ChildProcess;
  lines: string[];
  exited: Promise<ProcessExit>;
  /** Set once it has exited or could not be run at all. */
  exit?: ProcessExit;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS: Record<number, string> = { 40: '33', 50: '31', 60: '31' };
const NAME_COLORS = ['36', '32', '35', '34', '33', '96', '92'];

/** One pino JSON line as `12:00:01 contacts   INFO  msg key=value`; other text as it is. */
export function formatLogLine(name: string, line: string, color: boolean, nameWidth = 11): string {
  const paint = (code: string | undefined, text: string) => (color && code ? `\x1b[${code}m${text}\x1b[0m` : text);
  const tag = paint(NAME_COLORS[[...name].reduce((h, c) => h + c.charCodeAt(0), 0) % NAME_COLORS.length], name.padEnd(nameWidth));
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line);
  } catch {
    return `${tag} ${line}`;
  }
  if (!entry || typeof entry !== 'object' || typeof entry.level !== 'number') return `${tag} ${line}`;
  const { level, time, msg, pid: _pid, hostname: _hostname, service: _service, name: _name, ...rest } = entry as Record<string, any>;
  const at = typeof time === 'number' ? new Date(time).toISOString().slice(11, 19) : '';
  const details = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const levelText = paint(LEVEL_COLORS[level], (LEVELS[level] ?? String(level)).padEnd(5));
  const text = String(msg ?? '').replace(/\s*\n\s*/g, ' ');
  return `${at} ${tag} ${levelText} ${text}${details ? ` ${paint('2', details)}` : ''}`.trimEnd();
}

function track(name: Child['name'], child: ChildProcess, forward?: (line: string) => void): Child {
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > KEPT_LINES) lines.shift();
    forward?.(line);
  };
  for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on('line', keep);
  const tracked: Child = { name, process: child, lines, exited: undefined as unknown as Promise<ProcessExit> };
  tracked.exited = new Promise<ProcessExit>((resolve) => {
    const done = (exit: ProcessExit) => {
      tracked.exit ??= exit;
      resolve(tracked.exit);
    };
    child.once('exit', (code, signal) => done({ name, code, signal, lastLines: lines }));
    child.once('error', (err) => {
      keep(`could not run: ${err.message}`);
      done({ name, code: null, signal: null, lastLines: lines });
    });
  });
  return tracked;
}

async function stopChild(child: Child, graceMs = 10_000): Promise<void> {
  if (child.exit || !child.process.pid) return;
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      // Each child leads its own process group, so this reaches anything it started too.
      process.kill(-child.process.pid!, signal);
    } catch {
      // Already gone.
    }
  };
  signalGroup('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([child.exited, timer])) === 'timeout') {
    signalGroup('SIGKILL');
    await child.exited;
  }
}

function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

async function natsAnswers(url: string): Promise<'jetstream' | 'no-jetstream' | 'down'> {
  let nc;
  try {
    nc = await connect({ servers: url, reconnect: false, timeout: 1000 });
  } catch {
    return 'down';
  }
  try {
    await nc.jetstreamManager();
    return 'jetstream';
  } catch {
    return 'no-jetstream';
  } finally {
    await nc.close().catch(() => {});
  }
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]', '0.0.0.0']);

/** Uses the NATS at `url`, or starts nats-server there when nothing answers and the host is this machine. */
async function ensureNats(url: string, dir: string): Promise<Child | undefined> {
  const state = await natsAnswers(url);
  if (state === 'jetstream') return undefined;
  if (state === 'no-jetstream')
    throw new PlatformStartError(`NATS at ${url} answers but has no JetStream; run it with -js (nats-server -js) or point NATS_URL at one that has it.`);
  const target = new URL(url);
  const howToGet =
    'Install nats-server (https://docs.nats.io/running-a-nats-service/introduction/installation: e.g. `apt install nats-server`, ' +
    '`brew install nats-server`, or `docker run -p 4222:4222 nats -js`), or set NATS_URL to a NATS server with JetStream.';
  if (!LOCAL_HOSTS.has(target.hostname))
    throw new PlatformStartError(`Nothing answers at NATS_URL=${url}. Start that server, or unset NATS_URL to use a local one.`);
  if (spawnSync('sh', ['-c', 'command -v nats-server'], { stdio: 'ignore' }).status !== 0) {
    throw new PlatformStartError(`Nothing answers at ${url} and nats-server is not on PATH. ${howToGet}`);
  }
  const store = join(dir, 'nats');
  mkdirSync(store, { recursive: true });
  const host = target.hostname === 'localhost' ? '127.0.0.1' : target.hostname.replace(/^\[|\]$/g, '');
  const nats = track(
    'nats-server',
    spawn('nats-server', ['-a', host, '-p', target.port || '4222', '-js', '-sd', store], { stdio: ['ignore', 'pipe', 'pipe'], detached: true }),
  );
  const deadline = Date.now() + 15_000;
  for (;;) {
    if ((await natsAnswers(url)) === 'jetstream') return nats;
    if (nats.exit || Date.now() > deadline) {
      await stopChild(nats);
      throw new PlatformStartError(`nats-server did not start on ${url}; its last lines follow.`, nats.lines, 'nats-server');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitHealthy(child: Child, url: string, deadline: number): Promise<void> {
  for (;;) {
    if (child.exit) {
      const how = child.exit.signal ? `signal ${child.exit.signal}` : `code ${child.exit.code}`;
      const Err = child.exit.lastLines.some((l) => l.includes('EADDRINUSE')) ? PortTakenError : PlatformStartError;
      throw new Err(`${child.name} exited during start-up (${how}); its last lines follow.`, child.exit.lastLines, child.name);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json().catch(() => ({}))) as { pid?: unknown };
      // A free port can be taken by another program between choosing it and the child binding it;
      // its 200 must not pass for our child's, which is about to fail with EADDRINUSE.
      if (res.status === 200 && (body.pid === undefined || body.pid === child.process.pid)) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline)
      throw new PlatformStartError(`${child.name} did not become healthy at ${url} in time; its last lines follow.`, child.lines, child.name);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function hostFor(bind: string | undefined): string {
  return !bind || bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
}

export async function startPlatform(options: PlatformOptions = {}): Promise<Platform> {
  // With free ports, another program on the machine may bind a chosen port before our child does;
  // choosing again is then the whole fix.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (!(err instanceof PortTakenError) || options.ports !== 'free' || attempt >= 3) throw err;
    }
  }
}

async function startOnce(options: PlatformOptions): Promise<Platform> {
  const baseEnv = options.env ?? process.env;
  const dir = options.dataDir ?? defaultDataDir(baseEnv);
  const natsUrl = options.natsUrl ?? defaultNatsUrl(baseEnv);
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const color = !options.output && process.stdout.isTTY && !baseEnv.NO_COLOR;
  const output = options.output ?? ((line: string) => process.stdout.write(`${line}\n`));
  const forwardFor = (name: string) => (options.quiet ? undefined : (line: string) => output(formatLogLine(name, line, color)));

  // Throws on a bad or (in production) missing API_KEYS, as the gateway would, before anything starts.
  const devApiKey = loadApiKeys(baseEnv).devKey;

  const ports = {} as Record<ProcessName, number>;
  for (const name of PROCESSES) {
    ports[name] = options.ports === 'free' ? await (options.choosePort ?? freePort)() : (options.ports?.[name] ?? portOf(name, baseEnv));
  }
  const hosts = Object.fromEntries(PROCESSES.map((n) => [n, hostFor(n === 'carrier-sim' ? baseEnv.CARRIER_SIM_HOST : baseEnv.HOST)])) as Record<
    ProcessName,
    string
  >;
  for (const name of PROCESSES) {
    if (!(await portIsFree(ports[name], hosts[name]))) {
      const Err = options.ports === 'free' ? PortTakenError : PlatformStartError;
      throw new Err(
        `Port ${ports[name]} (${name}, ${PORT_VARS[name]}) is already in use. Is Textloop already running? Stop it, or choose another port with ${PORT_VARS[name]}.`,
      );
    }
  }

  mkdirSync(dir, { recursive: true });
  const webhookSecret = loadSecret(dir, 'webhook-secret', baseEnv.WEBHOOK_SECRET);
  const env: NodeJS.ProcessEnv = {
    ...baseEnv,
    DATA_DIR: dir,
    NATS_URL: natsUrl,
    INTERNAL_TOKEN: loadSecret(dir, 'internal-token', baseEnv.INTERNAL_TOKEN),
    WEBHOOK_SECRET: webhookSecret,
    ...Object.fromEntries(PROCESSES.map((name) => [PORT_VARS[name], String(ports[name])])),
  };

  const children: Child[] = [];
  const launch = (name: ProcessName, processEnv: NodeJS.ProcessEnv): Child => {
    const entry = join(REPO_ROOT, 'services', name, 'src', 'index.ts');
    // NODE_ARGS passes flags to every process, e.g. NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = processEnv.NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', entry], {
      cwd: REPO_ROOT,
      env: processEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    return track(name, child, forwardFor(name));
  };
  let natsChild: Child | undefined;
  let stopped = false;
  const killAllNow = () => {
    for (const c of [...children, ...(natsChild ? [natsChild] : [])]) {
      if (!c.exit && c.process.pid) {
        try {
          process.kill(-c.process.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
  };
  // Last resort if this process dies without stop(): leave no orphans behind.
  process.once('exit', killAllNow);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const byName = (names: readonly string[]) => children.filter((c) => names.includes(c.name));
    await Promise.all(byName(['gateway']).map((c) => stopChild(c)));
    await Promise.all(byName(SUBGRAPHS).map((c) => stopChild(c)));
    await Promise.all(byName(['carrier-sim']).map((c) => stopChild(c)));
    if (natsChild) await stopChild(natsChild);
    process.removeListener('exit', killAllNow);
  };

  try {
    natsChild = await ensureNats(natsUrl, dir);
    const deadline = Date.now() + readyTimeoutMs;
    for (const name of PROCESSES) children.push(launch(name, env));
    await Promise.all(children.map((c) => waitHealthy(c, `http://${hosts[c.name as ProcessName]}:${ports[c.name as ProcessName]}/healthz`, deadline)));
  } catch (err) {
    await stop();
    throw err;
  }

  const unexpectedExit = Promise.race(
    [...children, ...(natsChild ? [natsChild] : [])].map((c) => c.exited.then((exit) => (stopped ? new Promise<never>(() => {}) : exit))),
  );
  const base = (name: ProcessName) => `http://${hosts[name]}:${ports[name]}`;
  const webhookBase = (baseEnv.PUBLIC_WEBHOOK_URL || base('messaging')).replace(/\/+$/, '');
  return {
    urls: {
      graphql: `${base('gateway')}/graphql`,
      sandbox: `${base('gateway')}/`,
      subgraphs: Object.fromEntries(SUBGRAPHS.map((n) => [n, `${base(n)}/graphql`])) as Record<ServiceName, string>,
      carrierSim: `${base('carrier-sim')}/`,
      webhooks: { inbound: `${webhookBase}/webhooks/mocean/inbound`, deliveryReports: `${webhookBase}/webhooks/mocean/dlr` },
      nats: natsUrl,
    },
    ports,
    dataDir: dir,
    devApiKey,
    webhookSecret,
    startedNats: natsChild !== undefined,
    unexpectedExit,
    stop,
    async kill(name, signal = 'SIGKILL') {
      const child = children.find((c) => c.name === name && !c.exit);
      if (!child?.process.pid) return;
      try {
        process.kill(-child.process.pid, signal);
      } catch {
        // Already gone.
      }
      await child.exited;
    },
    async restart(name, extraEnv = {}) {
      const old = children.find((c) => c.name === name && !c.exit);
      if (old) await stopChild(old);
      const fresh = launch(name, { ...env, ...extraEnv });
      children.splice(
        children.findIndex((c) => c.name === name),
        1,
        fresh,
      );
      await waitHealthy(fresh, `http://${hosts[name]}:${ports[name]}/healthz`, Date.now() + readyTimeoutMs);
    },
  };
}
