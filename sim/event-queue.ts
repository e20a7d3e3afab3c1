/**
 * A minimal discrete-event queue for the simulator's synchronous models (sim/churn-model.ts): events ordered by
 * (time, insertion order), run one after another. The models that run real relay code use the virtual clock
 * (sim/clock.ts) instead, which also drives timers and promises.
 */

import { EventHeap } from './heap.js';

interface Item {
  at: number;
  seq: number;
  fn: () => void;
}

export class EventQueue {
  private readonly heap = new EventHeap<Item>();
  private seq = 0;
  now = 0;

  at(time: number, fn: () => void): void {
    this.heap.push({ at: Math.max(time, this.now), seq: this.seq++, fn });
  }

  /** Runs every event up to `until` (inclusive); the clock ends at `until`. */
  runUntil(until: number): void {
    while (this.heap.size > 0 && this.heap.peek()!.at <= until) {
      const top = this.heap.pop();
      this.now = top.at;
      top.fn();
    }
    this.now = Math.max(this.now, until);
  }
}
