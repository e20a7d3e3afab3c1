/**
 * Bootstrap lines and bridge lines (specs/directory.md §6.7, specs/link.md §2.5): how a relay or client is told of
 * its first relay. One parser for both, used by the relay's configuration, the client and the command line.
 *
 *   bootstrap line  "ws://host:port/path FINGERPRINT"                     (a relay without directory authorities)
 *                   "ws://host:port/path FINGERPRINT authorities=A1+A2+A3" (a relay under directory authorities)
 *   bridge line     "bridge wss://host/path FINGERPRINT secret=SECRET"    (what `allium relay` prints for a bridge)
 *
 * The URL is a link URL (dial-policy.ts isLinkUrl: ws or wss, a host, a path, no credentials, query or fragment);
 * FINGERPRINT is the relay's identity key, A1… the fingerprints of the directory authorities whose consensus the
 * relay follows (1 to MAX_AUTHORITIES, distinct, joined by "+": a comma separates lines in ALLIUM_BOOTSTRAP) and
 * SECRET the bridge's 32-byte pre-shared key, each as 64 hex digits. The leading word "bridge" may be left out. Fields
 * are separated by spaces and tabs only. A line is at most MAX_BOOTSTRAP_LINE characters. Every error is ERR_CONFIG
 * naming what is wrong, never echoing a secret or an overlong line.
 *
 * Whoever supplies a client's lines chooses its directory; a client with no authorities of its own takes them from
 * its lines only when every line names the same set (authoritiesFor), so one planted line cannot choose them.
 */
import { fingerprintOf, parseIdentityFingerprint } from '../crypto/keys.js';
import { MAX_AUTHORITIES } from './consensus.js';
import { isLinkUrl } from './dial-policy.js';
import { ConfigError } from './errors.js';

/** The longest bootstrap or bridge line accepted, in characters (a line naming 16 authorities is about 1,200). */
export const MAX_BOOTSTRAP_LINE = 4096;

export interface BootstrapLine {
  readonly url: string;
  readonly identity: Uint8Array;
  /**
   * The directory authorities the line names (fingerprints, lowercase, ascending), or null for a line without them.
   * Only bootstrap lines carry them.
   */
  readonly authorities?: readonly string[] | null;
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

const BOOTSTRAP_FORM = 'expected "ws://host:port/path FINGERPRINT" or "ws://host:port/path FINGERPRINT authorities=FP+FP+…"';

/** Refuses a line longer than MAX_BOOTSTRAP_LINE before any other work (the message does not echo it). */
function checkLength(line: string, what: string): void {
  if (line.length > MAX_BOOTSTRAP_LINE) throw new ConfigError(`${what}: longer than ${MAX_BOOTSTRAP_LINE} characters`);
}

/**
 * The fields of a line: separated by spaces and tabs only, those at either end ignored (§6.7). Any other white space
 * (a line break, a no-break space, U+2028…) stays inside its field, which then is no URL or fingerprint.
 */
function fieldsOf(line: string): string[] {
  return line.replace(/^[ \t]+|[ \t]+$/g, '').split(/[ \t]+/);
}

/**
 * Parses "ws://host:port/path FINGERPRINT" or "ws://host:port/path FINGERPRINT authorities=A1+A2+…" (specs/directory.md
 * §6.7). Authorities may come in any order and case; they are returned lowercase and ascending.
 */
export function parseBootstrapLine(line: string): BootstrapLine {
  checkLength(line, 'bootstrap line');
  const parts = fieldsOf(line);
  if (parts.length < 2 || parts.length > 3 || !isLinkUrl(parts[0]!)) throw new ConfigError(`bootstrap line "${line}": ${BOOTSTRAP_FORM}`);
  const where = `bootstrap line "${line}"`;
  const identity = identityOf(parts[1]!, where);
  if (parts.length === 2) return { url: parts[0]!, identity, authorities: null };
  const m = /^authorities=(.*)$/.exec(parts[2]!);
  if (!m) throw new ConfigError(`${where}: unknown third field (only "authorities=FP+FP+…" may follow the fingerprint)`);
  const list = m[1]!.split('+');
  if (list.length > MAX_AUTHORITIES) throw new ConfigError(`${where}: more than ${MAX_AUTHORITIES} authorities`);
  const seen = new Set<string>();
  for (const a of list) {
    if (a === '') throw new ConfigError(`${where}: an empty authority fingerprint (authorities are joined by single "+")`);
    const fp = fingerprintOf(identityOf(a, `${where}: authority`));
    if (seen.has(fp)) throw new ConfigError(`${where}: authority ${fp.slice(0, 16)}… named twice`);
    seen.add(fp);
  }
  return { url: parts[0]!, identity, authorities: [...seen].sort() };
}

/** The line a relay prints: its address and fingerprint, and the authorities it follows when it has any. */
export function formatBootstrapLine(url: string, fingerprint: string, authorities: readonly string[] = []): string {
  const auth = [...new Set(authorities.map((a) => a.toLowerCase()))].sort();
  return auth.length ? `${url} ${fingerprint.toLowerCase()} authorities=${auth.join('+')}` : `${url} ${fingerprint.toLowerCase()}`;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The one set of directory authorities the lines that name any agree on (lowercase, ascending), or null when none
 * names any. Throws ERR_CONFIG when two lines name different sets, or a line names a set other than `configured`
 * (when not empty). Lines that name none are not looked at: a relay's lines never choose its authorities (§6.7).
 */
export function namedAuthorities(lines: readonly BootstrapLine[], configured: readonly string[] = []): string[] | null {
  const conf = configured.length ? [...new Set(configured.map((a) => a.toLowerCase()))].sort() : null;
  let named: readonly string[] | null = null;
  for (const b of lines) {
    if (!b.authorities) continue;
    const fp = fingerprintOf(b.identity).slice(0, 16);
    if (conf && !sameSet(conf, b.authorities)) {
      throw new ConfigError(
        `bootstrap line of ${fp}… names ${b.authorities.length} directory authorities other than the ${conf.length} configured: use the set the network's operators publish`,
      );
    }
    if (named && !sameSet(named, b.authorities)) {
      throw new ConfigError(
        `bootstrap lines name different sets of directory authorities (the line of ${fp}… differs from an earlier line): which network is meant?`,
      );
    }
    named = b.authorities;
  }
  return named && [...named];
}

/**
 * The directory authorities a client follows (specs/directory.md §6.7): those `configured` (when not empty), else the
 * set every one of its bootstrap lines names, else none (an empty array) when no line names any. Throws ERR_CONFIG
 * as namedAuthorities does, and — with nothing configured — when some lines name authorities and others do not: one
 * planted line naming its author's authorities among lines of the old form would otherwise decide whose consensus
 * the client accepts, and with it the whole directory.
 */
export function authoritiesFor(lines: readonly BootstrapLine[], configured: readonly string[] = []): string[] {
  const named = namedAuthorities(lines, configured);
  if (configured.length) return [...new Set(configured.map((a) => a.toLowerCase()))].sort();
  if (!named) return [];
  const without = lines.find((b) => !b.authorities);
  if (without) {
    throw new ConfigError(
      `the bootstrap line of ${fingerprintOf(without.identity).slice(0, 16)}… names no directory authorities but others name ${named.length}: give every line in one form, as the network's operators publish them, or configure the authorities (--authority)`,
    );
  }
  return named;
}

/** Parses a bridge line. */
export function parseBridgeLine(line: string): BridgeLine {
  checkLength(line, 'bridge line');
  const parts = fieldsOf(line);
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
