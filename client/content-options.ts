/**
 * What ContentClient's calls take and give (docs/developer-guide.md §Content): the options of put, get, publish and
 * edition lookups, and a file opened for reading. Every options object carries `signal` (AbortOptions).
 */
import type { BlockRef } from '../protocol/chk.js';
import type { AbortOptions } from '../net/abort.js';

export interface Progress {
  (done: number, total: number | null): void;
}

export interface PutOptions extends AbortOptions {
  /**
   * Convergent keys (default false: random keys). Convergent keys make the same file give the same link and be
   * stored once, but anyone with a copy of the file can compute its routing keys and test whether a relay holds it
   * or a client fetches it (a confirmation attack, content.md §9). Random keys give no such test.
   */
  convergent?: boolean;
  /**
   * Keys convergent under this secret (content.md §2, §10.4): deterministic for whoever has the secret (a resumed
   * publish makes the same blocks), random to everyone else. Ignored with `convergent: true`.
   */
  convergenceSecret?: Uint8Array;
  /** Blocks the network already acknowledged (an insert journal, content.md §10.4): not sent again. */
  skip?: (rk: Uint8Array) => boolean;
  /** Called once a holder acknowledged a block (`ok` or `exists`). */
  onStored?: (rk: Uint8Array) => void;
  /** Counts, filled in as blocks are stored or skipped. */
  stats?: { stored: number; skipped: number };
  onProgress?: Progress;
}

/** A file opened for reading: its size, its blocks, and a reader of byte ranges (content.md §12.3). */
export interface OpenedContent {
  readonly size: number;
  /** Every block of the file (manifest blocks first). */
  blocks(): BlockRef[];
  /** Bytes [start, end) in order, fetching only the segments that cover them. */
  read(options?: { start?: number; end?: number; onProgress?: Progress } & AbortOptions): AsyncGenerator<Uint8Array>;
}

/**
 * Publishing an edition: whether to store edition hints (content.md §11.1; default true), the clock, and the link's
 * secret (default: derived from the publisher's key and the name, so every edition has the same link).
 */
export interface PublishOptions extends PutOptions {
  hints?: boolean;
  now?: () => number;
  secret?: Uint8Array;
}

/** latestEdition(): ERR_UNREACHABLE rather than null when nothing was found and holders could not be asked (`strict`). */
export interface LatestEditionOptions extends AbortOptions {
  strict?: boolean;
  /** Ask the edition hints too (default true). */
  hints?: boolean;
  now?: number;
}

export interface GetOptions extends AbortOptions {
  onProgress?: Progress;
}

/**
 * The calls that can run as part of a session (content.md §8.2 "Sessions"): fetchAnywhere(), fetchFromAll(),
 * fetchAnswers(), storeAll(), storeEverywhere().
 */
/**
 * A session (client/content.ts ContentSession, made by ContentClient.session()): named here by what it shows, so that
 * this module does not import the client's; a call takes only a session of its own client.
 */
export interface ContentSessionHandle {
  readonly closed: boolean;
  close(): void;
}

export interface SessionOptions extends AbortOptions {
  /**
   * Run on this session's circuits (ContentClient.session(), of the same client) instead of an operation of the call's
   * own. Default: an operation of its own, closed when the call settles.
   */
  session?: ContentSessionHandle;
}

/** fetchFromAll() and fetchAnswers(). */
export interface FetchAllOptions extends SessionOptions {
  /** Asks for the stored head only (mailbox slots). */
  head?: boolean;
  /** Called with each copy as its holder answers, before the slowest holder has (it must not throw). */
  onCopy?: (bytes: Uint8Array) => void;
}

export interface ContentOptions {
  /** Copies of each block (default 3). */
  replication?: number;
  /** Blocks a put stores at once (default 8). */
  concurrency?: number;
  /**
   * Blocks a read fetches at once (default CONTENT_FETCHES_PER_CIRCUIT × circuitsPerOperation: 8 on each of the 3
   * circuits, content.md §8.2).
   */
  fetchConcurrency?: number;
  /** Largest manifest `get` assembles from parts (default MAX_MANIFEST_BYTES, 64 MiB: files up to about 22 GB). */
  maxManifestBytes?: number;
  /**
   * How long one of an operation's circuits takes new requests after its first (default 10 minutes,
   * CONTENT_CIRCUIT_DIRTINESS, content.md §8.2).
   */
  circuitDirtinessMs?: number;
  /** Circuits (each to a forwarder) per operation (default 3, CONTENT_CIRCUITS_PER_OPERATION, content.md §8.2). */
  circuitsPerOperation?: number;
  /**
   * Circuits built ahead of operations (content.md §8.2): after an operation takes circuits, up to
   * circuitsPerOperation wait, used by no operation, for the next one (default true). False builds each operation's
   * circuits at its first request, as before; the isolation is the same either way.
   */
  circuitsAhead?: boolean;
  /** The clock that limit is read from (default Date.now; tests inject one). */
  now?: () => number;
  /**
   * Measurement only (npm run bench:content compares with it): requests go straight to each holder on one circuit per
   * holder kept for the client's life, blocks in file order, fetches unpadded — content as it was before content.md
   * §8.2–§8.3, without any of their protections (the guard can tell files apart, holders link requests). Default
   * false; never set it for real use.
   */
  directForMeasurement?: boolean;
}
