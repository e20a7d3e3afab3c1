/**
 * Placement and flags as a relay's consensus gives them (specs/content.md §6.1): the period's shared random value
 * that salts positions, and which relays may hold (store relays with the Holder flag). Without a consensus,
 * positions are unsalted and every store relay may hold.
 */
import { toHex } from '../protocol/bytes.js';
import type { Consensus } from '../protocol/consensus.js';
import type { Descriptor } from '../protocol/descriptor.js';
import { Flag } from '../protocol/flags.js';
import { srvFor } from '../protocol/shared-random.js';
import type { PlacementOptions } from './replication.js';

const eligibleFor = new WeakMap<Consensus, (d: Descriptor) => boolean>();

export function consensusPlacement(c: Consensus | null, now: number): PlacementOptions {
  if (!c) return { ctx: null };
  let eligible = eligibleFor.get(c);
  if (!eligible) {
    const flags = new Map(c.entries.map((e) => [toHex(e.id), e.flags]));
    eligible = (d) => d.caps.includes('store') && ((flags.get(d.fingerprint) ?? 0) & Flag.HOLDER) !== 0;
    eligibleFor.set(c, eligible);
  }
  const { pn, srv } = srvFor(c.sr, now, c.sr.srp);
  return { ctx: { pn, srv }, eligible };
}

/** This relay's entry in the consensus: its flags and weight (status pages). */
export function ownEntry(c: Consensus | null, fingerprint: string): { flags: number; w: number } | null {
  const e = c?.entries.find((x) => toHex(x.id) === fingerprint);
  return e ? { flags: e.flags, w: e.w } : null;
}
