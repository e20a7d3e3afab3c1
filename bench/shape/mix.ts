/**
 * Section 4 of the shape audit: message mode (specs/mix.md) against a global passive observer. The real mix code
 * (relay/mix.ts: packet processing, replay filter, delay queue, inboxes) and the real client (client/messaging/
 * mix-mode.ts: Poisson payload, loop and poll streams, Sphinx-style packets) run in the simulator's virtual time;
 * between them a message transport with 10 ms of one-way latency stands in for the links (the cells they would
 * carry are the MIX, MIX_POLL and MIX_MAIL cells, each one link cell; link framing is not simulated). The observer
 * sees the time of every MIX cell each user sends to its gateway.
 *
 * Workload: N users, each with a gateway among M mix relays; messages at exponential intervals from a uniformly
 * drawn sender to a uniformly drawn other user, until 1,000 messages (300 with --quick) have been delivered.
 *
 * The attack (timing correlation, the strongest passive one we know against this design): for every delivered
 * message the observer is told its recipient and the moment it was delivered (more than it sees: an upper bound),
 * and knows the distribution f of the delay from a packet's first hop to its delivery (it can run the network
 * itself; here it gets the true empirical histogram). It scores every other user u by Σ f(t_deliver − t) over u's
 * observed packets before t_deliver, and names the highest. Accuracy = share of messages whose sender it names;
 * chance is 1/(N−1). Run with cover off (a message leaves at once, nothing else is sent) and on (the defaults).
 *
 * Also reported: the end-to-end latency (send() to the recipient's mix:message) and the bandwidth a client spends.
 */
import { MixClient, type MixAddress, type MixRelayInfo } from '../../client/messaging/mix-mode.js';
import { crypto } from '../../crypto/index.js';
import { CELL_LEN } from '../../protocol/constants.js';
import { ReplayFilter } from '../../protocol/replay-filter.js';
import { MixNode } from '../../relay/mix.js';
import { simulate, type World } from '../../sim/world.js';
import { pct, quantile, type ShapeOptions, type ShapeRow } from './common.js';

const SECTION = '4. Message mode';
const LINK_MS = 10;
const BIN_MS = 50;

interface RunResult {
  accuracy: number;
  chance: number;
  latencies: number[];
  delivered: number;
  cellsPerUserPerSecond: number;
  cellsPerMessage: number;
  seconds: number;
}

async function run(w: World, cover: boolean, users: number, mixes: number, messages: number): Promise<RunResult> {
  const c = crypto();
  const after = (ms: number, f: () => void): void => void setTimeout(f, ms);

  // Mix relays: real MixNode, keyed by relay index; links identified by "relay:i" or "user:j".
  const keys = Array.from({ length: mixes }, () => c.x25519Keypair());
  const infos: MixRelayInfo[] = keys.map((k) => ({ identity: c.random(32), mixKey: k.publicKey }));
  const indexOf = new Map(infos.map((m, i) => [Buffer.from(m.identity).toString('hex'), i]));
  const clients: MixClient[] = [];
  const nodes: MixNode<string>[] = keys.map(
    (k, i) =>
      new MixNode<string>({
        identity: infos[i]!.identity,
        keys: () => [k],
        replay: new ReplayFilter({ capacity: 200_000, falsePositiveRate: 1e-7 }),
        forward: (next, packet) => {
          const j = indexOf.get(Buffer.from(next).toString('hex'))!;
          after(LINK_MS, () => nodes[j]!.onPacket(`relay:${i}`, packet));
        },
        sendMail: (link, body) => after(LINK_MS, () => clients[Number(link.slice(5))]!.onMail(body)),
      }),
  );

  // Users, and what the observer sees: the times of each user's MIX cells.
  const sends: number[][] = Array.from({ length: users }, () => []);
  let cellsOut = 0;
  for (let u = 0; u < users; u++) {
    const gw = u % mixes;
    clients.push(
      new MixClient(
        {
          send: (kind, body) => {
            cellsOut++;
            if (kind === 'packet') sends[u]!.push(w.now);
            after(LINK_MS, () => (kind === 'packet' ? nodes[gw]!.onPacket(`user:${u}`, body) : nodes[gw]!.onPoll(`user:${u}`, body)));
            return true;
          },
          mixes: () => infos,
        },
        { gateway: infos[gw]!.identity, cover },
      ),
    );
  }
  const addresses: MixAddress[] = clients.map((x) => x.address);

  // Ground truth: message id → sender, recipient, send() time, first-hop time; delivery time.
  const truth = new Map<string, { from: number; to: number; at: number; firstHop?: number; delivered?: number }>();
  clients.forEach((x, u) => {
    x.on('mix:sent', (id) => {
      const t = truth.get(Buffer.from(id).toString('hex'));
      if (t) t.firstHop = w.now;
    });
    x.on('mix:message', (_data, id) => {
      const t = truth.get(Buffer.from(id).toString('hex'));
      if (t && t.to === u && t.delivered === undefined) t.delivered = w.now;
    });
  });
  for (const x of clients) x.start();
  await w.run(5_000); // the streams settle

  // Each user writes at 0.05 messages a second on average (one every 20 s).
  const perUserRate = 0.05;
  const start = w.now;
  let written = 0;
  const write = (): void => {
    if (written >= messages) return;
    written++;
    const from = c.randomInt(users);
    let to = c.randomInt(users - 1);
    if (to >= from) to++;
    const id = clients[from]!.send(addresses[to]!, c.random(64));
    // With cover off the packet left inside send(), before its id was known here.
    truth.set(Buffer.from(id).toString('hex'), { from, to, at: w.now, ...(cover ? {} : { firstHop: w.now }) });
    after(-Math.log(1 - c.uniform()) * (1000 / (perUserRate * users)), write);
  };
  const cellsAtStart = cellsOut;
  write();
  const done = (): boolean => written >= messages && [...truth.values()].every((t) => t.delivered !== undefined);
  const horizon = (messages / (perUserRate * users)) * 1000 + 120_000;
  await w.run(horizon, done);
  const seconds = (w.now - start) / 1000;
  const cellsUsed = cellsOut - cellsAtStart;
  for (const x of clients) x.stop();
  for (const n of nodes) n.stop();

  // The observer's model f: the histogram of first hop → delivery.
  const delivered = [...truth.values()].filter((t) => t.delivered !== undefined && t.firstHop !== undefined);
  const bins = new Map<number, number>();
  for (const t of delivered) {
    const b = Math.floor((t.delivered! - t.firstHop!) / BIN_MS);
    bins.set(b, (bins.get(b) ?? 0) + 1);
  }
  const f = (dt: number): number => (dt < 0 ? 0 : ((bins.get(Math.floor(dt / BIN_MS)) ?? 0) + 1e-3) / delivered.length);
  const maxBin = Math.max(...bins.keys());
  let right = 0;
  for (const t of delivered) {
    let best = -1;
    let bestScore = -1;
    for (let u = 0; u < users; u++) {
      if (u === t.to) continue;
      let score = 0;
      for (const s of sends[u]!) {
        const dt = t.delivered! - s;
        if (dt < 0 || dt > (maxBin + 1) * BIN_MS) continue;
        score += f(dt);
      }
      // Ties (several users with equal scores) are broken at random, as chance would.
      if (score > bestScore || (score === bestScore && c.uniform() < 0.5)) {
        bestScore = score;
        best = u;
      }
    }
    if (best === t.from) right++;
  }
  return {
    accuracy: right / delivered.length,
    chance: 1 / (users - 1),
    latencies: delivered.map((t) => t.delivered! - t.at).sort((a, b) => a - b),
    delivered: delivered.length,
    cellsPerUserPerSecond: cellsUsed / users / seconds,
    cellsPerMessage: cellsUsed / Math.max(1, delivered.length),
    seconds,
  };
}

export async function messageMode(o: ShapeOptions): Promise<ShapeRow[]> {
  const users = o.quick ? 12 : 20;
  const mixes = 6;
  const messages = o.quick ? 300 : 1000;
  const rows: ShapeRow[] = [];
  for (const cover of [false, true]) {
    const name = cover ? 'cover-on' : 'cover-off';
    o.progress?.(`message mode: ${messages} messages among ${users} users, ${mixes} mixes, cover ${cover ? 'on' : 'off'}`);
    const r = await simulate({ seed: 4 }, (w) => run(w, cover, users, mixes, messages));
    const ms = (q: number): string => `${(quantile(r.latencies, q) / 1000).toFixed(2)} s`;
    rows.push(
      {
        id: `mix/${name}/matching`,
        section: SECTION,
        metric: `global observer's accuracy at naming the sender of each of ${r.delivered} messages among ${users} users, cover ${cover ? 'on' : 'off'} (chance ${pct(r.chance)})`,
        value: r.accuracy,
        display: `${pct(r.accuracy)} (${(r.accuracy / r.chance).toFixed(1)} × chance)`,
        goal: cover ? '≤ 1.2 × chance' : '—',
        met: cover ? r.accuracy <= 1.2 * r.chance : null,
        detail: { users, mixes, delivered: r.delivered, chance: r.chance, seconds: r.seconds },
      },
      {
        id: `mix/${name}/latency`,
        section: SECTION,
        metric: `end-to-end latency, send() to the recipient, cover ${cover ? 'on' : 'off'}: median (p90, p99)`,
        value: quantile(r.latencies, 0.5),
        display: `${ms(0.5)} (${ms(0.9)}, ${ms(0.99)})`,
        goal: '—',
        met: null,
        detail: { p50: quantile(r.latencies, 0.5), p90: quantile(r.latencies, 0.9), p99: quantile(r.latencies, 0.99) },
      },
      {
        id: `mix/${name}/bandwidth`,
        section: SECTION,
        metric: `cells a client sends (packets and polls), cover ${cover ? 'on' : 'off'}: per second, and per message delivered`,
        value: r.cellsPerUserPerSecond,
        display: `${r.cellsPerUserPerSecond.toFixed(2)} cells/s (${((r.cellsPerUserPerSecond * CELL_LEN) / 1024).toFixed(1)} KiB/s), ${r.cellsPerMessage.toFixed(1)} cells per message`,
        goal: '—',
        met: null,
        detail: { cellsPerUserPerSecond: r.cellsPerUserPerSecond, cellsPerMessage: r.cellsPerMessage },
      },
    );
  }
  return rows;
}
