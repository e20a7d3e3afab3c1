/**
 * The client's half of a circuit padding machine (specs/padding.md §2, §3): runs a PaddingRuntime on the process's
 * timers and sends its padding as DROP cells addressed to the hop the machine was negotiated with (the middle), so
 * they stop there and never reach the circuit's last hop or the application behind it.
 *
 * The owner (net/circuit.ts) reports every cell: what it sends itself ("nonpadding-sent"), and what arrives — a DROP
 * from the machine's hop is that hop's padding ("padding-received"), anything else is "nonpadding-received".
 */
import { crypto } from '../crypto/index.js';
import { PaddingRuntime, type PaddingAction, type PaddingMachine } from '../protocol/circuit-padding.js';

export class ClientPaddingDriver {
  private readonly runtime: PaddingRuntime;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private deadline: ReturnType<typeof setTimeout> | null = null;
  private epoch = 0;
  private stopped = false;

  constructor(
    machine: PaddingMachine,
    /** Sends one DROP to the machine's hop; false when the circuit can take no more. */
    private readonly sendPadding: () => boolean,
    random: () => number = () => crypto().uniform(),
  ) {
    this.runtime = new PaddingRuntime(machine, random);
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

  stop(): void {
    this.stopped = true;
    this.runtime.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = null;
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
    if (a.kind === 'keep' || this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (a.kind === 'end') return this.stop();
    if (a.kind === 'wait') return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      this.apply(this.runtime.onPaddingSent(this.sendPadding()));
    }, a.delayMs);
    (this.timer as { unref?: () => void }).unref?.();
  }
}
