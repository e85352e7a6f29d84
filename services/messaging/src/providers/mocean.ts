import { Pool } from 'undici';
import { moceanCoding, toMoceanNumber } from '@textloop/sms';
import type { ProviderSendRequest, ProviderSendResult, SmsProvider } from './provider';

export interface MoceanOptions {
  apiUrl: string;
  apiKey: string;
  apiSecret: string;
  connections: number;
  timeoutMs: number;
}

/** Mocean statuses that mean "try again later"; every other non-zero status is final. */
const TRANSIENT_STATUSES = new Set([32, 45]);

interface MoceanResponse {
  status?: number | string;
  err_msg?: string;
  messages?: Array<{ status?: number | string; receiver?: string; msgid?: string; err_msg?: string }>;
}

/** Classifies one Mocean reply (already parsed) into our three outcomes. */
export function interpretMoceanReply(httpStatus: number, body: MoceanResponse | undefined): ProviderSendResult {
  const first = body?.messages?.[0];
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
 * same msgid instead of a second SMS.
 */
export class MoceanProvider implements SmsProvider {
  readonly name = 'mocean';
  private readonly pool: Pool;
  private readonly path: string;
  private readonly fixedFields: string;

  constructor(private readonly options: MoceanOptions) {
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
    let to: string;
    try {
      to = toMoceanNumber(request.to);
    } catch (err) {
      return { ok: false, transient: false, code: 'INVALID_NUMBER', message: `The recipient is not a phone number Mocean accepts (${(err as Error).name})` };
    }
    // The constant fields are encoded once; only the per-message ones are encoded here (hot path).
    const body =
      `${this.fixedFields}&mocean-from=${encodeURIComponent(request.from)}&mocean-to=${to}` +
      `&mocean-text=${encodeURIComponent(request.text)}&mocean-coding=${moceanCoding(request.encoding)}` +
      `&mocean-dlr-url=${encodeURIComponent(request.dlrUrl)}&textloop-ref=${encodeURIComponent(request.messageId)}`;
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
      return interpretMoceanReply(res.statusCode, parsed);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return {
        ok: false,
        transient: true,
        code: e.code ?? 'NETWORK_ERROR',
        message: `Mocean unreachable: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}`,
      };
    }
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => {});
  }
}
