/**
 * Domain-separated BLAKE2b, the only hash construction of the handshake and onion (specs/circuits.md §2):
 *   H(x, t) = BLAKE2b-256(key = t, message = x)
 * where t is one of the fixed ASCII labels below (each 16..64 bytes). This plays the part of ntor's HMAC-SHA256(t, x).
 */
import { crypto } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';

export const LABELS = {
  onionRho: utf8('allium-v1:onion:rho:header-stream'),
  onionMu: utf8('allium-v1:onion:mu:header-mac'),
  onionPi: utf8('allium-v1:onion:pi:reply-stream'),
  ntorKey: utf8('allium-v1:ntor:key-seed'),
  ntorVerify: utf8('allium-v1:ntor:verify'),
  ntorMac: utf8('allium-v1:ntor:auth-mac'),
  hopForward: utf8('allium-v1:hop:forward-key'),
  hopBackward: utf8('allium-v1:hop:backward-key'),
  hopBinding: utf8('allium-v1:hop:binding'),
  replayTag: utf8('allium-v1:onion:replay-tag'),
  /** Keys the MAC of a relay's replay-state snapshot, a local file (specs/circuits.md §3.4.1). */
  replayState: utf8('allium-v1:relay:replay-state'),
} as const;

export function H(t: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return crypto().hash(32, parts.length === 1 ? parts[0]! : concatBytes(...parts), t);
}
