/**
 * Text links (specs/content.md §5): safe to paste, with a checksum that catches typos.
 *
 *   allium:chk/<base32( rk (32) | dk (32) | flags u8 | checksum (4) )>
 *   allium:ssk/<base32( version u8 = 2 | publisher key (32) | secret (32) | checksum (4) )>/<name, percent-encoded>
 *
 * base32 is RFC 4648's alphabet in lower case without padding; the checksum is the first 4 bytes of
 * H(type | body | name, "allium-v1:link:checksum"). An SSK link of the first format (36 bytes: the key and a
 * checksum, no secret) is refused with ERR_LINK_OUTDATED: its records could be read by anyone who guessed the name.
 */
import { crypto } from '../crypto/index.js';
import { concatBytes, utf8 } from './bytes.js';
import { ProtocolError } from './errors.js';

/** The SSK link format this code writes and reads (content.md §5); the first format had no version byte. */
export const SSK_LINK_VERSION = 2;
const CHK_LINK_BYTES = 69;
const SSK_LINK_BYTES = 69;
/** An SSK key of the first format: publisher (32) | checksum (4). */
const SSK_V1_LINK_BYTES = 36;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const CHECKSUM = utf8('allium-v1:link:checksum');

export function base32Encode(b: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of b) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(s: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of s.toLowerCase()) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new ProtocolError('ERR_LINK_FORMAT', 'link has a character outside base32');
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  // One text per byte string: the unused low bits of the last character must be zero, or a typo there would go
  // unnoticed (the checksum covers the bytes, not the text).
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) throw new ProtocolError('ERR_LINK_FORMAT', 'link is not canonical base32');
  return Uint8Array.from(out);
}

function checksum(type: string, body: Uint8Array, name = ''): Uint8Array {
  return crypto()
    .hash(16, concatBytes(utf8(type), body, utf8(name)), CHECKSUM)
    .subarray(0, 4);
}

export type ContentLink =
  | { readonly type: 'chk'; readonly rk: Uint8Array; readonly dk: Uint8Array; readonly flags: number }
  | { readonly type: 'ssk'; readonly publisher: Uint8Array; readonly secret: Uint8Array; readonly name: string };

export function formatLink(link: ContentLink): string {
  if (link.type === 'chk') {
    const body = concatBytes(link.rk, link.dk, Uint8Array.of(link.flags));
    return `allium:chk/${base32Encode(concatBytes(body, checksum('chk', body)))}`;
  }
  validateName(link.name);
  if (link.publisher.length !== 32 || link.secret.length !== 32)
    throw new ProtocolError('ERR_LINK_FORMAT', 'an ssk link has a 32-byte key and a 32-byte secret');
  const body = concatBytes(Uint8Array.of(SSK_LINK_VERSION), link.publisher, link.secret);
  return `allium:ssk/${base32Encode(concatBytes(body, checksum('ssk', body, link.name)))}/${encodeURIComponent(link.name)}`;
}

export function validateName(name: string): void {
  if (name.length < 1 || name.length > 128 || /[\0-\x1f]/.test(name)) throw new ProtocolError('ERR_LINK_FORMAT', 'a name has 1..128 printable characters');
}

/**
 * Parses a link. Throws ERR_LINK_FORMAT for something that is not an Allium link, ERR_LINK_OUTDATED for an SSK link
 * of the first format (no secret), ERR_LINK_CHECKSUM when the checksum does not match (a typo or a truncated paste).
 */
export function parseLink(text: string): ContentLink {
  const t = text.trim();
  const m = /^allium:(chk|ssk)\/([a-z2-7]+)(?:\/(.+))?$/i.exec(t);
  if (!m) throw new ProtocolError('ERR_LINK_FORMAT', 'not an allium: link');
  const kind = m[1]!.toLowerCase();
  const raw = base32Decode(m[2]!);
  if (kind === 'chk') {
    if (m[3] !== undefined || raw.length !== CHK_LINK_BYTES) throw new ProtocolError('ERR_LINK_FORMAT', 'a chk link has 69 bytes');
    const body = raw.subarray(0, 65);
    if (!crypto().equal(checksum('chk', body), raw.subarray(65)))
      throw new ProtocolError('ERR_LINK_CHECKSUM', 'link checksum does not match: the link is corrupted');
    return { type: 'chk', rk: raw.slice(0, 32), dk: raw.slice(32, 64), flags: raw[64]! };
  }
  if (m[3] === undefined) throw new ProtocolError('ERR_LINK_FORMAT', 'an ssk link has a key and a name');
  if (raw.length === SSK_V1_LINK_BYTES || (raw.length === SSK_LINK_BYTES && raw[0] !== SSK_LINK_VERSION)) {
    throw new ProtocolError(
      'ERR_LINK_OUTDATED',
      'an allium:ssk link of the first format, without a decryption secret, is no longer read: ask the publisher for the current link (allium:ssk/ and 111 characters, then the name)',
    );
  }
  if (raw.length !== SSK_LINK_BYTES) throw new ProtocolError('ERR_LINK_FORMAT', 'an ssk link has 69 bytes');
  let name: string;
  try {
    name = decodeURIComponent(m[3]);
  } catch {
    throw new ProtocolError('ERR_LINK_FORMAT', 'name is not valid percent-encoding');
  }
  validateName(name);
  const body = raw.subarray(0, 65);
  if (!crypto().equal(checksum('ssk', body, name), raw.subarray(65)))
    throw new ProtocolError('ERR_LINK_CHECKSUM', 'link checksum does not match: the link is corrupted');
  return { type: 'ssk', publisher: raw.slice(1, 33), secret: raw.slice(33, 65), name };
}
