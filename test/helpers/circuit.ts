/**
 * Relays with fixed keys and helpers to build and run setup onions in tests, plus a way to craft a header whose
 * MAC verifies around any routing-slot plaintext (to test slot parsing past the MAC).
 */
import { crypto, type KeyPair } from '../../crypto/index.js';
import { seededRandom } from '../../crypto/drbg.js';
import { IdentityKey } from '../../crypto/keys.js';
import { concatBytes } from '../../protocol/bytes.js';
import { ONION_BETA_LEN, ONION_SLOT_LEN } from '../../protocol/constants.js';
import { H, LABELS } from '../../protocol/kdf.js';
import { createOnion, processOnion, type ClientOnion, type CreateOnionOptions, type RelayHop, type ReplayGuard } from '../../protocol/onion.js';

export interface TestRelay {
  readonly identity: Uint8Array;
  readonly onionKey: KeyPair;
}

/** `n` relays whose keys follow from `label`. */
export function testRelays(n: number, label = 'test-relays'): TestRelay[] {
  return Array.from({ length: n }, (_, i) => ({
    identity: IdentityKey.fromSeed(seededRandom(`${label}/${i}/identity`)(32)).publicKey,
    onionKey: crypto().x25519Keypair(seededRandom(`${label}/${i}/onion`)(32)),
  }));
}

export const noReplay: ReplayGuard = { checkAndRecord: () => false };

export function onionTo(relays: readonly TestRelay[], options: CreateOnionOptions = {}): ClientOnion {
  return createOnion(
    relays.map((r) => ({ identity: r.identity, onionKey: r.onionKey.publicKey })),
    options,
  );
}

/** Processes an onion through every relay; returns each hop's header as received and its RelayHop. */
export function runPath(
  relays: readonly TestRelay[],
  header: Uint8Array,
  options: { replay?: (i: number) => ReplayGuard; random?: (n: number) => Uint8Array } = {},
): { headers: Uint8Array[]; hops: RelayHop[] } {
  const headers: Uint8Array[] = [];
  const hops: RelayHop[] = [];
  let h = header;
  relays.forEach((r, i) => {
    headers.push(h);
    const res = processOnion(h, {
      identity: r.identity,
      onionKeys: [r.onionKey],
      replay: options.replay?.(i) ?? noReplay,
      ...(options.random ? { random: options.random } : {}),
    });
    hops.push(res.hop);
    if (res.kind === 'extend') h = res.header;
    else if (i !== relays.length - 1) throw new Error(`hop ${i} was terminal`);
  });
  return { headers, hops };
}

/** Builds every hop's reply, last hop first, and returns what the first hop sends to the client. */
export function replyChain(hops: readonly RelayHop[]): Uint8Array {
  let r: Uint8Array | null = null;
  for (let i = hops.length - 1; i >= 0; i--) r = hops[i]!.reply(r);
  return r!;
}

/**
 * A header for `relay` whose MAC verifies and whose decrypted beta begins with `plain` (768 bytes: the routing
 * slot, then the start of the next beta). X is a fresh public key. Also returns the last 96 bytes the relay will
 * decrypt (keystream only), so the expected next header can be computed.
 */
export function craftHeader(relay: TestRelay, plain: Uint8Array, xSecret: Uint8Array): { header: Uint8Array; tail: Uint8Array } {
  if (plain.length !== ONION_BETA_LEN) throw new Error('plain must be 768 bytes');
  const c = crypto();
  const X = c.x25519Public(xSecret);
  const s = c.x25519(xSecret, relay.onionKey.publicKey);
  const input = concatBytes(s, relay.identity, relay.onionKey.publicKey, X);
  const stream = new Uint8Array(ONION_BETA_LEN + ONION_SLOT_LEN);
  c.chacha20Xor(stream, stream, new Uint8Array(12), 0, H(LABELS.onionRho, input));
  const beta = plain.map((b, i) => b ^ stream[i]!);
  const gamma = c.hash(16, beta, H(LABELS.onionMu, input));
  return { header: concatBytes(X, gamma, beta), tail: stream.slice(ONION_BETA_LEN) };
}
