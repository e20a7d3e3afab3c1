/**
 * The one error hierarchy of Allium (specs/README.md §Errors).
 *
 * Every error carries a stable `code` (tests and callers match on codes, never on message text) and one `kind`
 * from a small set. Messages never contain key material, links, client addresses or destinations.
 */

export type ErrorKind =
  | 'protocol' // the peer broke the protocol: malformed, unexpected or unauthenticated input
  | 'limit' // a named resource limit was exceeded
  | 'crypto' // a cryptographic check failed (MAC, signature, key agreement)
  | 'timeout' // a deadline passed
  | 'aborted' // the caller aborted through an AbortSignal, or the object was stopped
  | 'not-found' // the thing asked for does not exist (relay, content key, stream)
  | 'config' // the local configuration is invalid
  | 'system' // the operating system refused a local resource the configuration names (address in use, permission)
  | 'internal'; // a bug: an invariant of our own code failed

/** The codes, with their kinds. One line each: "Thrown when…" lives beside the code in specs/README.md. */
export const ERROR_CODES = {
  // generic decoding (protocol/bytes.ts, protocol/cbor.ts)
  ERR_TRUNCATED: 'protocol', // input ended before a field was complete
  ERR_TRAILING_BYTES: 'protocol', // bytes remained after a structure that must fill its input
  ERR_BAD_LENGTH: 'protocol', // a fixed-size field or structure has the wrong length
  ERR_CBOR_MALFORMED: 'protocol', // CBOR could not be decoded
  ERR_CBOR_NONCANONICAL: 'protocol', // CBOR decoded but is not in the deterministic encoding
  ERR_CBOR_DEPTH: 'limit', // CBOR nesting deeper than MAX_CBOR_DEPTH
  ERR_CBOR_TOO_LARGE: 'limit', // CBOR input larger than the caller's cap
  ERR_SCHEMA: 'protocol', // a decoded message has a missing, unknown or wrongly typed field
  // cells (protocol/cell.ts, protocol/relay-cell.ts)
  ERR_CELL_SIZE: 'protocol', // a cell is not exactly CELL_LEN bytes
  ERR_CELL_COMMAND: 'protocol', // unknown cell command
  ERR_CELL_CIRCUIT_ID: 'protocol', // circuit id not allowed for this command
  ERR_CELL_PADDING: 'protocol', // non-zero bytes where the spec requires zero padding
  ERR_RELAY_COMMAND: 'protocol', // unknown relay command, or one not taken here (this hop, this sender, this circuit's state)
  ERR_RELAY_LENGTH: 'protocol', // relay payload length field larger than the data area
  // onion and handshake (protocol/onion.ts, protocol/ntor.ts)
  ERR_ONION_MAC: 'crypto', // the setup onion's MAC did not verify under any current onion key
  ERR_ONION_REPLAY: 'protocol', // a setup onion was seen before under the same onion key
  ERR_ONION_SLOT: 'protocol', // a decrypted routing slot is malformed (bad command or non-zero reserved bytes)
  ERR_ONION_PATH: 'config', // a path is empty, too long, or repeats a hop
  // message mode (protocol/mix-packet.ts, specs/mix.md §6)
  ERR_MIX_MAC: 'crypto', // a mix packet's MAC did not verify under any mix key
  ERR_MIX_REPLAY: 'protocol', // a mix packet was seen before under the same mix key
  ERR_MIX_SLOT: 'protocol', // a decrypted mix routing slot is malformed
  ERR_MIX_PATH: 'config', // a mix path is empty, too long or repeats a relay; or a message is too long for one packet
  ERR_MIX_UNREACHABLE: 'not-found', // message mode: no mix gateway, or the recipient has no mix address
  ERR_MIX_UNACKNOWLEDGED: 'timeout', // message mode: a message was retransmitted MIX_MAX_RETRANSMITS times, never acknowledged
  ERR_HANDSHAKE_AUTH: 'crypto', // a hop's key confirmation (AUTH) did not verify
  ERR_HANDSHAKE_FAILED: 'protocol', // a hop reported failure in its reply slot
  ERR_BAD_POINT: 'crypto', // X25519 produced the all-zero output (small-order input)
  // relay crypto (protocol/relay-crypto.ts)
  ERR_RELAY_MAC: 'crypto', // a relay cell's per-hop tag did not verify: modified, replayed, reordered or injected
  ERR_RELAY_COUNTER: 'limit', // a per-direction cell counter reached its limit; the circuit must be rebuilt
  ERR_RELAY_NOT_RECOGNIZED: 'protocol', // a backward cell was not recognised by any hop of the circuit
  ERR_KEY_WIPED: 'internal', // a key object was used after wipe()
  ERR_SENDME: 'protocol', // a SENDME that acknowledges unsent data, or a peer sending beyond its window
  ERR_STREAM: 'protocol', // a stream message in the wrong state or for an unknown stream
  ERR_SOCKS: 'protocol', // a local application's SOCKS5 handshake that the listener does not accept
  ERR_EXIT_POLICY: 'protocol', // the exit's policy refuses the destination
  ERR_STREAM_FAILED: 'not-found', // the exit could not connect (refused, unreachable, resolve failed)
  ERR_CONTROL_FRAGMENT: 'protocol', // CONTROL fragments out of order, or a non-final fragment that is not full
  ERR_RELAY_EARLY: 'protocol', // RELAY_EARLY travelling backward, or more RELAY_EARLY cells than allowed
  // links (protocol/link-handshake.ts, relay/link.ts)
  ERR_LINK_FRAME: 'protocol', // a link frame has the wrong size or does not authenticate
  ERR_LINK_PROBE: 'protocol', // a first message that is not an Allium handshake for this relay (or lacks the bridge secret)
  ERR_LINK_AUTH: 'crypto', // the peer does not hold the identity key it must have
  ERR_LINK_REPLAY: 'protocol', // a first handshake message seen before
  ERR_LINK_CLOCK: 'protocol', // a handshake timestamp outside the allowed clock skew
  ERR_LINK_VERSION: 'protocol', // no link protocol version in common
  ERR_LINK_HANDSHAKE: 'protocol', // any other handshake violation
  ERR_LINK_CLOSED: 'aborted', // the link closed while something was waiting on it
  ERR_DIAL_REFUSED: 'not-found', // a relay refused to dial an address that is not public unicast (specs/link.md §1.1)
  ERR_UNREACHABLE: 'not-found', // no link could be opened to a relay
  // directory (protocol/descriptor.ts, relay/directory.ts)
  ERR_DESCRIPTOR: 'protocol', // a relay descriptor is malformed or inconsistent
  ERR_DESCRIPTOR_EXPIRED: 'protocol', // a descriptor's expiry has passed
  ERR_DESCRIPTOR_FUTURE: 'protocol', // a descriptor is published further in the future than the clock skew allows
  ERR_DESCRIPTOR_STALE: 'protocol', // a descriptor older than one already held (a replay)
  ERR_DIRECTORY: 'protocol', // a directory response is malformed or fails the cross-check
  // content (protocol/chk.ts, protocol/ssk.ts, relay/content.ts, client/content.ts)
  ERR_CONTENT: 'protocol', // a content block, manifest or record is malformed
  ERR_CONTENT_TAMPERED: 'crypto', // a block does not hash to its routing key or does not decrypt under the link key
  ERR_SITE_MANIFEST: 'protocol', // a site manifest (or an edition hint's target) is malformed (protocol/site-manifest.ts)
  ERR_FILTER: 'protocol', // a document the content filter cannot make safe (client/content-filter/)
  ERR_LINK_FORMAT: 'config', // text that is not an allium: link
  ERR_LINK_CHECKSUM: 'config', // an allium: link whose checksum does not match (a typo or a truncated paste)
  ERR_LINK_OUTDATED: 'config', // an allium:ssk link of the first format, without a decryption secret
  ERR_QUOTA: 'limit', // a relay's storage quota is full
  ERR_RECORD_STALE: 'protocol', // an updatable-key edition not newer than the one held
  // messaging (specs/messaging.md: protocol/address.ts, key-blinding.ts, endpoint-descriptor.ts, descriptor-auth.ts,
  // message-handshake.ts, ratchet.ts, ratchet-state.ts, padding.ts)
  ERR_ADDRESS_FORMAT: 'config', // text that is not an Allium address or address card (or whose key is not a valid point), or a refused host name
  ERR_ADDRESS_CHECKSUM: 'config', // an address or address card whose checksum does not match (a typo or a truncated paste)
  ERR_ADDRESS_VERSION: 'config', // an address or address card of a version this implementation does not speak
  ERR_ENDPOINT_DESCRIPTOR: 'protocol', // an endpoint descriptor is malformed or its body is inconsistent
  ERR_ENDPOINT_MISMATCH: 'protocol', // an endpoint descriptor stored under the wrong locator, or for another address or period
  ERR_ENDPOINT_DECRYPT: 'crypto', // an endpoint descriptor layer does not decrypt under its address, period or cookie
  ERR_CLIENT_AUTH: 'crypto', // an endpoint descriptor needs client authorisation that none of our keys gives
  ERR_MESSAGE_AUTH: 'crypto', // a message or session handshake does not authenticate (wrong key, tampered header or body)
  ERR_MESSAGE_REPLAY: 'protocol', // a message whose key was already used or discarded: a replay or a duplicate
  ERR_RATCHET_SKIP: 'limit', // a message would need more than MAX_SKIP skipped message keys
  ERR_GROUP_MEMBERSHIP: 'protocol', // a group change or message from someone the group's roster does not allow, or a group call by a non-member or non-admin
  ERR_DEVICE_LIST: 'protocol', // a device list or envelope from someone the person's list does not allow, or a call only the primary may make
  ERR_INTRO_POW: 'protocol', // an introduction's proof of work is missing, below the effort it claims, for no current seed, or replayed
  ERR_PREKEYS_UNAVAILABLE: 'protocol', // a recipient known to publish prekeys has no usable prekey record at the holders, or every holder refused the item sealed to them: not sent without forward secrecy
  ERR_MAILBOX_POW: 'protocol', // a mailbox item names another slot, carries less work than its slot needs or work that does not verify, or is of version 1 after the window
  ERR_PADDING: 'protocol', // a padded plaintext that is not a bucket size, has an impossible length or non-zero padding
  // signatures and keys
  ERR_SIGNATURE: 'crypto', // an Ed25519 signature did not verify
  ERR_KEY_FORMAT: 'protocol', // a key has the wrong length or form
  // generic
  ERR_LIMIT: 'limit', // a named limit was exceeded (the message names it)
  ERR_TIMEOUT: 'timeout', // a deadline passed
  ERR_ABORTED: 'aborted', // aborted by the caller or by stop()
  ERR_NOT_FOUND: 'not-found', // a thing asked for does not exist
  ERR_CONFIG: 'config', // invalid configuration
  ERR_SYSTEM: 'system', // the operating system refused an address, file or directory the configuration names
  ERR_INTERNAL: 'internal', // an invariant of our own code failed
  ERR_CRYPTO_UNAVAILABLE: 'internal', // no libsodium binding could be loaded, or crypto used before init
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The DESTROY reasons by name (specs/cells.md §4); protocol/cell.ts gives their values (DestroyReason). */
export type DestroyReasonName =
  'NONE' | 'PROTOCOL' | 'INTERNAL' | 'REQUESTED' | 'HIBERNATING' | 'RESOURCE_LIMIT' | 'CONNECT_FAILED' | 'LINK_CLOSED' | 'TIMEOUT' | 'FINISHED' | 'CRYPTO';

/** The END reasons by name (specs/streams.md §2.4); protocol/stream-messages.ts gives their values (EndReason). */
export type EndReasonName =
  | 'DONE'
  | 'CONNECT_REFUSED'
  | 'EXIT_POLICY'
  | 'RESOLVE_FAILED'
  | 'TIMEOUT'
  | 'DESTROYED'
  | 'INTERNAL'
  | 'HOST_UNREACHABLE'
  | 'NET_UNREACHABLE'
  | 'MISC'
  | 'RESOURCE_LIMIT';

export interface AlliumErrorOptions {
  cause?: unknown;
  /** The DESTROY reason sent when this error tears a circuit down (default: by kind, `destroyReasonForKind`). */
  destroy?: DestroyReasonName;
  /** The END reason sent when this error ends a stream (default: by code, `endReasonForCode`). */
  end?: EndReasonName;
}

/**
 * The DESTROY reason of an error that tears a circuit down, when its thrower named none: CRYPTO for a failed check
 * (kind `crypto`), PROTOCOL for everything else. (specs/cells.md §4 also names RESOURCE_LIMIT, TIMEOUT and INTERNAL
 * for those kinds; relays have always sent PROTOCOL for them, and the wire stays as it is until a proposal moves it.)
 */
export function destroyReasonForKind(kind: ErrorKind): DestroyReasonName {
  return kind === 'crypto' ? 'CRYPTO' : 'PROTOCOL';
}

/**
 * The END reason of an error that ends a stream, when its thrower named none: DONE when the caller gave up
 * (ERR_ABORTED: the stream simply ends), TIMEOUT for a deadline, MISC for everything else.
 */
export function endReasonForCode(code: ErrorCode): EndReasonName {
  if (code === 'ERR_ABORTED') return 'DONE';
  return ERROR_CODES[code] === 'timeout' ? 'TIMEOUT' : 'MISC';
}

/**
 * Base class of every error Allium throws on purpose. Besides its code and kind it carries what the peer is told
 * when the error tears down a circuit (`destroyReason`) or ends a stream (`endReason`), so the code that catches it
 * sends that reason and maps nothing by hand.
 */
/**
 * Marks every AlliumError, so that isAlliumError knows one made by another copy of this module (a bundle and its
 * host, or a test runner that loads a file both as CommonJS and as an ES module), where instanceof does not.
 */
const ALLIUM_ERROR = Symbol.for('allium:error');

export class AlliumError extends Error {
  readonly [ALLIUM_ERROR] = true;
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly destroyReason: DestroyReasonName;
  readonly endReason: EndReasonName;
  constructor(code: ErrorCode, message: string, options?: AlliumErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AlliumError';
    this.code = code;
    this.kind = ERROR_CODES[code];
    this.destroyReason = options?.destroy ?? destroyReasonForKind(this.kind);
    this.endReason = options?.end ?? endReasonForCode(code);
  }
}

/**
 * Thrown when a peer breaks the protocol. Tears down the circuit or link it arrived on; a thrower that must tell the
 * peer something other than PROTOCOL (or CRYPTO for a crypto code) names the reason in its options.
 */
export class ProtocolError extends AlliumError {
  constructor(code: ErrorCode, message: string, options?: AlliumErrorOptions) {
    super(code, message, options);
    this.name = 'ProtocolError';
  }
}

/** Thrown when a cryptographic check fails. */
export class CryptoError extends AlliumError {
  constructor(code: ErrorCode, message: string, options?: AlliumErrorOptions) {
    super(code, message, options);
    this.name = 'CryptoError';
  }
}

/** Thrown when a named limit is exceeded; `limit` is the name used in specs/limits.md. */
export class LimitError extends AlliumError {
  readonly limit: string;
  constructor(limit: string, message: string, code: ErrorCode = 'ERR_LIMIT') {
    super(code, `${limit}: ${message}`);
    this.name = 'LimitError';
    this.limit = limit;
  }
}

/** Thrown when a deadline passes. */
export class TimeoutError extends AlliumError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message);
    this.name = 'TimeoutError';
  }
}

/** Thrown when an operation is aborted by its AbortSignal or by stop(). */
export class AbortedError extends AlliumError {
  constructor(message = 'aborted') {
    super('ERR_ABORTED', message);
    this.name = 'AbortedError';
  }
}

/** Thrown when configuration is invalid; the message says what to do. */
export class ConfigError extends AlliumError {
  constructor(message: string) {
    super('ERR_CONFIG', message);
    this.name = 'ConfigError';
  }
}

/**
 * Thrown when the operating system refuses a local resource the configuration names: a listen address in use or
 * not on this machine, a data directory that cannot be created or written; in a browser, a storage write it refuses
 * (browserGroupStorage over its quota). `setting` names the configuration key (or flag) and `errno` the system error
 * code (EADDRINUSE, EACCES, …, or the browser's error name, QuotaExceededError); the message is "setting value: what".
 */
export class SystemError extends AlliumError {
  constructor(
    readonly setting: string,
    readonly errno: string,
    message: string,
  ) {
    super('ERR_SYSTEM', message);
    this.name = 'SystemError';
  }
}

/** Thrown when a thing asked for does not exist. */
export class NotFoundError extends AlliumError {
  constructor(message: string) {
    super('ERR_NOT_FOUND', message);
    this.name = 'NotFoundError';
  }
}

export function isAlliumError(e: unknown): e is AlliumError {
  return e instanceof AlliumError || (e instanceof Error && (e as { [ALLIUM_ERROR]?: unknown })[ALLIUM_ERROR] === true);
}

/** Throws AbortedError if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError();
}
