/**
 * The simulator's event heap: a binary min-heap of events ordered by (time, insertion sequence), so events at the
 * same virtual time run in the order they were scheduled — the property that makes a run reproducible from its seed.
 * Shared by the virtual clock (sim/clock.ts) and the synchronous models' queue (sim/event-queue.ts).
 */
export interface Timed {
  at: number;
  seq: number;
}

function before(a: Timed, b: Timed): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export class EventHeap<T extends Timed> {
  private readonly h: T[] = [];

  get size(): number {
    return this.h.length;
  }

  /** The earliest event, without removing it. */
  peek(): T | undefined {
    return this.h[0];
  }

  push(e: T): void {
    const h = this.h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  /** Removes and returns the earliest event; the heap must not be empty. */
  pop(): T {
    const h = this.h;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r]!, h[l]!) ? r : l;
        if (!before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
