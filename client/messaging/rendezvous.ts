/**
 * The initiator's side of a rendezvous (specs/rendezvous.md §4, specs/messaging.md §3.3): find the endpoint's newest
 * descriptor at its holders (through lookup circuits of their own, so holders cannot link our lookups to our
 * endpoint), set up a rendezvous point, introduce ourselves through one of its introduction points, and finish the
 * ntor handshake from the endpoint's RENDEZVOUS2: the circuit's last hop is then the endpoint, end to end.
 */
import { crypto } from '../../crypto/index.js';
import { fingerprintOf } from '../../crypto/keys.js';
import { parseAddress, type Identity } from '../../protocol/address.js';
import { equalBytes } from '../../protocol/bytes.js';
import { encodeCbor } from '../../protocol/cbor.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { openEndpointDescriptor, type IntroPoint } from '../../protocol/endpoint-descriptor.js';
import { AbortedError, AlliumError, CryptoError, isAlliumError } from '../../protocol/errors.js';
import { descriptorLocator, periodAt } from '../../protocol/key-blinding.js';
import { initiatorHandshake } from '../../protocol/message-handshake.js';
import { ntorClientFinish } from '../../protocol/ntor.js';
import type { RatchetSession } from '../../protocol/ratchet.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import { COOKIE_LEN, decodeRv, encodeRv } from '../../protocol/rendezvous-messages.js';
import { powBinding } from '../../protocol/intro-pow.js';
import { encodeBegin, EndReason } from '../../protocol/stream-messages.js';
import { settleWithin, Shutdown, signalOption, type AbortOptions } from '../../net/abort.js';
import type { ClientCircuit } from '../../net/circuit.js';
import type { MuxStream } from '../../net/stream-mux.js';
import type { CircuitSource } from '../client.js';
import type { ContentClient } from '../content.js';
import { pickServicePoint } from '../path.js';
import { POW_CLIENT_MAX_EFFORT, POW_MIN_EFFORT, REPLY_TIMEOUT_MS } from './limits.js';
import { solveIntroPow } from './pow-solver.js';
import type { ClientAuthKey } from './types.js';

/** Why an introduction point answered `busy` (the message of the ERR_UNREACHABLE thrown for it). */
const IP_BUSY = 'introduction point is rate limiting introductions to the endpoint';
/** A circuit whose last (virtual) hop is the endpoint, and the session our introduction started. */
export interface Meeting {
  readonly circuit: ClientCircuit;
  readonly session: RatchetSession;
}

export interface MeetOptions extends AbortOptions {
  /** Who we introduce ourselves as (a throwaway identity for hidden TCP services). */
  readonly as: Identity;
  /** Circuits to a rendezvous point built ahead for `as` (never another identity's), taken before building one. */
  readonly rendezvousAhead?: RendezvousAhead | undefined;
  /** Our client-authorisation key, for an endpoint that requires one. */
  readonly clientAuth?: ClientAuthKey | undefined;
}

/** A rendezvous point set up: its circuit (purpose `setup`), the relay, and the cookie registered there. */
interface RendezvousPoint {
  readonly circuit: ClientCircuit;
  readonly rp: Descriptor;
  readonly cookie: Uint8Array;
}

/**
 * Builds a circuit to a rendezvous point not in `avoid` (one in it only when no other is eligible), replacing one
 * that cannot be reached (up to 3 tries), and registers a fresh cookie there (ESTABLISH_RENDEZVOUS, then
 * RENDEZVOUS_ESTABLISHED). Throws the last build's error, ERR_UNREACHABLE (no rendezvous point), ERR_TIMEOUT,
 * ERR_ABORTED.
 */
async function setUpRendezvous(
  client: CircuitSource,
  avoid: ReadonlySet<string>,
  signal: AbortSignal | undefined,
  ahead?: RendezvousAhead,
): Promise<RendezvousPoint> {
  const view = client.directory.view;
  const tried = new Set<string>();
  let circuit: ClientCircuit | null = null;
  let rp: Descriptor | undefined;
  let buildError: unknown = new AlliumError('ERR_UNREACHABLE', 'no rendezvous point available');
  // A circuit built ahead first (rendezvous.md §4.1): its RP was drawn as below, before any endpoint was known.
  const waiting = ahead?.take();
  if (waiting) {
    rp = waiting.rp;
    tried.add(rp.fingerprint);
    try {
      const c = await waiting.built;
      if (c.state === 'open') circuit = c;
    } catch (e) {
      buildError = e;
    }
    if (!circuit && signal?.aborted) throw new AbortedError();
  }
  for (let attempt = tried.size; attempt < 3 && !circuit; attempt++) {
    rp = pickServicePoint(view, 'rendezvous', new Set([...tried, ...avoid])) ?? pickServicePoint(view, 'rendezvous', tried);
    if (!rp) break;
    tried.add(rp.fingerprint);
    try {
      circuit = await client.newCircuit({ last: rp, exitPort: null, ...signalOption(signal) });
    } catch (e) {
      if (e instanceof AbortedError) throw e;
      buildError = e;
    }
  }
  if (!circuit || !rp) throw buildError;
  circuit.setPurpose('setup'); // only RENDEZVOUS_ESTABLISHED and RENDEZVOUS2 from the rendezvous point
  try {
    const cookie = crypto().random(COOKIE_LEN);
    const established = circuit.waitFor(RelayCommand.RENDEZVOUS_ESTABLISHED, REPLY_TIMEOUT_MS, signalOption(signal));
    circuit.send({ command: RelayCommand.ESTABLISH_RENDEZVOUS, streamId: 0, data: encodeRv('establishRendezvous', { c: cookie }) });
    await established;
    return { circuit, rp, cookie };
  } catch (e) {
    circuit.close();
    throw e;
  }
}

/**
 * The circuit to a rendezvous point an initiator keeps built ahead (rendezvous.md §4.1), for one identity's sends:
 * built by start() to an RP drawn as at use (before any endpoint is known), carrying nothing — ESTABLISH_RENDEZVOUS
 * goes only at use, with a fresh cookie — and taken by one rendezvous only. Each take builds the next in the
 * background; one no rendezvous took within `lifetimeMs` of its build is closed and not replaced, so an initiator
 * idle that long keeps none. close() closes it, built or being built.
 */
export class RendezvousAhead {
  private waiting: { rp: Descriptor; built: Promise<ClientCircuit>; timer: ReturnType<typeof setTimeout> } | null = null;
  private closed = false;
  /** Aborts a build in flight at close(); each build has a scope of its own, dropped once it settles. */
  private readonly shutdown = new Shutdown();

  constructor(
    private readonly client: CircuitSource,
    private readonly lifetimeMs: number,
  ) {}

  /** Builds one unless one waits, or none is eligible. */
  start(): Promise<void> {
    if (this.closed || this.waiting)
      return this.waiting
        ? this.waiting.built.then(
            () => undefined,
            () => undefined,
          )
        : Promise.resolve();
    const rp = pickServicePoint(this.client.directory.view, 'rendezvous', new Set());
    if (!rp) return Promise.resolve();
    const scope = this.shutdown.scope();
    const built = this.client.newCircuit({ last: rp, exitPort: null, signal: scope.signal });
    built.then(scope.dispose, scope.dispose);
    const timer = setTimeout(() => {
      if (this.waiting?.built !== built) return;
      this.waiting = null;
      discard(built);
    }, this.lifetimeMs);
    (timer as { unref?: () => void }).unref?.();
    const w = { rp, built, timer };
    this.waiting = w;
    const leave = (): void => {
      // Failed or closed before a rendezvous took it: gone, not rebuilt until the next take.
      if (this.waiting !== w) return;
      this.waiting = null;
      clearTimeout(timer);
    };
    built.then((c) => (c.state === 'closed' ? leave() : c.once('circuit:close', leave)), leave);
    return built.then(
      () => undefined,
      () => undefined,
    );
  }

  /** The waiting circuit and its RP, given to one rendezvous only (null: none); the next is built in the background. */
  take(): { rp: Descriptor; built: Promise<ClientCircuit> } | null {
    const w = this.waiting;
    if (!w || this.closed) return null;
    this.waiting = null;
    clearTimeout(w.timer);
    void this.start();
    return { rp: w.rp, built: w.built };
  }

  close(): void {
    this.closed = true;
    const w = this.waiting;
    this.waiting = null;
    if (w) {
      clearTimeout(w.timer);
      discard(w.built);
    }
    this.shutdown.abort();
  }
}

/** Closes the circuit `p` resolves with, whenever it does; a build that fails needs nothing. */
function discard(p: Promise<{ close(): void } | { circuit: { close(): void } }> | null): void {
  void p?.then((x) => ('circuit' in x ? x.circuit : x).close()).catch(() => undefined);
}

/** An opened endpoint descriptor. */
type EndpointDescriptor = ReturnType<typeof openEndpointDescriptor>;

/** The relays of `d`'s introduction points. */
function introRelaysOf(d: EndpointDescriptor): Set<string> {
  return new Set(d.intro.map((i) => fingerprintOf(i.relay)));
}

/** True when `point` is one of `d`'s introduction points and another relay could serve (rendezvous.md §6). */
function mustReplace(client: CircuitSource, point: RendezvousPoint, d: EndpointDescriptor): boolean {
  const ips = introRelaysOf(d);
  return ips.has(point.rp.fingerprint) && pickServicePoint(client.directory.view, 'rendezvous', ips) !== undefined;
}

/**
 * Meets the endpoint at `address`: its descriptor is looked up with `lookups`, circuits are built by `client`. Throws
 * ERR_UNREACHABLE (no descriptor: not listening; or no introduction worked), ERR_CLIENT_AUTH (the endpoint requires
 * client authorisation that `clientAuth` does not give), ERR_ADDRESS_*, ERR_TIMEOUT, ERR_ABORTED.
 *
 * Nothing waits that need not (specs/rendezvous.md §4.1): the rendezvous point is set up while the descriptor is
 * looked up. The first copy that opens, before the slowest holder has answered, starts the circuit to an introduction
 * point and the check of the rendezvous point against the introduction points (set up again elsewhere when it is one
 * of them and another relay could serve). What is sent to the introduction point comes from the newest revision once
 * every holder has answered: a newer one than the first copy's is checked again (rendezvous point, introduction
 * points). INTRODUCE1 goes only once RENDEZVOUS_ESTABLISHED has come.
 */
export async function meetEndpoint(client: CircuitSource, lookups: ContentClient, address: string, options: MeetOptions): Promise<Meeting> {
  const { signal, as, clientAuth } = options;
  const identityKey = parseAddress(address);
  const now = Date.now();
  const period = periodAt(Math.floor(now / 1000));
  const locator = descriptorLocator(identityKey, period);
  // Set up at once, avoiding no relay yet: the descriptor says which relays to avoid.
  const early: Promise<RendezvousPoint> = setUpRendezvous(client, new Set(), signal, options.rendezvousAhead);
  early.catch(() => undefined);
  // The newest revision any holder has (an endpoint republishes when an introduction point is lost), and a wake-up
  // at the first copy that opens.
  const found: { descriptor: EndpointDescriptor | null; needsAuth: boolean } = { descriptor: null, needsAuth: false };
  let firstOpened: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (firstOpened = resolve));
  const take = (bytes: Uint8Array): void => {
    try {
      const d = openEndpointDescriptor(identityKey, period, bytes, clientAuth ? { now, client: clientAuth } : { now });
      if (!found.descriptor || d.revision > found.descriptor.revision) found.descriptor = d;
      firstOpened();
    } catch (e) {
      // Only a validly signed descriptor gets as far as the client layer: this endpoint restricts who finds it.
      if (isAlliumError(e) && e.code === 'ERR_CLIENT_AUTH') found.needsAuth = true;
      /* otherwise a forged or stale copy */
    }
  };
  const lookup = lookups.fetchFromAll('endpoint', locator, { ...signalOption(signal), onCopy: take });
  lookup.catch(() => undefined);
  // Started from the first copy, while the other holders answer: the circuit to one introduction point, and the
  // rendezvous point checked against the introduction points.
  let firstIp: IntroPoint | null = null;
  let firstIntro: Promise<ClientCircuit> | null = null;
  let ready: Promise<RendezvousPoint> = early;
  let final: EndpointDescriptor;
  try {
    await Promise.race([opened, lookup]);
    const first = found.descriptor;
    if (first) {
      firstIp = crypto().shuffle([...first.intro])[0]!;
      firstIntro = buildIntroCircuit(client, firstIp, signal);
      firstIntro?.catch(() => undefined);
      ready = early
        .catch(() => setUpRendezvous(client, introRelaysOf(first), signal))
        .then(async (p) => {
          if (!mustReplace(client, p, first)) return p;
          p.circuit.close();
          return setUpRendezvous(client, introRelaysOf(first), signal);
        });
      ready.catch(() => undefined);
    }
    // Every copy went through `take`, which picked the newest.
    await lookup;
    const newest = found.descriptor;
    if (!newest && found.needsAuth) {
      throw new CryptoError(
        'ERR_CLIENT_AUTH',
        clientAuth ? 'endpoint requires client authorisation and does not list our key' : 'endpoint requires client authorisation: no client key given',
      );
    }
    if (!newest) throw new AlliumError('ERR_UNREACHABLE', 'endpoint unreachable: no descriptor found for this address (is it listening?)');
    final = newest;
  } catch (e) {
    discard(ready);
    discard(firstIntro);
    throw e;
  }
  const introRelays = introRelaysOf(final);
  // The newest revision's introduction points in random order; the one whose circuit is being built first, if it is
  // still one of them (a newer revision without it: that circuit is given up).
  const ip0 = firstIp;
  const kept = ip0 ? final.intro.find((i) => equalBytes(i.relay, ip0.relay) && equalBytes(i.auth, ip0.auth) && equalBytes(i.enc, ip0.enc)) : undefined;
  if (!kept) {
    discard(firstIntro);
    firstIntro = null;
  }
  const shuffled = crypto().shuffle(final.intro.filter((i) => i !== kept));
  const intros = kept ? [kept, ...shuffled] : shuffled;
  // No first copy started it: the circuit to the first introduction point, built while the rendezvous point is set up.
  firstIntro ??= buildIntroCircuit(client, intros[0]!, signal);
  firstIntro?.catch(() => undefined);
  let point: RendezvousPoint;
  try {
    point = await ready.catch(() => setUpRendezvous(client, introRelays, signal));
    if (mustReplace(client, point, final)) {
      // One of the endpoint's introduction points, and another relay could serve (rendezvous.md §6): not this one.
      point.circuit.close();
      point = await setUpRendezvous(client, introRelays, signal);
    }
  } catch (e) {
    discard(firstIntro);
    throw e;
  }
  const descriptorPow = final.pow;
  const { circuit, rp, cookie } = point;
  const close = (): void => circuit.close();
  signal?.addEventListener('abort', close, { once: true });
  try {
    let lastErr: unknown = new AlliumError('ERR_UNREACHABLE', 'endpoint unreachable');
    // The effort the endpoint suggests (rendezvous.md §4.3); an attempt that got no answer is retried with twice as much.
    const pow = descriptorPow;
    let effort = pow ? Math.min(pow.e, POW_CLIENT_MAX_EFFORT) : 0;
    for (const ip of intros) {
      const built = firstIntro;
      firstIntro = null;
      try {
        const w = pow && effort > 0 ? { seed: pow.seed, effort } : null;
        return await introduceAndMeet(client, { rpCircuit: circuit, identityKey, ip, rp, cookie, as, pow: w, introCircuit: built }, signal);
      } catch (e) {
        if (e instanceof AbortedError) throw e;
        lastErr = e;
        // No answer, or `busy` (the introduction point's allowance for introductions without a valid proof is spent,
        // rendezvous.md §3.2): pay, or pay more, at the next one.
        const busy = isAlliumError(e) && e.code === 'ERR_UNREACHABLE' && e.message === IP_BUSY;
        if (pow && isAlliumError(e) && (e.code === 'ERR_TIMEOUT' || busy)) effort = Math.min(POW_CLIENT_MAX_EFFORT, Math.max(POW_MIN_EFFORT, effort * 2));
      }
    }
    throw lastErr;
  } catch (e) {
    circuit.close();
    throw e;
  } finally {
    discard(firstIntro);
    signal?.removeEventListener('abort', close);
  }
}

/** Starts building a circuit to the introduction point `ip` (null: its relay is not in the directory). */
function buildIntroCircuit(client: CircuitSource, ip: IntroPoint, signal: AbortSignal | undefined): Promise<ClientCircuit> | null {
  const introRelay = client.directory.get(ip.relay);
  return introRelay ? client.newCircuit({ last: introRelay, exitPort: null, ...signalOption(signal) }) : null;
}

/** One introduction through `ip`, then the endpoint's RENDEZVOUS2 on the rendezvous circuit. */
async function introduceAndMeet(
  client: CircuitSource,
  m: {
    rpCircuit: ClientCircuit;
    identityKey: Uint8Array;
    ip: IntroPoint;
    rp: Descriptor;
    cookie: Uint8Array;
    as: Identity;
    pow: { seed: Uint8Array; effort: number } | null;
    /** The circuit to `ip` when its build has started already (null: built here). */
    introCircuit: Promise<ClientCircuit> | null;
  },
  signal: AbortSignal | undefined,
): Promise<Meeting> {
  const { rpCircuit, identityKey, ip, rp, cookie } = m;
  // Built while the proof of work (if any) is solved.
  const building = m.introCircuit ?? buildIntroCircuit(client, ip, signal);
  if (!building) throw new AlliumError('ERR_UNREACHABLE', 'introduction point not in the directory');
  building.catch(() => undefined);
  const hs = initiatorHandshake(m.as, { identityKey, prekey: ip.enc });
  const x = crypto().random(32);
  const X = crypto().x25519Public(x);
  const sealed = crypto().seal(encodeCbor({ rp: rp.id, c: cookie, x: X, hs: hs.handshake }), ip.enc);
  let w;
  try {
    w = m.pow ? await solveIntroPow(m.pow.seed, m.pow.effort, powBinding(sealed), signalOption(signal)) : null;
  } catch (e) {
    discard(building);
    throw e;
  }
  const introCircuit = await building;
  introCircuit.setPurpose('setup'); // only INTRODUCE_ACK
  const met = rpCircuit.waitFor(RelayCommand.RENDEZVOUS2, REPLY_TIMEOUT_MS, signalOption(signal));
  met.catch(() => undefined);
  try {
    const ack = introCircuit.waitFor(RelayCommand.INTRODUCE_ACK, REPLY_TIMEOUT_MS, signalOption(signal));
    introCircuit.send({
      command: RelayCommand.INTRODUCE1,
      streamId: 0,
      data: encodeRv('introduce1', w ? { k: ip.auth, p: sealed, w } : { k: ip.auth, p: sealed }),
    });
    const status = decodeRv('introduceAck', (await ack).data).s;
    if (status === 'busy') throw new AlliumError('ERR_UNREACHABLE', IP_BUSY);
    if (status !== 'ok') throw new AlliumError('ERR_UNREACHABLE', 'introduction point does not know the endpoint');
  } finally {
    introCircuit.close();
  }
  const reply = decodeRv('rendezvous2', (await met).data).h;
  if (reply.length !== 64) throw new AlliumError('ERR_HANDSHAKE_AUTH', 'rendezvous reply has the wrong length');
  const keys = ntorClientFinish(x, X, { identity: identityKey, onionKey: ip.enc }, reply.subarray(0, 32), reply.subarray(32));
  crypto().wipe(x);
  rpCircuit.addVirtualHop(keys);
  rpCircuit.setPurpose('general'); // replies on the streams we open to the endpoint
  return { circuit: rpCircuit, session: hs.session };
}

/**
 * Opens a stream to `a`:`p` at the endpoint (the circuit's virtual last hop). Throws ERR_EXIT_POLICY (no such
 * service), ERR_STREAM_FAILED (refused), ERR_TIMEOUT (no answer in REPLY_TIMEOUT_MS), ERR_ABORTED.
 */
export function openStream(circuit: ClientCircuit, a: string, p: number, options: AbortOptions = {}): Promise<MuxStream> {
  return settleWithin<MuxStream>(
    (done) => {
      const s = circuit.mux.open();
      const offC = s.once('stream:connected', () => done(null, s));
      const offE = s.once('stream:end', (r) => done(streamRefused(r)));
      circuit.send({ command: RelayCommand.BEGIN, streamId: s.id, data: encodeBegin({ a, p }) });
      return () => {
        offC();
        offE();
      };
    },
    { timeoutMs: REPLY_TIMEOUT_MS, timeoutMessage: 'endpoint did not answer', ...options },
  );
}

/** A message stream opened with optimistic data: usable at once; `connected` settles with CONNECTED or its failure. */
export interface EarlyStream {
  readonly stream: MuxStream;
  /**
   * Resolves on CONNECTED; rejects with ERR_EXIT_POLICY or ERR_STREAM_FAILED (END instead), ERR_TIMEOUT (no answer
   * in REPLY_TIMEOUT_MS), ERR_ABORTED.
   */
  readonly connected: Promise<void>;
}

/**
 * Opens the message stream `a`:`p` at the endpoint and returns it before CONNECTED: its first
 * OPTIMISTIC_DATA_CELLS DATA cells go at once after BEGIN (optimistic data, specs/streams.md §2.8), the rest once
 * CONNECTED comes. Only for the message stream, which the endpoint accepts on BEGIN.
 */
export function openStreamEarly(circuit: ClientCircuit, a: string, p: number, options: AbortOptions = {}): EarlyStream {
  const stream = circuit.mux.openOptimistic();
  circuit.send({ command: RelayCommand.BEGIN, streamId: stream.id, data: encodeBegin({ a, p }) });
  const connected = settleWithin<void>(
    (done) => {
      if (stream.state === 'open') return done(null);
      if (stream.state === 'closed') return done(new AlliumError('ERR_STREAM_FAILED', 'endpoint refused the stream'));
      const offC = stream.once('stream:connected', () => done(null));
      const offE = stream.once('stream:end', (r) => done(streamRefused(r)));
      return () => {
        offC();
        offE();
      };
    },
    { timeoutMs: REPLY_TIMEOUT_MS, timeoutMessage: 'endpoint did not answer', ...options },
  );
  connected.catch(() => undefined);
  return { stream, connected };
}

/** The error of a stream the endpoint ended before CONNECTED with `reason` (specs/streams.md §6.1). */
export function streamRefused(reason: EndReason): AlliumError {
  return new AlliumError(reason === EndReason.EXIT_POLICY ? 'ERR_EXIT_POLICY' : 'ERR_STREAM_FAILED', `endpoint refused the stream (reason ${reason})`);
}
