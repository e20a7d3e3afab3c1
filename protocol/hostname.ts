/**
 * Host names as a client takes them from applications (specs/streams.md §6.4). Every decision about where a name
 * goes — above all whether it is a hidden `.allium` address, which must never reach an exit and so public DNS — is
 * made on the normalised form this returns, which is also what BEGIN carries.
 *
 *   IPv6 literal (with or without brackets, no zone)   → kept, lower case
 *   IPv4 dotted quad (0–255, no leading zeros)         → kept
 *   otherwise a DNS name: ASCII letters, digits, "-", "_", "."; lower case; one trailing "." dropped; labels 1–63,
 *   not starting or ending with "-"; 253 characters at most; not all-numeric (IPv4 in another notation)
 *
 * Odd forms are refused, never repaired: no second spelling of a name is left for a resolver to map onto another.
 */
import ipaddr from 'ipaddr.js';
import { ProtocolError } from './errors.js';

export const HIDDEN_TLD = 'allium';

export interface NormalizedHost {
  /** The name to use from here on. */
  readonly host: string;
  /** `hidden`: the last label is `allium` (a Messenger's business, never an exit's). */
  readonly kind: 'hidden' | 'dns' | 'ipv4' | 'ipv6';
}

const DNS_CHARS = /^[A-Za-z0-9._-]+$/;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;

function refuse(why: string): never {
  throw new ProtocolError('ERR_ADDRESS_FORMAT', `host name refused: ${why}`);
}

/** Normalises a host name (specs/streams.md §6.4). Throws ERR_ADDRESS_FORMAT for a form it refuses. */
export function normalizeHost(input: string): NormalizedHost {
  if (typeof input !== 'string' || input.length === 0) refuse('empty');
  if (input.startsWith('[') || input.includes(':')) {
    const inner = input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input;
    if (inner.includes('%') || inner.includes('[') || inner.includes(']') || !ipaddr.IPv6.isValid(inner)) refuse('not an IPv6 literal');
    return { host: input.toLowerCase(), kind: 'ipv6' };
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(input)) return { host: input, kind: 'ipv4' };
  if (!DNS_CHARS.test(input)) refuse('only ASCII letters, digits, "-", "_" and "." (send internationalised names as xn--)');
  let host = input.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.length === 0 || host.length > 253) refuse('a name is 1 to 253 characters');
  const labels = host.split('.');
  for (const l of labels) if (!LABEL.test(l)) refuse('every label is 1 to 63 characters and neither starts nor ends with "-"');
  if (labels.every((l) => NUMERIC_LABEL.test(l))) refuse('an IPv4 address must be written as four decimal octets');
  return { host, kind: labels[labels.length - 1] === HIDDEN_TLD ? 'hidden' : 'dns' };
}
