/**
 * The sleep/wake mechanics of a background loop: `sleep(ms)` resolves after ms or as soon as
 * `wake()` or `kick()` is called, whichever comes first. `kick()` also sets `kicked`, so work
 * committed while the loop was busy (not sleeping) is not missed: the loop clears the flag at the
 * start of a pass (`takeKicked()`) and skips its sleep when it is set again (`kicked`).
 * `wake()` alone (e.g. from stop()) ends a pending sleep without marking new work.
 */
export class WakeableSleep {
  private wakeCurrent: (() => void) | undefined;
  private kickedFlag = false;

  /** True when kick() was called since the last takeKicked(). */
  get kicked(): boolean {
    return this.kickedFlag;
  }

  /** Returns whether kick() was called since the last call, and clears the flag. */
  takeKicked(): boolean {
    const kicked = this.kickedFlag;
    this.kickedFlag = false;
    return kicked;
  }

  /** Marks new work and ends a pending sleep. */
  kick(): void {
    this.kickedFlag = true;
    this.wake();
  }

  /** Ends a pending sleep, if any. */
  wake(): void {
    this.wakeCurrent?.();
  }

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeCurrent = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeCurrent = done;
    });
  }
}
