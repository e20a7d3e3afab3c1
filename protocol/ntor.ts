/**
 * The per-hop handshake, in the style of Tor's ntor, over X25519 and BLAKE2b (specs/circuits.md §4).
 *
 *   client:  x, X = X25519(x, G)                       (X travels in the setup onion)
 *   relay:   y, Y = X25519(y, G)
 *            secret_input = X25519(y, X) | X25519(b, X) | ID | B | X | Y | PROTOID
 *            KEY_SEED = H(secret_input, t_key); verify = H(secret_input, t_verify)
 *            AUTH = H(verify | ID | B | Y | X | PROTOID | "server", t_mac)
 *   client:  recomputes secret_input with X25519(x, Y) and X25519(x, B), checks AUTH (key confirmation)
 *   both:    Kf = H(KEY_SEED, t_fwd), Kb = H(KEY_SEED, t_bwd), binding = H(KEY_SEED, t_bind)
 *
 * Forward secrecy comes from y (erased after the reply); relay authentication from b, which only the relay whose
 * signed descriptor lists B holds.
 */
import { crypto, type KeyPair } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { PROTOID } from './constants.js';
import { CryptoError } from './errors.js';
import { H, LABELS } from './kdf.js';
import type { HopKeys, OnionHop } from './hop.js';

export type { HopKeys } from './hop.js';

const PROTOID_BYTES = utf8(PROTOID);
const SERVER = utf8('server');

function finish(secretInput: Uint8Array): { keys: HopKeys; verify: Uint8Array } {
  const seed = H(LABELS.ntorKey, secretInput);
  const verify = H(LABELS.ntorVerify, secretInput);
  const keys = { forward: H(LABELS.hopForward, seed), backward: H(LABELS.hopBackward, seed), binding: H(LABELS.hopBinding, seed) };
  crypto().wipe(seed);
  return { keys, verify };
}

function authOf(verify: Uint8Array, identity: Uint8Array, B: Uint8Array, Y: Uint8Array, X: Uint8Array): Uint8Array {
  return H(LABELS.ntorMac, concatBytes(verify, identity, B, Y, X, PROTOID_BYTES, SERVER));
}

/**
 * Relay side. `s` is X25519(b, X), already computed to open the onion layer; `X` is the client's key as sent.
 */
export function ntorServer(
  s: Uint8Array,
  onionKey: KeyPair,
  identity: Uint8Array,
  X: Uint8Array,
  random: (n: number) => Uint8Array,
): { keys: HopKeys; Y: Uint8Array; auth: Uint8Array } {
  const c = crypto();
  const y = random(32);
  const Y = c.x25519Public(y);
  const xy = c.x25519(y, X);
  c.wipe(y);
  const secretInput = concatBytes(xy, s, identity, onionKey.publicKey, X, Y, PROTOID_BYTES);
  const { keys, verify } = finish(secretInput);
  const auth = authOf(verify, identity, onionKey.publicKey, Y, X);
  c.wipe(xy, secretInput, verify);
  return { keys, Y, auth };
}

/**
 * Client side: checks the relay's AUTH and returns the hop keys. Throws ERR_HANDSHAKE_AUTH on mismatch. `knownXb` is
 * EXP(B, x) when the caller has it already (the onion computed it for the hop's layer keys); computed otherwise.
 */
export function ntorClientFinish(x: Uint8Array, X: Uint8Array, hop: OnionHop, Y: Uint8Array, auth: Uint8Array, knownXb?: Uint8Array): HopKeys {
  const c = crypto();
  let xy: Uint8Array;
  let xb: Uint8Array;
  try {
    xy = c.x25519(x, Y);
    // The caller's copy is its own to wipe: this one's is wiped below.
    xb = knownXb ? Uint8Array.from(knownXb) : c.x25519(x, hop.onionKey);
  } catch {
    throw new CryptoError('ERR_HANDSHAKE_AUTH', 'hop replied with an invalid key');
  }
  const secretInput = concatBytes(xy, xb, hop.identity, hop.onionKey, X, Y, PROTOID_BYTES);
  const { keys, verify } = finish(secretInput);
  const expected = authOf(verify, hop.identity, hop.onionKey, Y, X);
  c.wipe(xy, xb, secretInput, verify);
  if (!c.equal(expected, auth)) {
    c.wipe(keys.forward, keys.backward, keys.binding);
    throw new CryptoError('ERR_HANDSHAKE_AUTH', 'hop key confirmation failed');
  }
  return keys;
}
