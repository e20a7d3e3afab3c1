/**
 * What message mode keeps across a restart (specs/mix.md §8.6): the gateway in use, the former gateways whose
 * inboxes are drained, each until when, and the address sequence of the last address box sealed. One record, "mix", sealed under a key derived from the identity (the gateway
 * is a guard: nothing in the storage should name it in the clear), as device records are (messaging.md §14.9).
 */
import { z } from 'zod';
import { crypto } from '../../crypto/index.js';
import type { Identity } from '../../protocol/address.js';
import { concatBytes, utf8 } from '../../protocol/bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from '../../protocol/cbor.js';
import type { GroupStorage } from './group-store.js';

/** The record's name in the storage. */
export const MIX_RECORD = 'mix';
/** Former gateways drained at once (MAX_MIX_DRAINS); a further change stops the oldest drain. */
export const MAX_MIX_DRAINS = 4;
const VERSION = 1;
const XNONCE = 24;
const LABEL = utf8('allium-v1:mix:store');
const AD = utf8('allium-v1:mix:store:');

const schema = z.strictObject({
  v: z.literal(VERSION),
  g: zBytes(32),
  d: z.array(z.tuple([zBytes(32), zUint()])).max(MAX_MIX_DRAINS),
  s: zUint().optional(),
});

/** The gateway in use, the drains, each [gateway, until (Unix ms)], and the last address sequence sealed (if any). */
export interface MixState {
  readonly gateway: Uint8Array;
  readonly drains: ReadonlyArray<readonly [Uint8Array, number]>;
  readonly addressSeq?: number;
}

function storeKey(identity: Identity): Uint8Array {
  return crypto().hash(32, LABEL, identity.secretKey.subarray(0, 32));
}

/** Seals and saves `state`. Throws what the storage throws. */
export async function saveMixState(storage: GroupStorage, identity: Identity, state: MixState): Promise<void> {
  const key = storeKey(identity);
  const nonce = crypto().random(XNONCE);
  const s = state.addressSeq ? { s: state.addressSeq } : {};
  const plain = encodeCbor({ v: VERSION, g: state.gateway, d: state.drains.slice(-MAX_MIX_DRAINS).map(([g, u]) => [g, u]), ...s });
  const bytes = concatBytes(Uint8Array.of(VERSION), nonce, crypto().xaeadEncrypt(plain, concatBytes(AD, utf8(MIX_RECORD)), nonce, key));
  crypto().wipe(key);
  await storage.save(MIX_RECORD, bytes);
}

/** The stored state, or undefined when there is none, or it does not open or decode. Throws what the storage throws. */
export async function loadMixState(storage: GroupStorage, identity: Identity): Promise<MixState | undefined> {
  const bytes = (await storage.load()).find(([name]) => name === MIX_RECORD)?.[1];
  if (!bytes || bytes.length < 1 + XNONCE || bytes[0] !== VERSION) return undefined;
  const key = storeKey(identity);
  const plain = crypto().xaeadDecrypt(bytes.subarray(1 + XNONCE), concatBytes(AD, utf8(MIX_RECORD)), bytes.subarray(1, 1 + XNONCE), key);
  crypto().wipe(key);
  if (!plain) return undefined;
  try {
    const s = decodeMessage(schema, plain, 1024, 'message-mode state');
    return { gateway: s.g, drains: s.d.map(([g, u]) => [g, u] as const), ...(s.s !== undefined ? { addressSeq: s.s } : {}) };
  } catch {
    return undefined;
  }
}
