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

export type ThreadEntry = { direction: 'in'; message: ReceivedMessage } | { direction: 'out'; message: SentMessage };

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
  /** Thread entries across all handsets; the per-handset cap alone would not bound memory. */
  private totalEntries = 0;

  constructor(
    private readonly maxMessagesPerHandset: number,
    private readonly maxHandsets: number,
    private readonly maxTotalMessages: number,
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
    this.addEntry(handset, { direction: 'in', message });
  }

  send(digits: string, message: SentMessage): void {
    const handset = this.touch(digits, message.sentAt);
    handset.sentCount++;
    this.addEntry(handset, { direction: 'out', message });
  }

  delete(digits: string): boolean {
    const handset = this.handsets.get(digits);
    if (!handset) return false;
    this.totalEntries -= handset.thread.length;
    return this.handsets.delete(digits);
  }

  clear(): void {
    this.handsets.clear();
    this.totalEntries = 0;
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
      if (this.handsets.size >= this.maxHandsets) this.evictOldest();
    }
    handset.lastActivityAt = at;
    this.handsets.set(digits, handset);
    return handset;
  }

  private addEntry(handset: Handset, entry: ThreadEntry): void {
    this.totalEntries += push(handset.thread, entry, this.maxMessagesPerHandset) ? 0 : 1;
    // The active handset sits at the end of the Map, so eviction never removes it.
    while (this.totalEntries > this.maxTotalMessages && this.handsets.size > 1) this.evictOldest();
  }

  private evictOldest(): void {
    const oldest = this.handsets.keys().next().value;
    if (oldest !== undefined) this.delete(oldest);
  }
}

/** Appends, dropping the oldest item past the cap; true when one was dropped. */
function push<T>(list: T[], item: T, cap: number): boolean {
  list.push(item);
  if (list.length <= cap) return false;
  // shift() on a packed array is a cheap in-place trim in V8, so a sliding window is fine here.
  list.shift();
  return true;
}
