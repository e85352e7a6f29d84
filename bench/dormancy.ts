// pnpm bench dormancy — the dormancy sweep and the inactivity filter over 1,000,000 contacts.
//
//   pnpm bench dormancy                   1,000,000 contacts (BENCH_CONTACTS or --contacts N)
//   pnpm bench dormancy --explain         also prints EXPLAIN (ANALYZE, BUFFERS) of each query
//   pnpm bench dormancy --drain           also times the outbox relay publishing the first sweep's events
//
// The contacts service alone, in this process: a fresh PostgreSQL database (DATABASE_URL or
// postgres://root@127.0.0.1:5432/) with the service's migrations, a private nats-server, the
// subgraph on a free port and a manual clock. N contacts are written with one generate_series
// insert: 90% with lastActiveAt uniform over the last 200 days, 10% never active with createdAt
// uniform over the same 200 days (so every inactivity spell starts within the 200 days), 5%
// unsubscribed, tags vip/beta/press on 50%/17%/0.1%, countries US/GB/DE/FR; then vacuum analyze. It times runDormancySweep with thresholds 30/60/90: the first
// sweep flags every threshold each contact has crossed (≈ 0.85 + 0.70 + 0.55 events per contact),
// the second straight after flags none, and an hour later (the periodic interval) it flags the
// contacts that crossed a threshold in that hour. Then, after a vacuum analyze (what autovacuum
// does after that many updates), contacts(filter: { inactiveForDays: 45 | 90 | 180 }, first: 50)
// { totalCount } through the subgraph's /graphql, and rpc.contacts.audience paged to the end over
// NATS (5,000 a page), as a campaign resolves its audience.
//
// The outbox relay is stopped while the sweeps run, so they are timed alone and the events they
// wrote can be counted; publishing them to NATS is the relay's work (--drain times it).
import pg from 'pg';
import { callRpc, type RpcRequest } from '@textloop/events';
import { buildDeps, ManualClock, silentLogger, type ServiceDeps } from '@textloop/service-kit';
import { audienceQuery } from '../services/contacts/src/audience';
import { contactPageQueries } from '../services/contacts/src/contacts';
import type { Database } from '../services/contacts/src/db/database';
import { migrations } from '../services/contacts/src/db/migrations';
import { runDormancySweep, sweepStatement } from '../services/contacts/src/dormancy';
import { createServer } from '../services/contacts/src/server';
import { fmt, graphqlClient, log, option, runMain, sleep, table, withTeardown } from './support';

const N = option('--contacts', 1_000_000, 'BENCH_CONTACTS');
const EXPLAIN = process.argv.includes('--explain');
const DRAIN = process.argv.includes('--drain');
const THRESHOLDS = [30, 60, 90];
const SPREAD_DAYS = 200;
const FILTER_DAYS = 45;
/** 45 matches ~77% of the contacts; the others show the index at work on narrower ranges. */
const FILTER_DAYS_ALL = [FILTER_DAYS, 90, 180];
const FILTER_RUNS = 5;
const AUDIENCE_PAGE = 5_000;
const NOW = new Date('2026-11-27T12:00:00.000Z');
const HOUR = 3_600_000;

const ms = (t: number) => (t >= 10_000 ? `${(t / 1000).toFixed(1)} s` : `${fmt(t)} ms`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function timed<T>(what: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await what();
  return [result, performance.now() - start];
}

async function main() {
  if (!Number.isInteger(N) || N < 1 || N > 10_000_000) throw new Error('--contacts must be a whole number from 1 to 10,000,000');
  await withTeardown(async (teardown) => {
    log(`bench: a contacts database with ${fmt(N)} contacts…`);
    const nats = await teardown.nats();
    const database = await teardown.database('bench_dormancy');
    const clock = new ManualClock(NOW.toISOString());
    const deps = await buildDeps<Database>({
      name: 'contacts',
      migrations,
      streams: ['CONTACTS', 'EVENTS'],
      target: { kind: 'postgres', url: database.url },
      natsUrl: nats.url,
      logger: silentLogger,
      clock,
      env: { DORMANCY_SWEEP_INTERVAL_MS: '0' },
    });
    teardown.defer(() => deps.close());
    const instance = createServer(deps);
    const { url } = await instance.http.listen(0);
    await instance.start();
    teardown.defer(async () => {
      await instance.http.close();
      await instance.stop();
    });
    await deps.outbox.stop();
    const pool = teardown.pool(database.url, 2);

    // ── a. the contacts ─────────────────────────────────────────────────────────────────────────
    const [, insertMs] = await timed(() =>
      pool.query(
        `with g as (
           select i, ($1::timestamptz - random() * interval '${SPREAD_DAYS} days') as since from generate_series(1, $2::int) as i
         )
         insert into contacts (id, phone, country, timezone, first_name, last_name, tags, subscribed, unsubscribed_at,
                               last_active_at, created_at, updated_at)
         select 'bench-' || lpad(i::text, 8, '0'), '+1' || (2000000000 + i)::text,
                case when i % 1000 = 3 then 'FR' when i % 10 = 0 then 'GB' when i % 10 = 1 then 'DE' else 'US' end,
                'America/New_York', 'Ada', 'Bench ' || i,
                case when i % 1000 = 7 then '{press}'::text[] when i % 2 = 0 then '{vip}' when i % 3 = 0 then '{beta}' else '{}' end,
                i % 20 <> 0, case when i % 20 = 0 then since end,
                case when i % 10 <> 9 then since end,
                case when i % 10 <> 9 then since - random() * interval '165 days' else since end, since
           from g`,
        [NOW, N],
      ),
    );
    const [, analyzeMs] = await timed(() => pool.query('vacuum analyze contacts'));
    log(`bench: inserted in ${ms(insertMs)}, vacuum analyze ${ms(analyzeMs)}`);

    // ── b. the sweeps ───────────────────────────────────────────────────────────────────────────
    const outboxRows = async () => Number((await pool.query('select count(*) as n from outbox')).rows[0].n);
    const flaggedContacts = async () => Number((await pool.query('select count(*) as n from contacts where dormant_days > 0')).rows[0].n);
    const sweeps: string[][] = [];
    const sweep = async (label: string) => {
      const before = await outboxRows();
      const [flagged, took] = await timed(() => runDormancySweep(deps, THRESHOLDS));
      const written = (await outboxRows()) - before;
      if (written !== flagged) throw new Error(`the sweep reported ${flagged} flagged but wrote ${written} outbox rows`);
      sweeps.push([label, clock.now().toISOString().slice(0, 16), fmt(flagged), ms(took), took > 0 ? fmt(flagged / (took / 1000)) : '-']);
      log(`bench:   ${label}: ${fmt(flagged)} flagged in ${ms(took)}`);
      return flagged;
    };
    log('bench: sweeping…');
    if (EXPLAIN) await explainSweep(pool, deps, clock.now(), 'the first sweep');
    const first = await sweep('first sweep');
    const contactsFlagged = await flaggedContacts();
    await sweep('second sweep, straight after');
    if (EXPLAIN) await explainSweep(pool, deps, clock.now(), 'a sweep with nothing to flag');
    clock.advance(HOUR);
    await sweep('an hour later');
    const [, vacuumMs] = await timed(() => pool.query('vacuum analyze contacts'));
    clock.advance(HOUR);
    await sweep(`an hour later, after vacuum (${ms(vacuumMs)})`);
    if (EXPLAIN) {
      clock.advance(HOUR);
      await explainSweep(pool, deps, clock.now(), 'a sweep an hour later');
    }

    // ── c. contacts(filter: { inactiveForDays }) ────────────────────────────────────────────────
    // After the sweeps' updates, as autovacuum would leave the table.
    const [, vacuumAfterMs] = await timed(() => pool.query('vacuum analyze contacts'));
    log(`bench: vacuum analyze after the sweeps ${ms(vacuumAfterMs)}`);
    const gql = graphqlClient(`${url}/graphql`);
    const filterRows: string[][] = [];
    for (const days of FILTER_DAYS_ALL) {
      const query = `{ contacts(filter: { inactiveForDays: ${days} }, first: 50) { totalCount nodes { id } pageInfo { hasNextPage } } }`;
      const times: number[] = [];
      let totalCount = 0;
      for (let i = 0; i < FILTER_RUNS; i++) {
        const [data, took] = await timed(() => gql(query));
        times.push(took);
        totalCount = data.contacts.totalCount;
      }
      filterRows.push([`inactiveForDays: ${days}`, fmt(totalCount), ms(times[0]!), ms(median(times))]);
      if (EXPLAIN) {
        const queries = contactPageQueries(deps.db, { inactiveForDays: days }, 50, undefined, clock.now());
        await explain(pool, `contacts(filter: { inactiveForDays: ${days} }): totalCount`, queries.count.compile());
        if (days === FILTER_DAYS) await explain(pool, `contacts(filter: { inactiveForDays: ${days} }, first: 50): the page`, queries.rows.compile());
      }
    }

    // ── d. rpc.contacts.audience, paged to the end ──────────────────────────────────────────────
    const audiences: Array<{ label: string; request: RpcRequest<'rpc.contacts.audience'> }> = [
      { label: `inactiveForDays: ${FILTER_DAYS}`, request: { inactiveForDays: FILTER_DAYS } },
      { label: 'tags: [vip, beta]', request: { tags: ['vip', 'beta'] } },
      { label: `country: DE, inactiveForDays: ${FILTER_DAYS}`, request: { country: 'DE', inactiveForDays: FILTER_DAYS } },
      { label: 'tags: [press]', request: { tags: ['press'] } },
      { label: 'country: FR (0.1%)', request: { country: 'FR' } },
    ];
    const audienceRows: string[][] = [];
    for (const { label, request } of audiences) {
      let after: string | null | undefined;
      let contacts = 0;
      const pageTimes: number[] = [];
      const start = performance.now();
      do {
        const [page, took] = await timed(() => callRpc(deps.nats.nc, 'rpc.contacts.audience', { ...request, after, limit: AUDIENCE_PAGE }, 30_000));
        pageTimes.push(took);
        contacts += page.contacts.length;
        after = page.next;
      } while (after);
      const total = performance.now() - start;
      audienceRows.push([label, fmt(contacts), fmt(pageTimes.length), ms(median(pageTimes)), ms(Math.max(...pageTimes)), ms(total)]);
      log(`bench:   audience ${label}: ${fmt(contacts)} in ${ms(total)}`);
      if (EXPLAIN) {
        const query = audienceQuery(
          deps.db,
          { subscribedOnly: true, limit: AUDIENCE_PAGE, ...request, after: `bench-${String(Math.floor(N / 2)).padStart(8, '0')}` },
          clock.now(),
        );
        await explain(pool, `rpc.contacts.audience { ${label} } a page from the middle`, query.compile());
      }
    }

    // ── e. optionally, the relay publishing the first sweep's events ─────────────────────────────
    let drainRow: string[] | undefined;
    if (DRAIN) {
      const pending = await outboxRows();
      log(`bench: publishing ${fmt(pending)} outbox events to NATS…`);
      const [, took] = await timed(async () => {
        deps.outbox.start();
        for (let shown = Date.now(); (await outboxRows()) > 0; await sleep(500)) {
          if (Date.now() - shown > 10_000) {
            log(`bench:   ${fmt(await outboxRows())} left`);
            shown = Date.now();
          }
        }
      });
      drainRow = [fmt(pending), ms(took), fmt(pending / (took / 1000))];
    }

    // ── f. tables ───────────────────────────────────────────────────────────────────────────────
    console.log(`\n${fmt(N)} contacts written in ${ms(insertMs)} (vacuum analyze ${ms(analyzeMs)}); thresholds ${THRESHOLDS.join('/')} days.`);
    table(['runDormancySweep', 'clock', 'flagged', 'took', 'flagged/s'], sweeps);
    console.log(
      `\nThe first sweep flagged ${fmt(contactsFlagged)} contacts (${fmt(first)} thresholds: ${(first / N).toFixed(2)} a contact; ` +
        `uniform over ${SPREAD_DAYS} days gives ${((THRESHOLDS.reduce((s, t) => s + (SPREAD_DAYS - t), 0) / SPREAD_DAYS) * 1).toFixed(2)}). ` +
        'Each flag is a contacts.contact.dormant outbox row written by the same statement.',
    );
    console.log(`\nAfter the sweeps: vacuum analyze ${ms(vacuumAfterMs)}, then the queries below.`);
    table(['contacts(filter, first: 50) through /graphql', 'totalCount', 'first run', `median of ${FILTER_RUNS}`], filterRows);
    table([`rpc.contacts.audience (${fmt(AUDIENCE_PAGE)} a page)`, 'contacts', 'pages', 'page p50', 'page max', 'all pages'], audienceRows);
    if (drainRow) table(['outbox events published to NATS', 'took', 'events/s'], [drainRow]);
  }, 'bench: stopping and dropping the database…');
}

/** The sweep's first batch as runDormancySweep runs it (enable_seqscan off), rolled back. */
async function explainSweep(pool: pg.Pool, deps: Pick<ServiceDeps<Database>, 'db'>, now: Date, title: string): Promise<void> {
  await explain(pool, `${title}: its first batch (rolled back)`, sweepStatement(THRESHOLDS, now).compile(deps.db), true);
}

/** EXPLAIN (ANALYZE, BUFFERS) of a compiled query; a statement that writes runs in a transaction that is rolled back. */
async function explain(pool: pg.Pool, title: string, query: { sql: string; parameters: readonly unknown[] }, rollback = false): Promise<void> {
  const client = await pool.connect();
  try {
    if (rollback) await client.query('begin; set local enable_seqscan = off');
    const { rows } = await client.query(`explain (analyze, buffers) ${query.sql}`, query.parameters as unknown[]);
    console.log(`\n### EXPLAIN ${title}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`);
  } finally {
    if (rollback) await client.query('rollback');
    client.release();
  }
}

runMain(main);
