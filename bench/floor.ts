import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { Pool } from 'undici';

/**
 * The floor: the least work any SMS platform must do per message — insert it, POST it to the
 * provider, take the delivery report, update the row — batched as well as we batch (one request
 * per group of receivers of one text, too), with no GraphQL, events, history or policy. The
 * platform's figure is read against this one.
 */
export async function measureFloor(options: {
  databaseUrl: string;
  simUrl: string;
  apiKey: string;
  apiSecret: string;
  phones: string[];
  concurrency?: number;
  /** Receivers per provider request, as the platform groups one text (PROVIDER_MAX_RECIPIENTS). */
  recipientsPerRequest?: number;
}): Promise<{ seconds: number; perSecond: number }> {
  const perRequest = options.recipientsPerRequest ?? 20;
  const db = new pg.Pool({ connectionString: options.databaseUrl, max: 8 });
  db.on('error', (err) => process.stderr.write(`floor: idle database connection failed: ${err.message}\n`));
  await db.query(`create table if not exists floor_messages (
    id bigint primary key, phone text not null, status text not null,
    provider_id text, created_at timestamptz not null default now(), delivered_at timestamptz)`);
  await db.query('truncate floor_messages');

  const n = options.phones.length;
  let delivered = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  // Delivery reports are group-committed: one UPDATE per flush, answered after the commit.
  let pending: Array<{ id: string; res: ServerResponse }> = [];
  let flushing = false;
  const flush = async () => {
    if (flushing || pending.length === 0) return;
    flushing = true;
    const batch = pending;
    pending = [];
    await db.query(`update floor_messages set status = 'DELIVERED', delivered_at = now() where id = any($1::bigint[])`, [batch.map((b) => b.id)]);
    for (const b of batch) b.res.end('ok');
    delivered += batch.length;
    flushing = false;
    if (delivered >= n) resolveDone();
    if (pending.length) void flush();
  };
  // A report names its receiver (mocean-to); one callback URL serves a whole request's receivers.
  const idByDigits = new Map(options.phones.map((phone, i) => [phone.replace('+', ''), String(i)]));
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const to = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('mocean-to') ?? '';
      pending.push({ id: idByDigits.get(to) ?? '-1', res });
      if (pending.length >= 500) void flush();
    });
  });
  const timer = setInterval(() => void flush(), 10);
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const dlrBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/dlr`;

  const provider = new Pool(options.simUrl, { connections: 64, pipelining: 1 });
  const started = performance.now();
  const chunk = 500;
  const concurrency = options.concurrency ?? 128;
  for (let start = 0; start < n; start += chunk) {
    const ids = options.phones.slice(start, start + chunk).map((_, i) => start + i);
    await db.query(`insert into floor_messages (id, phone, status) select * from unnest($1::bigint[], $2::text[], $3::text[])`, [
      ids,
      ids.map((i) => options.phones[i]),
      ids.map(() => 'QUEUED'),
    ]);
    const results: Array<[number, string]> = [];
    const groups: number[][] = [];
    for (let i = 0; i < ids.length; i += perRequest) groups.push(ids.slice(i, i + perRequest));
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, groups.length) }, async () => {
        while (next < groups.length) {
          const group = groups[next++]!;
          const digits = group.map((id) => options.phones[id]!.replace('+', ''));
          const body = new URLSearchParams({
            'mocean-api-key': options.apiKey,
            'mocean-api-secret': options.apiSecret,
            'mocean-from': 'Textloop',
            'mocean-to': digits.join(','),
            'mocean-text': 'Your order has shipped.',
            'mocean-dlr-mask': '1',
            'mocean-dlr-url': dlrBase,
            'mocean-resp-format': 'json',
          }).toString();
          const res = await provider.request({ method: 'POST', path: '/rest/2/sms', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
          const json = (await res.body.json()) as { messages?: Array<{ msgid?: string; receiver?: string }> };
          const msgids = new Map(json.messages?.map((m) => [m.receiver, m.msgid ?? '']));
          group.forEach((id, i) => results.push([id, msgids.get(digits[i]) ?? '']));
        }
      }),
    );
    await db.query(
      `update floor_messages f set provider_id = v.pid, status = case when f.status = 'QUEUED' then 'SENT' else f.status end
         from unnest($1::bigint[], $2::text[]) as v(id, pid) where f.id = v.id`,
      [results.map((r) => r[0]), results.map((r) => r[1])],
    );
  }
  await done;
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  await provider.close();
  await new Promise<void>((r) => receiver.close(() => r()));
  await db.query('drop table floor_messages');
  await db.end();
  return { seconds, perSecond: n / seconds };
}
