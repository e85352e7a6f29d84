// pnpm bench nps — npsReport over a million survey responses, through feedback's GraphQL.
//
//   pnpm bench nps                   1,000,000 responses (BENCH_RESPONSES or --responses N), 10 runs per query (--runs R)
//   pnpm bench nps --explain         also prints EXPLAIN (ANALYZE, BUFFERS) of the report's queries
//
// Creates a fresh PostgreSQL database (DATABASE_URL or postgres://root@127.0.0.1:5432/) with
// feedback's migrations, and writes with generate_series 5 surveys over 4 touchpoints, N × 1.6
// invitations sent over 365 days and N responses (5 in 8 invitations answered; 2 % recorded without
// a touchpoint, 1 % of erased contacts; a realistic score mix, worse for support), then runs
// `vacuum analyze`. Starts feedback in-process (buildDeps + createServer on a free port, a private
// nats-server) and times npsReport requests over HTTP: p50 and max of R runs after one warm-up.
// A summary asks for everything but the trend (invitations included); a trend-only request costs
// the responses query alone (invitations are counted only when asked for).
import pg from 'pg';
import { newId } from '@textloop/events';
import { buildDeps, silentLogger, type ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../services/feedback/src/db/database';
import { migrations } from '../services/feedback/src/db/migrations';
import { daysQuery, invitationsQuery, npsFilter } from '../services/feedback/src/nps-report';
import { createServer } from '../services/feedback/src/server';
import { graphqlClient, log, option, percentile, runMain, withTeardown } from './support';

const N = option('--responses', 1_000_000, 'BENCH_RESPONSES');
const RUNS = option('--runs', 10, 'BENCH_RUNS');
const EXPLAIN = process.argv.includes('--explain');
/** Invitations per response: 5 in 8 are answered. */
const INVITATIONS = Math.round((N * 8) / 5 / 8) * 8;
const DAYS = 365;
const END = new Date('2026-11-27T00:00:00.000Z');
const START = new Date(END.getTime() - DAYS * 86_400_000);
const TARGET_MS = 1000;

const SURVEYS = [
  { name: 'Post-purchase NPS', touchpoint: 'purchase' },
  { name: 'Post-purchase NPS (short wording)', touchpoint: 'purchase' },
  { name: 'Delivery NPS', touchpoint: 'delivery' },
  { name: 'Support NPS', touchpoint: 'support' },
  { name: 'Onboarding NPS', touchpoint: 'onboarding' },
];
/** Which survey invitation i goes to, by (i / 8) % 10: purchase 50 % (40 + 10), delivery 20 %, support 20 %, onboarding 10 %. */
const SHARE = [0, 0, 0, 0, 1, 2, 2, 3, 3, 4];

async function populate(deps: ServiceDeps<Database>, pool: pg.Pool, ids: string[]): Promise<void> {
  const created = new Date(START.getTime() - 86_400_000);
  await deps.db
    .insertInto('surveys')
    .values(
      SURVEYS.map((s, k) => ({
        id: ids[k]!,
        name: s.name,
        question: 'Hi {{ contact.firstName }}, how likely are you to recommend us to a friend? Reply 0-10',
        follow_up: 'Thanks! What is the main reason for your score?',
        thank_you: 'Thank you for your feedback.',
        touchpoint: s.touchpoint,
        response_window: 'P3D',
        created_at: created,
      })),
    )
    .execute();
  const surveyOf = `(array[${SHARE.map((k) => `'${ids[k]}'`).join(',')}])[1 + ((i / 8) % 10)]`;
  const touchpointOf = `(array[${SHARE.map((k) => `'${SURVEYS[k]!.touchpoint}'`).join(',')}])[1 + ((i / 8) % 10)]`;
  // i = 8q + r: r < 5 answered (COMPLETED), else EXPIRED, and 1 in 50 of the r = 7 ones FAILED (never sent).
  // Sent uniformly over the year (jitter up to an hour); ids derived from i so responses can point at them.
  log(`bench: writing ${INVITATIONS.toLocaleString()} invitations…`);
  await pool.query(
    `insert into survey_invitations (id, survey_id, contact_id, status, touchpoint, sent_at, expires_at, answered_at, created_at)
     select md5('inv' || i)::uuid::text, ${surveyOf}, 'contact-' || (i % 300000),
            case when i % 8 < 5 then 'COMPLETED' when i % 8 = 7 and (i / 8) % 50 = 0 then 'FAILED' else 'EXPIRED' end,
            ${touchpointOf}, t.sent_at, t.sent_at + interval '3 days', null, t.sent_at
       from generate_series(0, $1::int - 1) i,
            lateral (select $2::timestamptz + (i::float8 / $1::int) * ($3::int * interval '1 day') + random() * interval '1 hour' as sent_at) t`,
    [INVITATIONS, START, DAYS],
  );
  log(`bench: writing ${N.toLocaleString()} responses…`);
  // Scores: purchase/delivery/onboarding ≈ 45 % promoters, 25 % passives, 30 % detractors; support worse.
  await pool.query(`
    insert into survey_responses (id, survey_id, invitation_id, contact_id, score, category, touchpoint, comment, responded_at)
    select gen_random_uuid()::text, v.survey_id, v.id, case when random() < 0.01 then null else v.contact_id end,
           x.score, case when x.score >= 9 then 'PROMOTER' when x.score >= 7 then 'PASSIVE' else 'DETRACTOR' end,
           case when random() < 0.02 then null else v.touchpoint end,
           case when x.score <= 6 and random() < 0.6 then 'The parcel came late and nobody answered my emails'
                when random() < 0.15 then 'Quick and friendly, thanks' end,
           v.sent_at + random() * random() * interval '48 hours'
      from survey_invitations v,
           lateral (select case when v.touchpoint = 'support'
                                then (array[0,1,3,4,5,5,6,6,7,7,7,8,8,8,9,9,9,10,10,10])[1 + floor(random() * 20)::int]
                                else (array[0,2,4,5,6,6,7,7,8,8,8,9,9,9,9,9,10,10,10,10])[1 + floor(random() * 20)::int] end as score) x
     where v.status = 'COMPLETED'`);
  log('bench: vacuum analyze…');
  await pool.query('vacuum analyze surveys, survey_invitations, survey_responses');
}

interface Case {
  name: string;
  query: string;
  variables: Record<string, unknown>;
}

const SUMMARY = `nps responses promoters passives detractors invitations responseRate lowSample byTouchpoint { touchpoint nps responses }`;
const ARGS = `$s: ID, $t: String, $since: DateTime, $until: DateTime`;
const CALL = `npsReport(surveyId: $s, touchpoint: $t, since: $since, until: $until)`;

function cases(ids: string[]): Case[] {
  const summary = `query(${ARGS}) { ${CALL} { ${SUMMARY} } }`;
  const trend = (interval: string) => `query(${ARGS}) { ${CALL} { trend(interval: ${interval}) { at nps responses } } }`;
  const quarter = { since: new Date(END.getTime() - 91 * 86_400_000).toISOString(), until: END.toISOString() };
  return [
    { name: 'all responses', query: summary, variables: {} },
    { name: 'by survey (40 % of responses)', query: summary, variables: { s: ids[0] } },
    { name: 'by touchpoint (support)', query: summary, variables: { t: 'support' } },
    { name: 'since/until (last 91 days)', query: summary, variables: quarter },
    { name: 'survey + since/until', query: summary, variables: { s: ids[0], ...quarter } },
    { name: 'trend DAY (all)', query: trend('DAY'), variables: {} },
    { name: 'trend WEEK (all)', query: trend('WEEK'), variables: {} },
    { name: 'trend MONTH (all)', query: trend('MONTH'), variables: {} },
    { name: 'trend WEEK by touchpoint', query: trend('WEEK'), variables: { t: 'support' } },
    {
      name: 'dashboard: summary + 3 trends',
      query: `query(${ARGS}) { ${CALL} { ${SUMMARY} d: trend(interval: DAY) { at nps responses } w: trend { at nps responses } m: trend(interval: MONTH) { at nps responses } } }`,
      variables: {},
    },
  ];
}

async function explain(deps: ServiceDeps<Database>, pool: pg.Pool, ids: string[]): Promise<void> {
  const quarter = { since: new Date(END.getTime() - 91 * 86_400_000), until: END };
  const plans: Array<[string, Parameters<typeof npsFilter>[1]]> = [
    ['all', {}],
    ['by survey', { surveyId: ids[0] }],
    ['by touchpoint', { touchpoint: 'support' }],
    ['last 91 days', quarter],
  ];
  const client = await pool.connect();
  try {
    await client.query('set jit = off');
    for (const [name, input] of plans) {
      const filter = await npsFilter(deps.db, input);
      for (const [what, query] of [
        ['responses per day and touchpoint', daysQuery(filter)],
        ['invitations', invitationsQuery(filter)],
      ] as const) {
        const compiled = query.compile(deps.db);
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${compiled.sql}`, [...compiled.parameters]);
        console.log(`\n### EXPLAIN ANALYZE ${what}: ${name}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`);
      }
    }
  } finally {
    client.release();
  }
}

async function main() {
  if (!Number.isInteger(N) || N < 1000) throw new Error('--responses must be an integer of at least 1000');
  if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('--runs must be a positive integer');
  log(`bench: feedback on a fresh PostgreSQL database (${N.toLocaleString()} responses)…`);
  await withTeardown(async (teardown) => {
    const nats = await teardown.nats();
    const database = await teardown.database('bench_nps');
    const pool = teardown.pool(database.url, 2);
    const deps = await buildDeps<Database>({
      name: 'feedback',
      migrations,
      streams: ['FEEDBACK'],
      target: { kind: 'postgres', url: database.url },
      natsUrl: nats.url,
      logger: silentLogger,
    });
    teardown.defer(() => deps.close());
    const ids = SURVEYS.map(() => newId());
    const written = performance.now();
    await populate(deps, pool, ids);
    log(`bench: data written and analyzed in ${((performance.now() - written) / 1000).toFixed(1)} s`);
    const { rows: sizes } = await pool.query<{ name: string; size: string }>(
      `select c.relname as name, pg_size_pretty(pg_relation_size(c.oid)) as size
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relname like 'survey_%' and c.relkind in ('r', 'i')
        order by c.relkind desc, c.relname`,
    );

    const instance = createServer(deps);
    const { url } = await instance.http.listen(0);
    teardown.defer(async () => {
      await instance.http.close();
      await instance.stop();
    });
    const client = graphqlClient(`${url}/graphql`);
    const gql = async (query: string, variables: Record<string, unknown>) => (await client(query, variables)).npsReport;

    const all = await gql(`query { npsReport { ${SUMMARY} w: trend { at } } }`, {});
    log(
      `bench: NPS ${all.nps} over ${all.responses.toLocaleString()} responses, ${all.invitations.toLocaleString()} invitations, rate ${all.responseRate}, ${all.w.length} weeks`,
    );
    if (all.responses !== N) throw new Error(`expected ${N} responses in the report, got ${all.responses}`);

    const results: Array<[string, number, number]> = [];
    for (const c of cases(ids)) {
      await gql(c.query, c.variables); // warm-up
      const times: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const t0 = performance.now();
        await gql(c.query, c.variables);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      results.push([c.name, percentile(times, 0.5), times[times.length - 1]!]);
      log(`bench:   ${c.name}: p50 ${percentile(times, 0.5).toFixed(0)} ms`);
    }

    console.log(`\n${N.toLocaleString()} responses, ${INVITATIONS.toLocaleString()} invitations, ${RUNS} runs each after a warm-up\n`);
    const w = Math.max(...results.map((r) => r[0].length));
    console.log(`| ${'npsReport'.padEnd(w)} | p50 ms | max ms |\n| ${'-'.repeat(w)} | ------:| ------:|`);
    for (const [name, p50, max] of results) console.log(`| ${name.padEnd(w)} | ${p50.toFixed(0).padStart(6)} | ${max.toFixed(0).padStart(6)} |`);
    console.log(`\n| relation | size |\n| --- | --- |`);
    for (const s of sizes) console.log(`| ${s.name} | ${s.size} |`);
    const worst = Math.max(...results.map((r) => r[2]));
    console.log(`\ntarget: every report under ${TARGET_MS} ms — ${worst < TARGET_MS ? 'met' : 'NOT met'} (worst ${worst.toFixed(0)} ms)`);
    if (EXPLAIN) await explain(deps, pool, ids);
  });
}

runMain(main);
