/**
 * Link-level CONTROL messages (specs/link.md §5, specs/directory.md §5): CBOR maps with a text "t" naming the
 * message, carried in CONTROL cells (fragmented, protocol/cell.ts) on circuit id 0.
 */
import { z } from 'zod';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { MAX_DESCRIPTOR_BYTES } from './descriptor.js';
import { CONSENSUS_PAGE_ENTRIES, MAX_CONSENSUS_HEAD_BYTES, zEntry } from './consensus.js';

/** Largest reassembled CONTROL message (specs/limits.md). */
export const MAX_CONTROL_MESSAGE = 256 * 1024;
/** Most descriptors in one push or directory page. */
export const MAX_DESCRIPTORS_PER_MESSAGE = 100;
/** A summary of 5,000 (identity, published) pairs stays under MAX_CONTROL_MESSAGE (specs/directory.md §5). */
export const MAX_SUMMARY_ENTRIES = 5_000;
/** Most (identity, published) pairs in one `gossip-announce` (44 bytes each: about 44 KB). */
export const MAX_ANNOUNCE_ENTRIES = 1_000;
/** Bytes of a signed vote in one `vote-part` (a vote of 100,000 relays takes 33 parts). */
export const VOTE_PART_BYTES = 200 * 1024;

const descList = z.array(zBytes(undefined, MAX_DESCRIPTOR_BYTES)).max(MAX_DESCRIPTORS_PER_MESSAGE);

/** Unsigned lexicographic order of two byte strings (the order of their lowercase hex). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** True when the pairs' identities are in strictly ascending order and all above `after`. */
function ascending(e: readonly (readonly [Uint8Array, number])[], after: Uint8Array | null = null): boolean {
  let prev = after;
  for (const [id] of e) {
    if (prev && compareBytes(prev, id) >= 0) return false;
    prev = id;
  }
  return true;
}

/** True when the identities are in strictly ascending order (so none is repeated). */
function ascendingIds(ids: readonly Uint8Array[]): boolean {
  for (let i = 1; i < ids.length; i++) if (compareBytes(ids[i - 1]!, ids[i]!) >= 0) return false;
  return true;
}

const pairs = (max: number) => z.array(z.tuple([zBytes(32), zUint()])).max(max);

export const controlSchema = z.discriminatedUnion('t', [
  /** Anti-entropy opener: the sender's directory digest and size. */
  z.strictObject({ t: z.literal('gossip-digest'), d: zBytes(32), n: zUint() }),
  /**
   * The reply when digests differ: the sender's (identity, published) pairs with identities above `after` (all of
   * them when null), in ascending order. `more`: the list was cut after its last entry, so it says nothing of the
   * identities above that one.
   */
  z
    .strictObject({ t: z.literal('gossip-summary'), e: pairs(MAX_SUMMARY_ENTRIES), after: zBytes(32).nullable(), more: z.boolean() })
    .refine((m) => ascending(m.e, m.after), { message: 'summary entries out of order', path: ['e'] })
    .refine((m) => !m.more || m.e.length > 0, { message: 'an empty summary cannot be cut', path: ['more'] }),
  /** Identities whose descriptors the sender wants, in strictly ascending order (each at most once). */
  z
    .strictObject({ t: z.literal('gossip-want'), ids: z.array(zBytes(32)).max(MAX_SUMMARY_ENTRIES) })
    .refine((m) => ascendingIds(m.ids), { message: 'wanted identities out of order or repeated', path: ['ids'] }),
  /** Signed descriptors. */
  z.strictObject({ t: z.literal('gossip-push'), ds: descList }),
  /** (identity, published) of descriptors the sender has just added, in ascending order: ask with gossip-want. */
  z
    .strictObject({ t: z.literal('gossip-announce'), e: pairs(MAX_ANNOUNCE_ENTRIES).min(1) })
    .refine((m) => ascending(m.e), { message: 'announced entries out of order', path: ['e'] }),
  /** A client asks for descriptors that arrived at or after `since` (responder time), page after `after`. */
  z.strictObject({ t: z.literal('dir-get'), since: zUint(), after: zBytes(32).nullable() }),
  /** A directory page. `at` is the responder's time; `more` says another page follows after the last identity. */
  z.strictObject({ t: z.literal('dir'), at: zUint(), ds: descList, more: z.boolean() }),
  /**
   * A client asks for the descriptors of these identities (specs/directory.md §6.1): 1 to 100, strictly ascending,
   * so an answer holds at most one descriptor per identity asked.
   */
  z
    .strictObject({ t: z.literal('dir-want'), ids: z.array(zBytes(32)).min(1).max(MAX_DESCRIPTORS_PER_MESSAGE) })
    .refine((m) => ascendingIds(m.ids), { message: 'wanted identities out of order or repeated', path: ['ids'] }),
  /** The answer to dir-want: the unexpired descriptors the sender holds for the identities asked, ascending. */
  z.strictObject({ t: z.literal('dir-found'), ds: descList }),
  /** Asks for the newest signed consensus head the receiver holds (specs/directory.md §7.3). */
  z.strictObject({ t: z.literal('consensus-head-get') }),
  /** A signed consensus head (null: none held); relays also push it to relay neighbours when they adopt it. */
  z.strictObject({ t: z.literal('consensus-head'), c: zBytes(undefined, MAX_CONSENSUS_HEAD_BYTES + 1024).nullable() }),
  /** Asks for the entries of consensus `d` from index `from`. */
  z.strictObject({ t: z.literal('consensus-entries-get'), d: zBytes(32), from: zUint() }),
  /** A page of entries of consensus `d` from index `from`; `ok` false: the sender does not hold `d`. */
  z.strictObject({
    t: z.literal('consensus-entries'),
    d: zBytes(32),
    from: zUint(),
    e: z.array(zEntry).max(CONSENSUS_PAGE_ENTRIES),
    more: z.boolean(),
    ok: z.boolean(),
  }),
  /** Asks for the changes from consensus `from` to consensus `to`, identities above `after`. */
  z.strictObject({ t: z.literal('consensus-diff-get'), from: zBytes(32), to: zBytes(32), after: zBytes(32).nullable() }),
  /** A page of changes (ascending identity; null: the identity leaves); `ok` false: no diff between these two. */
  z.strictObject({
    t: z.literal('consensus-diff'),
    from: zBytes(32),
    to: zBytes(32),
    ch: z.array(z.tuple([zBytes(32), zEntry.nullable()])).max(CONSENSUS_PAGE_ENTRIES),
    more: z.boolean(),
    ok: z.boolean(),
  }),
  /** Authority to authority: part `i` of `n` of its signed vote for the consensus valid after `va` (§7.1). */
  z.strictObject({ t: z.literal('vote-part'), va: zUint(), i: zUint(63), n: zUint(64).min(1), b: zBytes(undefined, VOTE_PART_BYTES) }),
  /** Authority to authority: its signature over the head of digest `d` it computed for `va` (§7.2). */
  z.strictObject({ t: z.literal('consensus-sig'), va: zUint(), d: zBytes(32), s: zBytes(64) }),
  /** Asks a directory source to sign what it serves (§6.5). */
  z.strictObject({ t: z.literal('view-get') }),
  /** A source's signed statement of what it serves: directory digest `d` of `n` descriptors, newest consensus `c`. */
  z.strictObject({ t: z.literal('view'), at: zUint(), d: zBytes(32), n: zUint(), c: zBytes(32).nullable(), s: zBytes(64) }),
  /** A bridge's client asks for the bridge's own descriptor (specs/directory.md §9). */
  z.strictObject({ t: z.literal('bridge-get') }),
  /** A bridge's descriptor, signed under the bridge context. */
  z.strictObject({ t: z.literal('bridge'), d: zBytes(undefined, MAX_DESCRIPTOR_BYTES) }),
  /** A client asks its peer to pad the link towards it (specs/link.md §4.4): bounds in ms, or 0, 0 for none. */
  z.strictObject({ t: z.literal('padding'), lo: zUint(), hi: zUint() }),
]);
export type ControlMessage = z.infer<typeof controlSchema>;

export function encodeControl(m: ControlMessage): Uint8Array {
  return encodeCbor(m);
}

export function decodeControl(bytes: Uint8Array): ControlMessage {
  return decodeMessage(controlSchema, bytes, MAX_CONTROL_MESSAGE, 'control message');
}
