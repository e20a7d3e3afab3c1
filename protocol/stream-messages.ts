/**
 * Stream messages (specs/streams.md §2): BEGIN, CONNECTED, END, SENDME bodies.
 *
 *   BEGIN      CBOR { "a": host (text, 1..255), "p": port (1..65535) }
 *   CONNECTED  empty
 *   END        reason u8
 *   SENDME     stream id 0 (circuit): version u8 (1) | tag (16); stream id ≠ 0: empty
 */
import { z } from 'zod';
import { ByteReader } from './bytes.js';
import { decodeMessage, encodeCbor } from './cbor.js';
import { ProtocolError, type AlliumError, type EndReasonName } from './errors.js';
import { SENDME_VERSION } from './flow.js';

export const EndReason = {
  DONE: 1,
  CONNECT_REFUSED: 2,
  EXIT_POLICY: 3,
  RESOLVE_FAILED: 4,
  TIMEOUT: 5,
  DESTROYED: 6,
  INTERNAL: 7,
  HOST_UNREACHABLE: 8,
  NET_UNREACHABLE: 9,
  MISC: 10,
  RESOURCE_LIMIT: 11,
} as const satisfies Record<EndReasonName, number>;
export type EndReason = (typeof EndReason)[keyof typeof EndReason];

/** The END reason to send for an error that ends a stream (the one it carries, errors/index.ts). */
export function endReasonOf(err: AlliumError): EndReason {
  return EndReason[err.endReason];
}

const beginSchema = z.lazy(() =>
  z.strictObject({
    a: z.string().min(1).max(255),
    p: z.number().int().min(1).max(65535),
  }),
);
export type Begin = z.infer<typeof beginSchema>;

export function encodeBegin(b: Begin): Uint8Array {
  return encodeCbor(b);
}

export function decodeBegin(data: Uint8Array): Begin {
  const b = decodeMessage(beginSchema, data, 512, 'BEGIN');
  if (/[\s\0/\\]/.test(b.a)) throw new ProtocolError('ERR_SCHEMA', 'BEGIN address has forbidden characters');
  return b;
}

export function encodeEnd(reason: EndReason): Uint8Array {
  return Uint8Array.of(reason);
}

export function decodeEnd(data: Uint8Array): EndReason {
  const r = new ByteReader(data, 'END');
  const reason = r.u8();
  r.end();
  if (reason < 1 || reason > 11) throw new ProtocolError('ERR_SCHEMA', `unknown END reason ${reason}`);
  return reason as EndReason;
}

export function encodeCircuitSendme(tag: Uint8Array): Uint8Array {
  const out = new Uint8Array(17);
  out[0] = SENDME_VERSION;
  out.set(tag, 1);
  return out;
}

export function decodeCircuitSendme(data: Uint8Array): Uint8Array {
  const r = new ByteReader(data, 'SENDME');
  const v = r.u8();
  if (v !== SENDME_VERSION) throw new ProtocolError('ERR_SENDME', `unknown SENDME version ${v}`);
  const tag = r.bytes(16);
  r.end();
  return tag;
}
