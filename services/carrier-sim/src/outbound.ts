import { Pool } from 'undici';
import type { Logger } from 'pino';
import { Scheduler } from './scheduler';

export type PostKind = 'dlr' | 'inbound';

export interface OutboundOptions {
  logger: Logger;
  /** Called once per attempt, so failed attempts can be counted as a provider would. */
  onAttempt: (kind: PostKind, ok: boolean) => void;
  maxAttempts: number;
  retryBaseMs: number;
  connections: number;
}

interface Job {
  kind: PostKind;
  origin: string;
  path: string;
  body: string;
  attempt: number;
  epoch: number;
}

const MAX_POOLS = 64;
const GIVE_UP_LOG_INTERVAL_MS = 5_000;

/** Form-encoded POSTs to the platform's webhooks, with retries and keep-alive pools. */
export class Outbound {
  private readonly pools = new Map<string, Pool>();
  private readonly retries: Scheduler;
  private epoch = 0;
  private closed = false;
  private gaveUp = 0;
  private lastGiveUpLog = 0;

  constructor(private readonly opts: OutboundOptions) {
    this.retries = new Scheduler((err) => opts.logger.error({ err }, 'retry task failed'));
  }

  post(kind: PostKind, url: URL, form: URLSearchParams): void {
    if (this.closed) return;
    this.send({
      kind,
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      body: form.toString(),
      attempt: 1,
      epoch: this.epoch,
    });
  }

  /** Drops queued retries; requests already on the wire finish but are no longer counted. */
  reset(): void {
    this.epoch++;
    this.retries.cancelAll();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.reset();
    const pools = [...this.pools.values()];
    this.pools.clear();
    // destroy, not close: close() would wait for a slow or hung webhook.
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      if (this.pools.size >= MAX_POOLS) {
        // Evict the oldest origin so a client cycling through callback hosts cannot pile up sockets.
        const [oldOrigin, oldPool] = this.pools.entries().next().value as [string, Pool];
        this.pools.delete(oldOrigin);
        void oldPool.close().catch(() => undefined);
      }
      pool = new Pool(origin, {
        connections: this.opts.connections,
        keepAliveTimeout: 30_000,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
        connectTimeout: 5_000,
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  private send(job: Job): void {
    let pool: Pool;
    try {
      pool = this.pool(job.origin);
    } catch (err) {
      this.finish(job, false, err);
      return;
    }
    pool
      .request({
        method: 'POST',
        path: job.path,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: job.body,
      })
      .then(async (res) => {
        await res.body.dump();
        const ok = res.statusCode >= 200 && res.statusCode < 300;
        this.finish(job, ok, ok ? undefined : `HTTP ${res.statusCode}`);
      })
      .catch((err: unknown) => this.finish(job, false, err));
  }

  private finish(job: Job, ok: boolean, reason: unknown): void {
    if (job.epoch !== this.epoch || this.closed) return;
    this.opts.onAttempt(job.kind, ok);
    if (ok) return;
    const { logger } = this.opts;
    if (job.attempt >= this.opts.maxAttempts) {
      this.gaveUp++;
      // Throttled: a platform that is down would otherwise get one log line per message.
      const now = Date.now();
      if (now - this.lastGiveUpLog >= GIVE_UP_LOG_INTERVAL_MS) {
        logger.warn(
          { kind: job.kind, origin: job.origin, attempts: job.attempt, gaveUpSinceLastLog: this.gaveUp, reason: describe(reason) },
          'webhook post failed, giving up',
        );
        this.lastGiveUpLog = now;
        this.gaveUp = 0;
      }
      return;
    }
    if (logger.isLevelEnabled('debug')) {
      logger.debug({ kind: job.kind, origin: job.origin, attempt: job.attempt, reason: describe(reason) }, 'webhook post failed, will retry');
    }
    // Capped like a provider's retry schedule, so a platform that is down for minutes still gets its reports.
    const delay = Math.min(this.opts.retryBaseMs * 2 ** (job.attempt - 1), 30_000);
    this.retries.schedule(delay, () => this.send({ ...job, attempt: job.attempt + 1 }));
  }
}

function describe(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return String(reason);
}
