// pnpm bench — bulk send through the running platform, then the floor for comparison.
//
//   pnpm bench                      10,000 messages (BENCH_MESSAGES or --messages N to change)
//   pnpm bench bulk-send --warmup 0 measure from cold (default: 1,000 warm-up messages first)
//
// Starts the six processes on free ports with fresh PostgreSQL databases (DATABASE_URL or
// postgres://root@127.0.0.1:5432/) and a private nats-server, sends a warm-up batch to other
// handsets and waits for it, then sends N messages to distinct simulator handsets with the batch
// mutation sendMessages through the gateway, and times from the first of those requests until
// every one of them is DELIVERED in messaging's database.
import { CpuPhases, cpuTable, log, option, runMain, sleep, startBenchPlatform, withTeardown } from './support';
import { platformCpuSeconds } from './cpu';
import { measureFloor } from './floor';

const N = option('--messages', 10_000, 'BENCH_MESSAGES');
const TIMELINE = process.argv.includes('--timeline');
const WARMUP = option('--warmup', 1_000, 'BENCH_WARMUP');
const CHUNK = 500;
const IN_FLIGHT = 4;
const SIM_KEY = 'textloop-sim';
const SIM_SECRET = 'textloop-sim-secret';

const phones = (prefix: string) => Array.from({ length: N }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);

async function main() {
  if (!Number.isInteger(N) || N < 1 || N > 10_000) throw new Error('--messages must be 1..10000 (distinct handsets come from one 10,000-number block)');
  if (!Number.isInteger(WARMUP) || WARMUP < 0 || WARMUP > 10_000) throw new Error('--warmup must be 0..10000');
  log(`bench: starting the platform on PostgreSQL (${N.toLocaleString()} messages)…`);
  await withTeardown(async (teardown) => {
    const bench = await startBenchPlatform(teardown);
    const { platform, gql, alive } = bench;
    const floorDb = await teardown.database('bench_floor');
    const messagingDb = bench.pool('messaging', 2);
    // Warm-up, so the run measures the platform running rather than starting: the first messages
    // pay for JIT compilation, query planning and opening connections (the simulator's report
    // connections, the provider pool). They go to another number block and are not counted.
    if (WARMUP > 0) {
      log(`bench: warming up with ${WARMUP.toLocaleString()} messages…`);
      const warm = Array.from({ length: WARMUP }, (_, i) => `+1417555${String(i).padStart(4, '0')}`);
      for (let i = 0; i < warm.length; i += CHUNK) {
        await gql('mutation($i: [SendMessageInput!]!) { sendMessages(inputs: $i) { id } }', {
          i: warm.slice(i, i + CHUNK).map((to) => ({ to, body: 'Warm-up: your order has shipped.' })),
        });
      }
      for (;;) {
        alive();
        const { rows } = await messagingDb.query(`select count(*)::int as n from messages where status = 'DELIVERED' and to_number like '+1417555%'`);
        if (rows[0].n >= WARMUP) break;
        await sleep(200);
      }
    }
    await sleep(1000);

    const targets = phones('+1415555');
    const phases = new CpuPhases(messagingDb, bench.databaseLabels);
    const sendPhase = await phases.start('first request → all submitted');
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < N) {
          alive();
          const slice = targets.slice(next, next + CHUNK);
          next += CHUNK;
          await gql('mutation($i: [SendMessageInput!]!) { sendMessages(inputs: $i) { id } }', {
            i: slice.map((to) => ({ to, body: 'Your order has shipped. Track it at https://example.com/t/ABC123' })),
          });
        }
      }),
    );
    const submitted = performance.now();
    await phases.end(sendPhase);
    const deliverPhase = await phases.start('submitted → all DELIVERED');
    log(`bench: submitted ${N.toLocaleString()} in ${((submitted - started) / 1000).toFixed(2)} s; waiting for delivery…`);
    let delivered = 0;
    let lastShown = 0;
    for (;;) {
      alive();
      const { rows } = await messagingDb.query(`select count(*)::int as n from messages where status = 'DELIVERED' and to_number like '+1415555%'`);
      delivered = rows[0].n;
      if (delivered >= N) break;
      if (performance.now() - lastShown > 1000) {
        log(`bench:   ${delivered.toLocaleString()} / ${N.toLocaleString()} delivered`);
        lastShown = performance.now();
      }
      if (performance.now() - started > 300_000) throw new Error(`only ${delivered} of ${N} delivered after 5 minutes`);
      // Each count scans the messages (a share of the CPU the platform is being measured on): look
      // rarely while most are still on their way, and every 20 ms near the end, where it times the run.
      await sleep(delivered < N * 0.8 ? 250 : 20);
    }
    const seconds = (performance.now() - started) / 1000;
    await phases.end(deliverPhase);
    const { rows: lat } = await messagingDb.query(
      `select percentile_cont(0.5) within group (order by ms) as p50, percentile_cont(0.99) within group (order by ms) as p99
         from (select extract(epoch from (delivered_at - created_at)) * 1000 as ms from messages where to_number like '+1415555%') t`,
    );

    if (TIMELINE) {
      // Where the time goes: messages created, accepted by the provider and delivered per 500 ms.
      const { rows: tl } = await messagingDb.query(
        `with t0 as (select min(created_at) as t from messages where to_number like '+1415555%'),
              b as (select floor(extract(epoch from (ts - t0.t)) * 2)::int as k, what from t0, messages m,
                    lateral (values (m.created_at, 'c'), (m.sent_at, 's'), (m.delivered_at, 'd')) v(ts, what)
                     where m.to_number like '+1415555%' and ts is not null)
         select k, count(*) filter (where what = 'c')::int as c, count(*) filter (where what = 's')::int as s,
                count(*) filter (where what = 'd')::int as d from b group by k order by k`,
      );
      console.log('\n| t (s) | created | sent | delivered |\n| --- | --- | --- | --- |');
      for (const r of tl) console.log(`| ${(r.k / 2).toFixed(1)} | ${r.c} | ${r.s} | ${r.d} |`);
    }

    log('bench: measuring the floor (insert, provider POST, delivery report, update)…');
    await fetch(new URL('/api/handsets', platform.urls.carrierSim), { method: 'DELETE' });
    const floorRun = (numbers: string[]) =>
      measureFloor({
        databaseUrl: floorDb.url,
        simUrl: platform.urls.carrierSim.replace(/\/$/, ''),
        apiKey: SIM_KEY,
        apiSecret: SIM_SECRET,
        phones: numbers,
        // As the platform groups them (PROVIDER_MAX_RECIPIENTS, default 20).
        recipientsPerRequest: Number(process.env.PROVIDER_MAX_RECIPIENTS) || 20,
      });
    // The floor gets the same warm-up as the platform.
    if (WARMUP > 0) await floorRun(phones('+1418555').slice(0, WARMUP));
    const floor = await floorRun(phones('+1416555'));

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
    if (sendPhase.from && deliverPhase.to) {
      const cpu = platformCpuSeconds(sendPhase.from, deliverPhase.to);
      rows.push(['platform CPU per message (processes + PostgreSQL)', `${((cpu / N) * 1000).toFixed(2)} ms`]);
    }
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(`\n| ${'measure'.padEnd(w)} | value |\n| ${'-'.repeat(w)} | --- |`);
    for (const [k, v] of rows) console.log(`| ${k.padEnd(w)} | ${v} |`);
    cpuTable(phases.list);
    console.log(`\ntarget: ≥ 2,000 msg/s end to end — ${rate >= 2000 ? 'met' : 'NOT met'}`);
  });
}

runMain(main);
