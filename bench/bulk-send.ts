// pnpm bench — bulk send through the running platform, then the floor for comparison.
//
//   pnpm bench                      10,000 messages (BENCH_MESSAGES or --messages N to change)
//
// Starts the six processes on free ports with fresh PostgreSQL databases (DATABASE_URL or
// postgres://root@127.0.0.1:5432/) and a private nats-server, sends N messages to distinct
// simulator handsets with the batch mutation sendMessages through the gateway, and times from the
// first request until every message is DELIVERED in messaging's database.
import pg from 'pg';
import { createTestDatabase, startTestNats } from '@textloop/service-kit/testing';
import { startPlatform } from '../scripts/platform';
import { measureFloor } from './floor';

const argIndex = process.argv.indexOf('--messages');
const N = Number(argIndex > 0 ? process.argv[argIndex + 1] : (process.env.BENCH_MESSAGES ?? 10_000));
const CHUNK = 500;
const IN_FLIGHT = 4;
const SIM_KEY = 'textloop-sim';
const SIM_SECRET = 'textloop-sim-secret';
const SERVICES = ['contacts', 'messaging', 'scheduling', 'feedback'] as const;

const log = (line: string) => process.stderr.write(`${line}\n`);
const phones = (prefix: string) => Array.from({ length: N }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);

async function main() {
  if (!Number.isInteger(N) || N < 1 || N > 10_000) throw new Error('--messages must be 1..10000 (distinct handsets come from one 10,000-number block)');
  log(`bench: starting the platform on PostgreSQL (${N.toLocaleString()} messages)…`);
  const nats = await startTestNats();
  const databases = await Promise.all(SERVICES.map((s) => createTestDatabase(`bench_${s}`)));
  const floorDb = await createTestDatabase('bench_floor');
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  delete env.API_KEYS;
  SERVICES.forEach((s, i) => (env[`${s.toUpperCase()}_DATABASE_URL`] = databases[i]!.url));
  const platform = await startPlatform({ env, ports: 'free', natsUrl: nats.url, quiet: true });
  const messagingDb = new pg.Pool({ connectionString: databases[1]!.url, max: 2 });
  messagingDb.on('error', (err) => log(`bench: idle database connection failed: ${err.message}`));
  try {
    const gql = async (query: string, variables: Record<string, unknown>) => {
      const res = await fetch(platform.urls.graphql, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${platform.devApiKey}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { errors?: unknown[] };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
    };
    // Warm-up: first requests pay for query planning and connection set-up.
    await gql('mutation($i: [SendMessageInput!]!) { sendMessages(inputs: $i) { id } }', { i: [{ to: '+14165559999', body: 'warm-up' }] });
    await new Promise((r) => setTimeout(r, 1000));

    const targets = phones('+1415555');
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < N) {
          const slice = targets.slice(next, next + CHUNK);
          next += CHUNK;
          await gql('mutation($i: [SendMessageInput!]!) { sendMessages(inputs: $i) { id } }', {
            i: slice.map((to) => ({ to, body: 'Your order has shipped. Track it at https://example.com/t/ABC123' })),
          });
        }
      }),
    );
    const submitted = performance.now();
    log(`bench: submitted ${N.toLocaleString()} in ${((submitted - started) / 1000).toFixed(2)} s; waiting for delivery…`);
    let delivered = 0;
    let lastShown = 0;
    for (;;) {
      const { rows } = await messagingDb.query(`select count(*)::int as n from messages where status = 'DELIVERED' and to_number like '+1415555%'`);
      delivered = rows[0].n;
      if (delivered >= N) break;
      if (performance.now() - lastShown > 1000) {
        log(`bench:   ${delivered.toLocaleString()} / ${N.toLocaleString()} delivered`);
        lastShown = performance.now();
      }
      if (performance.now() - started > 300_000) throw new Error(`only ${delivered} of ${N} delivered after 5 minutes`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    const { rows: lat } = await messagingDb.query(
      `select percentile_cont(0.5) within group (order by ms) as p50, percentile_cont(0.99) within group (order by ms) as p99
         from (select extract(epoch from (delivered_at - created_at)) * 1000 as ms from messages where to_number like '+1415555%') t`,
    );

    log('bench: measuring the floor (insert, provider POST, delivery report, update)…');
    await fetch(new URL('/api/handsets', platform.urls.carrierSim), { method: 'DELETE' });
    const floor = await measureFloor({
      databaseUrl: floorDb.url,
      simUrl: platform.urls.carrierSim.replace(/\/$/, ''),
      apiKey: SIM_KEY,
      apiSecret: SIM_SECRET,
      phones: phones('+1416555'),
    });

    const rate = N / seconds;
    const rows: Array<[string, string]> = [
      ['messages', N.toLocaleString()],
      ['platform, first request → all DELIVERED', `${seconds.toFixed(2)} s`],
      ['platform throughput', `${Math.round(rate).toLocaleString()} msg/s`],
      ['send → delivered p50', `${Number(lat[0].p50).toFixed(0)} ms`],
      ['send → delivered p99', `${Number(lat[0].p99).toFixed(0)} ms`],
      ['floor throughput (insert, POST, DLR, update)', `${Math.round(floor.perSecond).toLocaleString()} msg/s`],
      ['platform / floor', `${((rate / floor.perSecond) * 100).toFixed(0)} %`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(`\n| ${'measure'.padEnd(w)} | value |\n| ${'-'.repeat(w)} | --- |`);
    for (const [k, v] of rows) console.log(`| ${k.padEnd(w)} | ${v} |`);
    console.log(`\ntarget: ≥ 2,000 msg/s end to end — ${rate >= 2000 ? 'met' : 'NOT met'}`);
  } finally {
    await messagingDb.end();
    await platform.stop();
    await nats.stop();
    for (const d of [...databases, floorDb]) await d.drop();
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
