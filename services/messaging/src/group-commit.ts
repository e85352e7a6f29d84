/**
 * Group commit: callers push items and get a promise that settles when the batch holding their
 * item has been committed. Up to `concurrency` batches are in flight at a time (default one); what
 * arrives meanwhile forms the next batch, so under load batches grow and commits per second stay
 * flat. A second batch in flight hides the first one's round trip: callers that hold a connection
 * open until their item commits (a provider's delivery-report POSTs) wait half as long.
 */
export class GroupCommit<T, R> {
  private pending: Array<{ item: T; resolve: (r: R) => void; reject: (err: unknown) => void }> = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly flushing = new Set<Promise<void>>();
  private readonly concurrency: number;

  constructor(
    private readonly commit: (items: T[]) => Promise<R[]>,
    private readonly options: { maxBatch: number; maxDelayMs: number; concurrency?: number },
  ) {
    this.concurrency = Math.max(1, options.concurrency ?? 1);
  }

  push(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  get size(): number {
    return this.pending.length;
  }

  /** Commits everything pending now (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.flushing.size > 0) {
      if (this.pending.length > 0 && this.flushing.size < this.concurrency) this.flushNow();
      else await Promise.race(this.flushing);
    }
  }

  private schedule(): void {
    if (this.flushing.size >= this.concurrency) return; // a running flush picks the rest up when it finishes
    if (this.pending.length >= this.options.maxBatch) {
      this.flushNow();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flushNow(), this.options.maxDelayMs);
    }
  }

  private flushNow(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.flushing.size >= this.concurrency || this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.options.maxBatch);
    const flush: Promise<void> = (async () => {
      try {
        const results = await this.commit(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i] as R));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    })().finally(() => {
      this.flushing.delete(flush);
      // Items that queued up during the commit have waited long enough: commit them right away.
      if (this.pending.length > 0) this.flushNow();
    });
    this.flushing.add(flush);
    // More waiting than one batch takes: start the next one now, if a slot is free.
    if (this.pending.length >= this.options.maxBatch) this.flushNow();
    else if (this.pending.length > 0) this.schedule();
  }
}
