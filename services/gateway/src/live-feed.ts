import { connect, type Msg, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import { cloudEventSchema, schemaFor } from '@textloop/events';

/** One event from NATS, after its envelope and payload validated. */
export interface LiveEvent {
  id: string;
  subject: string;
  data: Record<string, unknown>;
}

/** What the live updates listen to; each topic is one core NATS subscription while someone listens. */
export type Topic = 'received' | 'status' | 'conversation';

const SUBJECTS: Record<Topic, string> = {
  received: 'messaging.message.received',
  // Every message event; the status feed leaves out .received.
  status: 'messaging.message.*',
  conversation: 'messaging.conversation.>',
};

/** The catch-all every conversation change is published on. */
export const CONVERSATION_UPDATED = 'messaging.conversation.updated';

/** The status the older, specific conversation subjects imply. */
const CONVERSATION_STATUS: Record<string, string> = {
  'messaging.conversation.opened': 'OPEN',
  'messaging.conversation.resolved': 'RESOLVED',
};

/** How long a specific conversation event waits for its catch-all twin before it counts on its own. */
const TWIN_WAIT_MS = 250;
/** Event ids remembered to drop re-published events (the outbox delivers at least once). */
const SEEN_IDS = 10_000;
const RETRY_MS = 1000;

export type FeedState = 'ok' | 'unavailable' | 'off';

/**
 * Live events from NATS for the gateway's subscriptions: plain core subscriptions (JetStream
 * publishes reach them too), so there is no replay and nothing durable; a subscriber sees what
 * happens while it is connected. The gateway starts without NATS and keeps trying to reach it;
 * until it does, `state` is 'unavailable' and queries and mutations are unaffected.
 */
export class LiveFeed {
  private nc?: NatsConnection;
  private connected = false;
  private stopped = false;
  private wakeRetry?: () => void;
  private readonly listeners: Record<Topic, Set<(event: LiveEvent) => void>> = { received: new Set(), status: new Set(), conversation: new Set() };
  private readonly subscriptions = new Map<Topic, Subscription>();
  private readonly seen = new Set<string>();
  /** Set once messaging.conversation.updated has been seen: from then on the specific subjects are twins to drop. */
  private catchAll = false;
  private readonly held = new Map<string, Set<NodeJS.Timeout>>();

  constructor(
    private readonly url: string | undefined,
    private readonly logger: Logger,
  ) {}

  get state(): FeedState {
    if (!this.url) return 'off';
    return this.connected ? 'ok' : 'unavailable';
  }

  /** Connects in the background; never throws. */
  start(): void {
    if (this.url) void this.connectLoop(this.url);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeRetry?.();
    for (const timers of this.held.values()) for (const t of timers) clearTimeout(t);
    this.held.clear();
    for (const set of Object.values(this.listeners)) set.clear();
    this.subscriptions.clear();
    this.connected = false;
    await this.nc?.close().catch(() => {});
  }

  /** Calls `handler` for every event of the topic until the returned function is called. */
  on(topic: Topic, handler: (event: LiveEvent) => void): () => void {
    const set = this.listeners[topic];
    set.add(handler);
    if (set.size === 1) this.subscribe(topic);
    return () => {
      if (!set.delete(handler) || set.size > 0) return;
      this.subscriptions.get(topic)?.unsubscribe();
      this.subscriptions.delete(topic);
    };
  }

  private async connectLoop(url: string): Promise<void> {
    let warned = false;
    while (!this.stopped) {
      try {
        const nc = await connect({ servers: url, name: 'gateway', maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 2000, noAsyncTraces: true });
        if (this.stopped) {
          await nc.close();
          return;
        }
        this.nc = nc;
        this.connected = true;
        void this.watch(nc);
        for (const topic of Object.keys(SUBJECTS) as Topic[]) if (this.listeners[topic].size > 0) this.subscribe(topic);
        this.logger.info({ nats: url }, 'live updates ready (subscriptions at /graphql over WebSocket)');
        return;
      } catch (err) {
        if (!warned) {
          this.logger.warn(
            { nats: url, err: (err as Error).message },
            'cannot reach NATS: queries and mutations work, subscriptions are unavailable until it answers (retrying)',
          );
          warned = true;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, RETRY_MS);
          this.wakeRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        this.logger.warn({ nats: this.url }, 'lost NATS: live updates pause (events meanwhile are not replayed) until it reconnects');
      } else if (status.type === 'reconnect') {
        this.connected = true;
        this.logger.info({ nats: this.url }, 'NATS reconnected: live updates resume');
      }
    }
  }

  private subscribe(topic: Topic): void {
    if (!this.nc || this.nc.isClosed() || this.subscriptions.has(topic)) return;
    this.subscriptions.set(topic, this.nc.subscribe(SUBJECTS[topic], { callback: (err, msg) => !err && this.receive(topic, msg) }));
  }

  private receive(topic: Topic, msg: Msg): void {
    let event: LiveEvent;
    try {
      const envelope = cloudEventSchema.parse(JSON.parse(msg.string()));
      const schema = schemaFor(msg.subject);
      const data = schema ? schema.parse(envelope.data) : envelope.data;
      if (!data || typeof data !== 'object') throw new Error('data is not an object');
      event = { id: envelope.id, subject: msg.subject, data: data as Record<string, unknown> };
    } catch (err) {
      this.logger.debug({ subject: msg.subject, err: (err as Error).message }, 'live updates skipped an event that does not validate');
      return;
    }
    const key = `${topic} ${event.id}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > SEEN_IDS) this.seen.delete(this.seen.values().next().value!);
    if (topic === 'conversation') this.conversationEvent(event);
    else this.emit(topic, event);
  }

  /**
   * Every conversation change once: from messaging.conversation.updated when messaging publishes
   * it, else (older messaging) from .opened/.resolved, which wait briefly in case their catch-all
   * twin follows.
   */
  private conversationEvent(event: LiveEvent): void {
    const conversationId = String(event.data.conversationId ?? '');
    if (!conversationId) return;
    if (event.subject === CONVERSATION_UPDATED) {
      this.catchAll = true;
      for (const t of this.held.get(conversationId) ?? []) clearTimeout(t);
      this.held.delete(conversationId);
      this.emit('conversation', event);
      return;
    }
    if (this.catchAll) return;
    const status = typeof event.data.status === 'string' ? event.data.status : CONVERSATION_STATUS[event.subject];
    const normalized = { ...event, data: { ...event.data, ...(status ? { status } : {}) } };
    const timers = this.held.get(conversationId) ?? new Set<NodeJS.Timeout>();
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (timers.size === 0) this.held.delete(conversationId);
      if (!this.catchAll) this.emit('conversation', normalized);
    }, TWIN_WAIT_MS);
    timers.add(timer);
    this.held.set(conversationId, timers);
  }

  private emit(topic: Topic, event: LiveEvent): void {
    for (const handler of this.listeners[topic]) {
      try {
        handler(event);
      } catch (err) {
        this.logger.error({ topic, err: (err as Error).message }, 'live update handler failed');
      }
    }
  }
}
