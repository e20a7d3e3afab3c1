/**
 * Re-replication and repair (specs/content.md §6.2). Each store relay keeps every item it holds at its k nearest
 * store relays:
 *
 * - The set of store relays in the directory defines a placement generation. When it changes (a relay left or
 *   joined), every held item is checked again: for each of its k holders other than us, ask whether it has the
 *   item (FETCH head) and STORE it there if not. An item whose holders no longer include us becomes a cached copy,
 *   evicted first.
 * - Popular items (many fetches since the last look) are also offered to the next k relays in distance order, as
 *   cached copies, so load spreads as demand grows.
 * - Departures are noticed before descriptors expire: each pass probes the other holders of a sample of held keys
 *   (a relay link to each), and a holder that cannot be reached for three repair intervals is left out of placement
 *   here until it answers again or publishes a newer descriptor. Leaving it out changes the generation, so its items
 *   get a new holder within a pass or two instead of when its descriptor expires, hours later.
 * Transfers use one-hop circuits to the other holder over relay links; no client is involved or identifiable.
 * What a pass learns about other relays (misses, departures, cached circuits) is kept only for relays in the
 * directory: each pass forgets the rest, so relays that come and go leave nothing behind.
 */
import type { Logger } from 'pino';
import { crypto } from '../crypto/index.js';
import type { IdentityKey } from '../crypto/keys.js';
import { toHex, utf8 } from '../protocol/bytes.js';
import { isAlliumError } from '../protocol/errors.js';
import type { Descriptor } from '../protocol/descriptor.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import { isStoreRelay, type PlacementContext } from '../protocol/placement.js';
import { PlacementIndex } from '../protocol/placement-index.js';
import { fetchItem, storeItem } from '../net/content-requests.js';
import { buildCircuit, type CircuitTable, type ClientCircuit } from '../net/circuit.js';
import type { Link } from '../net/link.js';
import type { BlockStore } from './block-store.js';
import type { RelayMetrics } from './metrics.js';

export interface ReplicatorOptions {
  store: BlockStore;
  directory: DirectoryStore;
  identity: IdentityKey;
  k: number;
  circuitTo: (d: Descriptor) => Promise<ClientCircuit>;
  metrics: RelayMetrics;
  log: Logger;
  /** Items taken from the store at a time (default 32). */
  batch?: number;
  popularFetches?: number;
  /** Whether a relay answers (e.g. a relay link to it opens); without it, only failed transfers count as misses. */
  probe?: (d: Descriptor) => Promise<boolean>;
  /** Called every pass with the fingerprints in the directory: the transport drops what it keeps for other relays. */
  prune?: (live: ReadonlySet<string>) => void;
  /**
   * The relay's repair_interval (default 60 s): a holder unreachable for three of them is left out of placement, and
   * a pass takes items for three quarters of one.
   */
  repairIntervalMs?: number;
  /** Items checked at once (default 4). */
  parallel?: number;
  /** Holders probed per pass, at most (default 16). */
  probesPerPass?: number;
  /**
   * Placement (specs/content.md §6.1): the period's shared random value and which relays may hold, from the
   * consensus (default: unsalted positions, every store relay).
   */
  placement?: () => PlacementOptions;
  now?: () => number;
}

export interface PlacementOptions {
  readonly ctx: PlacementContext | null;
  readonly eligible?: (d: Descriptor) => boolean;
}

export class Replicator {
  private running = false;
  private stopped = false;
  /** Items re-replicated since start (for metrics and tests). */
  pushed = 0;

  /** Relays that failed every contact since `since` (fingerprint → first failure of the run, Unix ms). */
  private readonly misses = new Map<string, number>();
  /** Relays left out of placement: fingerprint → `pub` of the descriptor they were left out under. */
  private readonly departed = new Map<string, number>();

  constructor(private readonly o: ReplicatorOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The directory as placement here sees it: without relays taken to have left (see noteMiss). */
  relays(): Descriptor[] {
    const all = this.o.directory.all();
    if (this.departed.size === 0) return all;
    return all.filter((d) => this.departed.get(d.fingerprint) !== d.pub);
  }

  /** Fingerprints of relays currently left out of placement. */
  departedRelays(): string[] {
    return [...this.departed.keys()];
  }

  /**
   * Forgets misses and departures of relays no longer in the directory, and has the transport drop its circuits to
   * them: a relay that left is placed nowhere anyway, and one that returns starts with a clean record.
   */
  private prune(): void {
    const live = new Set(this.o.directory.all().map((d) => d.fingerprint));
    for (const fp of this.misses.keys()) if (!live.has(fp)) this.misses.delete(fp);
    for (const fp of this.departed.keys()) if (!live.has(fp)) this.departed.delete(fp);
    this.o.prune?.(live);
  }

  private noteAnswer(d: Descriptor): void {
    this.misses.delete(d.fingerprint);
    if (this.departed.delete(d.fingerprint)) this.o.log.info({ relay: d.fingerprint.slice(0, 8) }, 'holder answers again: placing items there again');
  }

  private noteMiss(d: Descriptor): void {
    const now = this.now();
    const since = this.misses.get(d.fingerprint);
    if (since === undefined) {
      this.misses.set(d.fingerprint, now);
      return;
    }
    if (now - since >= 3 * (this.o.repairIntervalMs ?? 60_000) && this.departed.get(d.fingerprint) !== d.pub) {
      this.departed.set(d.fingerprint, d.pub);
      this.o.metrics.departures.inc();
      this.o.log.info({ relay: d.fingerprint.slice(0, 8), unreachableForMs: now - since }, 'holder unreachable: placing its items elsewhere until it answers');
    }
  }

  /** Probes the other holders of a sample of held keys, so a holder that left is noticed without a transfer. */
  private async watchHolders(): Promise<void> {
    const probe = this.o.probe;
    if (!probe) return;
    const me = this.o.identity.fingerprint;
    const all = this.o.directory.all();
    const targets = new Map<string, Descriptor>();
    for (const rk of this.o.store.sampleKeys(8)) {
      // The holders in the full directory: a relay already left out is probed too, to notice its return.
      for (const h of this.holders(rk, all, this.o.k + 1)) if (h.fingerprint !== me) targets.set(h.fingerprint, h);
    }
    for (const fp of this.departed.keys()) {
      const d = all.find((x) => x.fingerprint === fp);
      if (d) targets.set(fp, d);
    }
    const list = [...targets.values()].slice(0, this.o.probesPerPass ?? 16);
    await Promise.all(
      list.map(async (d) => {
        let ok = false;
        try {
          ok = await probe(d);
        } catch (e) {
          // This relay had no dial to spare (MAX_PENDING_DIALS): that says nothing about the holder.
          if (isAlliumError(e) && e.code === 'ERR_LIMIT') return;
          ok = false;
        }
        if (this.stopped) return;
        if (ok) this.noteAnswer(d);
        else this.noteMiss(d);
      }),
    );
  }

  /** The placement generation: a hash of the store relays placement here counts (see relays()). */
  generation(): string {
    const p = this.place();
    const fps = this.relays()
      .filter(p.eligible ?? isStoreRelay)
      .map((d) => d.fingerprint)
      .sort();
    // A new placement period moves every item: the period's value is part of the generation.
    const salt = p.ctx ? `${p.ctx.pn}:${toHex(p.ctx.srv)};` : '';
    return toHex(crypto().hash(16, utf8(salt + fps.join(','))));
  }

  private place(): PlacementOptions {
    return this.o.placement?.() ?? { ctx: null };
  }

  /**
   * The index the last lookups used: kept while they ask about the same relays (one pass's list) under the same
   * placement, so a pass over many items sorts the directory once (protocol/placement-index.ts).
   */
  private lastIndex: {
    relays: readonly Descriptor[];
    ctx: PlacementContext | null;
    eligible: ((d: Descriptor) => boolean) | undefined;
    index: PlacementIndex;
  } | null = null;

  /** The k holders of rk among `relays` with this relay's placement (what holdersOf returns). */
  private holders(rk: Uint8Array, relays: readonly Descriptor[], k: number): Descriptor[] {
    const p = this.place();
    let c = this.lastIndex;
    if (!c || c.relays !== relays || c.eligible !== p.eligible || !sameContext(c.ctx, p.ctx)) {
      c = { relays, ctx: p.ctx, eligible: p.eligible, index: new PlacementIndex(relays, p.eligible ? { ctx: p.ctx, eligible: p.eligible } : { ctx: p.ctx }) };
      this.lastIndex = c;
    }
    return c.index.holders(rk, k);
  }

  stop(): void {
    this.stopped = true;
    this.lastIndex = null;
  }

  /** One pass over items not yet checked in this generation; returns how many were checked. */
  async tick(): Promise<number> {
    if (this.running || this.stopped) return 0;
    this.running = true;
    try {
      this.prune();
      await this.watchHolders();
      if (this.stopped) return 0;
      const gen = this.generation();
      const relays = this.relays();
      const me = this.o.identity.fingerprint;
      const deadline = this.now() + 0.75 * (this.o.repairIntervalMs ?? 60_000);
      const batch = this.o.batch ?? 32;
      const parallel = this.o.parallel ?? 4;
      let checked = 0;
      // Each kind in key order from a cursor, a batch at a time, until it is done or the pass's time is up: an item
      // whose transfers failed stays unchecked and is tried again next pass, never twice in one.
      const work = async (next: (after: Uint8Array) => Uint8Array[], check: (rk: Uint8Array) => Promise<void>): Promise<void> => {
        let after: Uint8Array = new Uint8Array(0);
        while (!this.stopped && this.now() < deadline) {
          const keys = next(after);
          if (keys.length === 0) return;
          after = keys[keys.length - 1]!;
          for (let i = 0; i < keys.length && !this.stopped; i += parallel) {
            await Promise.all(keys.slice(i, i + parallel).map(check));
            checked += Math.min(parallel, keys.length - i);
          }
          if (keys.length < batch) return;
        }
      };
      await work(
        (after) => this.o.store.uncheckedBlocks(gen, batch, after),
        async (rk) => {
          const holders = this.holders(rk, relays, this.o.k);
          const data = this.o.store.getBlock(rk, 'check');
          if (!data) return;
          let copies = 1;
          let ok = true;
          for (const h of holders) {
            if (h.fingerprint === me) continue;
            const r = await this.ensure(h, 'block', rk, data, false);
            if (r === true) copies++;
            else if (r === null) ok = false;
          }
          if (ok && !this.stopped) this.o.store.markChecked(rk, gen, copies, holders.some((h) => h.fingerprint === me) ? 'replica' : 'cache');
        },
      );
      await work(
        (after) => this.o.store.uncheckedRecords(gen, batch, after),
        async (rk) => {
          const data = this.o.store.getRecord(rk);
          if (!data) return;
          let ok = true;
          for (const h of this.holders(rk, relays, this.o.k)) {
            if (h.fingerprint === me) continue;
            if ((await this.ensure(h, 'record', rk, data, false)) === null) ok = false;
          }
          if (ok && !this.stopped) this.o.store.markRecordChecked(rk, gen);
        },
      );
      // Mailbox slots (specs/messaging.md §9.4): an item; a holder with anything in the slot has it.
      await work(
        (after) => this.o.store.uncheckedMailboxes(gen, batch, after),
        async (rk) => {
          const data = this.o.store.getMailbox(rk);
          if (!data || data.length === 0) return;
          let ok = true;
          for (const h of this.holders(rk, relays, this.o.k)) {
            if (h.fingerprint === me) continue;
            if ((await this.ensure(h, 'mailbox', rk, data, false)) === null) ok = false;
          }
          if (ok && !this.stopped) this.o.store.markMailboxChecked(rk, gen);
        },
      );
      await this.spreadPopular(relays);
      // Counted at the end of the pass, together: a pass that checked nothing is one that found the store settled.
      this.o.metrics.repairChecked.inc(checked);
      this.o.metrics.repairPasses.inc();
      return checked;
    } finally {
      this.running = false;
    }
  }

  /** Makes sure `h` holds the item. True if it has it now, false if it refused (quota, invalid), null if unreachable or busy. */
  private async ensure(h: Descriptor, kind: 'block' | 'record' | 'mailbox', rk: Uint8Array, data: Uint8Array, cache: boolean): Promise<boolean | null> {
    try {
      let circuit: ClientCircuit;
      try {
        circuit = await this.o.circuitTo(h);
      } catch (e) {
        if (!isAlliumError(e) || e.code !== 'ERR_LIMIT') this.noteMiss(h);
        throw e;
      }
      this.noteAnswer(h);
      if (kind === 'block') {
        const has = await fetchItem(circuit, 'block', rk, { head: true });
        if (has) return true;
      }
      const status = await storeItem(circuit, kind, rk, data, { cache });
      if (status === 'ok') {
        this.pushed++;
        this.o.metrics.replicated.inc();
      }
      // `refused` is a busy holder (its pending-STORE bytes or its mailbox STORE buckets, specs/limits.md): next pass.
      if (status === 'refused') return null;
      return status === 'ok' || status === 'exists' || status === 'stale' || status === 'occupied';
    } catch (e) {
      this.o.log.debug({ err: e }, 'replication transfer failed');
      return null;
    }
  }

  private async spreadPopular(relays: Descriptor[]): Promise<void> {
    const hot = this.o.store.popular(this.o.popularFetches ?? 20, 4);
    for (const rk of hot) {
      const data = this.o.store.getBlock(rk, 'check');
      if (!data) continue;
      const ring = this.holders(rk, relays, this.o.k * 2).slice(this.o.k);
      for (const h of ring) if (h.fingerprint !== this.o.identity.fingerprint) await this.ensure(h, 'block', rk, data, true);
    }
  }
}

/**
 * How a store relay reaches the others for repair: one-hop circuits over relay links (cached while open, dropped —
 * and closed — once their relay leaves the directory), and a probe that finds or opens a relay link. `linkTo` is the
 * overlay's; circuits are registered in `table`.
 */
export function replicationTransport(
  linkTo: (identity: Uint8Array) => Promise<Link>,
  table: CircuitTable,
): Pick<ReplicatorOptions, 'circuitTo' | 'probe' | 'prune'> {
  const circuits = new Map<string, Promise<ClientCircuit>>();
  const circuitTo = (d: Descriptor): Promise<ClientCircuit> => {
    const have = circuits.get(d.fingerprint);
    if (have) {
      return have.then((c) => {
        if (c.state === 'open') return c;
        circuits.delete(d.fingerprint);
        return circuitTo(d);
      });
    }
    const p = linkTo(d.id).then((link) => {
      table.attach(link);
      return buildCircuit(link, table, [d], { timeoutMs: 20_000 });
    });
    circuits.set(d.fingerprint, p);
    p.catch(() => circuits.delete(d.fingerprint));
    return p;
  };
  const prune = (live: ReadonlySet<string>): void => {
    for (const [fp, p] of circuits) {
      if (live.has(fp)) {
        // A circuit that closed since is dropped too (circuitTo would replace it on its next use anyway).
        p.then(
          (c) => c.state !== 'open' && circuits.get(fp) === p && circuits.delete(fp),
          () => undefined,
        );
        continue;
      }
      circuits.delete(fp);
      p.then(
        (c) => c.close(),
        () => undefined,
      );
    }
  };
  const probe = (d: Descriptor): Promise<boolean> =>
    linkTo(d.id).then(
      (link) => link.isOpen,
      (e: unknown) => {
        if (isAlliumError(e) && e.code === 'ERR_LIMIT') throw e; // no dial to spare here: not the holder's doing
        return false;
      },
    );
  return { circuitTo, probe, prune };
}

function sameContext(a: PlacementContext | null, b: PlacementContext | null): boolean {
  if (a === null || b === null) return a === b;
  return a.pn === b.pn && a.srv.length === b.srv.length && a.srv.every((v, i) => v === b.srv[i]);
}
