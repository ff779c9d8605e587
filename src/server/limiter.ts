/**
 * A concurrency limiter with a bounded wait queue: at most `maxConcurrent` holders at once, at
 * most `maxQueue` waiters; beyond that `tryAcquire` refuses immediately (the server answers 503)
 * instead of queueing without bound.
 *
 * @module
 */

/** A granted (or pending) slot. */
export interface Ticket {
  /** Resolves when the slot is granted; rejects if cancelled while queued. */
  readonly ready: Promise<void>;
  /** Gives the slot back (idempotent). Cancels the wait if still queued. */
  release(): void;
}

export class ConcurrencyLimiter {
  private active = 0;

  private readonly waiting: Array<{ grant: () => void; cancel: (e: Error) => void }> = [];

  constructor(
    readonly maxConcurrent: number,
    readonly maxQueue: number,
  ) {
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new Error(`ConcurrencyLimiter: maxConcurrent must be an integer ≥ 1, got ${maxConcurrent}`);
    }
    if (!Number.isInteger(maxQueue) || maxQueue < 0) {
      throw new Error(`ConcurrencyLimiter: maxQueue must be an integer ≥ 0, got ${maxQueue}`);
    }
  }

  /** Slots in use. */
  get inFlight(): number {
    return this.active;
  }

  /** Waiters in the queue. */
  get queued(): number {
    return this.waiting.length;
  }

  /** A ticket, or undefined when both the slots and the queue are full. */
  tryAcquire(): Ticket | undefined {
    let released = false;
    if (this.active < this.maxConcurrent) {
      this.active++;
      return {
        ready: Promise.resolve(),
        release: () => {
          if (released) return;
          released = true;
          this.handOver();
        },
      };
    }
    if (this.waiting.length >= this.maxQueue) return undefined;
    let granted = false;
    let entry!: { grant: () => void; cancel: (e: Error) => void };
    const ready = new Promise<void>((resolve, reject) => {
      entry = {
        grant: () => {
          granted = true;
          resolve();
        },
        cancel: reject,
      };
    });
    ready.catch(() => undefined); // a cancelled wait is handled by the caller of release()
    this.waiting.push(entry);
    return {
      ready,
      release: () => {
        if (released) return;
        released = true;
        if (granted) {
          this.handOver();
        } else {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          entry.cancel(new Error("ConcurrencyLimiter: wait cancelled"));
        }
      },
    };
  }

  /** Passes a freed slot to the next waiter, or frees it. */
  private handOver(): void {
    const next = this.waiting.shift();
    if (next) next.grant();
    else this.active--;
  }
}
