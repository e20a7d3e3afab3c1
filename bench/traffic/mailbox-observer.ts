/**
 * The mailbox observer (issue 16, audit item 4; specs/messaging.md §9.7): what someone who knows an identity's
 * address, and nothing else, learns about its offline mail.
 *
 * A network of relay processes on 127.0.0.1 runs the real relay code; the real Messenger (client/messaging/) sends
 * and collects. Two populations of owners:
 *
 *   active   a contact (each has the other in its contact book) leaves 0–2 offline messages every tick, and the
 *            owner comes online (a collection pass) at random ticks, half of them;
 *   idle     nobody writes to it and it never comes online.
 *
 * After every tick the observer reads, from every holder, the slots derivable from the owner's address (the inbox of
 * the current epoch, slot 0 onwards until MAILBOX_SCAN_GAP free in a row) and records how many are occupied and how
 * many changed since the last tick (a deletion, a collection). Per owner it keeps three figures: slots occupied at
 * the end (deposits it can count), changes seen (collections it can see) and the first tick with a change (when the
 * owner was online). Each figure's distribution over the active owners is compared with the idle owners' by a
 * two-sample Kolmogorov–Smirnov statistic and a permutation test (seeded); the audit's figure is the largest KS
 * distance and the smallest p-value (Bonferroni-corrected over the three figures). Equal distributions: D = 0, p = 1.
 *
 * The observer is not a holder: it does not see who fetches a slot (a holder does, specs/messaging.md §10).
 */
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { Messenger, formatCard } from '../../client/messaging/node.js';
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import { inboxKey, mailboxEpochAt, slotLocator } from '../../protocol/mailbox.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { startNetwork } from '../../cli/local-network.js';
import { Rng } from '../../sim/random.js';

/** Free slots in a row after which the observer stops reading an inbox (as a collector does). */
const SCAN_GAP = 3;
/** The observer reads at most this many slots of one inbox. */
const MAX_SCAN = 64;

export interface ObserverOptions {
  readonly quick: boolean;
  readonly seed: string;
  readonly progress?: (msg: string) => void;
}

/** What the observer saw of one owner. */
export interface OwnerView {
  readonly active: boolean;
  /** Slots of the address's inbox occupied after the last tick. */
  readonly occupied: number;
  /** Slot contents that changed between ticks (a deletion or any rewrite). */
  readonly changes: number;
  /** The first tick after which a change was seen (ticks + 1 when none). */
  readonly firstChange: number;
  /** Ground truth, not seen by the observer: messages left for the owner, delivered to it, ticks it was online. */
  readonly deposited: number;
  readonly delivered: number;
  readonly online: number[];
}

export interface FigureTest {
  readonly figure: 'occupied' | 'changes' | 'firstChange';
  /** Kolmogorov–Smirnov distance between the active and idle owners' distributions (0 = identical). */
  readonly ks: number;
  /** Permutation p-value of the KS distance (uncorrected). */
  readonly p: number;
  readonly active: number[];
  readonly idle: number[];
}

export interface MailboxObserverResult {
  readonly owners: number;
  readonly ticks: number;
  readonly deposits: number;
  /** Messages the active owners' collections delivered (all of them, when an owner came online after the last). */
  readonly delivered: number;
  readonly tests: FigureTest[];
  /** The largest KS distance over the figures. */
  readonly maxKs: number;
  /** The smallest p-value times the number of figures (Bonferroni), at most 1. */
  readonly pMin: number;
  readonly views: OwnerView[];
}

function seedOf(s: string): number {
  const h = crypto().hash(32, new TextEncoder().encode(s));
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

/** Two-sample Kolmogorov–Smirnov distance. */
export function ksDistance(a: readonly number[], b: readonly number[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  const xs = [...new Set([...a, ...b])].sort((x, y) => x - y);
  let d = 0;
  for (const x of xs) {
    const fa = a.filter((v) => v <= x).length / a.length;
    const fb = b.filter((v) => v <= x).length / b.length;
    d = Math.max(d, Math.abs(fa - fb));
  }
  return d;
}

/** Permutation test of the KS distance: the share of relabellings at least as far apart (with the +1 correction). */
export function permutationP(a: readonly number[], b: readonly number[], rng: Rng, rounds = 2000): number {
  const observed = ksDistance(a, b);
  const all = [...a, ...b];
  let atLeast = 0;
  for (let r = 0; r < rounds; r++) {
    rng.shuffle(all);
    if (ksDistance(all.slice(0, a.length), all.slice(a.length)) >= observed - 1e-12) atLeast++;
  }
  return (atLeast + 1) / (rounds + 1);
}

/** Runs the observer over a fresh local network and returns what it saw. */
export async function runMailboxObserver(o: ObserverOptions): Promise<MailboxObserverResult> {
  const say = o.progress ?? (() => undefined);
  const rng = new Rng(seedOf(o.seed));
  const perSide = o.quick ? 6 : 16;
  const ticks = o.quick ? 3 : 5;
  say(`starting 8 relays; ${perSide} active and ${perSide} idle owners, ${ticks} ticks`);
  const net = await startNetwork(8);
  const fps = net.relays.map((r) => r.fingerprint);
  const mkClient = (entry: string[]): AlliumClient =>
    new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0, entryRelays: entry });
  const senderClient = mkClient([fps[1]!, fps[2]!]);
  const ownerClient = mkClient([fps[3]!, fps[4]!]);
  const observerClient = mkClient([fps[5]!, fps[6]!]);
  const closers: { close(): void | Promise<void> }[] = [];
  try {
    await Promise.all([senderClient.start(), ownerClient.start(), observerClient.start()]);
    const sender = new Messenger(senderClient, undefined, { offline: { collect: false } });
    closers.push(sender);
    const owners = Array.from({ length: 2 * perSide }, (_, i) => {
      const m = new Messenger(ownerClient, undefined, { offline: { collect: false } });
      closers.push(m);
      return { m, active: i < perSide, deposited: 0, delivered: 0, online: [] as number[] };
    });
    // Contacts: each active owner and its correspondent hold each other's card (specs/messaging.md §11.1).
    for (const [i, w] of owners.entries()) {
      if (!w.active) continue;
      await sender.contacts.add(formatCard(w.m.identity.publicKey), { name: `owner-${i}` });
      await w.m.contacts.add(formatCard(sender.identity.publicKey), { name: 'correspondent' });
    }
    const observer = new ContentClient(observerClient);
    closers.push(observer);
    const last = owners.map(() => new Map<number, string>());
    const seen = owners.map(() => ({ occupied: 0, changes: 0, firstChange: ticks + 1 }));
    for (let t = 0; t < ticks; t++) {
      say(`tick ${t + 1}/${ticks}`);
      for (const w of owners) {
        if (!w.active) continue;
        const n = rng.int(3);
        for (let k = 0; k < n; k++) {
          await sender.send(w.m.address, new TextEncoder().encode(`m${t}.${k}`), { offline: 'only' });
          w.deposited++;
        }
      }
      for (const w of owners) {
        if (!w.active || rng.next() >= 0.5) continue;
        w.online.push(t);
        w.delivered += await w.m.checkMailbox();
      }
      // The observer's look: the address's inbox for today, slot by slot.
      const epoch = mailboxEpochAt(Date.now());
      for (const [i, w] of owners.entries()) {
        const inbox = inboxKey(w.m.identity.publicKey, epoch);
        let occupied = 0;
        let free = 0;
        for (let s = 0; s < MAX_SCAN && free < SCAN_GAP; s++) {
          const copies = await observer.fetchFromAll('mailbox', slotLocator(inbox, s));
          if (copies.length === 0) {
            free++;
            continue;
          }
          free = 0;
          occupied++;
          const digest = copies
            .map((c) => toHex(crypto().hash(16, c)))
            .sort()
            .join(',');
          const before = last[i]!.get(s);
          if (before !== undefined && before !== digest) {
            seen[i]!.changes++;
            seen[i]!.firstChange = Math.min(seen[i]!.firstChange, t + 1);
          }
          last[i]!.set(s, digest);
        }
        seen[i]!.occupied = occupied;
      }
    }
    const views: OwnerView[] = owners.map((w, i) => ({ active: w.active, ...seen[i]!, deposited: w.deposited, delivered: w.delivered, online: w.online }));
    const figures = ['occupied', 'changes', 'firstChange'] as const;
    const tests: FigureTest[] = figures.map((figure) => {
      const active = views.filter((v) => v.active).map((v) => v[figure]);
      const idle = views.filter((v) => !v.active).map((v) => v[figure]);
      return { figure, ks: ksDistance(active, idle), p: permutationP(active, idle, rng), active, idle };
    });
    return {
      owners: owners.length,
      ticks,
      deposits: views.reduce((n, v) => n + v.deposited, 0),
      delivered: views.reduce((n, v) => n + v.delivered, 0),
      tests,
      maxKs: Math.max(...tests.map((x) => x.ks)),
      pMin: Math.min(1, Math.min(...tests.map((x) => x.p)) * tests.length),
      views,
    };
  } finally {
    for (const c of closers.reverse()) await c.close();
    await Promise.all([senderClient.stop(), ownerClient.stop(), observerClient.stop()].map((p) => p.catch(() => undefined)));
    await net.stop();
  }
}
