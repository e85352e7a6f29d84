/**
 * Group commit: callers push items and get a promise that settles when the batch holding their
 * item has been committed. One batch is in flight at a time; what arrives meanwhile forms the
 * next batch, so under load batches grow and commits per second stay flat.
 */
export class GroupCommit<T, R> {
  private pending: Array<{ item: T; resolve: (r: R) => void; reject: (err: unknown) => void }> = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly commit: (items: T[]) => Promise<R[]>,
    private readonly options: { maxBatch: number; maxDelayMs: number },
  ) {}

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
    while (this.pending.length > 0 || this.flushing) {
      if (this.flushing) await this.flushing;
      else this.flushNow();
    }
  }

  private schedule(): void {
    if (this.flushing) return; // the running flush picks the rest up when it finishes
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
    if (this.flushing || this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.options.maxBatch);
    this.flushing = (async () => {
      try {
        const results = await this.commit(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i] as R));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    })().finally(() => {
      this.flushing = undefined;
      // Items that queued up during the commit have waited long enough: commit them right away.
      if (this.pending.length > 0) this.flushNow();
    });
  }
}
