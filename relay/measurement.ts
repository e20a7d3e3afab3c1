/**
 * Capacity measurement (specs/measurement.md), after FlashFlow: a measurer — a directory authority — opens a
 * one-hop circuit to the relay over its own authenticated relay link and keeps a window of ECHO relay cells full of
 * random bytes in flight for a fixed time; the relay sends each one back. What the relay echoes, checked byte for
 * byte, per second is the measurement. A relay cannot claim capacity it does not have: every echoed cell crossed its
 * link twice and went through its relay-cell layer, and the bytes are random, so it cannot answer without receiving.
 *
 * - EchoService (every relay): answers ECHO on a circuit it is the last hop of, only when the circuit's link peer is
 *   a configured measurer (a circuit built directly by one of them); anything else is ERR_RELAY_COMMAND, which
 *   destroys the circuit. An echo costs the relay exactly what it carries, so it cannot be used for amplification.
 * - measureRelay (authorities): one measurement of one relay.
 *
 * A measurement is bounded by the measurer's own capacity; the consensus takes the low median of the authorities'
 * measurements (§7.5), so one slow or lying measurer moves no weight.
 */
import { crypto } from '../crypto/index.js';
import { fingerprintOf } from '../crypto/keys.js';
import { RELAY_DATA_LEN } from '../protocol/constants.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { ProtocolError } from '../protocol/errors.js';
import { RelayCommand, type RelayMessage } from '../protocol/relay-cell.js';
import { buildCircuit, type CircuitTable, type ClientCircuit } from '../net/circuit.js';
import type { Link } from '../net/link.js';
import type { CircuitEndpointHandler, CircuitHop, CircuitReactor } from './circuits.js';

/** Cells in flight during a measurement. */
export const MEASURE_WINDOW = 64;

export class EchoService implements CircuitEndpointHandler {
  constructor(
    private readonly reactor: CircuitReactor,
    /** Fingerprints of the measurers (the configured directory authorities). */
    private readonly measurers: () => ReadonlySet<string>,
  ) {}

  deliver(hop: CircuitHop, msg: RelayMessage): boolean {
    if (msg.command !== RelayCommand.ECHO) return false;
    const peer = hop.prev.link.peer?.identity;
    if (!hop.isLast || !peer || !this.measurers().has(fingerprintOf(peer))) {
      throw new ProtocolError('ERR_RELAY_COMMAND', "ECHO from a circuit that is not a measurer's");
    }
    this.reactor.sendBackward(hop, { command: RelayCommand.ECHO, streamId: 0, data: msg.data });
    return true;
  }

  closed(): void {}
}

export interface MeasureOptions {
  durationMs: number;
  window?: number;
  now?: () => number;
  signal?: AbortSignal;
}

/**
 * Measures `target` over `link` (a relay link the measurer opened to it, authenticated as the measurer): bytes per
 * second of verified echoes over `durationMs`. Throws when the circuit cannot be built or dies before any echo.
 */
export async function measureRelay(link: Link, table: CircuitTable, target: Descriptor, o: MeasureOptions): Promise<number> {
  const now = o.now ?? Date.now;
  table.attach(link);
  const circuit: ClientCircuit = await buildCircuit(link, table, [target], { timeoutMs: 20_000 });
  circuit.setPurpose('measure');
  const window = o.window ?? MEASURE_WINDOW;
  const outstanding: Uint8Array[] = [];
  let echoed = 0;
  let started = now();
  let stopped = false;
  return new Promise<number>((resolve, reject) => {
    const finish = (err: Error | null): void => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      offMsg();
      offClose();
      o.signal?.removeEventListener('abort', onAbort);
      const elapsed = Math.max(1, now() - started);
      circuit.close();
      if (err && echoed === 0) reject(err);
      else resolve(Math.round((echoed * 1000) / elapsed));
    };
    const sendOne = (): void => {
      const data = crypto().random(RELAY_DATA_LEN);
      outstanding.push(data);
      if (!circuit.send({ command: RelayCommand.ECHO, streamId: 0, data })) finish(new ProtocolError('ERR_LINK_CLOSED', 'measurement circuit closed'));
    };
    const offMsg = circuit.on('circuit:message', (_hop, m) => {
      if (stopped || m.command !== RelayCommand.ECHO) return;
      const want = outstanding.shift();
      if (!want || !crypto().equal(want, m.data)) return finish(new ProtocolError('ERR_RELAY_COMMAND', 'an echo that was not sent'));
      echoed += m.data.length;
      sendOne();
    });
    const offClose = circuit.once('circuit:close', (err) => finish(err ?? new ProtocolError('ERR_LINK_CLOSED', 'measurement circuit closed')));
    const onAbort = (): void => finish(new ProtocolError('ERR_ABORTED', 'measurement aborted'));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => finish(null), o.durationMs);
    started = now();
    for (let i = 0; i < window; i++) sendOne();
  });
}
