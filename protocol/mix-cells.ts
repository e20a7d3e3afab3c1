/**
 * Bodies of the message-mode link cells (specs/mix.md §3): MIX carries a mix packet as it is, MIX_POLL an inbox
 * secret, MIX_MAIL one payload of mail or none. Zero padding is checked, so a body decodes exactly or not at all.
 */
import { ByteReader } from './bytes.js';
import { CELL_BODY_LEN } from './constants.js';
import { ProtocolError } from './errors.js';
import { MIX_PAYLOAD_LEN } from './mix-packet.js';

export const MIX_INBOX_SECRET_LEN = 32;
export const MixMailFlag = { NONE: 0, MAIL: 1 } as const;

export function mixPollBody(inboxSecret: Uint8Array): Uint8Array {
  if (inboxSecret.length !== MIX_INBOX_SECRET_LEN) throw new ProtocolError('ERR_BAD_LENGTH', 'an inbox secret is 32 bytes');
  const body = new Uint8Array(CELL_BODY_LEN);
  body.set(inboxSecret);
  return body;
}

export function decodeMixPollBody(body: Uint8Array): Uint8Array {
  const r = new ByteReader(body, 'MIX_POLL body');
  const secret = r.bytes(MIX_INBOX_SECRET_LEN);
  r.zeros();
  return Uint8Array.from(secret);
}

/** A MIX_MAIL body: flags 1 and the payload, or flags 0 and `payload` random bytes (a dummy that looks alike). */
export function mixMailBody(mail: boolean, payload: Uint8Array): Uint8Array {
  if (payload.length !== MIX_PAYLOAD_LEN) throw new ProtocolError('ERR_BAD_LENGTH', `a mix payload is ${MIX_PAYLOAD_LEN} bytes`);
  const body = new Uint8Array(CELL_BODY_LEN);
  body[0] = mail ? MixMailFlag.MAIL : MixMailFlag.NONE;
  body.set(payload, 1);
  return body;
}

export function decodeMixMailBody(body: Uint8Array): { readonly mail: boolean; readonly payload: Uint8Array } {
  const r = new ByteReader(body, 'MIX_MAIL body');
  const flags = r.u8();
  if (flags > MixMailFlag.MAIL) throw new ProtocolError('ERR_SCHEMA', `unknown MIX_MAIL flags ${flags}`);
  const payload = Uint8Array.from(r.bytes(MIX_PAYLOAD_LEN));
  r.zeros();
  return { mail: flags === MixMailFlag.MAIL, payload };
}
