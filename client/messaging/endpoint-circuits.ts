/**
 * The circuits an endpoint builds in its endpoint role (specs/path.md §3.2, specs/rendezvous.md §1): to its
 * introduction points, to every rendezvous point an initiator names, to the holders of its descriptor and of its
 * mailbox. Each is a vanguard circuit — its second hop one of the client's vanguards — because anyone who knows the
 * address can make the endpoint build them. The endpoint's circuits as an initiator are ordinary ones.
 */
import type { CircuitSource } from '../client.js';

/** `source` with every circuit built as an endpoint circuit (`vanguards: true`). */
export function endpointCircuits(source: CircuitSource): CircuitSource {
  return {
    get directory() {
      return source.directory;
    },
    newCircuit: (options = {}) => source.newCircuit({ ...options, vanguards: true }),
  };
}
