/**
 * Conversation frames (specs/messaging.md §8.1): the plaintexts that travel, padded and ratchet-encrypted, on the
 * message stream of a conversation.
 *
 *   message = u8(1) | u32(n) | id (16) | data         n: the sender's count of earlier messages on this stream
 *   ack     = u8(2) | id (16) × k                     1 ≤ k ≤ MAX_ACK_IDS: the ids of messages received
 *   attachment = u8(3) | u32(n) | id (16) | descriptor   a message whose data is an attachment descriptor (§12.1)
 *   group   = u8(4) | u32(n) | id (16) | envelope       a message whose data is a group envelope (§13.2)
 *   device  = u8(5) | u32(n) | id (16) | envelope       a message whose data is a device envelope (§14.2)
 *   hello   = u8(6) | u8(flags)                         once per direction, before any other frame: bit 0 PREKEYS
 *
 * Both kinds are padded with pad(·, RATCHET_OVERHEAD) before encryption, so an ack fills the smallest bucket just
 * as a short message does: by size, a relay cannot tell one from the other.
 *
 * `id` is random, chosen by the sender, and names the message end to end: a message sent again over a new
 * conversation (its acknowledgement never came) and its copy left in the recipient's mailbox (specs/messaging.md
 * §9.2, field "id") carry the same id, so the recipient delivers it once.
 */
import { ByteReader, ByteWriter } from './bytes.js';
import { ProtocolError } from './errors.js';
import { maxPaddable, PAD_HEADER_LEN, PAD_UNIT } from './padding.js';
import { RATCHET_OVERHEAD } from './ratchet.js';

export const FRAME_MESSAGE = 1;
export const FRAME_ACK = 2;
export const FRAME_ATTACHMENT = 3;
export const FRAME_GROUP = 4;
export const FRAME_DEVICE = 5;
export const FRAME_HELLO = 6;
/** A hello's flag: the sender publishes prekey records (specs/messaging.md §8.1, §9.6; a card's PREKEYS, §11.1). */
export const HELLO_PREKEYS = 0x01;
/** Length of a hello frame's plaintext. */
export const HELLO_FRAME_LEN = 2;
/**
 * What a message frame's data is: the application's, an attachment descriptor (§12.1), a group envelope (§13.2), a
 * device envelope (§14.2).
 */
export type FrameContent = 'data' | 'attachment' | 'group' | 'device';
/** Length of a message id. The same as a mailbox item's id (MAILBOX_ID_LEN), so one id serves both paths. */
export const MESSAGE_ID_LEN = 16;
/** Kind, number and id in front of a message's data. */
export const MESSAGE_FRAME_HEADER_LEN = 1 + 4 + MESSAGE_ID_LEN;
/** The most ids one ack carries: an ack always fits the smallest padding bucket. */
export const MAX_ACK_IDS = Math.floor((PAD_UNIT - RATCHET_OVERHEAD - PAD_HEADER_LEN - 1) / MESSAGE_ID_LEN); // 51
/** The largest message a conversation carries (the largest bucket less the ratchet, padding and frame headers). */
export const MAX_LIVE_MESSAGE_BYTES = maxPaddable(RATCHET_OVERHEAD) - MESSAGE_FRAME_HEADER_LEN; // 56618

export type ConversationFrame =
  | {
      readonly kind: 'message';
      readonly n: number;
      readonly id: Uint8Array;
      readonly data: Uint8Array;
      /** True for an attachment frame: `data` is an attachment descriptor (specs/messaging.md §12.1). */
      readonly attachment: boolean;
      /** True for a group frame: `data` is a group envelope (specs/messaging.md §13.2), never the application's. */
      readonly group: boolean;
      /** True for a device frame: `data` is a device envelope (specs/messaging.md §14.2), never the application's. */
      readonly device: boolean;
    }
  | { readonly kind: 'ack'; readonly ids: readonly Uint8Array[] }
  /** What the sender says of itself (specs/messaging.md §8.1): `flags`, unknown bits included (receivers ignore them). */
  | { readonly kind: 'hello'; readonly flags: number };

/** The plaintext of a hello frame (before padding): `flags` 0 to 255, 0 when the sender sets no flag. */
export function encodeHelloFrame(flags: number): Uint8Array {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xff) throw new ProtocolError('ERR_SCHEMA', 'hello flags out of range');
  return Uint8Array.of(FRAME_HELLO, flags);
}

/** The plaintext of a message frame (before padding); `content` true is 'attachment'. */
export function encodeMessageFrame(n: number, id: Uint8Array, data: Uint8Array, content: FrameContent | boolean = 'data'): Uint8Array {
  const kind =
    content === true || content === 'attachment' ? FRAME_ATTACHMENT : content === 'group' ? FRAME_GROUP : content === 'device' ? FRAME_DEVICE : FRAME_MESSAGE;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new ProtocolError('ERR_SCHEMA', 'message number out of range');
  if (id.length !== MESSAGE_ID_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a message id is ${MESSAGE_ID_LEN} bytes`);
  return new ByteWriter(MESSAGE_FRAME_HEADER_LEN + data.length).u8(kind).u32(n).bytes(id).bytes(data).done();
}

/** The plaintext of an ack frame for 1 to MAX_ACK_IDS message ids (before padding). */
export function encodeAckFrame(ids: readonly Uint8Array[]): Uint8Array {
  if (ids.length === 0 || ids.length > MAX_ACK_IDS) throw new ProtocolError('ERR_SCHEMA', `an ack carries 1 to ${MAX_ACK_IDS} ids`);
  const w = new ByteWriter(1 + ids.length * MESSAGE_ID_LEN).u8(FRAME_ACK);
  for (const id of ids) {
    if (id.length !== MESSAGE_ID_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a message id is ${MESSAGE_ID_LEN} bytes`);
    w.bytes(id);
  }
  return w.done();
}

/**
 * Decodes an unpadded frame plaintext. Throws ERR_TRUNCATED (shorter than its header), ERR_BAD_LENGTH (an ack
 * whose length is not 1 + 16·k with 1 ≤ k ≤ MAX_ACK_IDS, a hello not of HELLO_FRAME_LEN), ERR_SCHEMA (empty, or an
 * unknown kind).
 */
export function decodeFrame(plaintext: Uint8Array): ConversationFrame {
  const r = new ByteReader(plaintext, 'conversation frame');
  const kind = r.u8();
  if (kind === FRAME_MESSAGE || kind === FRAME_ATTACHMENT || kind === FRAME_GROUP || kind === FRAME_DEVICE) {
    const n = r.u32();
    const id = r.bytes(MESSAGE_ID_LEN).slice();
    return {
      kind: 'message',
      n,
      id,
      data: r.rest().slice(),
      attachment: kind === FRAME_ATTACHMENT,
      group: kind === FRAME_GROUP,
      device: kind === FRAME_DEVICE,
    };
  }
  if (kind === FRAME_ACK) {
    const len = r.remaining;
    if (len === 0 || len % MESSAGE_ID_LEN !== 0 || len / MESSAGE_ID_LEN > MAX_ACK_IDS) {
      throw new ProtocolError('ERR_BAD_LENGTH', `an ack carries 1 to ${MAX_ACK_IDS} whole message ids`);
    }
    const ids: Uint8Array[] = [];
    while (r.remaining > 0) ids.push(r.bytes(MESSAGE_ID_LEN).slice());
    return { kind: 'ack', ids };
  }
  if (kind === FRAME_HELLO) {
    if (r.remaining !== HELLO_FRAME_LEN - 1) throw new ProtocolError('ERR_BAD_LENGTH', `a hello is ${HELLO_FRAME_LEN} bytes`);
    return { kind: 'hello', flags: r.u8() };
  }
  throw new ProtocolError('ERR_SCHEMA', `unknown conversation frame kind ${kind}`);
}
