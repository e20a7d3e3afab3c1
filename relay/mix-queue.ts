/**
 * The mix relay's delay queue (specs/mix.md §4.1): items leave in order of their due time, whatever their order of
 * arrival, from one timer set for the earliest. A binary heap keyed by (due, arrival number), so equal due times
 * keep their order and a flood of inserts costs O(log n) each.
 */

interface Entry<T> {
  readonly due: number;
  readonly seq: number;
  readonly item: T;
}

export class DelayQueue<T> {
  private readonly heap: Entry<T>[] = [];
  private seq = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerDue = Infinity;
  private stopped = false;

  constructor(
    private readonly now: () => number,
    private readonly release: (item: T) => void,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  push(delayMs: number, item: T): void {
    if (this.stopped) return;
    const e: Entry<T> = { due: this.now() + delayMs, seq: this.seq++, item };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
    this.arm();
  }

  /** Drops everything held and the timer. */
  stop(): void {
    this.stopped = true;
    this.heap.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private pop(): Entry<T> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }

  private arm(): void {
    const first = this.heap[0];
    if (!first || first.due >= this.timerDue) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = first.due;
    this.timer = setTimeout(() => this.fire(), Math.max(0, first.due - this.now()));
    (this.timer as { unref?: () => void }).unref?.();
  }

  private fire(): void {
    this.timer = null;
    this.timerDue = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0]!.due <= now) this.release(this.pop()!.item);
    this.arm();
  }
}

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}
