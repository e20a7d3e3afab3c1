/**
 * Which upgrades a relay admits as links, by where they come from and what they claim to be (specs/link.md §7).
 *
 * - Per address and per address block: links from one IP address (`max_links_per_ip`) and from one /24 or /48
 *   (`max_links_per_block`), counted from the upgrade, through the handshake, until the link closes. An IPv6 host
 *   has a /64 or more, so a limit per address alone bounds nothing there; and 64 IPv4 addresses of one network held
 *   every slot of a relay with the defaults.
 * - A reserve for relays: links of peers that are not relays (clients, and upgrades without a token, whose role is
 *   not known yet) may hold at most `max_links − relay_links_reserved` of the `max_links` slots, so relays can still
 *   link to a relay whose client slots are full (circuits and gossip go on).
 * - When the slots a new link may use are full, the client link idle longest — no cell but padding for at least
 *   CLIENT_IDLE_EVICT_MS — is closed to make room; if none is idle that long, the upgrade is refused.
 *
 * Pure bookkeeping: the relay passes addresses, roles and its open links; this module never touches a socket.
 */
import { addressKeys } from '../protocol/address-block.js';
import { LimitError } from '../protocol/errors.js';
import { LinkRole, type LinkPeer } from '../protocol/link-handshake.js';

/** A client link is evicted for a newcomer only after this long without a cell other than padding (ms). */
export const CLIENT_IDLE_EVICT_MS = 60_000;

export interface LinkAdmissionLimits {
  maxLinks: number;
  maxLinksPerIp: number;
  maxLinksPerBlock: number;
  /** Slots of maxLinks only relay links may take. */
  relayLinksReserved: number;
}

/** An open link as admission sees it (net/link.ts's Link is one). */
export interface AdmittedLink {
  readonly peer: LinkPeer | null;
  /** When it last received a cell other than padding (or opened). */
  readonly lastActiveAt: number;
  close(error: LimitError): void;
}

/** Why an upgrade is refused (the `result` label of allium_handshakes_total). */
export type Refusal = 'max_links' | 'max_links_per_ip' | 'max_links_per_block';

/** An upgrade that may go on: `evict` is the link to close for it first, if the slots it may use are full. */
export interface Admitted {
  readonly evict: AdmittedLink | null;
}

export class LinkAdmission {
  private readonly perIp = new Map<string, number>();
  private readonly perBlock = new Map<string, number>();

  constructor(
    private readonly limits: LinkAdmissionLimits,
    private readonly now: () => number,
  ) {}

  /**
   * Checks an upgrade from `remote` whose peer claims to be a relay (`relay`) or not (a client, or not known), given
   * the relay's open links. Returns why it is refused, or that it may go on and which idle client link to close for
   * it (the caller closes it with `evict` once the upgrade has passed its other checks, then calls `hold`).
   */
  admit(remote: string, relay: boolean, open: Iterable<AdmittedLink>): Refusal | Admitted {
    const k = addressKeys(remote);
    if ((this.perIp.get(k.address) ?? 0) >= this.limits.maxLinksPerIp) return 'max_links_per_ip';
    if ((this.perBlock.get(k.block) ?? 0) >= this.limits.maxLinksPerBlock) return 'max_links_per_block';
    let all = 0;
    let clients = 0;
    let idlest: AdmittedLink | null = null;
    const idleBefore = this.now() - CLIENT_IDLE_EVICT_MS;
    for (const l of open) {
      all++;
      if (l.peer?.role === LinkRole.RELAY) continue;
      clients++;
      if (l.lastActiveAt <= idleBefore && (!idlest || l.lastActiveAt < idlest.lastActiveAt)) idlest = l;
    }
    const full = all >= this.limits.maxLinks || (!relay && clients >= this.limits.maxLinks - this.limits.relayLinksReserved);
    if (!full) return { evict: null };
    return idlest ? { evict: idlest } : 'max_links';
  }

  /** Closes a link chosen by admit() to make room (ERR_LIMIT). */
  evict(l: AdmittedLink): void {
    l.close(new LimitError('max_links', 'the longest-idle client link gives way to a new link'));
  }

  /** Counts a link from `remote` against its address and block; returns the function that uncounts it (once). */
  hold(remote: string): () => void {
    const k = addressKeys(remote);
    bump(this.perIp, k.address, 1);
    bump(this.perBlock, k.block, 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      bump(this.perIp, k.address, -1);
      bump(this.perBlock, k.block, -1);
    };
  }

  /** Links counted from `remote`'s address and from its block (tests, status). */
  countOf(remote: string): { address: number; block: number } {
    const k = addressKeys(remote);
    return { address: this.perIp.get(k.address) ?? 0, block: this.perBlock.get(k.block) ?? 0 };
  }
}

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}
