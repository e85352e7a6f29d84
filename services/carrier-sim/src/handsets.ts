import type { Coding } from './segments';

/** A message as the handset received it; the shape GET /api/handsets/{phone}/messages returns. */
export interface ReceivedMessage {
  msgid: string;
  from: string;
  to: string;
  text: string;
  segments: number;
  coding: Coding;
  receivedAt: string;
}

/** A message the handset sent (a reply), kept so the web page can show both sides. */
export interface SentMessage {
  id: string;
  from: string;
  to: string;
  text: string;
  segments: number;
  coding: Coding;
  sentAt: string;
}

export type ThreadEntry =
  | { direction: 'in'; message: ReceivedMessage }
  | { direction: 'out'; message: SentMessage };

export interface Handset {
  /** E.164, `+digits`. */
  phone: string;
  received: ReceivedMessage[];
  thread: ThreadEntry[];
  sentCount: number;
  lastActivityAt: string;
}

export interface HandsetSummary {
  phone: string;
  received: number;
  sent: number;
  lastActivityAt: string;
}

/**
 * Handsets keyed by digits, in least-recently-active-first order (a Map re-inserted on each
 * message), which gives both LRU eviction and the page's "most recent first" order for free.
 */
export class HandsetStore {
  private readonly handsets = new Map<string, Handset>();

  constructor(
    private readonly maxMessagesPerHandset: number,
    private readonly maxHandsets: number,
  ) {}

  get size(): number {
    return this.handsets.size;
  }

  get(digits: string): Handset | undefined {
    return this.handsets.get(digits);
  }

  receive(digits: string, message: ReceivedMessage): void {
    const handset = this.touch(digits, message.receivedAt);
    push(handset.received, message, this.maxMessagesPerHandset);
    push(handset.thread, { direction: 'in', message }, this.maxMessagesPerHandset);
  }

  send(digits: string, message: SentMessage): void {
    const handset = this.touch(digits, message.sentAt);
    handset.sentCount++;
    push(handset.thread, { direction: 'out', message }, this.maxMessagesPerHandset);
  }

  delete(digits: string): boolean {
    return this.handsets.delete(digits);
  }

  clear(): void {
    this.handsets.clear();
  }

  /** Most recently active first. */
  recent(limit: number): Handset[] {
    const all = [...this.handsets.values()];
    const out: Handset[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) out.push(all[i]!);
    return out;
  }

  summaries(limit: number): HandsetSummary[] {
    return this.recent(limit).map((h) => ({
      phone: h.phone,
      received: h.received.length,
      sent: h.sentCount,
      lastActivityAt: h.lastActivityAt,
    }));
  }

  private touch(digits: string, at: string): Handset {
    let handset = this.handsets.get(digits);
    if (handset) {
      this.handsets.delete(digits);
    } else {
      handset = { phone: `+${digits}`, received: [], thread: [], sentCount: 0, lastActivityAt: at };
      if (this.handsets.size >= this.maxHandsets) {
        const oldest = this.handsets.keys().next().value;
        if (oldest !== undefined) this.handsets.delete(oldest);
      }
    }
    handset.lastActivityAt = at;
    this.handsets.set(digits, handset);
    return handset;
  }
}

function push<T>(list: T[], item: T, cap: number): void {
  list.push(item);
  // shift() on a packed array is a cheap in-place trim in V8, so a sliding window is fine here.
  if (list.length > cap) list.shift();
}
