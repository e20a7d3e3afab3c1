/**
 * Client authorisation for endpoint descriptors (specs/messaging.md §3.3), after Tor's restricted discovery
 * (rend-spec-v3 §2.5.1.2): an endpoint may make its descriptor readable only by clients whose X25519 public keys it
 * lists. Knowing the address is then not enough to find the endpoint's introduction points.
 *
 *   cookie  = random(32)                                 fresh for every descriptor
 *   entry_i = seal(cookie, client_i)                     a sealed box: 80 bytes, anonymous to its recipient
 *   key     = H(cookie | subcredential, "allium-v1:descriptor:client-key")
 *
 * The entries are padded with decoys to a multiple of AUTH_GROUP and shuffled, so a reader learns only the number
 * of clients rounded up to 16. A decoy is a real sealed box of random bytes to a throwaway key, so it has the same
 * form as an entry (a random 80-byte string would not: X25519 public keys have a fixed top bit). A client opens
 * each entry in turn with its key pair: at most MAX_AUTH_CLIENTS X25519 operations.
 *
 * Removing a client takes effect at the next descriptor, which has a new cookie. A client keeps what it learnt.
 */
import { crypto, SEAL_OVERHEAD, type KeyPair } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { AlliumError } from './errors.js';

export const COOKIE_LEN = 32;
export const AUTH_ENTRY_LEN = COOKIE_LEN + SEAL_OVERHEAD; // 80
/** Entries come in groups of this many (decoys fill the last group). */
export const AUTH_GROUP = 16;
/** Most authorised clients one descriptor can list (a multiple of AUTH_GROUP). */
export const MAX_AUTH_CLIENTS = 32;

const CLIENT_KEY = utf8('allium-v1:descriptor:client-key');

/** A uniform integer in [0, n), by rejection from 32-bit random values. */
function uniform(n: number): number {
  const limit = Math.floor(0x100000000 / n) * n;
  for (;;) {
    const b = crypto().random(4);
    const v = ((b[0]! << 24) >>> 0) + ((b[1]! << 16) | (b[2]! << 8) | b[3]!);
    if (v < limit) return v % n;
  }
}

/** A fresh descriptor cookie and its sealed entries for the listed clients, decoys added and shuffled. */
export function sealCookie(clients: readonly Uint8Array[]): { cookie: Uint8Array; entries: Uint8Array[] } {
  if (clients.length === 0 || clients.length > MAX_AUTH_CLIENTS) {
    throw new AlliumError('ERR_CONFIG', `client authorisation lists 1..${MAX_AUTH_CLIENTS} clients`);
  }
  const c = crypto();
  const cookie = c.random(COOKIE_LEN);
  const entries = clients.map((pk) => c.seal(cookie, pk));
  const total = Math.ceil(clients.length / AUTH_GROUP) * AUTH_GROUP;
  while (entries.length < total) entries.push(c.seal(c.random(COOKIE_LEN), c.x25519Keypair().publicKey));
  for (let i = entries.length - 1; i > 0; i--) {
    const j = uniform(i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return { cookie, entries };
}

/** The cookie from the first entry our key pair opens, or null when none does. */
export function openCookie(entries: readonly Uint8Array[], client: KeyPair): Uint8Array | null {
  for (const entry of entries) {
    if (entry.length !== AUTH_ENTRY_LEN) continue;
    const cookie = crypto().open(entry, client);
    if (cookie && cookie.length === COOKIE_LEN) return cookie;
  }
  return null;
}

/** The key of the client-authorised layer. */
export function clientLayerKey(cookie: Uint8Array, subcredential: Uint8Array): Uint8Array {
  const input = concatBytes(cookie, subcredential);
  const key = crypto().hash(32, input, CLIENT_KEY);
  crypto().wipe(input);
  return key;
}
