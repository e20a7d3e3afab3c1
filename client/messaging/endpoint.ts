/**
 * The endpoint's presence in the network (specs/rendezvous.md §2–§4.1, specs/messaging.md §3): introduction points
 * established on Stable relays, a descriptor listing them published for the current and the next period (readable
 * only by authorised clients when there are any), kept up — a lost introduction point is replaced and the descriptor
 * republished; a worn one (too old, or too many introductions) is retired after the new descriptor is out.
 *
 * INTRODUCE2 cells arriving at an introduction point are opened here (sealed to the point's key, checked against its
 * replay set) and handed on as PendingIntroductions; answering them is the hidden service's part (service.ts).
 *
 * Why this file is at ~400 lines: the introduction points, the descriptor and the proof-of-work seeds and effort
 * are published together and replaced together; they share one lifetime and one republishing step.
 */
import { crypto, type KeyPair } from '../../crypto/index.js';
import { formatAddress, type Identity } from '../../protocol/address.js';
import { toHex } from '../../protocol/bytes.js';
import { decodeMessage, zBytes } from '../../protocol/cbor.js';
import type { Descriptor } from '../../protocol/descriptor.js';
import { MAX_AUTH_CLIENTS } from '../../protocol/descriptor-auth.js';
import { createEndpointDescriptor } from '../../protocol/endpoint-descriptor.js';
import { POW_SEED_LEN, powBinding, verifyPow } from '../../protocol/intro-pow.js';
import { AbortedError, AlliumError, ProtocolError, throwIfAborted } from '../../protocol/errors.js';
import { periodAt } from '../../protocol/key-blinding.js';
import { responderHandshake } from '../../protocol/message-handshake.js';
import type { RatchetSession } from '../../protocol/ratchet.js';
import { RelayCommand, type RelayMessage } from '../../protocol/relay-cell.js';
import { COOKIE_LEN, decodeRv, encodeRv, introSignedMessage } from '../../protocol/rendezvous-messages.js';
import { Shutdown, signalOption, type AbortOptions } from '../../net/abort.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { z } from 'zod';
import type { CircuitSource } from '../client.js';
import { ContentClient } from '../content.js';
import { pickServicePoint } from '../path.js';
import {
  DEFAULT_INTRO_LIFETIME_MS,
  DEFAULT_INTRO_POINTS,
  DEFAULT_MAX_INTRODUCTIONS,
  DEFAULT_REPUBLISH_MS,
  DESCRIPTOR_LIFETIME_MS,
  MAX_POW_REPLAY_ENTRIES,
  POW_MAX_SUGGESTED_EFFORT,
  POW_MIN_EFFORT,
  POW_RAISE_MIN_MS,
  POW_REFUSED_LOADED,
  POW_UPDATE_MS,
  REPLY_TIMEOUT_MS,
  RETIRED_INTRO_GRACE_MS,
} from './limits.js';
import { asAlliumError } from './types.js';

const introPayloadSchema = z.strictObject({ rp: zBytes(32), c: zBytes(COOKIE_LEN), x: zBytes(32), hs: zBytes(81) });

/** An introduction point we keep: its circuit, its keys, and the introductions it has seen. */
export interface IntroState {
  relay: Descriptor;
  circuit: ClientCircuit;
  auth: KeyPair;
  enc: KeyPair;
  /** Replay tags of introductions accepted under `enc`: it dies with the introduction point and its key. */
  seen: Set<string>;
  established: number;
  retired: boolean;
}

/** An introduction that opened and is not a replay, waiting for its turn to be answered. */
export interface PendingIntroduction {
  readonly ip: IntroState;
  /** The rendezvous point the initiator waits at. */
  readonly rp: Descriptor;
  /** The initiator's cookie and ntor ephemeral. */
  readonly cookie: Uint8Array;
  readonly x: Uint8Array;
  /** The address the initiator's handshake claims (proven only once its first frame decrypts). */
  readonly peer: string;
  readonly session: RatchetSession;
  /** When it arrived (an initiator waits REPLY_TIMEOUT_MS for RENDEZVOUS2; older ones are not answered). */
  readonly at: number;
  /** The proof-of-work effort it paid (0: none); the service answers higher efforts first (rendezvous.md §4.3). */
  readonly effort: number;
}

/** How loaded the endpoint was since the last look (the queue's part from HiddenService.takeLoad). */
export interface IntroductionLoad {
  /** The most introductions waiting at once. */
  readonly peak: number;
  /** Introductions dropped because the queue was full. */
  readonly dropped: number;
  /** The queue's bound. */
  readonly capacity: number;
  /**
   * Introductions refused before the queue (no proof while one is asked for, a bad or replayed proof, not opening,
   * replayed): what introduction points pass on of a flood that does not pay. Absent: 0.
   */
  readonly refused?: number;
}

/** Whether `load` calls for an early look (specs/rendezvous.md §4.3): the queue dropping or half full, or a flood refused. */
export function isLoaded(load: IntroductionLoad): boolean {
  return load.dropped > 0 || load.peak * 2 >= load.capacity || (load.refused ?? 0) >= POW_REFUSED_LOADED;
}

/**
 * The suggested effort after a period with `load` (specs/rendezvous.md §4.3, NextEffort): doubled (at least
 * POW_MIN_EFFORT, at most POW_MAX_SUGGESTED_EFFORT) when the queue dropped introductions or held half its bound; at
 * least POW_MIN_EFFORT (and halved towards it when nothing waited) while POW_REFUSED_LOADED or more introductions were
 * refused before the queue — a flood that pays nothing, which more effort would not slow; halved (0 below
 * POW_MIN_EFFORT) when nothing waited at all; else unchanged.
 */
export function nextEffort(effort: number, load: IntroductionLoad): number {
  if (load.dropped > 0 || load.peak * 2 >= load.capacity) return Math.min(POW_MAX_SUGGESTED_EFFORT, Math.max(POW_MIN_EFFORT, effort * 2));
  if ((load.refused ?? 0) >= POW_REFUSED_LOADED) return Math.max(POW_MIN_EFFORT, load.peak === 0 ? effort >> 1 : effort);
  if (load.peak === 0) return effort >> 1 < POW_MIN_EFFORT ? 0 : effort >> 1;
  return effort;
}

export interface EndpointOptions {
  /** Measurement only: the descriptor published straight to its holders (MessengerOptions.directContentForMeasurement). */
  directContentForMeasurement?: boolean;
  /** Introduction points to keep (default 3). */
  introPoints?: number;
  /** Re-publish this often (default 10 minutes) and whenever an introduction point is lost. */
  republishMs?: number;
  /** Replace an introduction point after this long (default 18 h) … */
  introPointLifetimeMs?: number;
  /** … or after this many introductions through it (default 16384). */
  maxIntroductionsPerPoint?: number;
  /** Only these X25519 public keys may read the descriptor. */
  authorizedClients?: readonly Uint8Array[];
  /** Send introduction points the proof-of-work seeds (INTRO_POW; default true; false only to measure the defence). */
  introPow?: boolean;
}

export interface EndpointEvents {
  /** An introduction opened: answer it (or drop it). */
  introduced(p: PendingIntroduction): void;
  /** The descriptor was published, with its revision. */
  published(revision: number): void;
  error(e: AlliumError): void;
  /**
   * How loaded the introduction queue was since the last call (`refused` is the endpoint's own count); read every
   * POW_UPDATE_MS, and early when loaded (Endpoint.loadSeen), to set the effort.
   */
  load?(): IntroductionLoad;
}

/** Checks and copies authorised client keys (ERR_CONFIG: more than MAX_AUTH_CLIENTS, or not 32 bytes). */
export function checkClients(keys: readonly Uint8Array[]): readonly Uint8Array[] {
  if (keys.length > MAX_AUTH_CLIENTS) throw new AlliumError('ERR_CONFIG', `at most ${MAX_AUTH_CLIENTS} authorised clients`);
  for (const k of keys)
    if (!(k instanceof Uint8Array) || k.length !== 32) throw new AlliumError('ERR_CONFIG', 'an authorised client key is a 32-byte X25519 public key');
  return keys.map((k) => Uint8Array.from(k));
}

export class Endpoint {
  readonly intros = new Map<string, IntroState>();
  private readonly retiring = new Set<IntroState>();
  /** Publishes the descriptor (its own circuits). */
  private readonly content: ContentClient;
  private authorizedClients: readonly Uint8Array[];
  private revision = 0;
  private maintaining: Promise<void> | null = null;
  private maintainAgain = false;
  private republishTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  /** Aborted by close(): circuit builds and publishing in flight stop. */
  private readonly shutdown = new Shutdown();
  /** Proof-of-work seeds, newest first (the published one and the one before), each with the nonces it accepted. */
  private powSeeds: { seed: Uint8Array; seen: Set<string> }[] = [];
  /** The effort published in the descriptor (0: no proof of work asked for). */
  private effort = 0;
  private powTimer: ReturnType<typeof setInterval> | null = null;
  /** Introductions refused before the queue since the last look at the load. */
  private refused = 0;
  /** When the load was last looked at (an early look waits POW_RAISE_MIN_MS after it). */
  private lastLook = -Infinity;

  constructor(
    private readonly client: CircuitSource,
    private readonly identity: Identity,
    private readonly options: EndpointOptions,
    private readonly on: EndpointEvents,
  ) {
    this.content = new ContentClient(client, options.directContentForMeasurement ? { directForMeasurement: true } : {});
    this.authorizedClients = checkClients(options.authorizedClients ?? []);
  }

  /**
   * Establishes introduction points, publishes the descriptor and keeps both up from then on. Throws ERR_UNREACHABLE
   * when no introduction point can be established, ERR_ABORTED.
   */
  async start(options: AbortOptions = {}): Promise<void> {
    await this.shutdown.run(options, async (signal) => {
      await this.ensureIntroPoints(signal);
      await this.publish(signal);
    });
    if (this.closed) throw new AbortedError('messenger closed');
    this.republishTimer ??= setInterval(() => void this.maintain(), this.options.republishMs ?? DEFAULT_REPUBLISH_MS);
    (this.republishTimer as { unref?: () => void }).unref?.();
    if (this.on.load && !this.powTimer) {
      this.powTimer = setInterval(() => this.lookAtLoad(), POW_UPDATE_MS);
      (this.powTimer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * Something suggests the endpoint is loaded (an introduction refused; the queue dropping or half full): looks at
   * the load at once when it is, unless the last look was less than POW_RAISE_MIN_MS ago (specs/rendezvous.md §4.3).
   * Under a flood the effort therefore rises within one POW_RAISE_MIN_MS, not one POW_UPDATE_MS.
   */
  loadSeen(queueLoaded = false): void {
    if (this.closed || !this.on.load || Date.now() - this.lastLook < POW_RAISE_MIN_MS) return;
    if (queueLoaded || this.refused >= POW_REFUSED_LOADED) this.lookAtLoad();
  }

  /** Reads the load since the last look (the queue's and the refused count), starts afresh and updates the effort. */
  private lookAtLoad(): void {
    const queue = this.on.load?.() ?? { peak: 0, dropped: 0, capacity: Infinity };
    const refused = this.refused;
    this.refused = 0;
    this.lastLook = Date.now();
    this.updateEffort({ ...queue, refused });
  }

  /** The proof-of-work effort the descriptor suggests now (0: none). */
  get suggestedEffort(): number {
    return this.effort;
  }

  /**
   * Reconsiders the suggested effort after a period with `load` (nextEffort) and republishes when it changed. Returns
   * the new effort.
   */
  updateEffort(load: IntroductionLoad): number {
    const next = nextEffort(this.effort, load);
    if (next !== this.effort) {
      this.effort = next;
      if (!this.closed && this.intros.size > 0) void this.maintain();
    }
    return this.effort;
  }

  /**
   * A fresh seed in front; only the one before it stays valid (a client may hold the previous descriptor), or none
   * (`keep` 0: a seed whose replay set is full). The introduction points hear of it at once.
   */
  private rotateSeed(keep = 1): void {
    this.powSeeds = [{ seed: crypto().random(POW_SEED_LEN), seen: new Set() }, ...this.powSeeds.slice(0, keep)];
    for (const ip of this.intros.values()) this.sendSeeds(ip);
  }

  /**
   * Gives an introduction point the seeds proofs are solved under (INTRO_POW, specs/rendezvous.md §3.2), so that
   * introductions that paid are passed on within their own allowance, whatever a flood without proofs does.
   */
  private sendSeeds(ip: IntroState): void {
    if (this.powSeeds.length === 0 || ip.circuit.state !== 'open' || this.options.introPow === false) return;
    try {
      ip.circuit.send({ command: RelayCommand.INTRO_POW, streamId: 0, data: encodeRv('introPow', { s: this.powSeeds.map((x) => x.seed) }) });
    } catch {
      /* the circuit is closing: its replacement gets the seeds */
    }
  }

  /** Changes who may read the descriptor (ERR_CONFIG); republish() makes it count. */
  setAuthorizedClients(keys: readonly Uint8Array[]): void {
    this.authorizedClients = checkClients(keys);
  }

  /** Publishes the descriptor again now (ERR_UNREACHABLE, ERR_ABORTED). */
  republish(options: AbortOptions = {}): Promise<void> {
    return this.shutdown.run(options, (signal) => this.publish(signal));
  }

  private async ensureIntroPoints(signal: AbortSignal): Promise<void> {
    const want = this.options.introPoints ?? DEFAULT_INTRO_POINTS;
    // Weighted by capacity among eligible relays (Fast and Stable with a consensus): a count-based draw would favour
    // whoever runs the most relays (specs/messaging.md §8). A relay that fails is not tried again this round.
    const view = this.client.directory.view;
    const tried = new Set<string>(this.intros.keys());
    while (this.intros.size < want) {
      throwIfAborted(signal);
      const relay = pickServicePoint(view, 'intro', tried);
      if (!relay) break;
      tried.add(relay.fingerprint);
      try {
        await this.establishIntroWith(relay, signal);
      } catch (e) {
        if (e instanceof AbortedError) throw e;
      }
    }
    if (this.intros.size === 0) throw new AlliumError('ERR_UNREACHABLE', 'no introduction point could be established');
  }

  /** Establishes an introduction point at `relay` (specs/rendezvous.md §3); close() aborts it too. */
  async establishIntro(relay: Descriptor, options: AbortOptions = {}): Promise<void> {
    await this.shutdown.run(options, (signal) => this.establishIntroWith(relay, signal));
  }

  private async establishIntroWith(relay: Descriptor, signal: AbortSignal): Promise<void> {
    const circuit = await this.client.newCircuit({ last: relay, exitPort: null, signal });
    circuit.setPurpose('setup'); // nothing but INTRO_ESTABLISHED from the introduction point (relay-crypto.md §6.2)
    const auth = crypto().ed25519Keypair();
    const enc = crypto().x25519Keypair();
    const binding = circuit.bindings[circuit.bindings.length - 1]!;
    const ack = circuit.waitFor(RelayCommand.INTRO_ESTABLISHED, REPLY_TIMEOUT_MS, { signal });
    circuit.send({
      command: RelayCommand.ESTABLISH_INTRO,
      streamId: 0,
      data: encodeRv('establishIntro', { k: auth.publicKey, s: crypto().sign(introSignedMessage(binding), auth.secretKey) }),
    });
    try {
      await ack;
    } catch (e) {
      circuit.close();
      throw e;
    }
    if (this.closed) {
      circuit.close();
      throw new AbortedError('messenger closed');
    }
    circuit.setPurpose('intro'); // from now on INTRODUCE2, and nothing else
    const state: IntroState = { relay, circuit, auth, enc, seen: new Set(), established: Date.now(), retired: false };
    this.intros.set(relay.fingerprint, state);
    this.sendSeeds(state);
    circuit.on('circuit:message', (_hop, m) => {
      if (m.command === RelayCommand.INTRODUCE2) this.onIntroduce(state, m);
    });
    circuit.once('circuit:close', () => {
      if (this.intros.get(relay.fingerprint) !== state) return; // retired and replaced: nothing to do
      this.intros.delete(relay.fingerprint);
      if (!this.closed) void this.maintain(); // an introduction point vanished: replace it and republish
    });
  }

  /** Takes out introduction points that are too old or have seen too many introductions (closed after republishing). */
  private retireIntroPoints(): IntroState[] {
    const now = Date.now();
    const lifetime = this.options.introPointLifetimeMs ?? DEFAULT_INTRO_LIFETIME_MS;
    const max = this.options.maxIntroductionsPerPoint ?? DEFAULT_MAX_INTRODUCTIONS;
    const out: IntroState[] = [];
    for (const [fp, s] of this.intros) {
      if (now - s.established < lifetime && s.seen.size < max) continue;
      s.retired = true;
      this.intros.delete(fp);
      out.push(s);
    }
    return out;
  }

  /** Replaces lost or worn introduction points and republishes; runs one at a time, again if asked meanwhile. */
  private maintain(): Promise<void> {
    if (this.maintaining) {
      this.maintainAgain = true;
      return this.maintaining;
    }
    this.maintaining = (async () => {
      do {
        this.maintainAgain = false;
        if (this.closed) return;
        const retired = this.retireIntroPoints();
        try {
          await this.shutdown.run({}, async (signal) => {
            await this.ensureIntroPoints(signal);
            await this.publish(signal);
          });
        } catch (e) {
          if (!this.closed) this.on.error(asAlliumError(e, 'republish failed'));
        } finally {
          for (const r of retired) this.closeLater(r);
        }
      } while (this.maintainAgain && !this.closed);
    })().finally(() => (this.maintaining = null));
    return this.maintaining;
  }

  /** Closes a replaced introduction point after a grace period (clients may still hold the previous descriptor). */
  private closeLater(r: IntroState): void {
    if (this.closed) return void r.circuit.close();
    this.retiring.add(r);
    const timer = setTimeout(() => {
      this.retiring.delete(r);
      r.circuit.close();
    }, RETIRED_INTRO_GRACE_MS);
    (timer as { unref?: () => void }).unref?.();
    r.circuit.once('circuit:close', () => {
      clearTimeout(timer);
      this.retiring.delete(r);
    });
  }

  private async publish(signal: AbortSignal): Promise<void> {
    const now = Date.now();
    const period = periodAt(Math.floor(now / 1000));
    const body = {
      v: 1 as const,
      intro: [...this.intros.values()].map((i) => ({ relay: i.relay.id, auth: i.auth.publicKey, enc: i.enc.publicKey })),
      created: now,
      expires: now + DESCRIPTOR_LIFETIME_MS,
    };
    if (body.intro.length === 0) throw new AlliumError('ERR_UNREACHABLE', 'no introduction point to publish');
    this.rotateSeed();
    const published = { ...body, pow: { seed: this.powSeeds[0]!.seed, e: this.effort } };
    this.revision = Math.max(this.revision + 1, now);
    // The current period and the next, so clients whose clocks cross the boundary first still find us.
    for (const p of [period, period + 1]) {
      const d = createEndpointDescriptor(this.identity, p, published, { revision: this.revision, clients: this.authorizedClients });
      await this.content.storeEverywhere('endpoint', d.locator, d.bytes, signalOption(signal));
    }
    this.on.published(this.revision);
  }

  /**
   * INTRODUCE2: opens the introduction and checks it is no replay, then hands it on (specs/messaging.md §8.4). A worn
   * introduction point is replaced (its replay set goes with its key).
   */
  private onIntroduce(ip: IntroState, m: RelayMessage): void {
    try {
      const { p: sealed, w } = decodeRv('introduce2', m.data);
      // The proof of work is checked before anything costs an X25519 (rendezvous.md §4.3): one hash per seed.
      let effort = 0;
      if (w) {
        if (this.powSeeds.length === 0) this.rotateSeed();
        const held =
          this.powSeeds[
            verifyPow(
              this.powSeeds.map((x) => x.seed),
              w,
              powBinding(sealed),
            )
          ]!;
        const nonce = toHex(w.n);
        if (held.seen.has(nonce)) throw new ProtocolError('ERR_INTRO_POW', 'proof of work replayed');
        held.seen.add(nonce);
        if (held.seen.size >= MAX_POW_REPLAY_ENTRIES) {
          this.rotateSeed(0); // the full seed is dropped at once; clients learn the new one from the republished descriptor
          void this.maintain();
        }
        effort = w.e;
      } else if (this.effort > 0) {
        throw new ProtocolError('ERR_INTRO_POW', 'introduction without proof of work while the endpoint asks for one');
      }
      const plain = crypto().open(sealed, ip.enc);
      if (!plain) throw new AlliumError('ERR_MESSAGE_AUTH', 'introduction does not open');
      const intro = decodeMessage(introPayloadSchema, plain, 512, 'introduction');
      const hs = responderHandshake({ identity: this.identity, prekey: ip.enc }, intro.hs);
      const tag = toHex(hs.replayTag);
      if (ip.seen.has(tag)) throw new AlliumError('ERR_MESSAGE_REPLAY', 'introduction replayed');
      ip.seen.add(tag);
      if (ip.seen.size >= (this.options.maxIntroductionsPerPoint ?? DEFAULT_MAX_INTRODUCTIONS)) void this.maintain();
      const rp = this.client.directory.get(intro.rp);
      if (!rp) throw new AlliumError('ERR_UNREACHABLE', 'rendezvous point not in the directory');
      this.on.introduced({ ip, rp, cookie: intro.c, x: intro.x, peer: formatAddress(hs.initiatorIdentityKey), session: hs.session, at: Date.now(), effort });
    } catch (e) {
      this.refused++;
      this.on.error(asAlliumError(e, 'introduction failed'));
      this.loadSeen();
    }
  }

  /** Stops maintenance, aborts what is in flight and closes every introduction point. */
  close(): void {
    this.closed = true;
    this.shutdown.abort();
    if (this.republishTimer) clearInterval(this.republishTimer);
    this.republishTimer = null;
    if (this.powTimer) clearInterval(this.powTimer);
    this.powTimer = null;
    for (const i of [...this.intros.values(), ...this.retiring]) i.circuit.close();
    this.intros.clear();
    this.retiring.clear();
    this.content.close();
  }
}
