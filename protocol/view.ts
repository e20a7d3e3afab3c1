/**
 * A node's usable view of the network (specs/directory.md §6.6, specs/path.md §2.2): the relays it may use, with
 * the flags and weights every choice reads — guards, circuit positions, holders, introduction and rendezvous
 * points, directory sources, overlay neighbours.
 *
 * With a consensus: the relays it lists whose descriptor (held by the node) matches the listed md; weights are the
 * consensus weights times the position weights of the relay's class; flags are the consensus's.
 *
 * Without authorities: every relay with a valid descriptor; a relay's weight is its claim capped at
 * CLAIM_CAP_FACTOR times the median claim (claims are unverifiable, so no single relay may outweigh the network);
 * there are no flags, so every relay is eligible for every position its descriptor allows (exits by policy), all
 * at full weight.
 */
import { equalBytes } from './bytes.js';
import { descriptorMd, type Consensus, type ConsensusEntry } from './consensus.js';
import type { Descriptor } from './descriptor.js';
import { isExitPolicy, parseExitPolicy } from './exit-policy.js';
import { Flag, hasFlag } from './flags.js';
import { PlacementIndex } from './placement-index.js';
import type { PlacementContext } from './placement.js';
import { srvFor } from './shared-random.js';
import { claimCap, FLAT_WEIGHTS, positionFactor, WEIGHT_SCALE, type Position, type PositionWeights } from './weights.js';

/** What choices need to know about relays beyond their descriptors. */
export interface SelectionWeights {
  /** The relay's weight for a position (0: not eligible for it). */
  weight(d: Descriptor, position: Position): number;
  /** Consensus flags (0 without a consensus). */
  flags(d: Descriptor): number;
  /** True when flags come from a consensus and must be honoured. */
  readonly flagged: boolean;
}

const exitPolicies = new WeakMap<readonly string[], boolean>();
function isExit(d: Descriptor): boolean {
  let x = exitPolicies.get(d.exit);
  if (x === undefined) exitPolicies.set(d.exit, (x = isExitPolicy(parseExitPolicy(d.exit))));
  return x;
}

export class DirectoryView implements SelectionWeights {
  readonly relays: readonly Descriptor[];
  readonly flagged: boolean;
  readonly positions: PositionWeights;
  private readonly entries = new Map<string, ConsensusEntry>();
  private readonly cap: number;

  /**
   * `descriptors`: the node's valid descriptors; `consensus`: its newest valid consensus with entries, or null
   * (no authorities configured). Relays the consensus does not list, or lists with another md, are left out.
   */
  constructor(
    descriptors: readonly Descriptor[],
    readonly consensus: Consensus | null,
  ) {
    if (consensus) {
      const byFp = new Map<string, ConsensusEntry>();
      for (const e of consensus.entries) byFp.set(hexOf(e.id), e);
      const usable: Descriptor[] = [];
      for (const d of descriptors) {
        const e = byFp.get(d.fingerprint);
        if (e && equalBytes(e.md, descriptorMd(d))) {
          usable.push(d);
          this.entries.set(d.fingerprint, e);
        }
      }
      this.relays = usable;
      this.flagged = true;
      this.positions = consensus.weights;
      this.cap = Infinity;
    } else {
      this.relays = [...descriptors];
      this.flagged = false;
      this.positions = FLAT_WEIGHTS;
      this.cap = claimCap(descriptors.map((d) => d.bw));
    }
  }

  /** The relay's weight before position weights (consensus weight, or capped claim). */
  baseWeight(d: Descriptor): number {
    const e = this.entries.get(d.fingerprint);
    if (e) return Math.max(1, e.w);
    return this.flagged ? 0 : Math.max(1, Math.min(d.bw, this.cap));
  }

  flags(d: Descriptor): number {
    return this.entries.get(d.fingerprint)?.flags ?? 0;
  }

  has(d: Descriptor, f: number): boolean {
    return hasFlag(this.flags(d), f);
  }

  private readonly memo = { guard: new WeakMap<Descriptor, number>(), middle: new WeakMap<Descriptor, number>(), exit: new WeakMap<Descriptor, number>() };

  weight(d: Descriptor, position: Position): number {
    const m = this.memo[position];
    let w = m.get(d);
    if (w === undefined) m.set(d, (w = this.computeWeight(d, position)));
    return w;
  }

  private computeWeight(d: Descriptor, position: Position): number {
    const base = this.baseWeight(d);
    if (base === 0) return 0;
    if (!this.flagged) return position === 'exit' && !isExit(d) ? 0 : base;
    const f = this.flags(d);
    const factor = positionFactor(this.positions, position, hasFlag(f, Flag.GUARD), hasFlag(f, Flag.EXIT));
    return (base * factor) / WEIGHT_SCALE;
  }

  /** The placement context at `now`: the consensus's shared random value, or none (unsalted positions). */
  placement(now: number): PlacementContext | null {
    if (!this.consensus) return null;
    const { pn, srv } = srvFor(this.consensus.sr, now, this.consensus.sr.srp);
    return { pn, srv };
  }

  /** The previous period's placement context (content placed then may not have moved yet), or null. */
  previousPlacement(now: number): PlacementContext | null {
    const c = this.placement(now);
    if (!c || !this.consensus) return null;
    const sr = this.consensus.sr;
    if (sr.pn === c.pn && sr.prev) return { pn: c.pn - 1, srv: sr.prev };
    return null;
  }

  /** Relays eligible to hold content: store relays, with the Holder flag when there is a consensus. */
  holderEligible = (d: Descriptor): boolean => d.caps.includes('store') && (!this.flagged || this.has(d, Flag.HOLDER));

  /** Holder indexes built so far, newest last: at most two (the current and the previous placement period). */
  private readonly holderIndexes: { ctx: PlacementContext | null; index: PlacementIndex }[] = [];

  /**
   * The holders of any key under `ctx` among this view's eligible relays (protocol/placement-index.ts): built on
   * first use, then kept with the view, so every key of a file costs a lookup, not a pass over the directory.
   */
  holderIndex(ctx: PlacementContext | null): PlacementIndex {
    for (const e of this.holderIndexes) if (sameContext(e.ctx, ctx)) return e.index;
    const index = new PlacementIndex(this.relays, { ctx, eligible: this.holderEligible });
    this.holderIndexes.push({ ctx, index });
    if (this.holderIndexes.length > 2) this.holderIndexes.shift();
    return index;
  }

  /** Introduction points: relays offering "intro", Fast and Stable with a consensus. */
  introEligible = (d: Descriptor): boolean => servicePointEligible(d, 'intro', this);

  /** Rendezvous points: relays offering "rendezvous", Fast and Stable with a consensus. */
  rendezvousEligible = (d: Descriptor): boolean => servicePointEligible(d, 'rendezvous', this);

  /** Directory sources: the Dir flag with a consensus, any relay without. */
  dirEligible = (d: Descriptor): boolean => !this.flagged || this.has(d, Flag.DIR);
}

/**
 * Whether `d` may serve as an introduction or rendezvous point (directory.md §6.6): it offers the capability and, when
 * the flags come from a consensus, has both Fast and Stable. There is no fallback to unflagged relays with a consensus:
 * Stable goes to at least half the running relays (median MTBF), so such a fallback would only be reached once the
 * flagged ones are used up, and would then hand the choice to whoever runs the most new, slow relays.
 */
export function servicePointEligible(d: Descriptor, capability: 'intro' | 'rendezvous', view: Pick<SelectionWeights, 'flags' | 'flagged'>): boolean {
  return d.caps.includes(capability) && (!view.flagged || hasFlag(view.flags(d), Flag.FAST | Flag.STABLE));
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
function hexOf(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}

function sameContext(a: PlacementContext | null, b: PlacementContext | null): boolean {
  if (a === null || b === null) return a === b;
  return a.pn === b.pn && equalBytes(a.srv, b.srv);
}
