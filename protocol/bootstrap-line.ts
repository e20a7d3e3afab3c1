/**
 * Bootstrap lines and bridge lines (specs/link.md §2.5, specs/directory.md §6.4): how a relay or client is told of
 * its first relay. One parser for both, used by the relay's configuration, the client and the command line.
 *
 *   bootstrap line  "ws://host:port/path FINGERPRINT"                     (what `allium relay` prints)
 *   bridge line     "bridge wss://host/path FINGERPRINT secret=SECRET"    (what `allium relay` prints for a bridge)
 *
 * The URL is a link URL (dial-policy.ts isLinkUrl: ws or wss, a host, a path, no credentials, query or fragment);
 * FINGERPRINT is the relay's identity key and SECRET the bridge's 32-byte pre-shared key, each as 64 hex digits. The
 * leading word "bridge" may be left out. Every error is ERR_CONFIG naming what is wrong, never echoing a secret.
 */
import { parseIdentityFingerprint } from '../crypto/keys.js';
import { isLinkUrl } from './dial-policy.js';
import { ConfigError } from './errors.js';

export interface BootstrapLine {
  readonly url: string;
  readonly identity: Uint8Array;
}

export interface BridgeLine extends BootstrapLine {
  /** The bridge secret: the link handshake's pre-shared key. */
  readonly secret: Uint8Array;
  /** The line as given, normalised (for messages and storage). */
  readonly line: string;
}

/**
 * A fingerprint as an identity key: 64 hex digits that are a valid Ed25519 public key. Throws ERR_CONFIG naming
 * `where`; a typo almost always gives digits that are not a key, refused here rather than found unreachable later.
 */
export function identityOf(fingerprint: string, where: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(fingerprint)) throw new ConfigError(`${where}: the fingerprint must be 64 hex digits`);
  try {
    return parseIdentityFingerprint(fingerprint);
  } catch {
    throw new ConfigError(`${where}: the fingerprint is 64 hex digits but not a relay identity key (not a valid Ed25519 public key: a typo?)`);
  }
}

/** Parses "ws://host:port/path FINGERPRINT". */
export function parseBootstrapLine(line: string): BootstrapLine {
  const parts = line.trim().split(/\s+/);
  if (parts.length !== 2 || !isLinkUrl(parts[0]!)) {
    throw new ConfigError(`bootstrap line "${line}": expected "ws://host:port/path FINGERPRINT"`);
  }
  return { url: parts[0]!, identity: identityOf(parts[1]!, `bootstrap line "${line}"`) };
}

/** Parses a bridge line. */
export function parseBridgeLine(line: string): BridgeLine {
  const parts = line.trim().split(/\s+/);
  if (parts[0] === 'bridge') parts.shift();
  const expected = 'expected "bridge wss://host/path FINGERPRINT secret=SECRET"';
  if (parts.length !== 3 || !isLinkUrl(parts[0]!)) throw new ConfigError(`bridge line: ${expected}`);
  const identity = identityOf(parts[1]!, 'bridge line');
  const m = /^secret=([0-9a-fA-F]{64})$/.exec(parts[2]!);
  if (!m) throw new ConfigError(`bridge line: the secret must be "secret=" and 64 hex digits (${expected})`);
  const secret = new Uint8Array(32);
  for (let i = 0; i < 32; i++) secret[i] = parseInt(m[1]!.slice(2 * i, 2 * i + 2), 16);
  return { url: parts[0]!, identity, secret, line: `bridge ${parts[0]} ${parts[1]!.toLowerCase()} secret=${m[1]!.toLowerCase()}` };
}
