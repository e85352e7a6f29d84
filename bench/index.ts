// pnpm bench — runs the benchmarks in turn, each in its own process (its own platform, databases
// and nats-server), and prints each one's table.
//
//   pnpm bench                       every benchmark
//   pnpm bench bulk-send             one (or several: pnpm bench timers bulk-send)
//   pnpm bench bulk-send --messages 2000
//   pnpm bench timers --steps 20000 --lag-steps 500
//   pnpm bench nps --responses 200000 --explain
//   pnpm bench inbound --inbound-messages 2000 --handsets 400
//   pnpm bench campaign --recipients 20000
//
// Options after the names go to every benchmark run; each reads its own and ignores the others'.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHMARKS: Record<string, { file: string; what: string }> = {
  'bulk-send': { file: 'bulk-send.ts', what: 'sendMessages through the gateway until DELIVERED, against the floor' },
  timers: { file: 'timers.ts', what: 'steps due in the same minute fired and sent; timer lag at distinct times' },
  nps: { file: 'nps.ts', what: 'npsReport over 1,000,000 survey responses through feedback GraphQL (p50/max per query)' },
  inbound: { file: 'inbound.ts', what: 'inbound SMS from new handsets straight to the webhook, with redeliveries: none lost or duplicated' },
  dormancy: { file: 'dormancy.ts', what: 'runDormancySweep and contacts(filter: { inactiveForDays }) over 1,000,000 contacts; audience RPC paging' },
  campaign: { file: 'campaign.ts', what: 'a 100,000-recipient campaign with offer codes: launch → resolved → sent → DELIVERED' },
};

const args = process.argv.slice(2);
const firstOption = args.findIndex((a) => a.startsWith('-'));
const names = firstOption < 0 ? args : args.slice(0, firstOption);
const options = firstOption < 0 ? [] : args.slice(firstOption);
const unknown = names.filter((n) => !(n in BENCHMARKS));
if (unknown.length > 0) {
  const known = Object.entries(BENCHMARKS)
    .map(([n, b]) => `  ${n.padEnd(10)} ${b.what}`)
    .join('\n');
  console.error(`No benchmark named ${unknown.map((n) => `"${n}"`).join(', ')}. Choose from:\n${known}`);
  process.exit(2);
}

// Ctrl-C reaches the benchmark too; it stops its platform and drops its databases, so wait for it.
let interrupted = false;
process.on('SIGINT', () => (interrupted = true));
process.on('SIGTERM', () => (interrupted = true));

function run(name: string): Promise<number> {
  const file = fileURLToPath(new URL(BENCHMARKS[name]!.file, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...options], { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.once('error', (err) => {
      console.error(`bench: could not run ${name}: ${err.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const failed: string[] = [];
for (const name of names.length > 0 ? names : Object.keys(BENCHMARKS)) {
  if (interrupted) break;
  console.log(`\n## ${name}`);
  if ((await run(name)) !== 0) failed.push(name);
}
if (interrupted) process.exit(130);
if (failed.length > 0) {
  console.error(`\nbench: ${failed.join(', ')} failed`);
  process.exit(1);
}
