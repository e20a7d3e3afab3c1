/**
 * Groups of many members in one process (bench:messaging's group rows): the real group code — Groups tables, sender
 * keys, signed rosters, envelopes, the real crypto, and (with `store`) sealed state saved after every change — over
 * an in-memory pairwise transport that hands each envelope straight to its recipient. It measures the work of the
 * group layer (the sender's and every receiver's, run one after another here, where members would run in parallel on
 * their own machines) and counts what each member is sent; the pairwise sessions and the network are measured by the
 * rows over relay processes. Bytes on the wire per member follow from the envelope size (specs/messaging.md §13.5).
 */
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import { Groups, type Group, type GroupEvents } from '../../client/messaging/groups.js';
import { memoryGroupStorage } from '../../client/messaging/group-store.js';
import { paddedLength } from '../../protocol/padding.js';
import { RATCHET_OVERHEAD } from '../../protocol/ratchet.js';
import { MESSAGE_FRAME_HEADER_LEN } from '../../protocol/message-frames.js';

export interface FanoutMember {
  readonly identity: Identity;
  readonly address: string;
  groups: Groups;
  /** Group messages emitted here. */
  received: number;
  /** Envelopes and envelope bytes handed to this member. */
  envelopesIn: number;
  bytesIn: number;
}

export interface Fanout {
  readonly members: FanoutMember[];
  /** Envelopes handed between members so far, all members together. */
  envelopes(): number;
  /** One more member on this transport (in no group yet). */
  join(): FanoutMember;
}

/** `n` members, none in a group yet; `store`: each keeps its state sealed in memory, saved after every change. */
export function fanout(n: number, store: boolean): Fanout {
  const byAddress = new Map<string, FanoutMember>();
  const members: FanoutMember[] = [];
  let total = 0;
  const join = (): FanoutMember => {
    const identity = createIdentity();
    const m: FanoutMember = {
      identity,
      address: formatAddress(identity.publicKey),
      groups: undefined as unknown as Groups,
      received: 0,
      envelopesIn: 0,
      bytesIn: 0,
    };
    m.groups = new Groups(
      {
        identity,
        sendEnvelope: async (to, envelope) => {
          const t = byAddress.get(to)!;
          t.envelopesIn++;
          t.bytesIn += envelope.length;
          total++;
          await t.groups.receive(m.address, envelope);
          return { status: 'delivered' };
        },
        emit: <K extends keyof GroupEvents>(event: K, ..._args: GroupEvents[K]) => {
          if (event === 'group:message') m.received++;
        },
        error: (e) => {
          throw e;
        },
      },
      store ? { storage: memoryGroupStorage() } : {},
    );
    byAddress.set(m.address, m);
    members.push(m);
    return m;
  };
  for (let i = 0; i < n; i++) join();
  return { members, envelopes: () => total, join };
}

/** Member 0 makes a group of every member; resolves once every member holds every other's sender key. */
export async function formGroup(f: Fanout): Promise<Group> {
  const [admin, ...rest] = f.members;
  return admin!.groups.create(
    'bench',
    rest.map((m) => m.address),
  );
}

/** Bytes one member is sent on the wire for an envelope of `envelopeBytes`: one padded ratchet message (§6, §13.5). */
export function wireBytesPerMember(envelopeBytes: number): number {
  return paddedLength(MESSAGE_FRAME_HEADER_LEN + envelopeBytes, RATCHET_OVERHEAD) + RATCHET_OVERHEAD;
}
