/**
 * Attachment descriptors (specs/messaging.md §12.1): what a message carries of a file sent through the content
 * store — its root reference (routing and decryption key), size, media type and name. The file's blocks are stored
 * with random keys (content.md §2); only this descriptor, inside the ratchet or the mailbox item's encryption, says
 * where they are and how to read them.
 *
 *   descriptor = CBOR { "v": 1, "rk": (32), "dk": (32), "size": bytes, "type": media type, "name": file name }
 *
 * Pure: the sending and fetching are client/messaging/attachments.ts.
 */
import { z } from 'zod';
import type { BlockRef } from './chk.js';
import { decodeMessage, encodeCbor, zBytes, zUint } from './cbor.js';
import { ProtocolError } from './errors.js';
import { MAX_FILE_SIZE } from './file-codec.js';

/** A descriptor's encoded size is at most this (fixed). */
export const MAX_ATTACHMENT_DESCRIPTOR_BYTES = 1024;
/** Default largest attachment, on each side (specs/limits.md; MessengerOptions.maxAttachmentBytes). */
export const MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024;
export const MAX_ATTACHMENT_NAME_BYTES = 255;
export const MAX_ATTACHMENT_TYPE_BYTES = 127;
export const DEFAULT_ATTACHMENT_TYPE = 'application/octet-stream';

/** A file sent in a message: where its blocks are, and what the sender said of it. */
export interface Attachment {
  /** The file's root reference (content.md §3.3): whoever has it can read the file. */
  readonly root: BlockRef;
  readonly size: number;
  /** Media type, lower case (`image/png`, `audio/ogg`, …). */
  readonly type: string;
  /** The file name the sender gave ('' for none), never with a directory. */
  readonly name: string;
}

const TOKEN = /^[a-z0-9!#$&^_.+-]+$/;
const encoder = new TextEncoder();

function validType(t: string): boolean {
  const parts = t.split('/');
  return encoder.encode(t).length <= MAX_ATTACHMENT_TYPE_BYTES && parts.length === 2 && TOKEN.test(parts[0]!) && TOKEN.test(parts[1]!);
}

function validName(n: string): boolean {
  return encoder.encode(n).length <= MAX_ATTACHMENT_NAME_BYTES && !/[/\\\u0000-\u001f\u007f-\u009f]/u.test(n) && n !== '.' && n !== '..';
}

const schema = z.strictObject({
  v: z.literal(1),
  rk: zBytes(32),
  dk: zBytes(32),
  size: zUint(MAX_FILE_SIZE),
  type: z.string().refine(validType, 'a media type type/subtype in lower case'),
  name: z.string().refine(validName, 'a file name without a directory or control character'),
});

/**
 * The descriptor's bytes. Throws ERR_SCHEMA for a media type or name §12.1 refuses (callers normalise first:
 * attachmentName(), attachmentType()).
 */
export function encodeAttachment(a: Attachment): Uint8Array {
  const value = { v: 1, rk: a.root.rk, dk: a.root.dk, size: a.size, type: a.type, name: a.name };
  const r = schema.safeParse(value);
  if (!r.success) throw new ProtocolError('ERR_SCHEMA', `attachment descriptor: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return encodeCbor(value);
}

/** Decodes a descriptor. Throws ERR_CBOR_* (not strict CBOR, or longer than 1024 bytes), ERR_SCHEMA. */
export function decodeAttachment(bytes: Uint8Array): Attachment {
  const d = decodeMessage(schema, bytes, MAX_ATTACHMENT_DESCRIPTOR_BYTES, 'attachment descriptor');
  return { root: { rk: d.rk, dk: d.dk }, size: d.size, type: d.type, name: d.name };
}

/**
 * A file name as a descriptor carries it: the last path segment, control characters dropped, cut to 255 bytes of
 * UTF-8 on a character boundary; '' for what is left empty, '.' or '..'.
 */
export function attachmentName(name: string): string {
  let n = (name.split(/[/\\]/).pop() ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/gu, '');
  while (encoder.encode(n).length > MAX_ATTACHMENT_NAME_BYTES) n = [...n].slice(0, -1).join('');
  return n === '.' || n === '..' ? '' : n;
}

/** A media type as a descriptor carries it: lower case, parameters dropped; application/octet-stream if invalid. */
export function attachmentType(type: string | undefined): string {
  const t = (type ?? '').split(';')[0]!.trim().toLowerCase();
  return validType(t) ? t : DEFAULT_ATTACHMENT_TYPE;
}
