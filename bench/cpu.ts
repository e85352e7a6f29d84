import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type pg from 'pg';

/**
 * Where the CPU went during a phase of a benchmark (Linux /proc; elsewhere nothing is reported):
 * this process, the processes it started (the services, nats-server), the PostgreSQL backends
 * serving its databases, and everything else on the machine (other work, PostgreSQL's own
 * background processes). On a shared machine the last line says how far to trust the figures.
 */
export interface CpuSample {
  at: number;
  machineBusy: number;
  machineTotal: number;
  /** jiffies by "label\tpid" */
  processes: Map<string, number>;
}

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux that matters

function jiffiesOf(pid: string): { ppid: string; jiffies: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: fields[1]!, jiffies: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined; // gone, or not Linux
  }
}

/** Labels of this process's children: the service a node process runs, or the program's name. */
function childLabel(pid: string): string {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    const service = /services\/([a-z-]+)\/src/.exec(cmdline);
    if (service) return service[1]!;
    return cmdline.split(' ')[0]!.split('/').pop() || `pid ${pid}`;
  } catch {
    return `pid ${pid}`;
  }
}

/** databases: name of a database → label of its backends, e.g. "postgres (scheduling)". */
export async function sampleCpu(db: pg.Pool, databases: Record<string, string>): Promise<CpuSample | undefined> {
  let machine: number[];
  try {
    machine = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return undefined;
  }
  const idle = (machine[3] ?? 0) + (machine[4] ?? 0);
  const total = machine.slice(0, 8).reduce((a, b) => a + b, 0);
  const processes = new Map<string, number>();
  const self = String(process.pid);
  const backends = new Map<string, string>();
  const { rows } = await db.query<{ pid: number; datname: string }>('select pid, datname from pg_stat_activity where datname = any($1)', [
    Object.keys(databases),
  ]);
  for (const r of rows) backends.set(String(r.pid), databases[r.datname]!);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const label = pid === self ? 'bench (this script)' : backends.get(pid);
    const info = jiffiesOf(pid);
    if (!info) continue;
    if (label) processes.set(`${label}\t${pid}`, info.jiffies);
    else if (info.ppid === self) processes.set(`${childLabel(pid)}\t${pid}`, info.jiffies);
  }
  return { at: performance.now(), machineBusy: total - idle, machineTotal: total, processes };
}

/** Share of one core each label used between two samples, plus everything else and idle. */
export function cpuShares(from: CpuSample, to: CpuSample): Array<[string, number]> {
  const seconds = (to.at - from.at) / 1000;
  const byLabel = new Map<string, number>();
  for (const [key, jiffies] of to.processes) {
    // A process that started after the first sample spent all its time inside the phase.
    const used = jiffies - (from.processes.get(key) ?? 0);
    const label = key.split('\t')[0]!;
    byLabel.set(label, (byLabel.get(label) ?? 0) + used);
  }
  const share = (jiffies: number) => jiffies / TICKS_PER_SECOND / seconds;
  const ours = [...byLabel.values()].reduce((a, b) => a + b, 0);
  const machineBusy = to.machineBusy - from.machineBusy;
  const cores = cpus().length;
  const idleShare = ((to.machineTotal - from.machineTotal - machineBusy) / (to.machineTotal - from.machineTotal)) * cores;
  return [
    ...[...byLabel.entries()].sort((a, b) => b[1] - a[1]).map(([label, jiffies]): [string, number] => [label, share(jiffies)]),
    ['everything else on the machine', Math.max(0, share(machineBusy) - share(ours))],
    ['idle', idleShare],
  ];
}

/**
 * CPU seconds the platform used between two samples: its processes and their PostgreSQL backends,
 * not this script. Steal and other load hardly touch it, so it compares runs better than wall time.
 */
export function platformCpuSeconds(from: CpuSample, to: CpuSample): number {
  let jiffies = 0;
  for (const [key, now] of to.processes) {
    if (key.startsWith('bench (this script)\t')) continue;
    jiffies += now - (from.processes.get(key) ?? 0);
  }
  return jiffies / TICKS_PER_SECOND;
}
