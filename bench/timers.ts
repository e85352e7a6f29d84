// pnpm bench timers — the durable timers under a burst, and their lag at distinct times.
//
//   pnpm bench timers                 100,000 steps due in the same minute (BENCH_STEPS or --steps N),
//                                     then 1,000 steps at distinct times (BENCH_LAG_STEPS or --lag-steps M)
//
// Starts the six processes on free ports with fresh PostgreSQL databases (DATABASE_URL or
// postgres://root@127.0.0.1:5432/) and a private nats-server, like bulk-send. Imports N contacts
// through the gateway and waits until messaging's projection and scheduling have seen them all,
// creates a template and an automation (trigger bench.tick, one SEND_MESSAGE step), then writes N
// active runs with one pending step each straight into scheduling's database, due uniformly over
// [T, T + 60 s). It times, from T, until every step has fired (scheduled_steps.executed_at) and
// until every message of the automation is DELIVERED in messaging's database. Then M steps of a
// second automation fall due 20 ms apart, and the lag executed_at − due_at of each is reported.
import pg from 'pg';
import { newId } from '@textloop/events';
import { normalizePhone } from '@textloop/sms';
import {
  CpuPhases,
  NOT_DELIVERED,
  consumerBacklogs,
  cpuTable,
  failureSummary,
  fmt,
  importContacts,
  log,
  messageStatuses,
  option,
  percentile,
  runMain,
  secs,
  sleep,
  startBenchPlatform,
  table,
  withTeardown,
} from './support';

const N = option('--steps', 100_000, 'BENCH_STEPS');
const M = option('--lag-steps', 1_000, 'BENCH_LAG_STEPS');
/** Ten area codes × the 10,000 numbers of their 555 exchange: up to 100,000 distinct, valid US numbers. */
const AREA_CODES = [212, 213, 312, 415, 512, 617, 702, 713, 808, 917];
const MAX_STEPS = AREA_CODES.length * 10_000;
const INSERT_CHUNK = 10_000;
/** The burst: due times spread over one minute, starting this long after the rows are written. */
const SPREAD_MS = 60_000;
const LEAD_MS = 20_000;
/** The lag run: one step every 20 ms, the first 5 s ahead. */
const LAG_SPACING_MS = 20;
const LAG_LEAD_MS = 5_000;
const BURST_TIMEOUT_MS = 15 * 60_000;
const PROGRESS_MS = 3_000;
/** Where steps wait while they are written: far enough ahead that the timers leave them alone. */
const PARKED = () => new Date(Date.now() + 24 * 3600_000);
const TEMPLATE = 'bench-order-update';

const phoneOf = (i: number) => `+1${AREA_CODES[i % AREA_CODES.length]}555${String(Math.floor(i / AREA_CODES.length)).padStart(4, '0')}`;

async function main() {
  if (!Number.isInteger(N) || N < 1 || N > MAX_STEPS) throw new Error(`--steps must be 1..${fmt(MAX_STEPS)} (one contact, with its own number, per step)`);
  if (!Number.isInteger(M) || M < 1 || M > N) throw new Error(`--lag-steps must be 1..${fmt(N)} (it reuses the burst's contacts)`);
  const phones = Array.from({ length: N }, (_, i) => {
    const phone = phoneOf(i);
    if (normalizePhone(phone).e164 !== phone) throw new Error(`${phone} does not normalise to itself`);
    return phone;
  });

  log(`bench: starting the platform on PostgreSQL (${fmt(N)} steps in one minute, then ${fmt(M)} at distinct times)…`);
  await withTeardown(async (teardown) => {
    const bench = await startBenchPlatform(teardown);
    const { gql, alive } = bench;
    const messagingDb = bench.pool('messaging', 3);
    const schedulingDb = bench.pool('scheduling', 3);
    const jsm = await (await bench.connectNats()).jetstreamManager();
    const phases = new CpuPhases(schedulingDb, bench.databaseLabels);

    // ── a. contacts ────────────────────────────────────────────────────────────────────────────
    const importPhase = await phases.start('import → projected');
    // Messaging must have every contact in its projection before the steps fall due (else the send
    // commands are retried), and scheduling's contacts consumer (contact.created is a built-in
    // trigger) must be idle so that catching up does not run into the measurement.
    await importContacts(bench, messagingDb, jsm, phones);
    await phases.end(importPhase);
    const { rows: contactRows } = await messagingDb.query<{ id: string; phone: string }>('select id, phone from contacts');
    const idByPhone = new Map(contactRows.map((r) => [r.phone, r.id]));
    const contactIds = phones.map((p) => {
      const id = idByPhone.get(p);
      if (!id) throw new Error(`messaging's projection has no contact for ${p}`);
      return id;
    });

    // ── b. template and automations ─────────────────────────────────────────────────────────────
    await gql('mutation($input: TemplateInput!) { createTemplate(input: $input) { id } }', {
      input: {
        name: TEMPLATE,
        category: 'TRANSACTIONAL',
        body: 'Hi {{ contact.firstName | default: "there" }}, your order {{ event.orderId }} is on its way.',
      },
    });
    const automation = async (name: string) =>
      (
        await gql<{ createAutomation: { id: string } }>('mutation($input: AutomationInput!) { createAutomation(input: $input) { id } }', {
          input: { name, triggerEvent: 'bench.tick', steps: [{ type: 'SEND_MESSAGE', template: TEMPLATE }] },
        })
      ).createAutomation.id;
    const burstAutomation = await automation('Bench: burst');
    const lagAutomation = await automation('Bench: timer lag');

    // ── c. the burst: N runs written straight into scheduling's database ───────────────────────
    // 100,000 trackEvent calls would measure the event intake (gateway, contacts, the EVENTS stream,
    // applyEvent) rather than the timers; the rows are what applyEvent would have written for a
    // bench.tick event with properties {"orderId": "B-<i>"}. They are written with a far-future due
    // time and then given their real one in one statement, so nothing fires while they are written.
    const insertStarted = performance.now();
    for (let start = 0; start < N; start += INSERT_CHUNK) {
      await insertRuns(schedulingDb, burstAutomation, contactIds, start, Math.min(start + INSERT_CHUNK, N));
      log(`bench:   wrote ${fmt(Math.min(start + INSERT_CHUNK, N))} / ${fmt(N)} runs and steps`);
    }
    const T = Date.now() + LEAD_MS;
    await setDueTimes(schedulingDb, burstAutomation, new Date(T), SPREAD_MS / N);
    // Written once with its due time, a step would leave no dead row behind; clean up after the
    // re-dating UPDATE and give the planner statistics, as a database running for a while has.
    await schedulingDb.query('vacuum analyze scheduled_steps, automation_runs');
    const ahead = T - Date.now();
    if (ahead < 1000) throw new Error(`writing the steps took too long: T is only ${ahead} ms ahead; raise LEAD_MS`);
    log(
      `bench: wrote ${fmt(N)} runs and steps in ${secs(performance.now() - insertStarted)}; ` +
        `they fall due over ${SPREAD_MS / 1000} s from T, ${secs(ahead)} from now`,
    );

    // ── d. from T: fired, then delivered ────────────────────────────────────────────────────────
    await sleep(Math.max(0, T - Date.now()));
    const burstPhase = await phases.start('T → all delivered');
    let firedAt: number | undefined;
    for (let shown = 0; ;) {
      alive();
      const fired = await stepsFired(schedulingDb, burstAutomation);
      if (fired >= N && firedAt === undefined) {
        firedAt = Date.now();
        log(`bench: all ${fmt(N)} steps fired (seen +${secs(firedAt - T)} after T)`);
      }
      const statuses = await messageStatuses(messagingDb, 'automationId', burstAutomation);
      const delivered = statuses.DELIVERED ?? 0;
      const lost = NOT_DELIVERED.reduce((sum, s) => sum + (statuses[s] ?? 0), 0);
      if (delivered + lost >= N && fired >= N) {
        await phases.end(burstPhase);
        if (lost > 0) throw new Error(`${lost} of ${N} messages did not deliver: ${await failureSummary(messagingDb, 'automationId', burstAutomation)}`);
        break;
      }
      if (Date.now() - shown > PROGRESS_MS) {
        const { rows: outbox } = await schedulingDb.query('select count(*)::int as n from outbox');
        const backlogs = new Map((await consumerBacklogs(jsm, 'MESSAGING')).map((c) => [c.name, fmt(c.backlog)]));
        const messages = Object.entries(statuses)
          .map(([s, n]) => `${s.toLowerCase()} ${fmt(n)}`)
          .join(', ');
        log(
          `bench:   +${((Date.now() - T) / 1000).toFixed(0).padStart(3)} s  fired ${fmt(fired)} / ${fmt(N)} · scheduling outbox ${fmt(outbox[0].n)} · ` +
            `cmd.send backlog ${backlogs.get('messaging-cmd-send') ?? '?'} · messages: ${messages || 'none yet'} · ` +
            `status events scheduling has to record ${backlogs.get('scheduling-message-status') ?? '?'}`,
        );
        shown = Date.now();
      }
      if (Date.now() - T > BURST_TIMEOUT_MS) {
        throw new Error(`after ${BURST_TIMEOUT_MS / 60_000} minutes: ${fired} of ${N} steps fired, ${delivered} messages delivered`);
      }
      await sleep(1000);
    }
    const { rows: fire } = await schedulingDb.query(
      `select extract(epoch from max(s.executed_at)) * 1000 as last,
              percentile_cont(0.5) within group (order by extract(epoch from s.executed_at - s.due_at) * 1000) as p50,
              percentile_cont(0.99) within group (order by extract(epoch from s.executed_at - s.due_at) * 1000) as p99,
              max(extract(epoch from s.executed_at - s.due_at) * 1000) as max
         from scheduled_steps s join automation_runs r on r.id = s.run_id
        where r.automation_id = $1`,
      [burstAutomation],
    );
    const { rows: sent } = await messagingDb.query(
      `select extract(epoch from max(delivered_at)) * 1000 as last from messages where correlation->>'automationId' = $1`,
      [burstAutomation],
    );
    const burst = {
      firedAfter: Number(fire[0].last) - T,
      lagP50: Number(fire[0].p50),
      lagP99: Number(fire[0].p99),
      lagMax: Number(fire[0].max),
      deliveredAfter: Number(sent[0].last) - T,
    };
    log(`bench: all ${fmt(N)} messages DELIVERED ${secs(burst.deliveredAfter)} after T`);

    // ── e. timer lag at distinct times ──────────────────────────────────────────────────────────
    // First let the platform go quiet: scheduling records every status event of the burst's
    // messages (message-links), in the same process and database as the timers, and would measure
    // the lag of a busy scheduling rather than of the timers.
    const drainStarted = Date.now();
    for (let shown = 0; ;) {
      alive();
      const busy = (await Promise.all(['MESSAGING', 'CONTACTS'].map((s) => consumerBacklogs(jsm, s)))).flat().filter((c) => c.backlog > 0);
      if (busy.length === 0) break;
      if (Date.now() - drainStarted > 10 * 60_000) throw new Error(`consumers still busy after 10 minutes: ${busy.map((c) => c.name).join(', ')}`);
      if (Date.now() - shown > PROGRESS_MS) {
        log(`bench:   waiting for the platform to go quiet: ${busy.map((c) => `${c.name} ${fmt(c.backlog)}`).join(', ')}`);
        shown = Date.now();
      }
      await sleep(500);
    }
    log(`bench: the platform is quiet (${secs(Date.now() - drainStarted)} after the last delivery was seen)`);
    for (let start = 0; start < M; start += INSERT_CHUNK) await insertRuns(schedulingDb, lagAutomation, contactIds, start, Math.min(start + INSERT_CHUNK, M));
    const S = Date.now() + LAG_LEAD_MS;
    await setDueTimes(schedulingDb, lagAutomation, new Date(S), LAG_SPACING_MS);
    log(`bench: ${fmt(M)} steps fall due ${LAG_SPACING_MS} ms apart from ${LAG_LEAD_MS / 1000} s from now…`);
    await sleep(Math.max(0, S - Date.now()));
    const lagPhase = await phases.start('steps at distinct times');
    const lagDeadline = S + M * LAG_SPACING_MS + 60_000;
    for (let shown = 0; ;) {
      alive();
      const fired = await stepsFired(schedulingDb, lagAutomation);
      if (fired >= M) {
        await phases.end(lagPhase);
        break;
      }
      if (Date.now() > lagDeadline) throw new Error(`only ${fired} of ${M} steps at distinct times fired within a minute of the last due time`);
      if (Date.now() - shown > PROGRESS_MS && Date.now() > S) {
        log(`bench:   fired ${fmt(fired)} / ${fmt(M)}`);
        shown = Date.now();
      }
      await sleep(500);
    }
    const { rows: lagRows } = await schedulingDb.query(
      `select s.id, extract(epoch from s.due_at) * 1000 as due, extract(epoch from s.executed_at - s.due_at) * 1000 as lag
         from scheduled_steps s join automation_runs r on r.id = s.run_id
        where r.automation_id = $1`,
      [lagAutomation],
    );
    // How long after its due time messaging had each message queued: the outbox relay, NATS and the
    // send-command consumer on top of the timer's own lag.
    const dueByStep = new Map<string, number>(lagRows.map((r) => [r.id, Number(r.due)]));
    let queuedLags: number[] = [];
    for (const until = Date.now() + 60_000; Date.now() < until; await sleep(500)) {
      alive();
      const { rows } = await messagingDb.query(
        `select correlation->>'stepId' as step, extract(epoch from created_at) * 1000 as created from messages where correlation->>'automationId' = $1`,
        [lagAutomation],
      );
      if (rows.length < M) continue;
      queuedLags = rows.map((r) => Number(r.created) - dueByStep.get(r.step)!);
      break;
    }
    const lags = lagRows.map((r) => Number(r.lag));

    // ── f. tables ───────────────────────────────────────────────────────────────────────────────
    table(
      ['steps', 'due within', 'all fired after T', 'fire rate', 'fire lag p50', 'p99', 'max', 'all delivered after T', 'send rate'],
      [
        [
          fmt(N),
          `${SPREAD_MS / 1000} s`,
          secs(burst.firedAfter),
          `${fmt(N / (burst.firedAfter / 1000))} steps/s`,
          `${fmt(burst.lagP50)} ms`,
          `${fmt(burst.lagP99)} ms`,
          `${fmt(burst.lagMax)} ms`,
          secs(burst.deliveredAfter),
          `${fmt(N / (burst.deliveredAfter / 1000))} msg/s`,
        ],
      ],
    );
    console.log(
      `\nT is the first due time. Rates are N over the time from T, so ${fmt(N / (SPREAD_MS / 1000))}/s is the most they can show ` +
        `(the steps only fall due over ${SPREAD_MS / 1000} s); the fire lag (executed_at − due_at) says whether the timers kept up.`,
    );
    table(
      ['steps at distinct times', 'spacing', 'lag p50', 'p99', 'max', 'due → queued in messaging p50', 'p99'],
      [
        [
          fmt(M),
          `${LAG_SPACING_MS} ms`,
          `${fmt(percentile(lags, 0.5))} ms`,
          `${fmt(percentile(lags, 0.99))} ms`,
          `${fmt(Math.max(...lags))} ms`,
          queuedLags.length ? `${fmt(percentile(queuedLags, 0.5))} ms` : 'n/a',
          queuedLags.length ? `${fmt(percentile(queuedLags, 0.99))} ms` : 'n/a',
        ],
      ],
    );
    console.log(
      '\nlag = executed_at − due_at: executed_at is the timer clock when it claimed the step, in the transaction that writes the ' +
        'send command to the outbox and marks the step DONE (millisecond precision).',
    );
    cpuTable(phases.list);
  }, 'bench: stopping the platform and dropping the databases…');
}

/** Runs [from, to) of an automation, each ACTIVE with one pending step parked far in the future. */
async function insertRuns(db: pg.Pool, automationId: string, contactIds: string[], from: number, to: number): Promise<void> {
  const index = Array.from({ length: to - from }, (_, k) => from + k);
  const runIds = index.map(() => newId());
  const client = await db.connect();
  try {
    await client.query('begin');
    await client.query(
      `insert into automation_runs (id, automation_id, contact_id, status, trigger_name, trigger_properties)
       select run_id, $1, contact_id, 'ACTIVE', 'bench.tick', jsonb_build_object('orderId', order_id)
         from unnest($2::text[], $3::text[], $4::text[]) as t(run_id, contact_id, order_id)`,
      [automationId, runIds, index.map((i) => contactIds[i]), index.map((i) => `B-${i}`)],
    );
    await client.query(
      `insert into scheduled_steps (id, run_id, step_index, type, due_at, status)
       select step_id, run_id, 0, 'SEND_MESSAGE', $1, 'PENDING' from unnest($2::text[], $3::text[]) as t(step_id, run_id)`,
      [PARKED(), index.map(() => newId()), runIds],
    );
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Gives an automation's steps (in id order) the due times start, start + spacing, start + 2 × spacing, … in one statement. */
async function setDueTimes(db: pg.Pool, automationId: string, start: Date, spacingMs: number): Promise<void> {
  await db.query(
    `update scheduled_steps s set due_at = $2::timestamptz + k.n * ($3::float8 * interval '1 millisecond')
       from (select s2.id, row_number() over (order by s2.id) - 1 as n
               from scheduled_steps s2 join automation_runs r on r.id = s2.run_id
              where r.automation_id = $1) k
      where s.id = k.id`,
    [automationId, start, spacingMs],
  );
}

/** Steps of the automation that have fired (DONE, or FAILED later because the message failed). */
async function stepsFired(db: pg.Pool, automationId: string): Promise<number> {
  const { rows } = await db.query(
    `select count(*)::int as n from scheduled_steps s join automation_runs r on r.id = s.run_id
      where r.automation_id = $1 and s.executed_at is not null`,
    [automationId],
  );
  return rows[0].n;
}

runMain(main);
