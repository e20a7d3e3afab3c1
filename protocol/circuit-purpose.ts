/**
 * What a client circuit may receive (specs/relay-crypto.md §6.2): each circuit has a purpose, and the last hop may
 * send it, unasked, only the commands its purpose lists. Replies the client waits for are matched separately (by
 * the circuit, against the hop the request went to); DROP and TRUNCATED are taken from any hop. Anything else is a
 * protocol violation that destroys the circuit, as Arti restricts parsing per circuit state.
 */
import { RelayCommand } from './relay-cell.js';

export type CircuitPurpose =
  /** Exit streams, content requests, replication; an initiator's rendezvous circuit once the endpoint is its last hop. */
  | 'general'
  /** Introduction and rendezvous circuits while they wait for their reply: nothing unasked. */
  | 'setup'
  /** An endpoint's established introduction circuit. */
  | 'intro'
  /** An endpoint's rendezvous circuit, whose (virtual) last hop is the initiator. */
  | 'service'
  /** A measurer's one-hop circuit (specs/measurement.md): echoes, and nothing else. */
  | 'measure';

/** Replies on streams the client opened (specs/streams.md §5). */
const STREAM_REPLIES = [RelayCommand.CONNECTED, RelayCommand.DATA, RelayCommand.END, RelayCommand.SENDME, RelayCommand.STORED, RelayCommand.FETCHED];

const UNASKED: Record<CircuitPurpose, ReadonlySet<number>> = {
  general: new Set(STREAM_REPLIES),
  setup: new Set(),
  intro: new Set([RelayCommand.INTRODUCE2]),
  service: new Set([...STREAM_REPLIES, RelayCommand.BEGIN]),
  measure: new Set([RelayCommand.ECHO]),
};

/** True when the last hop of a circuit of this purpose may send `command` without being asked. */
export function purposeAccepts(purpose: CircuitPurpose, command: RelayCommand): boolean {
  return UNASKED[purpose].has(command);
}
