/**
 * Groups of many members in one process (bench:messaging's group rows): the real group code — Groups tables, sender
 * keys, signed rosters, envelopes, the real crypto, and (with `store`) sealed state saved after every change — over
 * an in-memory pairwise transport that hands each envelope straight to its recipient. It measures the work of the
 * group layer (the sender's and every receiver's, run one after another here, where members would run in parallel on
 * their own machines) and counts what each member is sent; the pairwise sessions and the network are measured by the
 * rows over relay processes. Bytes on the wire per member follow from the envelope size (specs/messaging.md §13.5).
 *
 * Version 2 (`slots`, specs/messaging.md §13.9): the members' group inboxes are mailbox slots in memory, each held by
 * HOLDERS holders that agree, the first item stored in a slot keeping it; each member counts the slot fetches it
 * makes (one per holder) and the item bytes they return, and what it stores.
 */
import { createIdentity, formatAddress, type Identity } from '../../protocol/address.js';
import type { ContentClient } from '../../client/content.js';
import { Groups, type Group, type GroupDelivery, type GroupEvents } from '../../client/messaging/groups.js';
import { toHex } from '../../protocol/bytes.js';
import { RELAY_DATA_LEN } from '../../protocol/constants.js';
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
  /** Version 2: slot fetches made (one per holder), the item bytes they returned, and the item bytes stored (each holder). */
  fetches: number;
  fetchedBytes: number;
  storedBytes: number;
}

/** Holders of each mailbox slot (specs/messaging.md §9.4). */
export const HOLDERS = 3;

/** Mailbox slots in memory (version 2): `client(m)` is member m's stand-in for the content store, counting into m. */
export function memorySlots(): { client: (m: FanoutMember) => ContentClient } {
  const slots = new Map<string, Uint8Array>();
  return {
    client: (m) =>
      ({
        storeAll: (_kind: string, rk: Uint8Array, bytes: Uint8Array) => {
          const k = toHex(rk);
          const have = slots.get(k);
          if (!have) slots.set(k, Uint8Array.from(bytes));
          m.storedBytes += HOLDERS * bytes.length;
          const answer = have ? (toHex(have) === toHex(bytes) ? 'exists' : 'occupied') : 'ok';
          return Promise.resolve(Array.from({ length: HOLDERS }, () => answer));
        },
        fetchAnswers: (_kind: string, rk: Uint8Array) => {
          const have = slots.get(toHex(rk));
          m.fetches += HOLDERS;
          m.fetchedBytes += have ? HOLDERS * have.length : 0;
          return Promise.resolve({ copies: have ? Array.from({ length: HOLDERS }, () => Uint8Array.from(have)) : [], answered: HOLDERS });
        },
        close: () => {},
      }) as unknown as ContentClient,
  };
}

/**
 * Lower bound of the relay-cell data (RELAY_DATA_LEN each) one slot fetch costs a member at one holder: a request
 * cell, and the answer's cells (one for an empty slot), framing not counted.
 */
export function fetchWireBytes(itemBytes: number): number {
  return RELAY_DATA_LEN * (1 + Math.max(1, Math.ceil(itemBytes / RELAY_DATA_LEN)));
}

export interface Fanout {
  readonly members: FanoutMember[];
  /** Envelopes handed between members so far, all members together. */
  envelopes(): number;
  /** One more member on this transport (in no group yet). */
  join(): FanoutMember;
}

/**
 * `n` members, none in a group yet; `store`: each keeps its state sealed in memory, saved after every change;
 * `slots`: version 2 groups deposit and collect there.
 */
export function fanout(n: number, store: boolean, slots?: ReturnType<typeof memorySlots>): Fanout {
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
      fetches: 0,
      fetchedBytes: 0,
      storedBytes: 0,
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
      { ...(store ? { storage: memoryGroupStorage() } : {}), ...(slots ? { inbox: { content: slots.client(m) } } : {}) },
    );
    byAddress.set(m.address, m);
    members.push(m);
    return m;
  };
  for (let i = 0; i < n; i++) join();
  return { members, envelopes: () => total, join };
}

/**
 * Member 0 makes a group of every member; resolves once every member holds every other's sender key (version 1), or
 * the roster and the epoch (version 2, `delivery` 'inbox').
 */
export async function formGroup(f: Fanout, delivery: GroupDelivery = 'pairwise'): Promise<Group> {
  const [admin, ...rest] = f.members;
  return admin!.groups.create(
    'bench',
    rest.map((m) => m.address),
    { delivery },
  );
}

/** Bytes one member is sent on the wire for an envelope of `envelopeBytes`: one padded ratchet message (§6, §13.5). */
export function wireBytesPerMember(envelopeBytes: number): number {
  return paddedLength(MESSAGE_FRAME_HEADER_LEN + envelopeBytes, RATCHET_OVERHEAD) + RATCHET_OVERHEAD;
}
