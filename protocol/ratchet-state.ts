/**
 * Double-ratchet session state and its storage encoding (specs/messaging.md §7), so that apps can persist sessions.
 *
 *   state = CBOR { "v": 1, "rk": 32, "dhs": { "pk": 32, "sk": 32 }, "dhr": 32 | null, "cks": 32 | null,
 *                  "ckr": 32 | null, "ns", "nr", "pn", "cs", "cr", "sb", "rb": uint, "ad": bytes (≤ 128),
 *                  "skipped": [{ "dh": 32, "n": uint, "mk": 32, "seq": uint }] (≤ MAX_SKIP) }
 *
 * The encoding holds every secret of the session: callers store it encrypted (for example under a key from the
 * user's passphrase) and delete old copies, or forward secrecy is lost. Decoding is strict and checks that the
 * state is consistent (the ratchet key pair matches, no key twice), so a corrupted file fails to load rather than
 * producing a session that misbehaves later.
 */
import { z } from 'zod';
import { crypto, type KeyPair } from '../crypto/index.js';
import { toHex } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { ProtocolError } from './errors.js';

/** Most message keys one step may skip, and most skipped keys a session holds (the oldest are dropped beyond). */
export const MAX_SKIP = 1000;
export const MAX_SESSION_AD_BYTES = 128;
export const MAX_RATCHET_STATE_BYTES = 128 * 1024;

/** A message key kept for a message that has not arrived yet. */
export interface SkippedKey {
  readonly dh: Uint8Array;
  readonly n: number;
  readonly mk: Uint8Array;
  /** The sender's sequence number of that message (see RatchetSession.decrypt). */
  readonly seq: number;
}

/** The Signal specification's state variables, plus chain counts and sequence bases. */
export interface RatchetState {
  rk: Uint8Array;
  dhs: KeyPair;
  dhr: Uint8Array | null;
  cks: Uint8Array | null;
  ckr: Uint8Array | null;
  /** Messages sent in the current sending chain, received in the current receiving chain, sent in the previous sending chain. */
  ns: number;
  nr: number;
  pn: number;
  /** Sending chains made so far (the current one is number cs − 1), receiving chains so far (current: cr − 1). */
  cs: number;
  cr: number;
  /** Messages sent (sb) and received-or-skipped (rb) in all chains before the current ones. */
  sb: number;
  rb: number;
  readonly ad: Uint8Array;
  /** Keyed by skippedId(dh, n), in insertion order (oldest first). */
  readonly skipped: Map<string, SkippedKey>;
}

export function skippedId(dh: Uint8Array, n: number): string {
  return `${toHex(dh)}:${n}`;
}

const key32 = zBytes(32);
const nullable32 = z.union([key32, z.null()]);
const stateSchema = z.strictObject({
  v: z.literal(1),
  rk: key32,
  dhs: z.strictObject({ pk: key32, sk: key32 }),
  dhr: nullable32,
  cks: nullable32,
  ckr: nullable32,
  ns: zUint(0xffffffff),
  nr: zUint(0xffffffff),
  pn: zUint(0xffffffff),
  cs: zUint(0x100000000),
  cr: zUint(0x100000000),
  sb: zUint(),
  rb: zUint(),
  ad: zBytes(undefined, MAX_SESSION_AD_BYTES),
  skipped: z.array(z.strictObject({ dh: key32, n: zUint(0xffffffff), mk: key32, seq: zUint() })).max(MAX_SKIP),
});

export function encodeRatchetState(s: RatchetState): Uint8Array {
  return encodeCbor({
    v: 1,
    rk: s.rk,
    dhs: { pk: s.dhs.publicKey, sk: s.dhs.secretKey },
    dhr: s.dhr,
    cks: s.cks,
    ckr: s.ckr,
    ns: s.ns,
    nr: s.nr,
    pn: s.pn,
    cs: s.cs,
    cr: s.cr,
    sb: s.sb,
    rb: s.rb,
    ad: s.ad,
    skipped: [...s.skipped.values()].map((k) => ({ dh: k.dh, n: k.n, mk: k.mk, seq: k.seq })),
  });
}

/** Throws ERR_CBOR_* / ERR_SCHEMA for malformed or inconsistent input, ERR_KEY_FORMAT for a mismatched key pair. */
export function decodeRatchetState(bytes: Uint8Array): RatchetState {
  const d = decodeMessage(stateSchema, bytes, MAX_RATCHET_STATE_BYTES, 'ratchet state');
  const bad = (why: string): never => {
    throw new ProtocolError('ERR_SCHEMA', `ratchet state: ${why}`);
  };
  if (!crypto().equal(crypto().x25519Public(d.dhs.sk), d.dhs.pk)) throw new ProtocolError('ERR_KEY_FORMAT', 'ratchet state: key pair does not match');
  if (d.cks !== null && d.dhr === null) bad('a sending chain without a peer ratchet key');
  if (d.ckr !== null && d.dhr === null) bad('a receiving chain without a peer ratchet key');
  if ((d.cks !== null) !== d.cs > 0 || (d.ckr !== null) !== d.cr > 0) bad('chain counts do not match the chains');
  const skipped = new Map<string, SkippedKey>();
  for (const k of d.skipped) {
    const id = skippedId(k.dh, k.n);
    if (skipped.has(id)) bad('a skipped key twice');
    skipped.set(id, { dh: k.dh.slice(), n: k.n, mk: k.mk.slice(), seq: k.seq });
  }
  return {
    rk: d.rk.slice(),
    dhs: { publicKey: d.dhs.pk.slice(), secretKey: d.dhs.sk.slice() },
    dhr: d.dhr?.slice() ?? null,
    cks: d.cks?.slice() ?? null,
    ckr: d.ckr?.slice() ?? null,
    ns: d.ns,
    nr: d.nr,
    pn: d.pn,
    cs: d.cs,
    cr: d.cr,
    sb: d.sb,
    rb: d.rb,
    ad: d.ad.slice(),
    skipped,
  };
}
