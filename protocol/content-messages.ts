/**
 * Content requests over a circuit (specs/content.md §8). Each request is a stream addressed to the circuit's last
 * hop (the holder):
 *
 *   STORE   CBOR { "k": routing key, "t": kind, "n": size, "c": cache copy, ? "f": holder }   then DATA cells
 *   STORED  CBOR { "s": status }                                             then END
 *   FETCH   CBOR { "k": routing key, "t": kind, "h": head only, ? "f": holder }
 *   FETCHED CBOR { "s": status, "n": size }                                  then DATA cells (unless head/missing), END
 *
 *   kind:   "block" | "record" | "endpoint" | "mailbox"
 *   status: "ok" | "exists" | "found" | "missing" | "quota" | "invalid" | "stale" | "occupied" | "refused"
 *           | "unknown" | "unreachable"
 *
 * `f` (the holder's identity key) asks the relay to forward the request to that holder (specs/content.md §8.3);
 * `unknown` and `unreachable` are a forwarder's answers for a holder it does not know or could not reach.
 */
import { z } from 'zod';
import { equalBytes } from './bytes.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { BLOCK_LEN } from './chk.js';
import { MAX_RECORD_BYTES } from './ssk.js';
import { MAX_ENDPOINT_DESCRIPTOR_BYTES } from './endpoint-descriptor.js';
import { MAX_MAILBOX_ITEM_BYTES } from './mailbox.js';

/** `occupied`: a mailbox slot already holds another item (specs/messaging.md §9). */
export const ContentStatus = ['ok', 'exists', 'found', 'missing', 'quota', 'invalid', 'stale', 'occupied', 'refused', 'unknown', 'unreachable'] as const;
export type ContentStatus = (typeof ContentStatus)[number];
/**
 * block: a CHK block; record: a signed updatable-key edition; endpoint: a signed endpoint descriptor; mailbox: an
 * offline message sealed to its recipient, or the deletion that replaces it (protocol/mailbox.ts).
 */
export type ContentKind = 'block' | 'record' | 'endpoint' | 'mailbox';

export const MAX_CONTENT_ITEM = Math.max(BLOCK_LEN, MAX_RECORD_BYTES, MAX_ENDPOINT_DESCRIPTOR_BYTES, MAX_MAILBOX_ITEM_BYTES);

const KINDS = ['block', 'record', 'endpoint', 'mailbox'] as const;
const storeSchema = z.lazy(() => z.strictObject({ k: zBytes(32), t: z.enum(KINDS), n: zUint(MAX_CONTENT_ITEM), c: z.boolean(), f: zBytes(32).optional() }));
const fetchSchema = z.lazy(() => z.strictObject({ k: zBytes(32), t: z.enum(KINDS), h: z.boolean(), f: zBytes(32).optional() }));
const storedSchema = z.lazy(() => z.strictObject({ s: z.enum(ContentStatus) }));
const fetchedSchema = z.lazy(() => z.strictObject({ s: z.enum(ContentStatus), n: zUint(MAX_CONTENT_ITEM) }));

export type StoreRequest = z.infer<typeof storeSchema>;
export type FetchRequest = z.infer<typeof fetchSchema>;
export type StoredReply = z.infer<typeof storedSchema>;
export type FetchedReply = z.infer<typeof fetchedSchema>;

export const encodeStore = (m: StoreRequest): Uint8Array => encodeCbor(m);
export const decodeStore = (b: Uint8Array): StoreRequest => decodeMessage(storeSchema, b, 256, 'STORE');
export const encodeFetch = (m: FetchRequest): Uint8Array => encodeCbor(m);
export const decodeFetch = (b: Uint8Array): FetchRequest => decodeMessage(fetchSchema, b, 256, 'FETCH');
export const encodeStored = (m: StoredReply): Uint8Array => encodeCbor(m);
export const decodeStored = (b: Uint8Array): StoredReply => decodeMessage(storedSchema, b, 256, 'STORED');
/**
 * The FETCHED replies of every block fetch (`found` with BLOCK_LEN) and of every miss, encoded once: a holder encodes
 * one for each block it serves, a forwarder decodes it and encodes its own (specs/content.md §8.3), a client decodes
 * it. Bytes equal to one of these decode to it without the CBOR decoder and the schema; the encoding is the same.
 */
const COMMON_FETCHED: readonly { reply: Readonly<FetchedReply>; bytes: Uint8Array }[] = (
  [
    { s: 'found', n: BLOCK_LEN },
    { s: 'missing', n: 0 },
  ] satisfies FetchedReply[]
).map((reply) => ({ reply, bytes: encodeCbor(reply) }));

export function encodeFetched(m: FetchedReply): Uint8Array {
  for (const c of COMMON_FETCHED) if (m.s === c.reply.s && m.n === c.reply.n && Object.keys(m).length === 2) return c.bytes.slice();
  return encodeCbor(m);
}
export function decodeFetched(b: Uint8Array): FetchedReply {
  for (const c of COMMON_FETCHED) if (equalBytes(b, c.bytes)) return { s: c.reply.s, n: c.reply.n };
  return decodeMessage(fetchedSchema, b, 256, 'FETCHED');
}
