/**
 * Group members over an in-memory pairwise transport (client/messaging/groups.ts with the real crypto, no relays):
 * each member's Groups table hands an envelope straight to the recipient's, in order. `hold` delays what goes to one
 * member; `restart` replaces a member's table by a new one over the same identity and storage, as a restarted
 * messenger would have. The same with relay processes: test/integration/messaging-groups.test.ts.
 */
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { AlliumError } from '../../protocol/errors.js';
import { isGroupEpochEnvelope, isGroupEpochRequest } from '../../protocol/group-inbox.js';
import { decodeGroupEnvelope } from '../../protocol/group-messages.js';
import { Groups, type GroupEvents, type GroupHost, type GroupIncoming, type GroupsOptions } from '../../client/messaging/groups.js';

export interface GroupNode {
  identity: Identity;
  address: string;
  groups: Groups;
  options: GroupsOptions;
  got: GroupIncoming[];
  events: Array<[string, unknown]>;
  errors: AlliumError[];
  /** Every envelope delivered to this node. */
  inbox: Uint8Array[];
  /** Bytes of envelopes handed to this node. */
  bytesIn: number;
}

export interface GroupNetwork {
  nodes: GroupNode[];
  hold: Map<string, Array<() => Promise<void>>>;
  /** What goes to a member fails (ERR_UNREACHABLE) while its predicate holds for the envelope. */
  failing: Map<string, (envelope: Uint8Array) => boolean>;
  /** A new Groups table for `node` (same identity and options, so the same storage); the old one gets nothing more. */
  restart(node: GroupNode): void;
}

export function groupNetwork(n: number, options: (i: number) => GroupsOptions = () => ({})): GroupNetwork {
  const byAddress = new Map<string, GroupNode>();
  const hold = new Map<string, Array<() => Promise<void>>>();
  const failing = new Map<string, (envelope: Uint8Array) => boolean>();
  const nodes: GroupNode[] = [];
  const table = (node: GroupNode): Groups => {
    const host: GroupHost = {
      identity: node.identity,
      sendEnvelope: async (to, envelope) => {
        const target = byAddress.get(to)!;
        if (failing.get(to)?.(envelope)) throw new AlliumError('ERR_UNREACHABLE', 'delivery failed (test)');
        const go = async (): Promise<void> => {
          target.inbox.push(envelope);
          target.bytesIn += envelope.length;
          await target.groups.receive(node.address, envelope);
          // The keys a roster sets off (Groups.receive does not wait for them) are handed over before the roster's
          // send resolves, so that a test's `await` covers the whole cascade. Only for rosters: a sender key sets off
          // nothing that waits, so no two tables wait on each other.
          if (!isGroupEpochEnvelope(envelope) && !isGroupEpochRequest(envelope) && decodeGroupEnvelope(envelope).kind === 'roster')
            await target.groups.settled();
        };
        const held = hold.get(to);
        if (held) held.push(go);
        else await go();
        return { status: 'delivered' };
      },
      emit: <K extends keyof GroupEvents>(event: K, ...args: GroupEvents[K]) => {
        node.events.push([event, args[0]]);
        if (event === 'group:message') node.got.push(args[0] as GroupIncoming);
      },
      error: (e) => node.errors.push(e),
    };
    // No second argument when there are no options: the table's own defaults apply, as a messenger's do.
    return Object.keys(node.options).length ? new Groups(host, node.options) : new Groups(host);
  };
  for (let i = 0; i < n; i++) {
    const identity = createIdentity();
    const address = formatAddress(identity.publicKey);
    const node: GroupNode = {
      identity,
      address,
      options: options(i),
      got: [],
      events: [],
      errors: [],
      inbox: [],
      bytesIn: 0,
      groups: undefined as unknown as Groups,
    };
    node.groups = table(node);
    byAddress.set(address, node);
    nodes.push(node);
  }
  return { nodes, hold, failing, restart: (node) => (node.groups = table(node)) };
}
