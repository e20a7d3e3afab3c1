/**
 * Introduction and rendezvous messages (specs/rendezvous.md §3), all CBOR, carried in relay messages to the last
 * hop of a circuit (stream id 0):
 *
 *   ESTABLISH_INTRO        { "k": intro auth key (Ed25519, 32), "s": signature by k over ("allium-v1 intro" | binding) }
 *   INTRO_ESTABLISHED      { }
 *   INTRODUCE1             { "k": intro auth key, "p": sealed introduction (opaque to the relay), ? "w": pow }
 *   INTRODUCE2             { "p": sealed introduction, ? "w": pow }              (relay → endpoint)
 *   INTRODUCE_ACK          { "s": "ok" | "unknown" | "busy" }
 *   pow                    { "n": nonce (16), "e": effort }                      (intro-pow.ts; the relay passes it on)
 *   ESTABLISH_RENDEZVOUS   { "c": rendezvous cookie (20) }
 *   RENDEZVOUS_ESTABLISHED { }
 *   RENDEZVOUS1            { "c": cookie, "h": handshake reply (opaque to the relay) }   (endpoint → point)
 *   RENDEZVOUS2            { "h": handshake reply }                              (point → initiator)
 *   INTRO_POW              { "s": [seed (32)] (1–2) }                            (endpoint → its introduction point)
 *
 * `binding` is the hop's binding value from the circuit handshake, so an ESTABLISH_INTRO cannot be replayed on
 * another circuit.
 */
import { z } from 'zod';
import { concatBytes, utf8 } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes } from './cbor.js';
import { RELAY_DATA_LEN } from './constants.js';
import { MAX_POW_EFFORT, POW_NONCE_LEN, POW_SEED_LEN } from './intro-pow.js';

export const INTRO_SIGN_CONTEXT = utf8('allium-v1 intro');
export const COOKIE_LEN = 20;

/** The messages' schemas, built at first use: a relay that is never an introduction or rendezvous point never needs them. */
function buildSchemas() {
  const powSchema = z.strictObject({ n: zBytes(POW_NONCE_LEN), e: z.number().int().min(1).max(MAX_POW_EFFORT) });

  return {
    establishIntro: z.strictObject({ k: zBytes(32), s: zBytes(64) }),
    introduce1: z.strictObject({ k: zBytes(32), p: zBytes(undefined, 700), w: powSchema.optional() }),
    introduce2: z.strictObject({ p: zBytes(undefined, 700), w: powSchema.optional() }),
    introduceAck: z.strictObject({ s: z.enum(['ok', 'unknown', 'busy']) }),
    establishRendezvous: z.strictObject({ c: zBytes(COOKIE_LEN) }),
    rendezvous1: z.strictObject({ c: zBytes(COOKIE_LEN), h: zBytes(undefined, 400) }),
    rendezvous2: z.strictObject({ h: zBytes(undefined, 400) }),
    /** The endpoint's proof-of-work seeds, newest first, for its introduction point to check `w` against (§3.2). */
    introPow: z.strictObject({ s: z.array(zBytes(POW_SEED_LEN)).min(1).max(2) }),
    empty: z.strictObject({}),
  };
}
type Schemas = ReturnType<typeof buildSchemas>;
let built: Schemas | null = null;
const schemas = (): Schemas => (built ??= buildSchemas());

export type RendezvousMessage = { [K in keyof Schemas]: z.infer<Schemas[K]> };

export function encodeRv<K extends keyof Schemas>(_kind: K, m: RendezvousMessage[K]): Uint8Array {
  return encodeCbor(m);
}

export function decodeRv<K extends keyof Schemas>(kind: K, data: Uint8Array): RendezvousMessage[K] {
  return decodeMessage(schemas()[kind] as unknown as z.ZodType<RendezvousMessage[K]>, data, RELAY_DATA_LEN, kind);
}

export function introSignedMessage(binding: Uint8Array): Uint8Array {
  return concatBytes(INTRO_SIGN_CONTEXT, binding);
}
