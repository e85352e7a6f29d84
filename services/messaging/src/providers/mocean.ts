import { Pool } from 'undici';
import { moceanCoding, toMoceanNumber } from '@textloop/sms';
import type { ProviderSendGroup, ProviderSendRequest, ProviderSendResult, SmsProvider } from './provider';

export interface MoceanOptions {
  apiUrl: string;
  apiKey: string;
  apiSecret: string;
  connections: number;
  timeoutMs: number;
  /** Receivers one request may carry (comma-separated `mocean-to`); default 1. */
  maxRecipients?: number;
}

/** Mocean statuses that mean "try again later"; every other non-zero status is final. */
const TRANSIENT_STATUSES = new Set([32, 45]);

interface MoceanEntry {
  status?: number | string;
  receiver?: string;
  msgid?: string;
  err_msg?: string;
}

interface MoceanResponse {
  status?: number | string;
  err_msg?: string;
  messages?: MoceanEntry[];
}

/**
 * The reply's entry for one receiver: found by number, or by position when Mocean leaves the
 * receiver out; undefined when the reply has none for it.
 */
function entryFor(body: MoceanResponse | undefined, receiver: string | undefined, index: number, byReceiver?: Map<string, MoceanEntry>) {
  const entries = body?.messages;
  if (!entries?.length) return undefined;
  if (receiver === undefined) return entries[0];
  const found = (byReceiver ?? entriesByReceiver(entries)).get(receiver);
  return found ?? (entries[index] && entries[index].receiver === undefined ? entries[index] : undefined);
}

/** A reply's entries by receiver (digits, without +); the first wins. */
function entriesByReceiver(entries: MoceanEntry[]): Map<string, MoceanEntry> {
  const map = new Map<string, MoceanEntry>();
  for (const e of entries) {
    if (e.receiver === undefined) continue;
    const digits = String(e.receiver).replace(/^\+/, '');
    if (!map.has(digits)) map.set(digits, e);
  }
  return map;
}

/**
 * Classifies one Mocean reply (already parsed) into our three outcomes, for one receiver (digits;
 * the first entry when not given) at its position in the request.
 */
export function interpretMoceanReply(
  httpStatus: number,
  body: MoceanResponse | undefined,
  receiver?: string,
  index = 0,
  byReceiver?: Map<string, MoceanEntry>,
): ProviderSendResult {
  const first = entryFor(body, receiver, index, byReceiver);
  const status = first?.status ?? body?.status;
  const errMsg = first?.err_msg ?? body?.err_msg ?? '';
  const code = status === undefined ? undefined : Number(status);
  if (httpStatus >= 200 && httpStatus < 300 && code === 0 && first?.msgid) {
    return { ok: true, providerMessageId: String(first.msgid) };
  }
  if (code !== undefined && Number.isFinite(code) && code !== 0) {
    const message = `Mocean status ${code}: ${errMsg || 'no error message'}`;
    if (TRANSIENT_STATUSES.has(code) || httpStatus >= 500 || httpStatus === 429)
      return { ok: false, transient: true, code: `MOCEAN_${code}`, message: httpStatus >= 500 ? `HTTP ${httpStatus} (${message})` : message };
    return { ok: false, transient: false, code: `MOCEAN_${code}`, message };
  }
  if (httpStatus >= 500 || httpStatus === 429 || httpStatus === 408) {
    return { ok: false, transient: true, code: `HTTP_${httpStatus}`, message: `HTTP ${httpStatus} from Mocean` };
  }
  if (httpStatus >= 200 && httpStatus < 300) {
    // Accepted or not? Unclear; a retry is harmless because the message id deduplicates.
    return { ok: false, transient: true, code: 'BAD_RESPONSE', message: `Mocean answered HTTP ${httpStatus} without a message id` };
  }
  return { ok: false, transient: false, code: `HTTP_${httpStatus}`, message: `HTTP ${httpStatus} from Mocean${errMsg ? `: ${errMsg}` : ''}` };
}

/**
 * MoceanAPI REST v2 over a keep-alive undici pool. The message id goes along as `textloop-ref`,
 * which the simulator (and any deduplicating proxy) uses to turn a resend after a crash into the
 * same msgid instead of a second SMS. A group goes as one request with comma-separated receivers
 * (`mocean-to`) and references (`textloop-ref`, in the same order).
 */
export class MoceanProvider implements SmsProvider {
  readonly name = 'mocean';
  readonly maxRecipients: number;
  private readonly pool: Pool;
  private readonly path: string;
  private readonly fixedFields: string;

  constructor(private readonly options: MoceanOptions) {
    this.maxRecipients = options.maxRecipients ?? 1;
    const base = new URL(options.apiUrl);
    this.path = `${base.pathname.replace(/\/+$/, '')}/rest/2/sms`;
    this.fixedFields = new URLSearchParams({
      'mocean-api-key': options.apiKey,
      'mocean-api-secret': options.apiSecret,
      'mocean-dlr-mask': '1',
      'mocean-resp-format': 'json',
    }).toString();
    this.pool = new Pool(base.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: Math.min(options.timeoutMs, 10_000),
    });
  }

  async send(request: ProviderSendRequest): Promise<ProviderSendResult> {
    const { messageId, to, dlrUrl, ...shared } = request;
    const [result] = await this.sendGroup({ ...shared, dlrUrl, recipients: [{ messageId, to }] });
    return result!;
  }

  async sendGroup(group: ProviderSendGroup): Promise<ProviderSendResult[]> {
    const results: ProviderSendResult[] = new Array(group.recipients.length);
    const valid: Array<{ i: number; digits: string; ref: string }> = [];
    group.recipients.forEach(({ messageId, to }, i) => {
      try {
        valid.push({ i, digits: toMoceanNumber(to), ref: encodeURIComponent(messageId) });
      } catch (err) {
        results[i] = {
          ok: false,
          transient: false,
          code: 'INVALID_NUMBER',
          message: `The recipient is not a phone number Mocean accepts (${(err as Error).name})`,
        };
      }
    });
    if (valid.length === 0) return results;
    // The constant fields are encoded once; only the per-request ones are encoded here (hot path).
    const body =
      `${this.fixedFields}&mocean-from=${encodeURIComponent(group.from)}&mocean-to=${valid.map((v) => v.digits).join(',')}` +
      `&mocean-text=${encodeURIComponent(group.text)}&mocean-coding=${moceanCoding(group.encoding)}` +
      `&mocean-dlr-url=${encodeURIComponent(group.dlrUrl)}&textloop-ref=${valid.map((v) => v.ref).join(',')}`;
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: this.path,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
      });
      const text = await res.body.text();
      let parsed: MoceanResponse | undefined;
      try {
        parsed = text ? (JSON.parse(text) as MoceanResponse) : undefined;
      } catch {
        parsed = undefined;
      }
      const byReceiver = valid.length > 1 && parsed?.messages ? entriesByReceiver(parsed.messages) : undefined;
      valid.forEach((v, k) => {
        results[v.i] = interpretMoceanReply(res.statusCode, parsed, valid.length === 1 ? undefined : v.digits, k, byReceiver);
      });
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const failure: ProviderSendResult = {
        ok: false,
        transient: true,
        code: e.code ?? 'NETWORK_ERROR',
        message: `Mocean unreachable: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}`,
      };
      for (const v of valid) results[v.i] = failure;
    }
    return results;
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => {});
  }
}
