/**
 * Timed 3-hop circuit builds on a tor client over its control port, for bench:tor-latency: EXTENDCIRCUIT 0 with
 * an explicit path (guard, middle, exit by fingerprint), timed from just before the command to the arrival of
 * "650 CIRC <id> BUILT"; the arrival of each hop's EXTENDED event gives the telescoping steps (CREATE2 to the
 * guard, EXTEND2 to the middle, EXTEND2 to the exit). Each circuit is closed once built.
 */
import type { ControlEvent, TorControl } from './tor-latency-control.js';

export interface TorBuild {
  readonly ok: boolean;
  /** Launch → BUILT (or → FAILED/CLOSED when !ok), ms. */
  readonly ms: number;
  /** Launch → hop 1, 2, 3 done, ms (cumulative). */
  readonly hopMs: readonly number[];
  readonly path: readonly string[];
  readonly reason?: string;
}

interface CircEvent {
  readonly at: number;
  readonly status: string;
  readonly hops: readonly string[];
  readonly rest: string;
}

/** Collects CIRC events per circuit id and lets a caller wait for one circuit's end state. */
export class CircuitWatcher {
  private readonly events = new Map<string, CircEvent[]>();
  private readonly waiters = new Map<string, () => void>();
  private readonly off: () => void;

  private constructor(private readonly control: TorControl) {
    this.off = control.onEvent((e) => this.onEvent(e));
  }

  static async attach(control: TorControl): Promise<CircuitWatcher> {
    const w = new CircuitWatcher(control);
    await control.cmd('SETEVENTS CIRC');
    // No pre-emptive circuits of the client's own while we measure: less work on the shared relays.
    await control.cmd('SETCONF __DisablePredictedCircuits=1');
    return w;
  }

  private onEvent(e: ControlEvent): void {
    const parts = e.line.split(' ');
    if (parts[0] !== 'CIRC' || parts.length < 3) return;
    const id = parts[1]!;
    const pathField = parts[3]?.startsWith('$') ? parts[3] : '';
    const hops = pathField ? pathField.split(',').map((h) => h.split('~')[1] ?? h) : [];
    const list = this.events.get(id) ?? [];
    list.push({ at: e.at, status: parts[2]!, hops, rest: parts.slice(pathField ? 4 : 3).join(' ') });
    this.events.set(id, list);
    if (['BUILT', 'FAILED', 'CLOSED'].includes(parts[2]!)) this.waiters.get(id)?.();
  }

  /** Builds one circuit through `fingerprints` (guard, middle, exit) and closes it. */
  async build(fingerprints: readonly string[], timeoutMs = 60_000): Promise<TorBuild> {
    const t0 = performance.now();
    const reply = await this.control.cmd(`EXTENDCIRCUIT 0 ${fingerprints.map((f) => `$${f}`).join(',')}`);
    const m = /^250 EXTENDED (\d+)/.exec(reply[reply.length - 1]!);
    if (!m) throw new Error(`unexpected EXTENDCIRCUIT reply: ${reply.join(' | ')}`);
    const id = m[1]!;
    const done = (): CircEvent | undefined => this.events.get(id)?.find((e) => ['BUILT', 'FAILED', 'CLOSED'].includes(e.status));
    if (!done()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.waiters.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.waiters.delete(id);
    }
    const list = this.events.get(id) ?? [];
    this.events.delete(id);
    const end = list.find((e) => ['BUILT', 'FAILED', 'CLOSED'].includes(e.status));
    const hopMs: number[] = [];
    for (let k = 1; k <= fingerprints.length; k++) {
      const e = list.find((x) => (x.status === 'EXTENDED' || x.status === 'BUILT') && x.hops.length >= k);
      if (e) hopMs.push(e.at - t0);
    }
    if (!end || end.status === 'BUILT') await this.control.cmd(`CLOSECIRCUIT ${id}`).catch(() => undefined);
    return {
      ok: end?.status === 'BUILT',
      ms: end ? end.at - t0 : NaN,
      hopMs,
      path: end?.hops ?? [],
      ...(end?.status === 'BUILT' ? {} : { reason: end ? `${end.status} ${end.rest}` : 'timeout' }),
    };
  }

  detach(): void {
    this.off();
  }
}
