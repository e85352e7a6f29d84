// pnpm bench inbound — inbound SMS intake: none lost, none duplicated, and how fast.
//
//   pnpm bench inbound            5,000 messages (--inbound-messages N) from 1,000 handsets (--handsets H),
//                                 32 webhook requests in flight (--in-flight C), 10 % posted twice (--duplicate-share S)
//
// Starts the six processes on free ports with fresh PostgreSQL databases (DATABASE_URL or
// postgres://root@127.0.0.1:5432/) and a private nats-server, like bulk-send. Then POSTs N Mocean
// inbound reports straight to messaging's webhook, as the provider would, from H numbers the
// platform has never seen (each becomes a contact on its first message): every message has its own
// text and mocean-time, and a random share of them is posted a second time with the same fields
// (a provider redelivering), all shuffled together. A 503 answer is retried, as a provider would.
// It times, from the first POST, until every POST was answered, until messaging's database holds
// every message, and until every messaging.message.received and messaging.conversation.updated
// event is on NATS; then it checks: exactly N RECEIVED messages, each text once (none lost, none
// duplicated), H contacts in contacts' database (created by sms_inbound), and every handset's
// conversation holding exactly its messages. Exits non-zero when a check fails.
import type { Subscription } from 'nats';
import { normalizePhone } from '@textloop/sms';
import { cpuShares, sampleCpu } from './cpu';
import { fmt, log, option, percentile, runMain, secs, sleep, startBenchPlatform, table, withTeardown } from './support';

const N = option('--inbound-messages', 5_000);
const H = option('--handsets', 1_000);
const IN_FLIGHT = option('--in-flight', 32);
const DUPLICATE_SHARE = option('--duplicate-share', 0.1);
/** The handsets: the 10,000 numbers of one 555 exchange, none of which the platform knows. */
const BLOCK = '+1617555';
const MAX_HANDSETS = 10_000;
const WARM_UP = 20;
const MAX_ATTEMPTS = 20;
const WAIT_TIMEOUT_MS = 5 * 60_000;
const PROGRESS_MS = 2_000;

const handsetOf = (h: number) => `${BLOCK}${String(h).padStart(4, '0')}`;
/** Mocean's mocean-time: `YYYY-MM-DD HH:MM:SS`, UTC. */
const moceanTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

interface Inbound {
  index: number;
  from: string;
  text: string;
  form: string;
}

async function main() {
  if (!Number.isInteger(H) || H < 1 || H > MAX_HANDSETS) throw new Error(`--handsets must be 1..${fmt(MAX_HANDSETS)} (one 555 exchange)`);
  if (!Number.isInteger(N) || N < H || N > 1_000_000) throw new Error(`--inbound-messages must be ${fmt(H)}..1,000,000 (at least one per handset)`);
  if (!Number.isInteger(IN_FLIGHT) || IN_FLIGHT < 1 || IN_FLIGHT > 1024) throw new Error('--in-flight must be 1..1024');
  if (!(DUPLICATE_SHARE >= 0 && DUPLICATE_SHARE <= 1)) throw new Error('--duplicate-share must be 0..1');
  for (const h of [0, H - 1]) if (normalizePhone(handsetOf(h)).e164 !== handsetOf(h)) throw new Error(`${handsetOf(h)} does not normalise to itself`);

  // Message i comes from handset i mod H; texts and provider times are all distinct and in the past.
  const firstTime = Date.now() - (N + 3600) * 1000;
  const messages: Inbound[] = Array.from({ length: N }, (_, index) => {
    const from = handsetOf(index % H);
    const text = `Question ${Math.floor(index / H) + 1} from ${from} (#${index}): when does my order arrive?`;
    const form = new URLSearchParams({
      'mocean-from': from.slice(1),
      'mocean-to': 'Textloop',
      'mocean-text': text,
      'mocean-keyword': 'QUESTION',
      'mocean-coding': '1',
      'mocean-time': moceanTime(firstTime + index * 1000),
    }).toString();
    return { index, from, text, form };
  });
  const duplicates = shuffle(messages.slice()).slice(0, Math.round(N * DUPLICATE_SHARE));
  const posts = shuffle([...messages, ...duplicates]);
  const perHandset = new Map<string, number>();
  for (const m of messages) perHandset.set(m.from, (perHandset.get(m.from) ?? 0) + 1);

  log(`bench: starting the platform on PostgreSQL (${fmt(N)} inbound messages from ${fmt(H)} new handsets, ${fmt(duplicates.length)} posted twice)…`);
  const failed = await withTeardown(async (teardown) => {
    const bench = await startBenchPlatform(teardown);
    const { platform, alive } = bench;
    const contactsDb = bench.pool('contacts', 2);
    const messagingDb = bench.pool('messaging', 2);
    const webhook = `${platform.urls.webhooks.inbound}?secret=${encodeURIComponent(platform.webhookSecret)}`;

    // What reaches NATS: every publish of the two subjects, by message id (a core subscription sees
    // a republished event again; JetStream would drop it by Nats-Msg-Id, so distinct ids count).
    const nc = await bench.connectNats();
    const seen = { received: new Map<string, number>(), conversation: new Map<string, number>(), receivedRaw: 0, conversationRaw: 0 };
    let started = 0;
    const follow = (sub: Subscription, onEvent: (messageId: string, from: string | undefined) => void) =>
      void (async () => {
        for await (const m of sub) {
          const event = m.json<{ data: { messageId?: string | null; from?: string } }>();
          if (event.data.messageId) onEvent(event.data.messageId, event.data.from);
        }
      })();
    const warmUpIds = new Set<string>();
    follow(nc.subscribe('messaging.message.received'), (id, from) => {
      if (!from?.startsWith(BLOCK)) return void warmUpIds.add(id);
      seen.receivedRaw++;
      if (!seen.received.has(id)) seen.received.set(id, performance.now() - started);
    });
    follow(nc.subscribe('messaging.conversation.updated'), (id) => {
      if (warmUpIds.has(id)) return;
      seen.conversationRaw++;
      if (!seen.conversation.has(id)) seen.conversation.set(id, performance.now() - started);
    });
    await nc.flush();

    // Warm-up from other numbers: the first requests pay for connections and JIT.
    for (let i = 0; i < WARM_UP; i++) {
      const form = new URLSearchParams({
        'mocean-from': `1212555${String(9000 + i)}`,
        'mocean-to': 'Textloop',
        'mocean-text': `warm-up ${i}`,
        'mocean-time': moceanTime(firstTime),
      });
      const res = await fetch(webhook, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      if (res.status !== 200) throw new Error(`warm-up inbound answered ${res.status}: ${await res.text()}`);
    }
    // Their events are out (and told apart from the measured ones) before the clock starts.
    for (const deadline = performance.now() + 30_000; warmUpIds.size < WARM_UP; await sleep(50)) {
      if (performance.now() > deadline) throw new Error(`only ${warmUpIds.size} of ${WARM_UP} warm-up messages were published`);
    }
    await sleep(1000);
    seen.conversation.clear();
    seen.conversationRaw = 0;

    // ── the intake ──────────────────────────────────────────────────────────────────────────────
    const cpuFrom = await sampleCpu(messagingDb, bench.databaseLabels);
    const latencies: number[] = [];
    /** Answer times of each handset's first POST (its contact is created then) and of the others. */
    const firstLatencies: number[] = [];
    const laterLatencies: number[] = [];
    const handsetsPosted = new Set<string>();
    const refusals = new Map<string, number>();
    let retries = 0;
    let answered = 0;
    let storedAt: number | undefined;
    let next = 0;
    started = performance.now();
    // messaging's database, watched while the POSTs go on: when it holds every message.
    const storedWatch = (async () => {
      while (storedAt === undefined && bench.running()) {
        const { rows } = await messagingDb.query(`select count(*)::int as n from messages where direction = 'INBOUND' and from_number like $1`, [`${BLOCK}%`]);
        if (rows[0].n >= N) storedAt = performance.now() - started;
        else await sleep(25);
      }
    })();
    let lastShown = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < posts.length) {
          alive();
          const post = posts[next++]!;
          const first = !handsetsPosted.has(post.from);
          handsetsPosted.add(post.from);
          for (let attempt = 1; ; attempt++) {
            const t0 = performance.now();
            let status: number;
            let text = '';
            try {
              const res = await fetch(webhook, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: post.form });
              status = res.status;
              text = await res.text();
            } catch (err) {
              status = 0;
              text = (err as Error).message;
            }
            const took = performance.now() - t0;
            latencies.push(took);
            if (status === 200) {
              (first ? firstLatencies : laterLatencies).push(took);
              break;
            }
            const reason = `${status || 'network error'} ${text}`.trim();
            refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
            // 503 (and a dropped connection) mean "not stored, try again"; anything else is a bug.
            if ((status !== 503 && status !== 0) || attempt >= MAX_ATTEMPTS) throw new Error(`inbound #${post.index} answered ${reason} (attempt ${attempt})`);
            retries++;
            await sleep(Math.min(2000, 50 * 2 ** attempt));
          }
          answered++;
          if (performance.now() - lastShown > PROGRESS_MS) {
            log(`bench:   ${fmt(answered)} / ${fmt(posts.length)} posts answered`);
            lastShown = performance.now();
          }
        }
      }),
    );
    const acceptedAt = performance.now() - started;
    log(`bench: every POST answered after ${secs(acceptedAt)}; waiting for the database and the events…`);

    for (;;) {
      alive();
      if (storedAt !== undefined && seen.received.size >= N && seen.conversation.size >= N) break;
      if (performance.now() - lastShown > PROGRESS_MS) {
        log(`bench:   received events ${fmt(seen.received.size)} / ${fmt(N)}, conversation updates ${fmt(seen.conversation.size)} / ${fmt(N)}`);
        lastShown = performance.now();
      }
      if (performance.now() - started > WAIT_TIMEOUT_MS) {
        log(`bench: gave up waiting after ${secs(WAIT_TIMEOUT_MS)}`);
        break;
      }
      await sleep(20);
    }
    await storedWatch.catch(() => {});
    const cpuTo = await sampleCpu(messagingDb, bench.databaseLabels);
    const max = (m: Map<string, number>) => Math.max(0, ...m.values());
    const publishedAt = seen.received.size >= N ? max(seen.received) : undefined;
    const conversationsAt = seen.conversation.size >= N ? max(seen.conversation) : undefined;

    // Contacts counts the activity from the received events; wait for it to see every handset.
    let activeAt: number | undefined;
    for (;;) {
      alive();
      const { rows } = await contactsDb.query(`select count(*)::int as n from contacts where phone like $1 and last_active_at is not null`, [`${BLOCK}%`]);
      if (rows[0].n >= H) {
        activeAt = performance.now() - started;
        break;
      }
      if (performance.now() - started > WAIT_TIMEOUT_MS) break;
      await sleep(100);
    }

    // ── the checks ──────────────────────────────────────────────────────────────────────────────
    const expected = new Map(messages.map((m) => [m.text, m]));
    const { rows: stored } = await messagingDb.query<{ body: string; from_number: string; status: string; n: number; conversations: number }>(
      `select body, from_number, status, count(*)::int as n, count(distinct conversation_id)::int as conversations
         from messages where direction = 'INBOUND' and from_number like $1 group by body, from_number, status`,
      [`${BLOCK}%`],
    );
    const storedTexts = new Set<string>();
    let duplicated = 0;
    let unexpected = 0;
    let notReceived = 0;
    let wrongSender = 0;
    for (const r of stored) {
      const m = expected.get(r.body);
      if (!m) {
        unexpected += r.n;
        continue;
      }
      if (storedTexts.has(r.body)) duplicated += r.n;
      else duplicated += r.n - 1;
      storedTexts.add(r.body);
      if (r.status !== 'RECEIVED') notReceived += r.n;
      if (r.from_number !== m.from) wrongSender += r.n;
    }
    const lost = N - storedTexts.size;
    const received = stored.filter((r) => r.status === 'RECEIVED').reduce((a, r) => a + r.n, 0);

    const { rows: threads } = await messagingDb.query<{ phone: string | null; n: number; senders: number; matches: boolean }>(
      `select p.phone, count(m.id)::int as n, count(distinct m.from_number)::int as senders, bool_and(m.from_number = p.phone) as matches
         from conversations c join messages m on m.conversation_id = c.id left join contacts p on p.id = c.contact_id
        where m.from_number like $1 group by c.id, p.phone`,
      [`${BLOCK}%`],
    );
    const badThreads = threads.filter((t) => !t.phone || !t.matches || t.senders !== 1 || t.n !== perHandset.get(t.phone));
    const { rows: unthreaded } = await messagingDb.query(
      `select count(*)::int as n from messages where direction = 'INBOUND' and from_number like $1 and conversation_id is null`,
      [`${BLOCK}%`],
    );
    const { rows: contactRows } = await contactsDb.query(
      `select count(*)::int as contacts,
              count(*) filter (where exists (select 1 from consent_ledger l where l.contact_id = c.id and l.reason = 'CREATED' and l.source = 'sms_inbound'))::int as by_sms
         from contacts c where phone like $1`,
      [`${BLOCK}%`],
    );
    const contacts: number = contactRows[0].contacts;
    const bySms: number = contactRows[0].by_sms;

    const checks: Array<[string, boolean, string]> = [
      ['RECEIVED messages', received === N && notReceived === 0 && unexpected === 0, `${fmt(received)} of ${fmt(N)}`],
      ['lost', lost === 0, fmt(lost)],
      ['duplicated', duplicated === 0, fmt(duplicated)],
      ['stored with the wrong sender', wrongSender === 0, fmt(wrongSender)],
      ['contacts in contacts’ database (created by sms_inbound)', contacts === H && bySms === H, `${fmt(contacts)} (${fmt(bySms)})`],
      [
        'conversations holding exactly their handset’s messages',
        threads.length === H && badThreads.length === 0 && unthreaded[0].n === 0,
        `${fmt(threads.length - badThreads.length)} of ${fmt(H)}${unthreaded[0].n ? `; ${fmt(unthreaded[0].n)} messages in none` : ''}`,
      ],
      ['messaging.message.received events (distinct / published)', seen.received.size === N, `${fmt(seen.received.size)} / ${fmt(seen.receivedRaw)}`],
      [
        'messaging.conversation.updated events (distinct messages / published)',
        seen.conversation.size === N,
        `${fmt(seen.conversation.size)} / ${fmt(seen.conversationRaw)}`,
      ],
    ];

    const ms = (v: number | undefined) => (v === undefined ? 'never (timed out)' : secs(v));
    table(
      ['measure', 'value'],
      [
        ['inbound messages', fmt(N)],
        ['handsets (unknown numbers → new contacts)', fmt(H)],
        ['duplicates posted (same fields again)', fmt(duplicates.length)],
        ['webhook POSTs, in flight', `${fmt(posts.length)}, ${IN_FLIGHT}`],
        ['refused and retried (503)', refusals.size === 0 ? '0' : `${fmt(retries)}: ${[...refusals].map(([r, n]) => `${n}× ${r}`).join('; ')}`],
        ['first POST → every POST answered', secs(acceptedAt)],
        ['accepted', `${fmt(N / (acceptedAt / 1000))} msg/s (${fmt(posts.length / (acceptedAt / 1000))} POST/s)`],
        [
          'webhook latency p50 / p99 / max',
          `${percentile(latencies, 0.5).toFixed(0)} / ${percentile(latencies, 0.99).toFixed(0)} / ${Math.max(...latencies).toFixed(0)} ms`,
        ],
        [
          '  a handset’s first POST (contact created) p50 / p99',
          `${percentile(firstLatencies, 0.5).toFixed(0)} / ${percentile(firstLatencies, 0.99).toFixed(0)} ms`,
        ],
        ['  its later POSTs p50 / p99', `${percentile(laterLatencies, 0.5).toFixed(0)} / ${percentile(laterLatencies, 0.99).toFixed(0)} ms`],
        ['first POST → all stored in messaging', ms(storedAt)],
        ['first POST → all messaging.message.received on NATS', ms(publishedAt)],
        ['first POST → all conversations updated (events on NATS)', ms(conversationsAt)],
        ['first POST → every contact’s lastActiveAt set', ms(activeAt)],
      ],
    );
    table(
      ['check', 'ok', 'found'],
      checks.map(([name, ok, found]) => [name, ok ? 'yes' : 'NO', found]),
    );
    if (cpuFrom && cpuTo) {
      table(
        ['CPU, % of one core (first POST → all published)', ''],
        cpuShares(cpuFrom, cpuTo)
          .filter(([label, share]) => label === 'idle' || share >= 0.005)
          .map(([label, share]) => [label, `${Math.round(share * 100)} %`]),
      );
    }
    const failed = checks.some(([, ok]) => !ok);
    if (failed)
      console.log(
        `\ninbound: FAILED — ${checks
          .filter(([, ok]) => !ok)
          .map(([name]) => name)
          .join(', ')}`,
      );
    if (badThreads.length > 0) log(`bench: first conversations that do not match: ${JSON.stringify(badThreads.slice(0, 5))}`);
    return failed;
  });
  if (failed) process.exit(1);
}

/** Fisher–Yates, in place. */
function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

runMain(main);
