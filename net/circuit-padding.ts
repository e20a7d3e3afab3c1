/**
 * The client's half of a circuit padding machine (specs/padding.md §2, §3): runs a PaddingRuntime on the process's
 * timers and sends its padding as DROP cells addressed to the hop the machine was negotiated with (the middle), so
 * they stop there and never reach the circuit's last hop or the application behind it.
 *
 * The owner (net/circuit.ts) reports every cell: what it sends itself ("nonpadding-sent"), and what arrives — a DROP
 * from the machine's hop is that hop's padding ("padding-received"), anything else is "nonpadding-received".
 *
 * While the machine is in a holding state (specs/padding.md §2.1) the owner gives it its real cells, encrypted, with
 * hold() instead of sending them; the timer sends the oldest in place of a padding cell, and whatever is held when
 * the machine leaves its holding states, ends or is stopped goes at once, in order.
 */
import { crypto } from '../crypto/index.js';
import { PaddingRuntime, type PaddingAction, type PaddingMachine } from '../protocol/circuit-padding.js';

/** Real cells the client's half holds on one circuit; one more ends the machine, which sends them. */
export const CLIENT_HOLD_MAX_CELLS = 256;

export class ClientPaddingDriver {
  private readonly runtime: PaddingRuntime;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private deadline: ReturnType<typeof setTimeout> | null = null;
  private epoch = 0;
  private stopped = false;
  private readonly held: Uint8Array[] = [];

  constructor(
    machine: PaddingMachine,
    /** Sends one DROP to the machine's hop; false when the circuit can take no more. */
    private readonly sendPadding: () => boolean,
    random: () => number = () => crypto().uniform(),
    /** Sends a held cell's body as it was given to hold(); false when the circuit can take no more. */
    private readonly sendHeld: (body: Uint8Array) => boolean = () => false,
    /** scheduleScale() of the round-trip byte negotiated (padding.md §4.4). */
    scale = 1,
  ) {
    this.runtime = new PaddingRuntime(machine, random, scale);
  }

  /** The machine's state (tests, status). */
  get stateName(): string {
    return this.stopped ? 'end' : this.runtime.stateName;
  }

  /** Real cells held now. */
  get holding(): number {
    return this.held.length;
  }

  /**
   * Keeps a real cell's encrypted body (a copy) to send on the machine's schedule, if the machine holds now; false:
   * the owner sends it itself (after everything held, which has gone out first). `urgent`: a SENDME, never held
   * (specs/padding.md §2.1): it goes now, and ends the run if cells are held.
   */
  hold(body: Uint8Array, urgent = false): boolean {
    if (this.stopped || !this.runtime.holding) {
      this.flush();
      return false;
    }
    // Counted towards the bulk mark; released at once where the slot owes cells (specs/padding.md §2.1).
    const verdict = this.runtime.offer(this.held.length, urgent);
    if (verdict === 'end') {
      this.stop();
      return false;
    }
    if (verdict === 'release') return false;
    if (this.held.length >= CLIENT_HOLD_MAX_CELLS) {
      this.stop();
      return false;
    }
    this.held.push(Uint8Array.from(body));
    return true;
  }

  private flush(): void {
    for (const body of this.held.splice(0)) this.sendHeld(body);
  }

  /** Padding cells sent so far. */
  get padding(): number {
    return this.runtime.padding;
  }

  get ended(): boolean {
    return this.stopped || this.runtime.ended;
  }

  start(): void {
    this.apply(this.runtime.start());
  }

  on(event: 'nonpadding-sent' | 'nonpadding-received' | 'padding-received'): void {
    if (this.stopped) return;
    this.apply(this.runtime.on(event));
  }

  /** Ends the run; what it held is sent unless `send` is false (the circuit is gone). */
  stop(send = true): void {
    this.stopped = true;
    this.runtime.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = null;
    if (send) this.flush();
    else this.held.length = 0;
  }

  private apply(a: PaddingAction): void {
    if (!this.stopped && this.runtime.deadlineEpoch !== this.epoch) {
      this.epoch = this.runtime.deadlineEpoch;
      if (this.deadline) clearTimeout(this.deadline);
      this.deadline = null;
      const ms = this.runtime.deadlineMs;
      if (ms !== null) {
        this.deadline = setTimeout(() => {
          this.deadline = null;
          if (!this.stopped) this.apply(this.runtime.onTimeout());
        }, ms);
        (this.deadline as { unref?: () => void }).unref?.();
      }
    }
    if (a.kind !== 'end' && !this.stopped && !this.runtime.holding && this.held.length > 0) this.flush();
    // A `release` state owing cells sends held ones at once, oldest first (specs/padding.md §2.1).
    while (a.kind !== 'end' && !this.stopped && this.held.length > 0 && this.runtime.release()) this.sendHeld(this.held.shift()!);
    if (a.kind === 'keep' || this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (a.kind === 'end') return this.stop();
    if (a.kind === 'wait') return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      // A holding state's timer sends the oldest held cell in place of padding (specs/padding.md §2.1).
      const body = this.runtime.holding ? this.held.shift() : undefined;
      if (body) this.apply(this.runtime.onPaddingSent(this.sendHeld(body), true));
      else this.apply(this.runtime.onPaddingSent(this.sendPadding()));
    }, a.delayMs);
    (this.timer as { unref?: () => void }).unref?.();
  }
}
