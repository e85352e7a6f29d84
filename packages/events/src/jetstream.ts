import {
  AckPolicy,
  createInbox,
  type NatsConnection,
  DeliverPolicy,
  headers as natsHeaders,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from 'nats';
import { CLOUDEVENTS_CONTENT_TYPE, cloudEventSchema, type CloudEvent } from './envelope';
import { schemaFor } from './subjects';
import type { StreamName } from './streams';

export interface MinimalLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Publishes one CloudEvent with Nats-Msg-Id = event id, so the server drops a re-publish. */
export async function publishEvent(js: JetStreamClient, subject: string, event: CloudEvent): Promise<void> {
  const h = natsHeaders();
  h.set('content-type', CLOUDEVENTS_CONTENT_TYPE);
  await js.publish(subject, JSON.stringify(event), { msgID: event.id, headers: h });
}

export interface OutgoingEvent {
  subject: string;
  /** The CloudEvent id, sent as Nats-Msg-Id. */
  id: string;
  /** The serialized CloudEvent. */
  payload: string;
}

const encoder = new TextEncoder();

export interface BatchResult {
  /** Ids the server stored (or dropped as duplicates of an earlier publish). */
  acked: string[];
  /** Ids it refused or that could not be sent, with why; the caller keeps them to retry. */
  refused: Array<{ id: string; reason: string }>;
}

/**
 * Publishes many events to JetStream and reports, per event, whether the server acknowledged it
 * (stored, or dropped as a duplicate of the same Nats-Msg-Id). Events unanswered within the timeout
 * count as refused. js.publish() makes a request object, timer and promise per event; here one
 * inbox subscription collects all the acks, which costs a fraction of that at outbox volumes.
 */
export function publishBatch(nc: NatsConnection, events: OutgoingEvent[], timeoutMs = 10_000): Promise<BatchResult> {
  const result: BatchResult = { acked: [], refused: [] };
  if (events.length === 0) return Promise.resolve(result);
  const inbox = createInbox();
  const answered = new Array<boolean>(events.length).fill(false);
  let remaining = events.length;
  return new Promise<BatchResult>((resolve) => {
    const settle = (i: number, reason?: string) => {
      if (answered[i]) return;
      answered[i] = true;
      if (reason) result.refused.push({ id: events[i]!.id, reason });
      else result.acked.push(events[i]!.id);
      if (--remaining === 0) finish();
    };
    const finish = () => {
      clearTimeout(timer);
      sub.unsubscribe();
      resolve(result);
    };
    const timer = setTimeout(() => {
      for (let i = 0; i < events.length; i++) settle(i, `unacknowledged after ${timeoutMs} ms`);
    }, timeoutMs);
    const sub = nc.subscribe(`${inbox}.*`, {
      callback: (_err, msg) => {
        const i = Number(msg.subject.slice(inbox.length + 1));
        if (!Number.isInteger(i) || i < 0 || i >= events.length) return;
        if (msg.headers?.hasError) {
          settle(i, `${msg.headers.code} ${msg.headers.description} (is there a stream for this subject?)`);
          return;
        }
        try {
          const ack = JSON.parse(msg.string()) as { error?: { description?: string } };
          settle(i, ack.error ? (ack.error.description ?? 'error') : undefined);
        } catch {
          settle(i, 'unreadable acknowledgement');
        }
      },
    });
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const h = natsHeaders();
      h.set('Nats-Msg-Id', e.id);
      h.set('content-type', CLOUDEVENTS_CONTENT_TYPE);
      try {
        nc.publish(e.subject, encoder.encode(e.payload), { reply: `${inbox}.${i}`, headers: h });
      } catch (err) {
        // e.g. larger than the server's max_payload: this one can never go, the others still can.
        settle(i, (err as Error).message);
      }
    }
  });
}

export interface ConsumerOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: StreamName;
  durable: string;
  filterSubjects: string[];
  /** Runs once per valid event; throwing naks with backoff. Must be idempotent (redelivery happens). */
  handle: (event: CloudEvent<any>, subject: string) => Promise<void>;
  logger: MinimalLogger;
  /**
   * Where a new durable starts: 'all' (default) replays the stream, so nothing published before it
   * is missed; 'new' skips history; { startTime } starts at the first event stored at or after it.
   */
  deliver?: 'new' | 'all' | { startTime: Date };
  maxInFlight?: number;
  /**
   * Events this consumer has no use for, recognised from the subject and the raw `data` before any
   * validation, and acknowledged unread. A consumer of a busy subject (every message status) that
   * needs only a few of them (those carrying its correlation) stays cheap this way.
   */
  ignore?: (subject: string, data: any) => boolean;
}

export interface RunningConsumer {
  stop(): Promise<void>;
  stats: { handled: number; invalid: number; failed: number };
}

const BACKOFF_MS = [200, 1000, 5000, 15000, 60000];

/**
 * A durable, explicit-ack consumer. Payloads that do not validate are logged, counted and acked
 * (parked) so that garbage never loops; handler errors nak with a growing delay.
 */
export async function startConsumer(options: ConsumerOptions): Promise<RunningConsumer> {
  const { js, jsm, stream, durable, logger } = options;
  // Servers before 2.10 (Debian 12 ships 2.9) take one filter subject per consumer; with several we
  // read the whole stream and skip what is not ours.
  const single = options.filterSubjects.length === 1 ? options.filterSubjects[0] : undefined;
  const wanted = options.filterSubjects.map(subjectMatcher);
  const isWanted = (subject: string) => single !== undefined || wanted.some((m) => m(subject));
  const config = {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    ...(typeof options.deliver === 'object'
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: options.deliver.startTime.toISOString() }
      : { deliver_policy: options.deliver === 'new' ? DeliverPolicy.New : DeliverPolicy.All }),
    ...(single ? { filter_subject: single } : {}),
    ack_wait: 30 * 1e9,
    max_ack_pending: 10_000,
  };
  try {
    await jsm.consumers.info(stream, durable);
  } catch {
    await jsm.consumers.add(stream, config).catch(async (err) => {
      await jsm.consumers.info(stream, durable).catch(() => {
        throw err;
      });
    });
  }
  const consumer = await js.consumers.get(stream, durable);
  const stats = { handled: 0, invalid: 0, failed: 0 };
  const maxInFlight = options.maxInFlight ?? 64;
  let messages: ConsumerMessages | undefined;
  let stopped = false;
  const inFlight = new Set<Promise<void>>();
  const acks = new AckBatch();
  const ack = (m: JsMsg) => acks.add(m);

  const process = async (m: JsMsg) => {
    if (!isWanted(m.subject)) {
      ack(m);
      return;
    }
    let event: CloudEvent<any>;
    try {
      const raw = JSON.parse(m.string());
      if (options.ignore && raw && typeof raw === 'object' && options.ignore(m.subject, raw.data)) {
        ack(m);
        return;
      }
      const envelope = cloudEventSchema.parse(raw);
      const schema = schemaFor(m.subject);
      const data = schema ? schema.parse(envelope.data) : envelope.data;
      event = { ...(envelope as CloudEvent), data };
    } catch (err) {
      stats.invalid++;
      logger.warn({ subject: m.subject, seq: m.seq, durable, err: summarize(err) }, 'parked an event that does not validate');
      ack(m);
      return;
    }
    try {
      await options.handle(event, m.subject);
      stats.handled++;
      ack(m);
    } catch (err) {
      stats.failed++;
      const delay = BACKOFF_MS[Math.min(m.info.redeliveryCount - 1, BACKOFF_MS.length - 1)] ?? 1000;
      logger.error({ subject: m.subject, eventId: event.id, durable, err: summarize(err), retryInMs: delay }, 'event handler failed; will retry');
      m.nak(delay);
    }
  };

  const loop = async () => {
    while (!stopped) {
      try {
        messages = await consumer.consume({ max_messages: maxInFlight * 2 });
        for await (const m of messages) {
          const p = process(m).finally(() => inFlight.delete(p));
          inFlight.add(p);
          if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
        }
      } catch (err) {
        if (stopped) break;
        logger.warn({ durable, err: summarize(err) }, 'consumer interrupted; resuming');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  const done = loop();

  return {
    stats,
    async stop() {
      stopped = true;
      await messages?.close();
      await Promise.allSettled([...inFlight]);
      // Acks still waiting for their turn go now, while the connection is open (an ack needs only that).
      acks.flush();
      await Promise.race([done, new Promise((r) => setTimeout(r, 1000))]);
    },
  };
}

/**
 * Acknowledgements gathered for one turn of the event loop and sent together. nats.js writes to
 * its socket once per microtask turn, and a consumer acks each message in its own turn, so a busy
 * subject costs one write (a syscall, and a packet the server must read) per message; sent in one
 * synchronous run they share a write. An ack held back this long (well under a millisecond) and lost
 * to a crash only means a redelivery, which consumers already handle.
 */
class AckBatch {
  private pending: JsMsg[] = [];
  private scheduled = false;

  add(m: JsMsg): void {
    this.pending.push(m);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    for (const m of batch) m.ack();
  }
}

function summarize(err: unknown): string {
  if (err && typeof err === 'object' && 'issues' in err) {
    return JSON.stringify((err as { issues: unknown }).issues).slice(0, 500);
  }
  return err instanceof Error ? err.message : String(err);
}

/** NATS subject wildcard matching: '*' one token, '>' the rest. */
export function subjectMatcher(pattern: string): (subject: string) => boolean {
  const p = pattern.split('.');
  return (subject) => {
    const s = subject.split('.');
    for (let i = 0; i < p.length; i++) {
      if (p[i] === '>') return s.length > i;
      if (i >= s.length) return false;
      if (p[i] !== '*' && p[i] !== s[i]) return false;
    }
    return s.length === p.length;
  };
}

export interface PendingConsumer {
  /** Settles with the consumer once attached, or undefined when stopped first. */
  ready: Promise<RunningConsumer | undefined>;
  stop(): Promise<void>;
}

/**
 * Starts a consumer on a stream that another service owns and may not have created yet: retries
 * quietly in the background until the stream exists, so services can start in any order.
 */
export function startConsumerWhenReady(options: ConsumerOptions & { retryMs?: number; warnAfterMs?: number }): PendingConsumer {
  const retryMs = options.retryMs ?? 1000;
  const warnAfterMs = options.warnAfterMs ?? 30_000;
  const since = Date.now();
  let stopped = false;
  let warned = false;
  let wake: (() => void) | undefined;
  const ready = (async () => {
    while (!stopped) {
      try {
        const consumer = await startConsumer(options);
        if (!stopped) return consumer;
        await consumer.stop();
        return undefined;
      } catch (err) {
        if (!warned && Date.now() - since > warnAfterMs) {
          warned = true;
          options.logger.warn(
            { stream: options.stream, durable: options.durable, err: summarize(err) },
            `still waiting for stream ${options.stream}; its events are consumed once it exists`,
          );
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
    return undefined;
  })();
  return {
    ready,
    async stop() {
      stopped = true;
      wake?.();
      await (await ready)?.stop();
    },
  };
}

/**
 * Deletes durable consumers a service no longer runs (renamed or narrowed), so a stream does not
 * keep messages pending for a reader that never comes back. Missing ones are fine.
 */
export async function retireDurables(jsm: JetStreamManager, stream: StreamName, durables: string[], logger?: MinimalLogger): Promise<void> {
  for (const durable of durables) {
    try {
      await jsm.consumers.delete(stream, durable);
      logger?.info({ stream, durable }, 'deleted a retired durable consumer');
    } catch {
      // Not there (a fresh install, or already deleted) or the stream does not exist yet.
    }
  }
}
