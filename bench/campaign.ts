// pnpm bench campaign — one campaign with a personal offer code to every contact of a tag.
//
//   pnpm bench campaign                      100,000 recipients (BENCH_RECIPIENTS or --recipients N)
//
// Starts the six processes on free ports with fresh PostgreSQL databases (DATABASE_URL or
// postgres://root@127.0.0.1:5432/) and a private nats-server, like bulk-send, with
// CAMPAIGN_RATE_PER_SECOND=100000: the default of 50/s is a pacing choice for one provider
// account, not a limit of the platform, and this measures the platform. Imports N contacts tagged
// "bench" through the gateway (importContacts, 10,000 a call) and waits until messaging's projection
// and scheduling's contacts consumer have seen them all, turns quiet hours off, creates a MARKETING
// template showing {{ offer.code }}, then createCampaign (audience: the tag, an offer) and
// launchCampaign through the gateway. From the launch request (L) it times, from the services' own
// timestamps: the audience resolved (campaigns.resolved_at), every send command fired (the last
// campaign_recipients.sent_at), every message accepted by messaging (messages.created_at) and
// every message DELIVERED (messages.delivered_at); then how long the campaign's stats through the
// gateway take to show them all. It checks one message and one distinct code per contact.
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
  runMain,
  secs,
  sleep,
  startBenchPlatform,
  table,
  withTeardown,
} from './support';

const N = option('--recipients', 100_000, 'BENCH_RECIPIENTS');
/** Twenty area codes × the 10,000 numbers of their 555 exchange: up to 200,000 distinct, valid US numbers. */
const AREA_CODES = [212, 213, 312, 415, 512, 617, 702, 713, 808, 917, 202, 206, 215, 303, 305, 404, 503, 602, 614, 718];
const MAX_RECIPIENTS = AREA_CODES.length * 10_000;
const RATE = 100_000;
const TAG = 'bench';
const TEMPLATE = 'bench-win-back';
const PROGRESS_MS = 3_000;
const TIMEOUT_MS = 20 * 60_000;

const rate = (count: number, ms: number) => `${fmt(count / (ms / 1000))} msg/s`;
const phoneOf = (i: number) => `+1${AREA_CODES[i % AREA_CODES.length]}555${String(Math.floor(i / AREA_CODES.length)).padStart(4, '0')}`;

async function main() {
  if (!Number.isInteger(N) || N < 1 || N > MAX_RECIPIENTS)
    throw new Error(`--recipients must be 1..${fmt(MAX_RECIPIENTS)} (one contact, with its own number, each)`);
  const phones = Array.from({ length: N }, (_, i) => {
    const phone = phoneOf(i);
    if (normalizePhone(phone).e164 !== phone) throw new Error(`${phone} does not normalise to itself`);
    return phone;
  });

  log(`bench: starting the platform on PostgreSQL (a campaign to ${fmt(N)} contacts, CAMPAIGN_RATE_PER_SECOND=${fmt(RATE)})…`);
  await withTeardown(async (teardown) => {
    const bench = await startBenchPlatform(teardown, { CAMPAIGN_RATE_PER_SECOND: String(RATE) });
    const { gql, alive } = bench;
    const messagingDb = bench.pool('messaging', 3);
    const schedulingDb = bench.pool('scheduling', 3);
    const jsm = await (await bench.connectNats()).jetstreamManager();
    const phases = new CpuPhases(schedulingDb, bench.databaseLabels);

    // ── a. contacts ────────────────────────────────────────────────────────────────────────────
    const importPhase = await phases.start('import → projected');
    // Messaging needs every contact in its projection before the send commands arrive (else each
    // waits CONTACT_WAIT_MS and is retried), and scheduling's contacts consumer (contact.created is
    // a built-in trigger) should be idle so that catching up does not run into the measurement.
    await importContacts(bench, messagingDb, jsm, phones, [TAG]);
    await phases.end(importPhase);

    // ── b. policy, template, campaign ───────────────────────────────────────────────────────────
    // Quiet hours off, so every message goes now whatever the time of day (MARKETING would otherwise
    // wait for 08:00 in each recipient's zone); one message per contact is under the weekly cap.
    await gql('mutation { updateMessagingPolicy(input: { quietHoursStart: "00:00", quietHoursEnd: "00:00" }) { quietHoursStart } }');
    await gql('mutation($input: TemplateInput!) { createTemplate(input: $input) { id } }', {
      input: {
        name: TEMPLATE,
        category: 'MARKETING',
        body: 'Hi {{ contact.firstName | default: "there" }}, {{ offer.discountPercent }}% off your next order with code {{ offer.code }} until {{ offer.expiresAt | date: "%b %e", contact.timezone }}. Reply STOP to opt out.',
      },
    });
    const { createCampaign } = await gql<{ createCampaign: { id: string; warnings: string[] } }>(
      'mutation($input: CampaignInput!) { createCampaign(input: $input) { id warnings } }',
      { input: { name: 'Bench win-back', audience: { tags: [TAG] }, template: TEMPLATE, offer: { codePrefix: 'BENCH', discountPercent: 20, validDays: 14 } } },
    );
    if (createCampaign.warnings.length > 0) throw new Error(`createCampaign warned: ${createCampaign.warnings.join('; ')}`);
    const campaignId = createCampaign.id;
    await sleep(1000);

    // ── c. launch → resolved → sent → delivered ─────────────────────────────────────────────────
    const runPhase = await phases.start('launch → all delivered');
    const L = Date.now();
    const { launchCampaign } = await gql<{ launchCampaign: { status: string } }>('mutation($id: ID!) { launchCampaign(id: $id) { status } }', {
      id: campaignId,
    });
    const launchAnswered = Date.now() - L;
    log(`bench: launchCampaign answered ${launchCampaign.status} after ${fmt(launchAnswered)} ms; waiting for delivery…`);
    const deadline = L + TIMEOUT_MS;
    for (let shown = 0; ;) {
      alive();
      const { rows: c } = await schedulingDb.query(
        `select c.status, c.resolved_at is not null as resolved,
                (select count(*)::int from campaign_recipients r where r.campaign_id = c.id) as recipients,
                (select count(*)::int from campaign_recipients r where r.campaign_id = c.id and r.status = 'SENT') as sent
           from campaigns c where c.id = $1`,
        [campaignId],
      );
      const statuses = await messageStatuses(messagingDb, 'campaignId', campaignId);
      const delivered = statuses.DELIVERED ?? 0;
      const lost = NOT_DELIVERED.reduce((sum, s) => sum + (statuses[s] ?? 0), 0);
      if (c[0].status === 'COMPLETED' && delivered + lost >= N) {
        await phases.end(runPhase);
        if (lost > 0) throw new Error(`${lost} of ${N} messages did not deliver: ${await failureSummary(messagingDb, 'campaignId', campaignId)}`);
        break;
      }
      if (Date.now() - shown > PROGRESS_MS) {
        const { rows: outbox } = await schedulingDb.query('select count(*)::int as n from outbox');
        const backlogs = new Map((await consumerBacklogs(jsm, 'MESSAGING')).map((b) => [b.name, fmt(b.backlog)]));
        const messages = Object.entries(statuses)
          .map(([s, n]) => `${s.toLowerCase()} ${fmt(n)}`)
          .join(', ');
        log(
          `bench:   +${((Date.now() - L) / 1000).toFixed(0).padStart(3)} s  ${c[0].status} · recipients ${fmt(c[0].recipients)}${c[0].resolved ? ' (resolved)' : ''} · ` +
            `sent ${fmt(c[0].sent)} · scheduling outbox ${fmt(outbox[0].n)} · cmd.send backlog ${backlogs.get('messaging-cmd-send') ?? '?'} · ` +
            `messages: ${messages || 'none yet'}`,
        );
        shown = Date.now();
      }
      if (Date.now() > deadline) throw new Error(`after ${TIMEOUT_MS / 60_000} minutes: ${c[0].sent} of ${N} sent, ${delivered} delivered`);
      await sleep(500);
    }
    log(`bench: all ${fmt(N)} DELIVERED; waiting for the campaign's stats to show them…`);
    let statsCaughtUp: number;
    let stats: any;
    for (;;) {
      alive();
      const { campaign } = await gql(
        'query($id: ID!) { campaign(id: $id) { status stats { recipients sent delivered failed suppressed cost { amount currency } } } }',
        { id: campaignId },
      );
      if (campaign.stats.delivered >= N) {
        statsCaughtUp = Date.now() - L;
        stats = campaign.stats;
        break;
      }
      if (Date.now() > deadline)
        throw new Error(`the campaign's stats show ${campaign.stats.delivered} of ${N} delivered after ${TIMEOUT_MS / 60_000} minutes`);
      await sleep(250);
    }

    // ── d. figures and checks, from the services' own timestamps ────────────────────────────────
    const { rows: s } = await schedulingDb.query(
      `select extract(epoch from c.resolved_at) * 1000 as resolved, c.recipients,
              (select extract(epoch from max(r.sent_at)) * 1000 from campaign_recipients r where r.campaign_id = c.id) as last_sent,
              (select count(distinct o.code)::int from offer_codes o where o.campaign_id = c.id) as codes,
              (select count(distinct r.contact_id)::int from campaign_recipients r where r.campaign_id = c.id) as contacts
         from campaigns c where c.id = $1`,
      [campaignId],
    );
    const { rows: m } = await messagingDb.query(
      `select count(*)::int as messages, count(distinct contact_id)::int as contacts,
              count(distinct substring(body from 'BENCH-[A-Z0-9]{6}'))::int as codes,
              extract(epoch from max(created_at)) * 1000 as last_queued,
              extract(epoch from max(delivered_at)) * 1000 as last_delivered,
              percentile_cont(0.5) within group (order by extract(epoch from delivered_at - created_at) * 1000) as p50,
              percentile_cont(0.99) within group (order by extract(epoch from delivered_at - created_at) * 1000) as p99
         from messages where correlation->>'campaignId' = $1`,
      [campaignId],
    );
    const r = s[0];
    const q = m[0];
    const problems: string[] = [];
    if (r.recipients !== N || r.contacts !== N) problems.push(`${r.recipients} recipients (${r.contacts} contacts), expected ${N}`);
    if (r.codes !== N) problems.push(`${r.codes} distinct codes issued, expected ${N}`);
    if (q.messages !== N || q.contacts !== N) problems.push(`${q.messages} messages to ${q.contacts} contacts, expected ${N} to ${N}`);
    if (q.codes !== N) problems.push(`${q.codes} distinct codes in the message bodies, expected ${N}`);
    if (stats.recipients !== N || stats.sent !== N || stats.failed !== 0 || stats.suppressed !== 0) problems.push(`stats ${JSON.stringify(stats)}`);
    if (problems.length > 0) throw new Error(`the campaign is wrong: ${problems.join('; ')}`);

    const resolvedAfter = Number(r.resolved) - L;
    const sentAfter = Number(r.last_sent) - L;
    const queuedAfter = Number(q.last_queued) - L;
    const deliveredAfter = Number(q.last_delivered) - L;
    table(
      ['measure', 'value'],
      [
        ['recipients (one code each, all distinct)', fmt(N)],
        ['CAMPAIGN_RATE_PER_SECOND / CAMPAIGN_BATCH_SIZE', `${fmt(RATE)} / ${process.env.CAMPAIGN_BATCH_SIZE ?? '100 (default)'}`],
        ['launchCampaign answered', `${fmt(launchAnswered)} ms (${launchCampaign.status})`],
        ['launch → audience resolved', `${secs(resolvedAfter)} (${fmt(N / (resolvedAfter / 1000))} recipients/s)`],
        ['launch → all send commands fired', `${secs(sentAfter)} (${rate(N, sentAfter)})`],
        ['launch → all accepted by messaging', `${secs(queuedAfter)} (${rate(N, queuedAfter)})`],
        ['launch → all DELIVERED', secs(deliveredAfter)],
        ['platform throughput, launch → all DELIVERED', rate(N, deliveredAfter)],
        ['accepted → delivered p50', `${fmt(Number(q.p50))} ms`],
        ['accepted → delivered p99', `${fmt(Number(q.p99))} ms`],
        ['launch → campaign stats show all delivered', secs(statsCaughtUp)],
        ['campaign cost', `${stats.cost.amount} ${stats.cost.currency}`],
      ],
    );
    console.log(
      `\nTimes are from the launchCampaign request to the services' own timestamps (campaigns.resolved_at, the last ` +
        `campaign_recipients.sent_at, the last messages.created_at and delivered_at). At the default CAMPAIGN_RATE_PER_SECOND=50 the ` +
        `same campaign would take ${fmt(N / 50 / 60)} minutes to send by design.`,
    );
    cpuTable(phases.list);
  }, 'bench: stopping the platform and dropping the databases…');
}

runMain(main);
