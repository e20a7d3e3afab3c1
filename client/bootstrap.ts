/**
 * The client's entry lines (parsed by protocol/bootstrap-line.ts, shared with the relay), and the error of a client
 * that reaches no entry at all.
 */
import { AlliumError } from '../protocol/errors.js';
import { authoritiesFor, parseBootstrapLine, parseBridgeLine, type BootstrapLine, type BridgeLine } from '../protocol/bootstrap-line.js';

export { authoritiesFor, parseBridgeLine, type BootstrapLine, type BridgeLine };

/** A bootstrap line (protocol/bootstrap-line.ts). */
export const parseBootstrap = parseBootstrapLine;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * No entry answered: no bootstrap relay, cached relay, bridge or earlier relay address. Code ERR_UNREACHABLE;
 * `relays` and `bridges` count the distinct addresses tried, `cause` is the last failure.
 */
export class NoEntryError extends AlliumError {
  constructor(
    readonly relays: number,
    readonly bridges: number,
    cause?: unknown,
  ) {
    super('ERR_UNREACHABLE', `no entry reachable: tried ${plural(relays, 'relay')} and ${plural(bridges, 'bridge')}`, cause === undefined ? {} : { cause });
    this.name = 'NoEntryError';
  }
}
