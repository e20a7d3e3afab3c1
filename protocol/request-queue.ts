/**
 * Requests run at most `limit` at once, the lowest rank first (FIFO within a rank): a reader fetching a segment while
 * it already fetches the next one (specs/content.md §3.4) gives the earlier segment the free places, so reading
 * ahead never delays the bytes it must yield first. Pure: no timers, no I/O; the work is whatever `run` is given.
 *
 * close() refuses every request still waiting (ERR_ABORTED) and any later one; requests already running finish.
 */
import { AbortedError } from './errors.js';

interface Waiting {
  readonly rank: number;
  readonly start: () => void;
  readonly refuse: (e: Error) => void;
}

export class RequestQueue {
  private running = 0;
  private waiting: Waiting[] = [];
  private closed = false;

  constructor(private readonly limit: number) {}

  /** Runs `f` once a place is free (rank: lower goes first). */
  run<T>(rank: number, f: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new AbortedError('the read ended'));
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.running++;
        f()
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.next();
          });
      };
      if (this.running < this.limit) return start();
      // Kept sorted by rank, FIFO within a rank: insert after the last entry of a rank not above this one.
      let at = this.waiting.length;
      while (at > 0 && this.waiting[at - 1]!.rank > rank) at--;
      this.waiting.splice(at, 0, { rank, start, refuse: reject });
    });
  }

  private next(): void {
    if (this.running >= this.limit) return;
    this.waiting.shift()?.start();
  }

  /** Refuses what waits and whatever comes later. */
  close(): void {
    this.closed = true;
    const refused = this.waiting;
    this.waiting = [];
    for (const w of refused) w.refuse(new AbortedError('the read ended'));
  }
}
