/**
 * Publishing and fetching content (docs/developer-guide.md §Content): put a file, get a link; anyone with the
 * link gets the file back through anonymous circuits. Every request to a holder travels through a circuit to a
 * forwarder, which passes it one hop on to the holder (content.md §8.3), so the holder does not learn who asked;
 * and those circuits are used so that the entry does not learn what (content.md §8.2, client/content-circuits.ts):
 * a few circuits per operation whatever the holders, blocks in random order, fetches padded to a size class.
 *
 *   const link = await content.put(bytes, { onProgress })            // random keys (content.md §9)
 *   const same = await content.put(bytes, { convergent: true })      // opt-in: same file, same link, deduplicated
 *   const bytes = await content.get(link, { onProgress })
 *   const ssk = await content.publish(publisherKey, 'name', bytes)   // updatable: publish again for a new edition
 *
 * An allium:ssk link carries the secret that finds and decrypts its records (content.md §4): the publisher's is
 * derived from its key and the name unless `secret` says otherwise.
 * Why ~480 lines: every call here (store, fetch with repair, put, open and ranged reads, editions and their hints)
 * runs over the same kind of circuits to holders and under the same shutdown that close() aborts;
 * the codecs are pure and live in protocol/ (file-codec.ts, ssk.ts, site-manifest.ts), the options in
 * content-options.ts, the requests on a circuit in net/content-requests.ts.
 */
import { IdentityKey } from '../crypto/keys.js';
import { concatBytes, toHex } from '../protocol/bytes.js';
import { verifyStoredBlock, type BlockRef } from '../protocol/chk.js';
import { formatLink, parseLink } from '../protocol/content-link.js';
import type { ContentKind, ContentStatus } from '../protocol/content-messages.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { AbortedError, AlliumError, isAlliumError, NotFoundError, throwIfAborted } from '../protocol/errors.js';
import {
  encodeFile,
  fileBlocks,
  openFile,
  readFile,
  SEGMENT_DATA,
  type BlockFetcher,
  type EncodedBlock,
  type OpenedFile,
  type ReadOptions,
} from '../protocol/file-codec.js';
import { createEditionHints, editionPeriods, hintKey } from '../protocol/site-manifest.js';
import { createRecord, openRecord, sskRoutingKeyOf, sskSecret, type SskKey } from '../protocol/ssk.js';
import { fetchItem, NOT_ASKED, NotAskedError, storeItem } from '../net/content-requests.js';
import type { ClientCircuit } from '../net/circuit.js';
import { Shutdown, signalOption, type AbortOptions } from '../net/abort.js';
import { crypto } from '../crypto/index.js';
import type { CircuitSource } from './client.js';
import {
  CONTENT_FETCHES_PER_CIRCUIT,
  CONTENT_REFUSED_DEADLINE_MS,
  CONTENT_REFUSED_ROUNDS,
  ContentCircuits,
  type OperationCircuits,
} from './content-circuits.js';

import type {
  ContentOptions,
  FetchAllOptions,
  GetOptions,
  LatestEditionOptions,
  OpenedContent,
  PublishOptions,
  PutOptions,
  SessionOptions,
} from './content-options.js';

export type {
  ContentSessionHandle,
  ContentOptions,
  FetchAllOptions,
  GetOptions,
  LatestEditionOptions,
  OpenedContent,
  Progress,
  PublishOptions,
  PutOptions,
  SessionOptions,
} from './content-options.js';

const FLAG_RANDOM = 1;
/**
 * The longest a get's lead is asked alone (content.md §8.2 "Order"): its other block requests go out when the lead's
 * first request settles or after this long, whichever comes first — a holder that stalls the lead shifts the get's
 * other requests by this much at most.
 */
export const CONTENT_LEAD_ALONE_MS = 2_000;
/** A put stores its blocks in random order within windows of a full segment and its check blocks (content.md §8.2). */
const PUT_WINDOW = SEGMENT_DATA + SEGMENT_DATA / 2;
/** Fetch order within a segment: random (content.md §8.2). */
const shuffled = (xs: number[]): number[] => crypto().shuffle(xs);

/**
 * Several calls of one ContentClient as one operation (content.md §8.2 "Sessions"): the calls given it in their
 * `session` option share its circuits — at most the client's circuits per operation, built (or taken ahead) at its first
 * request, replaced as any operation's are — until close(). For reads that are already linkable to whoever sees them
 * (the slots of one inbox): a session joins at its forwarders what separate operations would keep apart.
 */
export class ContentSession {
  private done = false;

  /** Made by ContentClient.session(). */
  constructor(
    readonly owner: ContentClient,
    readonly circuits: OperationCircuits,
  ) {}

  /** Whether close() was called. */
  get closed(): boolean {
    return this.done;
  }

  /** Ends the session: its circuits close now, or once the requests in flight on them settle. Idempotent. */
  close(): void {
    if (this.done) return;
    this.done = true;
    this.circuits.close();
  }
}

export class ContentClient {
  private readonly circuits: ContentCircuits;
  private readonly k: number;
  private readonly concurrency: number;
  /** Blocks a read (and a manifest's parts) fetches at once: pipelined on each of the operation's circuits. */
  private readonly fetchConcurrency: number;
  private readonly maxManifestBytes: number | undefined;
  /** Aborted by close(): every request and circuit build in flight stops. */
  private readonly shutdown = new Shutdown();
  /** Repairs made while fetching (a holder lacked a block another holder had). */
  repairs = 0;

  /** `client`: the directory and circuits to use (an AlliumClient, or anything with the same two members). */
  constructor(
    private readonly client: CircuitSource,
    options: ContentOptions = {},
  ) {
    this.k = options.replication ?? 3;
    this.concurrency = options.concurrency ?? 8;
    this.maxManifestBytes = options.maxManifestBytes;
    const circuitOptions: ConstructorParameters<typeof ContentCircuits>[1] = {};
    if (options.now) circuitOptions.now = options.now;
    if (options.circuitDirtinessMs !== undefined) circuitOptions.dirtinessMs = options.circuitDirtinessMs;
    if (options.circuitsPerOperation !== undefined) circuitOptions.perOperation = options.circuitsPerOperation;
    if (options.circuitsAhead !== undefined) circuitOptions.ahead = options.circuitsAhead;
    if (options.directForMeasurement) circuitOptions.directForMeasurement = true;
    this.circuits = new ContentCircuits(client, circuitOptions);
    this.fetchConcurrency = Math.max(1, options.fetchConcurrency ?? this.circuits.perOperation * CONTENT_FETCHES_PER_CIRCUIT);
  }

  /** The k holders of `rk` (specs/content.md §6.1): placement salted by the period's shared random value. */
  holders(rk: Uint8Array): Descriptor[] {
    const view = this.client.directory.view;
    return view.holderIndex(view.placement(Date.now())).holders(rk, this.k);
  }

  /**
   * Where to ask when none of the k holders has an item (specs/content.md §6.3): the next k relays by distance,
   * then the holders of the previous placement period (items move after a period ends, by repair).
   */
  fallbackHolders(rk: Uint8Array): Descriptor[] {
    const view = this.client.directory.view;
    const now = Date.now();
    const first = new Set(this.holders(rk).map((d) => d.fingerprint));
    const out: Descriptor[] = [];
    const add = (ds: readonly Descriptor[]): void => {
      for (const d of ds) if (!first.has(d.fingerprint) && !out.includes(d)) out.push(d);
    };
    add(view.holderIndex(view.placement(now)).holders(rk, 2 * this.k));
    const prev = view.previousPlacement(now);
    if (prev) add(view.holderIndex(prev).holders(rk, this.k));
    return out;
  }

  /**
   * Stores one item at each of its k holders (two tries each) and returns what each answered, 'refused' for a
   * holder that could not be reached. Throws ERR_UNREACHABLE when there is no store relay, ERR_ABORTED.
   */
  storeAll(kind: ContentKind, rk: Uint8Array, bytes: Uint8Array, options: SessionOptions = {}): Promise<ContentStatus[]> {
    return this.operation(options, (signal, op) => this.storeAllWith(kind, rk, bytes, signal, op));
  }

  /** Runs `f` under the caller's signal and close()'s. */
  private scoped<T>(options: AbortOptions, f: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.shutdown.run(options, f);
  }

  /**
   * A session: the calls given it (`session` option) run as one operation (content.md §8.2 "Sessions"), on circuits
   * closed by its close() — or by this client's.
   */
  session(): ContentSession {
    return new ContentSession(this, this.circuits.operation());
  }

  /**
   * Runs `f` as one operation (content.md §8.2): on circuits of its own, closed when it ends; or, given a session
   * (`options.session`), on the session's, left open. Throws ERR_CONFIG for another client's session, ERR_ABORTED
   * for a closed one.
   */
  private operation<T>(options: SessionOptions, f: (signal: AbortSignal, op: OperationCircuits) => Promise<T>): Promise<T> {
    const session = options.session;
    if (session) {
      if (!(session instanceof ContentSession) || session.owner !== this)
        return Promise.reject(new AlliumError('ERR_CONFIG', "a content session is its own client's only"));
      if (session.closed) return Promise.reject(new AbortedError('the content session is closed'));
      return this.scoped(options, (signal) => f(signal, session.circuits));
    }
    return this.scoped(options, async (signal) => {
      const op = this.circuits.operation();
      try {
        return await f(signal, op);
      } finally {
        op.close();
      }
    });
  }

  /** storeAll on the operation `op`'s STORE circuits. */
  private async storeAllWith(kind: ContentKind, rk: Uint8Array, bytes: Uint8Array, signal: AbortSignal, op: OperationCircuits): Promise<ContentStatus[]> {
    const holders = this.holders(rk);
    if (holders.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no store relay in the directory');
    return Promise.all(holders.map((h) => this.storeAt(op, h, kind, rk, bytes, signal)));
  }

  /**
   * Stores at one holder (content.md §8.2 "Retries"): a second try, through another forwarder, only when the first
   * got no answer from the holder for want of asking — the circuit could not be built or closed under the request, or
   * the forwarder answered that it did not ask (`unreachable`, `unknown`, `refused`). A holder that was asked and
   * failed (the forwarder ends the stream) is not asked again. When both tries were answered `refused` (forwarders at
   * their bounds), another round of two tries follows once one of the operation's requests to that holder (or any of
   * its requests) has ended, at most CONTENT_REFUSED_ROUNDS more and none after CONTENT_REFUSED_DEADLINE_MS
   * ("Refused everywhere", refusedRounds). 'refused' when no try succeeded.
   */
  private async storeAt(
    op: OperationCircuits,
    h: Descriptor,
    kind: ContentKind,
    rk: Uint8Array,
    bytes: Uint8Array,
    signal: AbortSignal,
  ): Promise<ContentStatus> {
    let last: string | undefined;
    const nextRound = refusedRounds(op, signal);
    for (let round = 0; ; round++) {
      let refused = false;
      for (let attempt = 0; attempt < 2; attempt++) {
        let circuit: ClientCircuit | null = null;
        let forwarded = false;
        refused = false;
        try {
          const status = await op.with(
            h,
            signal,
            (c, f, forwarder) => {
              circuit = c;
              forwarded = f !== null;
              last = forwarder;
              return storeItem(c, kind, rk, bytes, f ? { signal, forwardTo: f } : { signal });
            },
            last,
          );
          if (!NOT_ASKED.has(status)) return status;
          if (!forwarded) break; // the holder's own answer: not asked again
          refused = status === 'refused';
          // A later round's refusal is the load it waited out, not the forwarder's doing: not counted, so that the
          // rounds go through the operation's circuits and build none to new forwarders. A holder two forwarders
          // could not reach is not tried through another (§8.2 "Retries").
          if (!op.notAsked(last!, h.fingerprint, status, round === 0 || !refused)) break;
        } catch (e) {
          if (e instanceof AbortedError) throw e;
          const c = circuit as ClientCircuit | null;
          if (!(c === null || (isAlliumError(e) && e.code === 'ERR_LINK_CLOSED' && c.state !== 'open'))) break;
        }
      }
      // Refused by the forwarder at its bounds, not by the holder: its slots free as requests end.
      if (!refused || !(await nextRound(h))) break;
    }
    return 'refused';
  }

  /** Stores one item at its k holders; resolves when at least one acknowledged it, rejects otherwise. */
  storeEverywhere(kind: ContentKind, rk: Uint8Array, bytes: Uint8Array, options: SessionOptions = {}): Promise<ContentStatus[]> {
    return this.operation(options, (signal, op) => this.storeEverywhereWith(kind, rk, bytes, signal, op));
  }

  private async storeEverywhereWith(
    kind: ContentKind,
    rk: Uint8Array,
    bytes: Uint8Array,
    signal: AbortSignal,
    op: OperationCircuits,
  ): Promise<ContentStatus[]> {
    const results = await this.storeAllWith(kind, rk, bytes, signal, op);
    if (results.length > 0 && results.every((r) => r === 'quota')) {
      throw new AlliumError('ERR_QUOTA', 'every holder refused: storage quota full');
    }
    if (kind === 'record' && results.every((r) => r === 'stale')) throw new AlliumError('ERR_RECORD_STALE', 'a newer edition is already published');
    if (!results.some((r) => r === 'ok' || r === 'exists' || (kind === 'record' && r === 'stale'))) {
      throw new AlliumError('ERR_UNREACHABLE', `no holder accepted the ${kind} (${results.join(', ')})`);
    }
    return results;
  }

  /**
   * Fetches one item from its holders, nearest first; repairs holders that lacked it. When none had it and some of
   * them were refused by forwarders at their bounds, those are asked again in rounds (content.md §8.2 "Refused
   * everywhere"). Null when every holder answered without it; ERR_UNREACHABLE when none had it but some could not be
   * asked (or there is no holder).
   */
  fetchAnywhere(kind: ContentKind, rk: Uint8Array, check: (bytes: Uint8Array) => boolean, options: SessionOptions = {}): Promise<Uint8Array | null> {
    return this.operation(options, (signal, op) => this.fetchAnywhereWith(op, kind, rk, check, signal));
  }

  /** fetchAnywhere() as part of `op`; `answered` is called as each request to a holder settles, whatever its answer. */
  private async fetchAnywhereWith(
    op: OperationCircuits,
    kind: ContentKind,
    rk: Uint8Array,
    check: (bytes: Uint8Array) => boolean,
    signal: AbortSignal,
    answered?: () => void,
  ): Promise<Uint8Array | null> {
    const lacking: Descriptor[] = [];
    const holders = this.holders(rk);
    if (holders.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no store relay in the directory');
    /** Holders whose last try failed (not asked, or asked and failed). */
    const failed = new Set<Descriptor>();
    let lastError: unknown = null;
    const nextRound = refusedRounds(op, signal);
    // Beyond the k holders when none of them had it: the next relays by distance and last period's holders; those
    // count only if they have it (their failures neither make the item unreachable nor call for a repair).
    let ask = [...holders, ...this.fallbackHolders(rk)];
    for (let round = 0; ; round++) {
      // Holders whose last try a forwarder refused at its bounds: asked again in the next round ("Refused everywhere").
      const refused: Descriptor[] = [];
      for (const h of ask) {
        throwIfAborted(signal);
        try {
          const bytes = await this.fetchFrom(op, h, kind, rk, signal, false, round === 0, answered);
          failed.delete(h);
          if (bytes && check(bytes)) {
            for (const l of lacking.filter((x) => holders.includes(x))) {
              this.repairs++;
              // On this operation's circuits, which stay open until the repair settles.
              void this.shutdown.run({}, (s) => this.storeAt(op, l, kind, rk, bytes, s)).catch(() => undefined);
            }
            return bytes;
          }
          lacking.push(h); // missing, or a tampered copy: fetched from the next holder and repaired here
        } catch (e) {
          if (e instanceof AbortedError) throw e;
          failed.add(h);
          if (refusedByForwarder(e)) refused.push(h);
          lastError = e;
        }
      }
      const first = refused.find((h) => holders.includes(h));
      if (!first || !(await nextRound(first))) break;
      ask = refused;
    }
    const unreachable = holders.filter((h) => failed.has(h)).length;
    if (unreachable > 0) {
      const why = isAlliumError(lastError) ? `${lastError.code}: ${lastError.message}` : String(lastError);
      throw new AlliumError('ERR_UNREACHABLE', `${unreachable} of ${holders.length} holders could not be asked and the others do not have it (${why})`);
    }
    return null;
  }

  /**
   * One item from one holder, through one of the operation's circuits and its forwarder (content.md §8.2 "Retries").
   * A circuit that could not be built, or that closed under the request (a relay on it restarted, or destroyed it
   * just then), is no answer from the holder, nor is a forwarder's `unreachable`, `refused` or `unknown` (it was at
   * one of its limits, or could not reach the holder just then): one more try, on another circuit to another
   * forwarder when the operation has one. A holder that was asked and then stalled, ended the stream or answered
   * badly is not asked again: the forwarder ends our stream (END HOST_UNREACHABLE) on a circuit still open, and
   * never answers `unreachable` for what the holder did (relay/content-forward.ts). A forwarder's answer counts
   * toward retiring it (MAX_NOT_ASKED_PER_FORWARDER) unless it is a `refused` in a later round (`firstRound` false,
   * content.md §8.2 "Refused everywhere"). `answered` is called as each try settles (an answer, an error or an abort).
   */
  private async fetchFrom(
    op: OperationCircuits,
    h: Descriptor,
    kind: ContentKind,
    rk: Uint8Array,
    signal: AbortSignal,
    head = false,
    firstRound = true,
    answered?: () => void,
  ): Promise<Uint8Array | null> {
    let last: string | undefined;
    for (let attempt = 0; ; attempt++) {
      let circuit: ClientCircuit | null = null;
      let forwarded = false;
      try {
        return await op.with(
          h,
          signal,
          (c, f, forwarder) => {
            circuit = c;
            forwarded = f !== null;
            last = forwarder;
            return fetchItem(c, kind, rk, f ? { head, signal, forwardTo: f } : { head, signal });
          },
          last,
        );
      } catch (e) {
        const c = circuit as ClientCircuit | null;
        const noCircuit = c === null || (isAlliumError(e) && e.code === 'ERR_LINK_CLOSED' && c.state !== 'open');
        // fetchItem's NotAskedError is the forwarder's answer that it did not ask the holder (§8.3).
        const notAsked = forwarded && e instanceof NotAskedError;
        // A holder two forwarders could not reach is gone for the operation: not tried through another (§8.2 "Retries").
        const retry = notAsked && last ? op.notAsked(last, h.fingerprint, e.status, firstRound || e.status !== 'refused') : !op.isGone(h.fingerprint);
        if (e instanceof AbortedError || attempt > 0 || !(noCircuit || notAsked) || !retry) throw e;
      } finally {
        answered?.();
      }
    }
  }

  /**
   * fetchFrom() for a read that asks every holder at once: a holder refused by forwarders at their bounds is asked
   * again in rounds (content.md §8.2 "Refused everywhere"), then counts as not asked (fetchFrom's error).
   */
  private async fetchWithRounds(
    op: OperationCircuits,
    h: Descriptor,
    kind: ContentKind,
    rk: Uint8Array,
    signal: AbortSignal,
    head = false,
    read: { answered: number } = { answered: 0 },
  ): Promise<Uint8Array | null> {
    const nextRound = refusedRounds(op, signal);
    for (let round = 0; ; round++) {
      try {
        const bytes = await this.fetchFrom(op, h, kind, rk, signal, head, round === 0);
        read.answered++;
        return bytes;
      } catch (e) {
        // A round starts only while no other holder of this read has answered: a read that has an answer does not wait
        // up to CONTENT_REFUSED_DEADLINE for one more (content.md §8.2 "Refused everywhere"); a round already waited
        // for is still tried.
        if (e instanceof AbortedError || !refusedByForwarder(e) || read.answered > 0 || !(await nextRound(h))) throw e;
      }
    }
  }

  /**
   * Asks every holder of `rk` for the item; returns what each one had (endpoint descriptors: pick the newest;
   * mailbox slots: an empty array is an occupied slot with nothing to send). Unreachable holders are left out; a
   * holder refused by forwarders at their bounds is asked again in rounds first (content.md §8.2 "Refused everywhere").
   */
  async fetchFromAll(kind: ContentKind, rk: Uint8Array, options: FetchAllOptions = {}): Promise<Uint8Array[]> {
    return (await this.fetchAnswers(kind, rk, options)).copies;
  }

  /**
   * fetchFromAll(), telling apart "no holder has it" from "no holder answered": `copies` as fetchFromAll, `answered`
   * the holders that answered (with the item or without it). A slot with `answered` 0 is not known to be free.
   */
  fetchAnswers(kind: ContentKind, rk: Uint8Array, options: FetchAllOptions = {}): Promise<{ copies: Uint8Array[]; answered: number; asked: number }> {
    return this.operation(options, (signal, op) => this.fetchFromAllWith(op, kind, rk, options.head ?? false, signal, options.onCopy));
  }

  private async fetchFromAllWith(
    op: OperationCircuits,
    kind: ContentKind,
    rk: Uint8Array,
    head: boolean,
    signal: AbortSignal,
    onCopy?: (bytes: Uint8Array) => void,
  ): Promise<{ copies: Uint8Array[]; answered: number; asked: number }> {
    const read = { answered: 0 };
    const got = await Promise.all(
      this.holders(rk).map(async (h): Promise<Uint8Array | null | undefined> => {
        try {
          const bytes = await this.fetchWithRounds(op, h, kind, rk, signal, head, read);
          if (bytes) onCopy?.(bytes);
          return bytes;
        } catch {
          throwIfAborted(signal); // our signal: stop; any other failure: just this holder (no answer)
          return undefined;
        }
      }),
    );
    return { copies: got.filter((x): x is Uint8Array => x instanceof Uint8Array), answered: got.filter((x) => x !== undefined).length, asked: got.length };
  }

  /** Publishes bytes (or an async iterable of chunks) and returns the allium:chk link. */
  put(data: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: PutOptions = {}): Promise<string> {
    return this.operation(options, (signal, op) => this.putWith(data, { ...options, signal }, op));
  }

  /**
   * put() on the operation `op`: blocks go out in random order within windows of PUT_WINDOW as the encoder yields
   * them, the root last (content.md §8.2), at most `concurrency` at once.
   */
  private async putWith(
    data: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: PutOptions & { signal: AbortSignal },
    op: OperationCircuits,
  ): Promise<string> {
    const secret = options.convergent ? undefined : options.convergenceSecret;
    const mode = options.convergent || secret ? 'convergent' : 'random';
    const source = data instanceof Uint8Array ? [data] : data;
    const total = data instanceof Uint8Array ? data.length : null;
    let sent = 0;
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    const gen = encodeFile(source, secret ? { mode, convergenceSecret: secret } : { mode });
    const store = async (block: EncodedBlock): Promise<void> => {
      throwIfAborted(options.signal);
      if (failure) throw failure;
      if (options.skip?.(block.ref.rk)) {
        if (options.stats) options.stats.skipped++;
        sent += block.stored.length;
        options.onProgress?.(sent, total);
        return;
      }
      const p = this.scoped({ signal: options.signal }, (s) => this.storeEverywhereWith('block', block.ref.rk, block.stored, s, op)).then(
        () => {
          sent += block.stored.length;
          if (options.stats) options.stats.stored++;
          options.onStored?.(block.ref.rk);
          options.onProgress?.(sent, total);
        },
        (e: unknown) => {
          failure ??= e;
        },
      );
      const tracked = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= this.concurrency) await Promise.race(inFlight);
    };
    let window: EncodedBlock[] = [];
    let step = await gen.next();
    let root: BlockRef | null = null;
    while (!step.done) {
      throwIfAborted(options.signal);
      if (failure) throw failure;
      window.push(step.value);
      step = await gen.next();
      // The last block yielded is the root: it waits for the end, to go out last.
      if (window.length > PUT_WINDOW || (step.done && window.length > 1)) {
        const out = this.circuits.direct ? window.slice(0, -1) : crypto().shuffle(window.slice(0, -1));
        window = window.slice(-1);
        for (const b of out) await store(b);
      }
    }
    for (const b of window) await store(b);
    root = step.value;
    await Promise.all(inFlight);
    if (failure) throw failure;
    return formatLink({ type: 'chk', rk: root.rk, dk: root.dk, flags: options.convergent ? 0 : FLAG_RANDOM });
  }

  /** The CHK root of a link: itself, or the newest edition's target of an updatable key. */
  async rootOf(link: string, options: AbortOptions = {}): Promise<BlockRef> {
    const parsed = parseLink(link);
    if (parsed.type === 'chk') return parsed;
    const target = await this.resolveSsk(parsed, options);
    const chk = parseLink(target);
    if (chk.type !== 'chk') throw new AlliumError('ERR_CONTENT', 'an updatable key must point at a chk link');
    return chk;
  }

  /**
   * Fetches blocks as part of the operation `op`: each checked against its routing key once, here (`checked`).
   * `answered` (firstAlone): called as each of the block's requests to a holder settles.
   */
  private blockFetcher(op: OperationCircuits, options: AbortOptions): AnsweredFetcher {
    const fetch = (ref: BlockRef, answered?: () => void): Promise<Uint8Array | null> =>
      this.scoped(options, (signal) => this.fetchAnywhereWith(op, 'block', ref.rk, (b) => verifyStoredBlock(ref.rk, b), signal, answered));
    return Object.assign(fetch, { checked: true });
  }

  /** Reads a file's manifest (root and parts) as part of the operation `op`. */
  private async openManifest(root: BlockRef | string, op: OperationCircuits, options: AbortOptions): Promise<OpenedFile> {
    const ref = typeof root === 'string' ? await this.rootOf(root, options) : root;
    const limits: { concurrency: number; maxManifestBytes?: number } = { concurrency: this.fetchConcurrency };
    if (this.maxManifestBytes !== undefined) limits.maxManifestBytes = this.maxManifestBytes;
    return notFoundAsContent(openFile(this.blockFetcher(op, options), ref, limits));
  }

  /**
   * Bytes of an opened file, its blocks fetched in random order and padded to a class (`already`: requests made).
   * `leadAlone` (a get): the read's first request — its first segment's lead — goes out alone, and the others once it
   * has settled (content.md §8.2 "Order").
   */
  private async *readOpened(
    file: OpenedFile,
    op: OperationCircuits,
    already: number,
    o: { start?: number; end?: number; onProgress?: GetOptions['onProgress']; leadAlone?: boolean } & AbortOptions,
  ) {
    // Direct mode (measurement only) reads as before content.md §8.2: in file order, unpadded.
    const ro: ReadOptions = this.circuits.direct
      ? { concurrency: this.fetchConcurrency }
      : { concurrency: this.fetchConcurrency, order: shuffled, pad: { already } };
    if (o.start !== undefined) ro.start = o.start;
    if (o.end !== undefined) ro.end = o.end;
    if (o.onProgress) ro.onProgress = o.onProgress;
    try {
      const fetcher = this.blockFetcher(op, signalOption(o.signal));
      yield* readFile(file, o.leadAlone && !this.circuits.direct ? firstAlone(fetcher) : fetcher, ro);
    } catch (e) {
      if (isAlliumError(e) && e.code === 'ERR_NOT_FOUND') throw new NotFoundError(`content not found: ${e.message}`);
      throw e;
    }
  }

  /**
   * Opens a file by its root (or link): reads its manifest and returns its size and a range reader (whose reads
   * take their own signal, else this call's). The manifest read is one operation, each read another (content.md
   * §8.2). Throws ERR_NOT_FOUND, ERR_UNREACHABLE, ERR_CONTENT, ERR_LIMIT, ERR_ABORTED.
   */
  async open(root: BlockRef | string, options: AbortOptions = {}): Promise<OpenedContent> {
    const file = await this.operation(options, (signal, op) => this.openManifest(root, op, { signal }));
    const read = (o: Parameters<OpenedContent['read']>[0] = {}): AsyncGenerator<Uint8Array> =>
      this.readAsOperation(file, { ...o, ...signalOption(o.signal ?? options.signal) });
    return { size: file.size, blocks: () => fileBlocks(file), read };
  }

  /** One read of an opened file as an operation of its own. */
  private async *readAsOperation(file: OpenedFile, o: { start?: number; end?: number; onProgress?: GetOptions['onProgress'] } & AbortOptions) {
    const op = this.circuits.operation();
    try {
      yield* this.readOpened(file, op, 0, o);
    } finally {
      op.close();
    }
  }

  /** Fetches a link's content as chunks, in order. */
  async *getStream(link: string, options: GetOptions = {}): AsyncGenerator<Uint8Array> {
    const scope = this.shutdown.scope(options.signal);
    const op = this.circuits.operation();
    try {
      const file = await this.openManifest(link, op, { signal: scope.signal });
      // The manifest blocks count towards the fetch's class (content.md §8.2).
      // Its first data block alone, then the rest (content.md §8.2 "Order"): the first byte's round trip shares the
      // circuits, the relays and the holders with no other answer of the get.
      yield* this.readOpened(file, op, file.manifestBlocks.length, {
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        signal: scope.signal,
        leadAlone: true,
      });
    } finally {
      op.close();
      scope.dispose();
    }
  }

  /** How many of a block's holders have it (a head-only FETCH to each; unreachable holders count as lacking it). */
  async copiesOf(rk: Uint8Array, options: AbortOptions = {}): Promise<{ holders: number; copies: number }> {
    const holders = this.holders(rk).length;
    const got = await this.fetchFromAll('block', rk, { ...options, head: true });
    return { holders, copies: got.length };
  }

  /**
   * Fetches a link's content. Throws ERR_NOT_FOUND (every holder asked says it has no such content),
   * ERR_UNREACHABLE (missing data whose holders could not all be asked: try again later), ERR_LINK_CHECKSUM,
   * ERR_LINK_FORMAT, ERR_ABORTED.
   */
  async get(link: string, options: GetOptions = {}): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const p of this.getStream(link, options)) parts.push(p);
    return concatBytes(...parts);
  }

  /** The newest edition of an updatable key found at its holders and those of its edition hints (content.md §11). */
  async resolveSsk(key: SskKey, options: AbortOptions = {}): Promise<string> {
    const found = await this.latestEdition(key, { ...options, strict: true });
    if (!found) throw new NotFoundError('content not found: no holder has an edition of this key');
    return found.target;
  }

  /**
   * The newest edition found at the holders of the key and of its edition hints for the periods of now (content.md
   * §11.2): four keys asked in parallel, the highest edition that opens wins; each holder tried as in fetchFromAll()
   * (§8.2 "Retries", "Refused everywhere"). With `strict`, ERR_UNREACHABLE rather than null when no edition was found
   * and some holder of the key itself could not be asked.
   */
  latestEdition(key: SskKey, options: LatestEditionOptions = {}): Promise<{ edition: number; target: string } | null> {
    return this.operation(options, (signal, op) => this.latestEditionWith(op, key, options, signal));
  }

  private async latestEditionWith(
    op: OperationCircuits,
    key: SskKey,
    options: LatestEditionOptions,
    signal: AbortSignal,
  ): Promise<{ edition: number; target: string } | null> {
    const keys = [key, ...(options.hints === false ? [] : editionPeriods(options.now ?? Date.now()).map((p) => hintKey(key, p)))];
    let best: { edition: number; target: string } | null = null;
    let unreachable = 0;
    let holderCount = 0;
    await Promise.all(
      keys.map(async (recordKey, i) => {
        const rk = sskRoutingKeyOf(recordKey);
        const holders = this.holders(rk);
        if (i === 0) holderCount = holders.length;
        const read = { answered: 0 };
        await Promise.all(
          holders.map(async (h) => {
            let bytes: Uint8Array | null;
            try {
              bytes = await this.fetchWithRounds(op, h, 'record', rk, signal, false, read);
            } catch {
              if (i === 0) unreachable++;
              return;
            }
            if (!bytes) return;
            try {
              const r = openRecord(recordKey, bytes);
              if (i > 0 && parseLink(r.target).type !== 'chk') return;
              if (!best || r.edition > best.edition) best = r;
            } catch {
              /* a forged or damaged record: ignored */
            }
          }),
        );
      }),
    );
    throwIfAborted(signal);
    if (!best && options.strict && (holderCount === 0 || unreachable > 0)) {
      throw new AlliumError('ERR_UNREACHABLE', `no edition found: ${unreachable} of ${holderCount} holders of this key could not be asked`);
    }
    return best;
  }

  /**
   * Publishes `data` under the updatable key (publisher, name): stores the content (random keys unless
   * `convergent`), then a signed edition one newer than the newest found. Returns the allium:ssk link, which stays
   * the same across editions (it carries the secret: whoever has it reads every edition).
   */
  async publish(publisher: IdentityKey, name: string, data: Uint8Array, options: PublishOptions = {}): Promise<{ link: string; edition: number }> {
    const target = await this.put(data, options);
    return this.publishTarget(publisher, name, target, options);
  }

  /**
   * Publishes `target` (a CHK link already stored) as the next edition of (publisher, name): one newer than the
   * newest found at the key or its hints, stored at the key's holders, then the edition hints of the periods of now
   * (content.md §11.1; a hint no holder took is not an error: the key itself carries the edition).
   */
  async publishTarget(publisher: IdentityKey, name: string, target: string, options: PublishOptions = {}): Promise<{ link: string; edition: number }> {
    const now = (options.now ?? Date.now)();
    const signal = signalOption(options.signal);
    const key: SskKey = { publisher: publisher.publicKey, secret: options.secret ?? sskSecret(publisher.secretKey, name), name };
    const current = await this.latestEdition(key, { now, ...signal });
    const edition = (current?.edition ?? 0) + 1;
    const rec = createRecord(publisher.secretKey, key, edition, target);
    await this.storeEverywhere('record', rec.rk, rec.bytes, signal);
    if (options.hints !== false) {
      const hints = createEditionHints(publisher.secretKey, key, edition, target, now);
      await Promise.all(
        hints.map((h) =>
          this.storeEverywhere('record', h.rk, h.bytes, signal).catch((e: unknown) => {
            if (e instanceof AbortedError) throw e;
          }),
        ),
      );
    }
    return { link: formatLink({ type: 'ssk', ...key }), edition };
  }

  /**
   * Builds this client's circuits ahead now, before its first operation (content.md §8.2 "Started"): for an owner that
   * has started and will soon read, so its first read finds its circuits ready. Resolves once they are built or
   * failed (never rejects); nothing when circuits ahead are off.
   */
  buildAhead(): Promise<void> {
    return this.circuits.buildAhead();
  }

  /** Circuits built ahead and waiting for an operation (for tests and logs). */
  get circuitsWaiting(): number {
    return this.circuits.waitingCount;
  }

  /** Aborts every request in flight (ERR_ABORTED) and closes the circuits to holders. */
  close(): void {
    this.shutdown.abort();
    this.circuits.close();
  }

  /** For tests and logs: the hex of a routing key's start. */
  static short(rk: Uint8Array): string {
    return toHex(rk).slice(0, 12);
  }
}

/**
 * Whether a read's try ended with a forwarder's `refused` (at its bounds; content.md §8.2 "Refused everywhere"): not a
 * holder's own `refused` when it was asked directly, which starts no round (as a STORE's does not).
 */
function refusedByForwarder(e: unknown): boolean {
  return e instanceof NotAskedError && e.forwarded && e.status === 'refused';
}

/**
 * The rounds of a STORE or a read refused everywhere (content.md §8.2 "Refused everywhere"): each call waits for the
 * next round — until one of the operation's requests to `holder` (or any of its requests) ends — and resolves true, or
 * false at once when none is left (CONTENT_REFUSED_ROUNDS were made, or CONTENT_REFUSED_DEADLINE_MS passed since the
 * first call, on a monotonic clock: a wall clock stepped forward does not end the rounds, nor one stepped back
 * prolong them). Rejects with AbortedError when `signal` aborts.
 */
function refusedRounds(op: OperationCircuits, signal: AbortSignal): (holder: Descriptor) => Promise<boolean> {
  let rounds = 0;
  let deadline = 0;
  return async (holder) => {
    if (rounds >= CONTENT_REFUSED_ROUNDS) return false;
    if (rounds === 0) deadline = performance.now() + CONTENT_REFUSED_DEADLINE_MS;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    rounds++;
    await op.afterARequestEnds(holder, signal, left);
    return true;
  };
}

/** A BlockFetcher that also reports each of a block's requests to a holder as it settles. */
type AnsweredFetcher = ((ref: BlockRef, answered?: () => void) => Promise<Uint8Array | null>) & { readonly checked?: boolean };

/**
 * A fetcher whose first call goes out at once and whose later calls wait until that call's first request to a holder
 * has settled (the block, missing, or failed), or the whole call has, or CONTENT_LEAD_ALONE_MS has passed, whichever
 * comes first: a get's lead asked alone (content.md §8.2 "Order"). Not the lead's whole fetch, which may ask holder
 * after holder: a holder that stalls the lead, or lacks it, would then hold back every other request of the get, and
 * the moment they go out would tell the guard how many holders were asked. Later calls keep their order.
 */
function firstAlone(fetch: AnsweredFetcher, boundMs = CONTENT_LEAD_ALONE_MS): BlockFetcher {
  let gate: Promise<void> | null = null;
  const gated = (ref: BlockRef): Promise<Uint8Array | null> => {
    if (gate === null) {
      let open!: () => void;
      gate = new Promise<void>((resolve) => (open = resolve));
      const timer = setTimeout(() => open(), boundMs);
      // The timer is cleared at the first settle: the lead's first request, or its whole fetch (an abort included).
      const settle = (): void => {
        clearTimeout(timer);
        open();
      };
      const first = fetch(ref, settle);
      void first.then(settle, settle);
      return first;
    }
    return gate.then(() => fetch(ref));
  };
  return fetch.checked ? Object.assign(gated, { checked: true }) : gated;
}

/** A missing root reads as content nobody stored (ERR_NOT_FOUND from the codec becomes a NotFoundError). */
async function notFoundAsContent<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (isAlliumError(e) && e.code === 'ERR_NOT_FOUND' && !(e instanceof NotFoundError)) throw new NotFoundError(`content not found: ${e.message}`);
    throw e;
  }
}
