/**
 * Group state at rest (specs/messaging.md §13.7): one sealed record per group — the roster, our sender key, every
 * other member's chain with its skipped keys, and the messages held for a key — and one for the envelopes of groups
 * not joined yet, kept through a GroupStorage the application gives (a directory in Node: group-file.ts; anything with
 * load/save in a browser). Without one, group state lives as long as the messenger.
 *
 *   K_store = K(identity seed, "allium-v1:group-store")                                         K as §5.1
 *   record  = u8(1) | nonce (24) | XAEAD(K_store, nonce, CBOR(state), ad = "allium-v1 group-store" | name)
 *
 * The key comes from the identity's secret, which the application keeps anyway (a messenger is its identity): a
 * copy of the storage alone reads nothing, and a record moved under another name, or changed, does not open
 * (ERR_MESSAGE_AUTH). A record that does not open or decode is refused, never replaced: that would drop a group
 * silently. The nonce is random (the CSPRNG, through the facade); XChaCha's 24 bytes make a collision negligible.
 */
import { z } from 'zod';
import { crypto } from '../../crypto/index.js';
import type { Identity } from '../../protocol/address.js';
import { concatBytes, utf8 } from '../../protocol/bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from '../../protocol/cbor.js';
import { CryptoError, ProtocolError } from '../../protocol/errors.js';
import {
  decodeGroupEnvelope,
  encodeGroupEnvelope,
  MAX_GROUP_ENVELOPE_BYTES,
  MAX_GROUP_MEMBERS,
  type GroupMessage,
  type Roster,
} from '../../protocol/group-messages.js';
import { MAX_GROUP_HELD_EPOCHS } from '../../protocol/group-inbox.js';
import type { SenderChainState } from '../../protocol/sender-key.js';
import type { AbortOptions } from '../../net/abort.js';

/** Where group state is kept: named records of bytes, each replaced whole. */
export interface GroupStorage {
  /** Every stored record as [name, bytes] (names: lowercase letters, digits and '-'). */
  load(options?: AbortOptions): Promise<Array<[string, Uint8Array]>>;
  /** Replaces the record `name`, or deletes it when `bytes` is null. */
  save(name: string, bytes: Uint8Array | null, options?: AbortOptions): Promise<void>;
}

/** Group state that lives as long as the storage object (tests; a page that keeps it across messengers). */
export function memoryGroupStorage(): GroupStorage {
  const held = new Map<string, Uint8Array>();
  return {
    load: () => Promise.resolve([...held].map(([k, v]) => [k, Uint8Array.from(v)] as [string, Uint8Array])),
    save: (name, bytes) => {
      if (bytes) held.set(name, Uint8Array.from(bytes));
      else held.delete(name);
      return Promise.resolve();
    },
  };
}

/** Largest record read back: a roster of MAX_GROUP_MEMBERS, their chains, skipped keys and held messages. */
export const MAX_GROUP_RECORD_BYTES = 32 * 1024 * 1024;
/** The record of envelopes for groups not joined yet. */
export const ORPHANS_RECORD = 'orphans';
const VERSION = 1;
const LABEL = utf8('allium-v1:group-store');
const AD = utf8('allium-v1 group-store');
const XNONCE = 24;

/** What a group's record holds (Group.state() / Group.restore()). */
export interface GroupRecord {
  readonly roster: Roster;
  /** The roster's envelope when the caller has it encoded already. */
  readonly rosterBytes?: Uint8Array;
  readonly active: boolean;
  /** Who signed the roster that invited us (absent for a group we created). */
  readonly inviter?: Uint8Array;
  readonly own: { readonly e: number; readonly n: number; readonly pn: number; readonly ck: Uint8Array; readonly signingSeed: Uint8Array };
  readonly chains: ReadonlyArray<{ readonly member: Uint8Array; readonly chain: SenderChainState }>;
  readonly pending: ReadonlyArray<{ readonly member: Uint8Array; readonly message: GroupMessage }>;
  /** A version 2 group's inbox (specs/messaging.md §13.9): the epochs held; absent for a version 1 group. */
  readonly inbox?: GroupInboxState;
  /**
   * Version 2, an admin's: epochs not yet handed over (a member's delivery failed), retried (§13.9). `epoch` is the
   * epoch envelope (it holds `es`): wiped once delivered.
   */
  readonly handovers?: ReadonlyArray<{ readonly member: Uint8Array; readonly roster: Uint8Array; readonly epoch: Uint8Array; readonly newcomer: boolean }>;
}

/** What a restart needs of a group inbox (specs/messaging.md §13.7): per epoch held, its oldest unread day's secret. */
export interface GroupInboxState {
  /** The last epoch taken (held or ended). */
  readonly q: number;
  /** The roster revision of the last epoch taken (epochs are ordered by (r, q), §13.9); −1 before the first. */
  readonly r: number;
  readonly epochs: ReadonlyArray<{
    readonly q: number;
    readonly r: number;
    readonly d: number;
    /** The oldest day not finished, and its secret (es_day). */
    readonly day: number;
    readonly secret: Uint8Array;
    /** [day, first slot not yet read]. */
    readonly frontier: ReadonlyArray<readonly [number, number]>;
  }>;
}

/** An envelope held for a group we have not joined: who sent it, and its bytes. */
export interface OrphanRecord {
  readonly from: Uint8Array;
  readonly bytes: Uint8Array;
  /** When it came (ms since 1970; absent in records written before it was kept). */
  readonly at?: number;
}

const u32 = zUint(0xffffffff);
const chainSchema = z.strictObject({
  a: zBytes(32),
  e: u32,
  n: u32,
  ck: zBytes(32),
  sp: zBytes(32),
  sk: z.array(z.tuple([u32, u32, zBytes(32), zBytes(32)])),
});
const recordSchema = z.strictObject({
  v: z.literal(VERSION),
  roster: zBytes(undefined, MAX_GROUP_ENVELOPE_BYTES),
  active: z.boolean(),
  inviter: zBytes(32).optional(),
  own: z.strictObject({ e: u32, n: u32, pn: u32, ck: zBytes(32), ss: zBytes(32) }),
  chains: z.array(chainSchema).max(MAX_GROUP_MEMBERS),
  pending: z.array(z.strictObject({ a: zBytes(32), m: zBytes(undefined, MAX_GROUP_ENVELOPE_BYTES) })),
  ib: z
    .strictObject({
      // The epoch after the last taken: up to 2^32 (the last taken may be 0xffffffff).
      n: zUint(2 ** 32),
      r: u32.optional(),
      h: z.array(z.strictObject({ q: u32, r: u32, d: u32, x: u32, s: zBytes(32), f: z.array(z.tuple([u32, zUint(1024)])).max(16) })).max(MAX_GROUP_HELD_EPOCHS),
    })
    .optional(),
  ho: z
    .array(
      z.strictObject({
        a: zBytes(32),
        r: zBytes(undefined, MAX_GROUP_ENVELOPE_BYTES),
        e: zBytes(undefined, MAX_GROUP_ENVELOPE_BYTES),
        n: z.boolean(),
      }),
    )
    .max(MAX_GROUP_MEMBERS)
    .optional(),
});
const orphansSchema = z.strictObject({
  v: z.literal(VERSION),
  o: z.array(z.strictObject({ a: zBytes(32), b: zBytes(undefined, MAX_GROUP_ENVELOPE_BYTES), t: zUint().optional() })),
});

/** The key records are sealed under (derived from the identity's secret seed). */
export function groupStoreKey(identity: Identity): Uint8Array {
  return crypto().hash(32, LABEL, identity.secretKey.subarray(0, 32));
}

function seal(key: Uint8Array, name: string, plain: Uint8Array): Uint8Array {
  const nonce = crypto().random(XNONCE);
  const sealed = concatBytes(Uint8Array.of(VERSION), nonce, crypto().xaeadEncrypt(plain, concatBytes(AD, utf8(name)), nonce, key));
  crypto().wipe(plain);
  return sealed;
}

/** Throws ERR_MESSAGE_AUTH for a record that does not open under `key` and `name`, ERR_SCHEMA for another version. */
function open(key: Uint8Array, name: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length < 1 + XNONCE || bytes[0] !== VERSION) throw new ProtocolError('ERR_SCHEMA', `group store ${name}: not a record of version ${VERSION}`);
  const plain = crypto().xaeadDecrypt(bytes.subarray(1 + XNONCE), concatBytes(AD, utf8(name)), bytes.subarray(1, 1 + XNONCE), key);
  if (!plain) throw new CryptoError('ERR_MESSAGE_AUTH', `group store ${name}: the record does not open under this identity`);
  return plain;
}

export function sealGroupRecord(key: Uint8Array, name: string, r: GroupRecord): Uint8Array {
  const value = {
    v: VERSION,
    roster: r.rosterBytes ?? encodeGroupEnvelope(r.roster),
    active: r.active,
    ...(r.inviter ? { inviter: r.inviter } : {}),
    own: { e: r.own.e, n: r.own.n, pn: r.own.pn, ck: r.own.ck, ss: r.own.signingSeed },
    chains: r.chains.map((c) => ({
      a: c.member,
      e: c.chain.e,
      n: c.chain.n,
      ck: c.chain.ck,
      sp: c.chain.sp,
      sk: c.chain.skipped.map((s) => [s.e, s.n, s.mk, s.sp]),
    })),
    pending: r.pending.map((p) => ({ a: p.member, m: encodeGroupEnvelope(p.message) })),
    ...(r.inbox
      ? {
          ib: {
            n: r.inbox.q + 1,
            ...(r.inbox.r >= 0 ? { r: r.inbox.r } : {}),
            h: r.inbox.epochs.map((h) => ({ q: h.q, r: h.r, d: h.d, x: h.day, s: h.secret, f: h.frontier.map(([d, i]) => [d, i]) })),
          },
        }
      : {}),
    ...(r.handovers?.length ? { ho: r.handovers.map((h) => ({ a: h.member, r: h.roster, e: h.epoch, n: h.newcomer })) } : {}),
  };
  return seal(key, name, encodeCbor(value));
}

/**
 * A group's record as sealGroupRecord() wrote it. Throws ERR_MESSAGE_AUTH (another identity's, moved or changed),
 * ERR_CBOR_*, ERR_SCHEMA (not a record, or a roster or held message that is not one).
 */
export function openGroupRecord(key: Uint8Array, name: string, bytes: Uint8Array): GroupRecord {
  const d = decodeMessage(recordSchema, open(key, name, bytes), MAX_GROUP_RECORD_BYTES, 'group record');
  const roster = decodeGroupEnvelope(d.roster);
  if (roster.kind !== 'roster') throw new ProtocolError('ERR_SCHEMA', 'group record: the roster is not one');
  const pending = d.pending.map((p) => {
    const message = decodeGroupEnvelope(p.m);
    if (message.kind !== 'message') throw new ProtocolError('ERR_SCHEMA', 'group record: a held message is not one');
    return { member: p.a, message };
  });
  return {
    roster,
    active: d.active,
    ...(d.inviter ? { inviter: d.inviter } : {}),
    own: { e: d.own.e, n: d.own.n, pn: d.own.pn, ck: d.own.ck, signingSeed: d.own.ss },
    chains: d.chains.map((c) => ({
      member: c.a,
      chain: { e: c.e, n: c.n, ck: c.ck, sp: c.sp, skipped: c.sk.map(([e, n, mk, sp]) => ({ e, n, mk, sp })) },
    })),
    pending,
    ...(d.ib
      ? {
          inbox: {
            q: d.ib.n - 1,
            // Records written before "r" was kept: the highest revision of the epochs held.
            r: d.ib.r ?? Math.max(-1, ...d.ib.h.map((h) => h.r)),
            epochs: d.ib.h.map((h) => ({ q: h.q, r: h.r, d: h.d, day: h.x, secret: h.s, frontier: h.f.map(([x, i]) => [x, i] as const) })),
          },
        }
      : {}),
    ...(d.ho ? { handovers: d.ho.map((h) => ({ member: h.a, roster: h.r, epoch: h.e, newcomer: h.n })) } : {}),
  };
}

export function sealOrphans(key: Uint8Array, orphans: readonly OrphanRecord[]): Uint8Array {
  return seal(key, ORPHANS_RECORD, encodeCbor({ v: VERSION, o: orphans.map((o) => ({ a: o.from, b: o.bytes, ...(o.at !== undefined ? { t: o.at } : {}) })) }));
}

export function openOrphans(key: Uint8Array, bytes: Uint8Array): OrphanRecord[] {
  const d = decodeMessage(orphansSchema, open(key, ORPHANS_RECORD, bytes), MAX_GROUP_RECORD_BYTES, 'group orphans');
  return d.o.map((o) => ({ from: o.a, bytes: o.b, ...(o.t !== undefined ? { at: o.t } : {}) }));
}

/** Wipes the secrets of a record (our chain and signing seed, the chain keys and skipped keys) once used. */
export function wipeGroupRecord(r: GroupRecord): void {
  crypto().wipe(
    r.own.ck,
    r.own.signingSeed,
    ...r.chains.flatMap((c) => [c.chain.ck, ...c.chain.skipped.map((s) => s.mk)]),
    ...(r.inbox?.epochs.map((h) => h.secret) ?? []),
    ...(r.handovers?.map((h) => h.epoch) ?? []),
  );
}
