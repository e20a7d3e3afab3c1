/**
 * Link-level CONTROL messages (specs/link.md §5, specs/directory.md §5): CBOR maps with a text "t" naming the
 * message, carried in CONTROL cells (fragmented, protocol/cell.ts) on circuit id 0.
 */
import { z } from 'zod';
import { decodeCbor, encodeCbor, validate, zBytes, zUint } from './cbor.js';
import { MAX_DESCRIPTOR_BYTES } from './descriptor.js';
import { CONSENSUS_PAGE_ENTRIES, MAX_CONSENSUS_HEAD_BYTES, MD_LEN, zEntry } from './consensus.js';
import { ALL_FLAGS } from './flags.js';

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

/*
 * The fast check. Each relay of an idle local network takes about ten CONTROL messages a second (consensus heads,
 * announces, diffs, votes), and running the zod schema above on them cost more than decoding their CBOR. So each
 * message type has here a plain predicate, found by its "t" in a Map (never an object, so no "t" reaches a
 * prototype), that says whether controlSchema accepts the value; an accepted value is returned as decoded (the schema
 * would return a copy of it). It is a shortcut only: a value it does not accept goes to the schema, which refuses it
 * with the same ERR_SCHEMA error as before (or, should the two ever disagree that way, accepts it). A change to the
 * schema needs the same change here: test/property/control-check.test.ts checks that the predicates accept exactly
 * what controlSchema accepts, and that the Map has one predicate per message type of the schema.
 */
type Check = (v: unknown) => boolean;

const isBytes =
  (len?: number, max?: number): Check =>
  (v) =>
    v instanceof Uint8Array && (len === undefined || v.length === len) && (max === undefined || v.length <= max);
/** zUint: a safe integer in 0..max (and at least min). */
const isUint =
  (max = Number.MAX_SAFE_INTEGER, min = 0): Check =>
  (v) =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const isBool: Check = (v) => typeof v === 'boolean';
const orNull =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);
const isArray =
  (item: Check, max: number, min = 0): Check =>
  (v) => {
    if (!Array.isArray(v) || v.length < min || v.length > max) return false;
    for (const x of v) if (!item(x)) return false;
    return true;
  };
const isTuple =
  (items: readonly Check[]): Check =>
  (v) => {
    if (!Array.isArray(v) || v.length !== items.length) return false;
    for (let i = 0; i < items.length; i++) if (!items[i]!(v[i])) return false;
    return true;
  };
const id32 = isBytes(32);
const uint = isUint();
const isPair = isTuple([id32, uint]);
const isEntryFields = isTuple([id32, isBytes(MD_LEN), isUint(ALL_FLAGS), isUint(2 ** 40)]);
/** zEntry, with its refinement. */
const isEntry: Check = (v) => isEntryFields(v) && ((v as number[])[2]! & ~ALL_FLAGS) === 0;
const isDescList = isArray(isBytes(undefined, MAX_DESCRIPTOR_BYTES), MAX_DESCRIPTORS_PER_MESSAGE);

/** A strict object: exactly these keys ("t" among them, checked by the lookup), then the refinement on the whole. */
function isObject(fields: Record<string, Check>, refine?: (m: never) => boolean): Check {
  const names = Object.keys(fields);
  const checks = names.map((k) => fields[k]!);
  const n = names.length + 1;
  return (v) => {
    const o = v as Record<string, unknown>;
    let keys = 0;
    for (const k in o) {
      if (k !== 't' && !Object.hasOwn(fields, k)) return false;
      keys++;
    }
    if (keys !== n) return false;
    for (let i = 0; i < names.length; i++) if (!checks[i]!(o[names[i]!])) return false;
    return refine === undefined || refine(o as never);
  };
}

type Fields<T> = T extends { t: infer K } ? K : never;
const CHECKS = new Map<Fields<ControlMessage>, Check>([
  ['gossip-digest', isObject({ d: id32, n: uint })],
  [
    'gossip-summary',
    isObject(
      { e: isArray(isPair, MAX_SUMMARY_ENTRIES), after: orNull(id32), more: isBool },
      (m: Extract<ControlMessage, { t: 'gossip-summary' }>) => ascending(m.e, m.after) && (!m.more || m.e.length > 0),
    ),
  ],
  ['gossip-want', isObject({ ids: isArray(id32, MAX_SUMMARY_ENTRIES) }, (m: { ids: Uint8Array[] }) => ascendingIds(m.ids))],
  ['gossip-push', isObject({ ds: isDescList })],
  ['gossip-announce', isObject({ e: isArray(isPair, MAX_ANNOUNCE_ENTRIES, 1) }, (m: { e: [Uint8Array, number][] }) => ascending(m.e))],
  ['dir-get', isObject({ since: uint, after: orNull(id32) })],
  ['dir', isObject({ at: uint, ds: isDescList, more: isBool })],
  ['dir-want', isObject({ ids: isArray(id32, MAX_DESCRIPTORS_PER_MESSAGE, 1) }, (m: { ids: Uint8Array[] }) => ascendingIds(m.ids))],
  ['dir-found', isObject({ ds: isDescList })],
  ['consensus-head-get', isObject({})],
  ['consensus-head', isObject({ c: orNull(isBytes(undefined, MAX_CONSENSUS_HEAD_BYTES + 1024)) })],
  ['consensus-entries-get', isObject({ d: id32, from: uint })],
  ['consensus-entries', isObject({ d: id32, from: uint, e: isArray(isEntry, CONSENSUS_PAGE_ENTRIES), more: isBool, ok: isBool })],
  ['consensus-diff-get', isObject({ from: id32, to: id32, after: orNull(id32) })],
  ['consensus-diff', isObject({ from: id32, to: id32, ch: isArray(isTuple([id32, orNull(isEntry)]), CONSENSUS_PAGE_ENTRIES), more: isBool, ok: isBool })],
  ['vote-part', isObject({ va: uint, i: isUint(63), n: isUint(64, 1), b: isBytes(undefined, VOTE_PART_BYTES) })],
  ['consensus-sig', isObject({ va: uint, d: id32, s: isBytes(64) })],
  ['view-get', isObject({})],
  ['view', isObject({ at: uint, d: id32, n: uint, c: orNull(id32), s: isBytes(64) })],
  ['bridge-get', isObject({})],
  ['bridge', isObject({ d: isBytes(undefined, MAX_DESCRIPTOR_BYTES) })],
  ['padding', isObject({ lo: uint, hi: uint })],
]);

/** True when the fast check accepts `v` (then controlSchema does too). Exported for the tests. */
export function controlFastCheck(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const t = (v as { t?: unknown }).t;
  if (typeof t !== 'string') return false;
  const check = CHECKS.get(t as Fields<ControlMessage>);
  return check !== undefined && check(v);
}

/** The message types the fast check knows (for the tests: the same as the schema's). */
export const CONTROL_FAST_TYPES: readonly string[] = [...CHECKS.keys()];

/** Strict CBOR decoding, then the check (specs/link.md §5). Throws ERR_SCHEMA for a value the schema refuses. */
export function decodeControl(bytes: Uint8Array): ControlMessage {
  const v = decodeCbor(bytes, MAX_CONTROL_MESSAGE);
  if (controlFastCheck(v)) return v as ControlMessage;
  return validate(controlSchema, v, 'control message');
}
