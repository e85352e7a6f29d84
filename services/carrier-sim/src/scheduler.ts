// Timers grouped by due millisecond: under load many deliveries fall due together, and one
// timer per group keeps timer churn flat. Everything is cancellable at once for reset/close.

type Task = () => void;

interface Bucket {
  timer: NodeJS.Timeout;
  tasks: Task[];
}

export class Scheduler {
  private readonly buckets = new Map<number, Bucket>();

  constructor(private readonly onError: (err: unknown) => void) {}

  schedule(delayMs: number, task: Task): void {
    const due = Date.now() + Math.max(0, delayMs);
    const existing = this.buckets.get(due);
    if (existing) {
      existing.tasks.push(task);
      return;
    }
    const bucket: Bucket = {
      timer: setTimeout(() => this.run(due), Math.max(0, due - Date.now())),
      tasks: [task],
    };
    this.buckets.set(due, bucket);
  }

  get pending(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.tasks.length;
    return n;
  }

  cancelAll(): void {
    for (const bucket of this.buckets.values()) clearTimeout(bucket.timer);
    this.buckets.clear();
  }

  private run(due: number): void {
    const bucket = this.buckets.get(due);
    if (!bucket) return;
    this.buckets.delete(due);
    for (const task of bucket.tasks) {
      try {
        task();
      } catch (err) {
        this.onError(err);
      }
    }
  }
}
