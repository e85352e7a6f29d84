import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { HandsetStore } from './handsets';
import { HttpError, parseJson, phoneDigits, readBody, sendHtml, sendJson } from './http-util';
import { Outbound, type PostKind } from './outbound';
import { renderPage } from './page';
import { parseRules, pickRule, type Outcome, type Rule } from './rules';
import { Scheduler } from './scheduler';
import { countSegments, detectCoding, type Coding, type SegmentCount } from './segments';

export interface CarrierSimOptions {
  apiKey: string;
  apiSecret: string;
  logger?: Logger;
  /** Clock for message timestamps and the dedupe window (timers always use the real clock). */
  now?: () => Date;
  defaultDlrDelayMs?: number;
  /** Where handset replies are POSTed; changeable at run time with PUT /api/config. */
  inboundUrl?: string;
  // Extensions, mainly for tests.
  random?: () => number;
  retryBaseMs?: number;
  maxAttempts?: number;
  maxMessagesPerHandset?: number;
  maxHandsets?: number;
  /** Across all handsets; the least recently active handsets are forgotten first. */
  maxStoredMessages?: number;
  dedupeTtlMs?: number;
  maxDedupeEntries?: number;
}

export interface Stats {
  accepted: number;
  rejected: number;
  delivered: number;
  undelivered: number;
  expired: number;
  dlrPosted: number;
  dlrFailed: number;
  inboundPosted: number;
  // Extensions beyond the contract's counters.
  inboundFailed: number;
  deduplicated: number;
  throttled: number;
  serverErrors: number;
  timeouts: number;
}

export interface CarrierSim {
  listen(port: number, host?: string): Promise<{ port: number; url: string }>;
  close(): Promise<void>;
  stats(): Stats;
}

const MAX_TEXT_CHARS = 1600;
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_CONTROL_BODY_BYTES = 256 * 1024;
const PAGE_HANDSETS = 100;
const LIST_HANDSETS = 10_000;
const DAY_MS = 24 * 60 * 60 * 1000;

const ERR = {
  auth: 'Authorization failed',
  blacklisted: 'Destination number black-listed',
  emptyText: 'Empty message text',
  invalidDestination: 'Invalid destination number',
  tooLong: `Message body too long (over ${MAX_TEXT_CHARS} characters)`,
  throttled: 'Message throttled, try again later',
  system: 'System error, please try again',
} as const;

function zeroStats(): Stats {
  return {
    accepted: 0,
    rejected: 0,
    delivered: 0,
    undelivered: 0,
    expired: 0,
    dlrPosted: 0,
    dlrFailed: 0,
    inboundPosted: 0,
    inboundFailed: 0,
    deduplicated: 0,
    throttled: 0,
    serverErrors: 0,
    timeouts: 0,
  };
}

// The id space is "C" + 14 digits. Seeding from the wall clock (x10) keeps ids unique across
// restarts as long as a process averages under 10 messages per millisecond, which the platform
// needs because it stores provider ids.
let lastIdValue = 0;
function nextMsgid(): string {
  const value = Math.max(lastIdValue + 1, Date.now() * 10);
  lastIdValue = value;
  const head = Math.floor(value / 10_000);
  const tail = value % 10_000;
  return `CPASS_restapi_C${String(head).padStart(10, '0')}.${String(tail).padStart(4, '0')}`;
}

/** Mocean's `mocean-time`: `YYYY-MM-DD HH:MM:SS`, UTC. */
export function moceanTime(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

function codePointLength(text: string, stopAfter: number): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) i++;
    if (++n > stopAfter) return n;
  }
  return n;
}

/** The inbound URL usually carries the webhook secret in its query; never echo that part. */
function redactUrl(url: URL): string {
  return `${url.origin}${url.pathname}${url.search ? '?…' : ''}`;
}

function parseWebhookUrl(raw: string): URL | undefined {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

interface Delivery {
  msgid: string;
  from: string;
  receiver: string;
  digits: string;
  text: string;
  count: SegmentCount;
  outcome: 'DELIVERED' | 'UNDELIVERED' | 'EXPIRED';
  errorCode: number;
  dlrUrl: URL | undefined;
  duplicateDlr: boolean;
  delayMs: number;
}

type Plan =
  | { kind: 'invalid'; receiver: string }
  | { kind: 'dedupe'; receiver: string; msgid: string }
  /** key: the dedupe entry (reference and number) when the request carried a reference */
  | { kind: 'outcome'; receiver: string; digits: string; outcome: Outcome; rule: Rule | undefined; key: string | undefined };

interface DedupeEntry {
  msgid: string;
  at: number;
}

const replySchema = z.object({
  to: z.string().trim().min(1, 'to is required (the sender the handset replies to)').max(64),
  text: z.string().min(1, 'text is required').max(MAX_TEXT_CHARS),
});

const configSchema = z.object({
  inboundUrl: z.string().nullable().optional(),
  defaultDlrDelayMs: z.number().int().min(0).max(3_600_000).optional(),
});

type Handler = (req: IncomingMessage, res: ServerResponse, match: RegExpExecArray) => Promise<void> | void;

interface Route {
  pattern: RegExp;
  methods: Record<string, Handler>;
}

export function createCarrierSim(options: CarrierSimOptions): CarrierSim {
  const logger = options.logger ?? pino({ level: 'warn', name: 'carrier-sim' });
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const dedupeTtlMs = options.dedupeTtlMs ?? DAY_MS;
  const maxDedupeEntries = options.maxDedupeEntries ?? 1_000_000;

  let defaultDlrDelayMs = options.defaultDlrDelayMs ?? 20;
  let inboundUrl: URL | undefined;
  if (options.inboundUrl !== undefined) {
    inboundUrl = parseWebhookUrl(options.inboundUrl);
    if (!inboundUrl) throw new Error(`inboundUrl is not an http(s) URL: ${options.inboundUrl}`);
  }

  let stats = zeroStats();
  let rules: Rule[] = [];
  const handsets = new HandsetStore(options.maxMessagesPerHandset ?? 1000, options.maxHandsets ?? 100_000, options.maxStoredMessages ?? 200_000);
  // Insertion order is time order, so expiry only ever looks at the front of the Map.
  const dedupe = new Map<string, DedupeEntry>();
  const dlrUrlCache = new Map<string, URL | undefined>();
  const held = new Set<ServerResponse>();
  const scheduler = new Scheduler((err) => logger.error({ err }, 'scheduled task failed'));
  const outbound = new Outbound({
    logger,
    maxAttempts: options.maxAttempts ?? 12,
    retryBaseMs: options.retryBaseMs ?? 200,
    // A carrier posts many reports at once: reports per second are capped at connections ÷ the
    // platform's ack time, and a bulk send keeps hundreds due (with 128, a quarter of the bench
    // machine sat idle while reports waited for a connection).
    connections: 512,
    onAttempt(kind: PostKind, ok: boolean) {
      if (kind === 'dlr') {
        if (ok) stats.dlrPosted++;
        else stats.dlrFailed++;
      } else if (ok) stats.inboundPosted++;
      else stats.inboundFailed++;
    },
  });
  let replyCounter = 0;

  function pruneDedupe(nowMs: number): void {
    for (const [key, entry] of dedupe) {
      if (nowMs - entry.at < dedupeTtlMs && dedupe.size <= maxDedupeEntries) break;
      dedupe.delete(key);
    }
  }

  function dlrUrlFor(raw: string): URL | undefined {
    // The platform sends the same callback URL every time; parse it once.
    if (dlrUrlCache.has(raw)) return dlrUrlCache.get(raw);
    const url = parseWebhookUrl(raw);
    if (dlrUrlCache.size >= 100) dlrUrlCache.clear();
    dlrUrlCache.set(raw, url);
    return url;
  }

  function postDlr(d: Delivery, status: 1 | 2 | 3): void {
    if (!d.dlrUrl) return;
    const form = new URLSearchParams();
    form.set('mocean-msgid', d.msgid);
    form.set('mocean-from', d.from);
    form.set('mocean-to', d.receiver);
    form.set('mocean-dlr-status', String(status));
    form.set('mocean-error-code', String(d.errorCode));
    outbound.post('dlr', d.dlrUrl, form);
    if (d.duplicateDlr) {
      const url = d.dlrUrl;
      scheduler.schedule(Math.max(1, d.delayMs), () => outbound.post('dlr', url, form));
    }
  }

  function settle(d: Delivery): void {
    if (d.outcome === 'DELIVERED') {
      stats.delivered++;
      handsets.receive(d.digits, {
        msgid: d.msgid,
        from: d.from,
        to: `+${d.digits}`,
        text: d.text,
        segments: d.count.segments,
        coding: d.count.coding,
        receivedAt: now().toISOString(),
      });
      postDlr(d, 1);
    } else if (d.outcome === 'UNDELIVERED') {
      stats.undelivered++;
      postDlr(d, 2);
    } else {
      stats.expired++;
      postDlr(d, 3);
    }
  }

  function mocean(res: ServerResponse, httpStatus: number, status: number, errMsg: string): void {
    sendJson(res, httpStatus, { status, err_msg: errMsg });
  }

  async function handleSend(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw: string;
    try {
      raw = await readBody(req, MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof HttpError && err.status === 413) {
        stats.rejected++;
        mocean(res, 413, 29, ERR.tooLong);
        return;
      }
      throw err;
    }
    const params = new URLSearchParams(raw);

    if (params.get('mocean-api-key') !== options.apiKey || params.get('mocean-api-secret') !== options.apiSecret) {
      stats.rejected++;
      mocean(res, 401, 1, ERR.auth);
      return;
    }
    const text = params.get('mocean-text') ?? '';
    if (text === '') {
      stats.rejected++;
      mocean(res, 400, 23, ERR.emptyText);
      return;
    }
    if (text.length > MAX_TEXT_CHARS && codePointLength(text, MAX_TEXT_CHARS) > MAX_TEXT_CHARS) {
      stats.rejected++;
      mocean(res, 400, 29, ERR.tooLong);
      return;
    }
    const receivers = (params.get('mocean-to') ?? '')
      .split(',')
      .map((r) => r.trim())
      .filter((r) => r !== '');
    if (receivers.length === 0) {
      stats.rejected++;
      mocean(res, 400, 28, ERR.invalidDestination);
      return;
    }

    const from = params.get('mocean-from') ?? '';
    const codingParam = params.get('mocean-coding');
    const coding: Coding | undefined = codingParam === '1' ? 1 : codingParam === '2' ? 2 : codingParam === '3' ? 3 : undefined;
    const dlrUrlRaw = params.get('mocean-dlr-url');
    const dlrUrl = params.get('mocean-dlr-mask') === '1' && dlrUrlRaw ? dlrUrlFor(dlrUrlRaw) : undefined;
    const ref = params.get('textloop-ref')?.trim() || undefined;
    // One reference per receiver when the list matches them one for one (a group of messages in
    // one request), else one reference for the whole request.
    const refParts = ref?.split(',');
    const refFor = (index: number) => (refParts && refParts.length === receivers.length && receivers.length > 1 ? refParts[index]!.trim() : ref);
    const nowMs = ref ? now().getTime() : 0;
    if (ref) pruneDedupe(nowMs);

    // Decide every receiver first: a 500 or a hang affects the whole request, so nothing may
    // be accepted before we know whether one of them happens.
    const plans: Plan[] = [];
    let requestFailure: 'HTTP_500' | 'TIMEOUT' | undefined;
    for (const [index, receiver] of receivers.entries()) {
      const digits = phoneDigits(receiver);
      if (!digits) {
        plans.push({ kind: 'invalid', receiver });
        continue;
      }
      const key = ref && `${refFor(index)}\n${digits}`;
      if (key) {
        const seen = dedupe.get(key);
        if (seen && nowMs - seen.at < dedupeTtlMs) {
          plans.push({ kind: 'dedupe', receiver, msgid: seen.msgid });
          continue;
        }
      }
      const rule = rules.length === 0 ? undefined : pickRule(rules, digits, random);
      const outcome: Outcome = rule?.outcome ?? 'DELIVERED';
      if (outcome === 'HTTP_500') requestFailure = 'HTTP_500';
      else if (outcome === 'TIMEOUT' && requestFailure === undefined) requestFailure = 'TIMEOUT';
      plans.push({ kind: 'outcome', receiver, digits, outcome, rule, key });
    }

    if (requestFailure === 'HTTP_500') {
      stats.serverErrors++;
      mocean(res, 500, 45, ERR.system);
      return;
    }
    if (requestFailure === 'TIMEOUT') {
      // Never answer; the socket is released when the client gives up or close() runs.
      stats.timeouts++;
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }

    let count: SegmentCount | undefined;
    const messages: Array<Record<string, string | number>> = [];
    for (const plan of plans) {
      if (plan.kind === 'invalid') {
        stats.rejected++;
        messages.push({ status: 28, receiver: plan.receiver, err_msg: ERR.invalidDestination });
        continue;
      }
      if (plan.kind === 'dedupe') {
        stats.deduplicated++;
        messages.push({ status: 0, receiver: plan.receiver, msgid: plan.msgid });
        continue;
      }
      const { outcome, rule } = plan;
      if (outcome === 'REJECTED') {
        stats.rejected++;
        messages.push({ status: 5, receiver: plan.receiver, err_msg: ERR.blacklisted });
        continue;
      }
      if (outcome === 'THROTTLED') {
        stats.rejected++;
        stats.throttled++;
        messages.push({ status: 32, receiver: plan.receiver, err_msg: ERR.throttled });
        continue;
      }
      if (outcome !== 'DELIVERED' && outcome !== 'UNDELIVERED' && outcome !== 'EXPIRED') continue;
      count ??= countSegments(text, coding);
      const msgid = nextMsgid();
      stats.accepted++;
      if (plan.key) dedupe.set(plan.key, { msgid, at: nowMs });
      const delivery: Delivery = {
        msgid,
        from,
        receiver: plan.receiver,
        digits: plan.digits,
        text,
        count,
        outcome,
        errorCode: rule?.errorCode ?? (outcome === 'UNDELIVERED' ? 1 : 0),
        dlrUrl,
        duplicateDlr: rule?.duplicateDlr ?? false,
        delayMs: rule?.dlrDelayMs ?? defaultDlrDelayMs,
      };
      scheduler.schedule(delivery.delayMs, () => settle(delivery));
      messages.push({ status: 0, receiver: plan.receiver, msgid });
    }
    if (logger.isLevelEnabled('debug')) {
      logger.debug({ from, receivers: receivers.length, ref }, 'send request handled');
    }
    sendJson(res, 202, { messages });
  }

  function handsetParam(match: RegExpExecArray): string {
    let decoded: string;
    try {
      decoded = decodeURIComponent(match[1] ?? '');
    } catch {
      throw new HttpError(400, 'phone is not valid URL encoding');
    }
    const digits = phoneDigits(decoded);
    if (!digits) throw new HttpError(400, `phone must be E.164 (+ and 7-15 digits) or digits, got "${decoded}"`);
    return digits;
  }

  async function handleReply(req: IncomingMessage, res: ServerResponse, match: RegExpExecArray): Promise<void> {
    const digits = handsetParam(match);
    const parsed = replySchema.safeParse(parseJson(await readBody(req, MAX_CONTROL_BODY_BYTES)));
    if (!parsed.success) throw new HttpError(400, z.prettifyError(parsed.error));
    if (!inboundUrl) {
      throw new HttpError(409, 'no inbound URL configured; set one with PUT /api/config {"inboundUrl": "http://…"}');
    }
    const { to, text } = parsed.data;
    const at = now();
    const coding = detectCoding(text);
    const count = countSegments(text, coding);
    const keyword = (text.trim().split(/\s+/, 1)[0] ?? '').toUpperCase();
    const form = new URLSearchParams();
    form.set('mocean-from', digits);
    // Numbers go on the wire without '+', like every other number Mocean sends.
    form.set('mocean-to', /^\+\d+$/.test(to) ? to.slice(1) : to);
    form.set('mocean-text', text);
    form.set('mocean-keyword', keyword);
    form.set('mocean-coding', String(coding));
    form.set('mocean-time', moceanTime(at));

    const id = `MO${++replyCounter}`;
    handsets.send(digits, {
      id,
      from: `+${digits}`,
      to,
      text,
      segments: count.segments,
      coding,
      sentAt: at.toISOString(),
    });
    const url = inboundUrl;
    outbound.post('inbound', url, form);
    const rule = rules.length === 0 ? undefined : pickRule(rules, digits, random);
    if (rule?.duplicateInbound) {
      scheduler.schedule(Math.max(1, rule.dlrDelayMs ?? defaultDlrDelayMs), () => outbound.post('inbound', url, form));
    }
    sendJson(res, 202, { ok: true });
  }

  function handleMessages(_req: IncomingMessage, res: ServerResponse, match: RegExpExecArray): void {
    const digits = handsetParam(match);
    sendJson(res, 200, handsets.get(digits)?.received ?? []);
  }

  async function handlePutRules(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = parseRules(parseJson(await readBody(req, MAX_CONTROL_BODY_BYTES)));
    if (!parsed.ok) throw new HttpError(400, parsed.error);
    rules = parsed.rules;
    sendJson(res, 200, rules);
  }

  function configView(): { inboundUrl: string | null; defaultDlrDelayMs: number } {
    return { inboundUrl: inboundUrl ? redactUrl(inboundUrl) : null, defaultDlrDelayMs };
  }

  async function handlePutConfig(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = configSchema.safeParse(parseJson(await readBody(req, MAX_CONTROL_BODY_BYTES)));
    if (!parsed.success) throw new HttpError(400, z.prettifyError(parsed.error));
    const { inboundUrl: nextInbound, defaultDlrDelayMs: nextDelay } = parsed.data;
    if (nextInbound !== undefined) {
      if (nextInbound === null || nextInbound === '') {
        inboundUrl = undefined;
      } else {
        const url = parseWebhookUrl(nextInbound);
        if (!url) throw new HttpError(400, 'inboundUrl must be an http(s) URL');
        inboundUrl = url;
      }
    }
    if (nextDelay !== undefined) defaultDlrDelayMs = nextDelay;
    sendJson(res, 200, configView());
  }

  function reset(): void {
    handsets.clear();
    rules = [];
    stats = zeroStats();
    dedupe.clear();
    scheduler.cancelAll();
    outbound.reset();
  }

  const routes: Route[] = [
    { pattern: /^\/rest\/2\/sms$/, methods: { POST: handleSend } },
    { pattern: /^\/healthz$/, methods: { GET: (_q, res) => sendJson(res, 200, { status: 'ok', pid: process.pid }) } },
    {
      pattern: /^\/$/,
      methods: {
        GET: (_q, res) =>
          sendHtml(
            res,
            200,
            renderPage({
              handsets: handsets.recent(PAGE_HANDSETS),
              totalHandsets: handsets.size,
              stats: { ...stats },
              rules,
              inboundUrl: inboundUrl ? redactUrl(inboundUrl) : undefined,
            }),
          ),
      },
    },
    { pattern: /^\/api\/stats$/, methods: { GET: (_q, res) => sendJson(res, 200, stats) } },
    {
      pattern: /^\/api\/rules$/,
      methods: { GET: (_q, res) => sendJson(res, 200, rules), PUT: handlePutRules },
    },
    {
      pattern: /^\/api\/config$/,
      methods: { GET: (_q, res) => sendJson(res, 200, configView()), PUT: handlePutConfig },
    },
    {
      pattern: /^\/api\/reset$/,
      methods: {
        POST: (_q, res) => {
          reset();
          sendJson(res, 200, { ok: true });
        },
      },
    },
    {
      pattern: /^\/api\/handsets$/,
      methods: {
        GET: (_q, res) => sendJson(res, 200, handsets.summaries(LIST_HANDSETS)),
        DELETE: (_q, res) => {
          handsets.clear();
          sendJson(res, 200, { ok: true });
        },
      },
    },
    { pattern: /^\/api\/handsets\/([^/]+)\/messages$/, methods: { GET: handleMessages } },
    { pattern: /^\/api\/handsets\/([^/]+)\/reply$/, methods: { POST: handleReply } },
    {
      pattern: /^\/api\/handsets\/([^/]+)$/,
      methods: {
        DELETE: (_q, res, match) => {
          handsets.delete(handsetParam(match));
          sendJson(res, 200, { ok: true });
        },
      },
    },
  ];

  function fail(res: ServerResponse, err: unknown, path: string): void {
    if (res.headersSent || res.destroyed) return;
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: err.message });
      return;
    }
    logger.error({ err, path }, 'request failed');
    if (path === '/rest/2/sms') mocean(res, 500, 45, ERR.system);
    else sendJson(res, 500, { error: 'internal error' });
  }

  function dispatch(req: IncomingMessage, res: ServerResponse): void {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    let path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    // MOCEAN_API_URL with a trailing slash produces '//rest/2/sms'; be forgiving about it.
    if (path.includes('//') || (path.length > 1 && path.endsWith('/'))) {
      path = path.replace(/\/{2,}/g, '/');
      if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    }
    for (const route of routes) {
      const match = route.pattern.exec(path);
      if (!match) continue;
      const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
      const handler = route.methods[method];
      if (!handler) {
        req.resume();
        const allow = Object.keys(route.methods);
        if (allow.includes('GET')) allow.push('HEAD');
        sendJson(res, 405, { error: `method ${req.method} not allowed on ${path}` }, { allow: allow.join(', ') });
        return;
      }
      try {
        const result = handler(req, res, match);
        if (result) result.catch((err: unknown) => fail(res, err, path));
      } catch (err) {
        fail(res, err, path);
      }
      return;
    }
    req.resume();
    sendJson(res, 404, { error: `no route for ${req.method} ${path}` });
  }

  const server = createServer(dispatch);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (logger.isLevelEnabled('debug')) logger.debug({ code: err.code }, 'client error');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });

  let listening = false;

  return {
    listen(port: number, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          listening = true;
          const addr = server.address() as AddressInfo;
          const shown = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
          resolve({ port: addr.port, url: `http://${shown}:${addr.port}` });
        });
      });
    },

    async close() {
      scheduler.cancelAll();
      for (const res of held) res.destroy();
      held.clear();
      const closed = listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
      listening = false;
      server.closeAllConnections();
      await Promise.all([closed, outbound.close()]);
    },

    stats() {
      return { ...stats };
    },
  };
}
