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
 * Transfers use one-hop circuits to the other holder over relay links; no client is involved or identifiable.
 */
import type { Logger } from 'pino';
import { crypto } from '../crypto/index.js';
import type { IdentityKey } from '../crypto/keys.js';
import { toHex, utf8 } from '../protocol/bytes.js';
import type { Descriptor } from '../protocol/descriptor.js';
import type { DirectoryStore } from '../protocol/directory-store.js';
import { holdersOf, isStoreRelay } from '../protocol/placement.js';
import { fetchItem, storeItem } from '../net/content-requests.js';
import type { ClientCircuit } from '../net/circuit.js';
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
  batch?: number;
  popularFetches?: number;
}

export class Replicator {
  private running = false;
  private stopped = false;
  /** Items re-replicated since start (for metrics and tests). */
  pushed = 0;

  constructor(private readonly o: ReplicatorOptions) {}

  /** The placement generation: a hash of the store relays currently in the directory. */
  generation(): string {
    const fps = this.o.directory
      .all()
      .filter(isStoreRelay)
      .map((d) => d.fingerprint)
      .sort();
    return toHex(crypto().hash(16, utf8(fps.join(','))));
  }

  stop(): void {
    this.stopped = true;
  }

  /** One pass over items not yet checked in this generation; returns how many were checked. */
  async tick(): Promise<number> {
    if (this.running || this.stopped) return 0;
    this.running = true;
    try {
      const gen = this.generation();
      const relays = this.o.directory.all();
      const me = this.o.identity.fingerprint;
      let checked = 0;
      for (const rk of this.o.store.uncheckedBlocks(gen, this.o.batch ?? 32)) {
        if (this.stopped) break;
        const holders = holdersOf(rk, relays, this.o.k);
        const data = this.o.store.getBlock(rk, Date.now(), 'check');
        if (!data) continue;
        let copies = 1;
        let ok = true;
        for (const h of holders) {
          if (h.fingerprint === me) continue;
          const r = await this.ensure(h, 'block', rk, data, false);
          if (r === true) copies++;
          else if (r === null) ok = false;
        }
        if (ok) this.o.store.markChecked(rk, gen, copies, holders.some((h) => h.fingerprint === me) ? 'replica' : 'cache');
        checked++;
      }
      for (const rk of this.o.store.uncheckedRecords(gen, this.o.batch ?? 32)) {
        if (this.stopped) break;
        const data = this.o.store.getRecord(rk);
        if (!data) continue;
        let ok = true;
        for (const h of holdersOf(rk, relays, this.o.k)) {
          if (h.fingerprint === me) continue;
          if ((await this.ensure(h, 'record', rk, data, false)) === null) ok = false;
        }
        if (ok) this.o.store.markRecordChecked(rk, gen);
        checked++;
      }
      // Mailbox slots (specs/messaging.md §9.4): an item or a deletion; a holder with anything in the slot has it.
      for (const rk of this.o.store.uncheckedMailboxes(gen, this.o.batch ?? 32)) {
        if (this.stopped) break;
        const data = this.o.store.getMailbox(rk);
        if (!data || data.length === 0) continue;
        let ok = true;
        for (const h of holdersOf(rk, relays, this.o.k)) {
          if (h.fingerprint === me) continue;
          if ((await this.ensure(h, 'mailbox', rk, data, false)) === null) ok = false;
        }
        if (ok) this.o.store.markMailboxChecked(rk, gen);
        checked++;
      }
      await this.spreadPopular(relays);
      return checked;
    } finally {
      this.running = false;
    }
  }

  /** Makes sure `h` holds the item. True if it has it now, false if it refused (quota), null if unreachable. */
  private async ensure(h: Descriptor, kind: 'block' | 'record' | 'mailbox', rk: Uint8Array, data: Uint8Array, cache: boolean): Promise<boolean | null> {
    try {
      const circuit = await this.o.circuitTo(h);
      if (kind === 'block') {
        const has = await fetchItem(circuit, 'block', rk, { head: true });
        if (has) return true;
      }
      const status = await storeItem(circuit, kind, rk, data, { cache });
      if (status === 'ok') {
        this.pushed++;
        this.o.metrics.replicated.inc();
      }
      return status === 'ok' || status === 'exists' || status === 'stale' || status === 'occupied';
    } catch (e) {
      this.o.log.debug({ err: e }, 'replication transfer failed');
      return null;
    }
  }

  private async spreadPopular(relays: Descriptor[]): Promise<void> {
    const hot = this.o.store.popular(this.o.popularFetches ?? 20, 4);
    for (const rk of hot) {
      const data = this.o.store.getBlock(rk, Date.now(), 'check');
      if (!data) continue;
      const ring = holdersOf(rk, relays, this.o.k * 2).slice(this.o.k);
      for (const h of ring) if (h.fingerprint !== this.o.identity.fingerprint) await this.ensure(h, 'block', rk, data, true);
    }
  }
}


