/**
 * Section 1 of the shape audit: can the guard tell what a circuit is for? Real relays (sim/relay-node.ts FullRelay:
 * links, circuit reactor, the padding service as shipped) and a real client (client/client.ts: paths, one-round-trip
 * builds, and with circuit padding on the negotiation with the middle and the client's half of the machine:
 * SLOTS by default, SCHEDULE when opted in, specs/padding.md §4.3-§4.4) in the simulator's virtual time over its in-memory transport. Every relay's end of a client link records,
 * per circuit id, each cell's time, direction and cell command: what the guard sees.
 *
 * What the circuits carry is each purpose's message sequence (the protocol's cells, counts and waits; module
 * SCRIPTS), played by the client and by the circuit's last hop: the client's cells are relay cells addressed to
 * the last hop, the last hop's answers relay cells it originates (reactor.sendBackward); a step waits for the other
 * side's previous step to arrive. So everything between the client and the last hop is the shipped code, and the
 * applications at the ends are models of what the specs have them send (their commands are hidden from the guard
 * by the layers anyway). Teardown is outside the window: every circuit is observed for its first WINDOW_MS.
 *
 * The adversary (bench/shape/classifier.ts) gets, per circuit: cells each way in six time bins of the window,
 * totals, the time to the first answer, the first gaps and directions, the longest backward burst; k-NN with the
 * best k and feature set by 5-fold cross-validation. Chance is 1/5 (the classes are balanced).
 */
import { AlliumClient } from '../../client/client.js';
import type { ClientCircuit } from '../../net/circuit.js';
import type { Link } from '../../net/link.js';
import { CellCommand } from '../../protocol/cell.js';
import { paddingRttUnits, scheduleScale, SCHEDULE_REFERENCE_RTT_MS } from '../../protocol/circuit-padding.js';
import { LinkRole } from '../../protocol/link-handshake.js';
import { RelayCommand } from '../../protocol/relay-cell.js';
import type { CircuitHop } from '../../relay/circuit-hop.js';
import { FullRelay } from '../../sim/relay-node.js';
import { Rng } from '../../sim/random.js';
import { simulate, type World } from '../../sim/world.js';
import { bestKnn, featureImportance, type Sample, type Scored } from './classifier.js';
import { pct, type ShapeOptions, type ShapeRow } from './common.js';

const SECTION = '1. Circuit purpose at the guard';
export const PURPOSES = ['stream', 'content', 'introduction', 'rendezvous', 'message'] as const;
export type Purpose = (typeof PURPOSES)[number];
/** What the guard is allowed to watch of each circuit. */
export const WINDOW_MS = 10_000;
const BINS = [0, 250, 500, 1000, 2000, 4000, WINDOW_MS];

/** One step of a purpose's exchange: `cells` sent by one side, `after` ms once it may start, `spacing` ms apart. */
export interface Step {
  readonly from: 'client' | 'far';
  readonly cells: number;
  readonly after: number;
  readonly spacing: number;
}

const ln = (r: Rng, median: number, sigma: number): number => median * Math.exp(sigma * r.normal());
const clamp = (x: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, Math.round(x)));

/**
 * Each purpose's message sequence (specs/streams.md, content.md, rendezvous.md, messaging.md), with the far end's
 * waits drawn from simple models: an exit's connect time, a web server's think time and response size, a store's
 * read, the endpoint's circuit to the rendezvous point, a peer's acknowledgement.
 */
export function script(p: Purpose, r: Rng): Step[] {
  // A client sends a message's cells in one go; a far end streams its answer a cell at a time.
  const c = (cells: number, after = 0, spacing = 0): Step => ({ from: 'client', cells, after, spacing });
  const f = (cells: number, after = 0, spacing = 0.5): Step => ({ from: 'far', cells, after, spacing });
  switch (p) {
    case 'stream': {
      // BEGIN; CONNECTED once the exit connects; the request; the response (DATA, a heavy tail); maybe a second one.
      const s = [c(1), f(1, ln(r, 80, 0.6)), c(clamp(ln(r, 1.3, 0.5), 1, 3)), f(clamp(ln(r, 20, 1.1), 1, 400), ln(r, 120, 0.7), 1)];
      if (r.next() < 0.5) s.push(c(1, r.exponential(1500)), f(clamp(ln(r, 12, 1.1), 1, 400), ln(r, 120, 0.7), 1));
      return s;
    }
    case 'content': {
      // FETCH per block; FETCHED, 37 DATA and END from the holder after its read; blocks one after another.
      const s: Step[] = [];
      const blocks = 1 + r.int(4);
      for (let b = 0; b < blocks; b++) s.push(c(1, b === 0 ? 0 : ln(r, 10, 0.5)), f(39, ln(r, 30, 0.5), 0.5));
      return s;
    }
    case 'introduction':
      // An initiator's introduction circuit: INTRO_POW and INTRODUCE1, INTRODUCE_ACK from the introduction point.
      return [c(2), f(1, ln(r, 5, 0.5))];
    case 'rendezvous':
      // ESTABLISH_RENDEZVOUS, RENDEZVOUS_ESTABLISHED; RENDEZVOUS2 when the endpoint's circuit arrives; BEGIN and
      // CONNECTED end to end; the first message frame and its acknowledgement.
      return [c(1), f(1, ln(r, 5, 0.5)), f(1, ln(r, 1200, 0.5)), c(1), f(1, ln(r, 60, 0.5)), c(2), f(2, ln(r, 60, 0.5))];
    case 'message': {
      // A message stream on a session circuit: BEGIN, CONNECTED, then frames of two cells, each acknowledged.
      const s = [c(1), f(1, ln(r, 60, 0.5)), c(2), f(2, ln(r, 60, 0.5))];
      const more = r.int(4);
      for (let i = 0; i < more; i++) s.push(c(2, r.exponential(3000)), f(2, ln(r, 60, 0.5)));
      return s;
    }
  }
}

interface Cell {
  readonly t: number;
  /** 1 towards the middle (from the client), −1 towards the client. */
  readonly dir: 1 | -1;
  readonly command: number;
}

/** Records, per circuit id, the cells of every client link of every relay. */
class GuardRecorder {
  readonly traces = new Map<number, Cell[]>();
  private readonly seen = new WeakSet<Link>();

  attach(relays: readonly FullRelay[]): void {
    for (const r of relays) {
      for (const link of r.links) {
        if (this.seen.has(link) || link.peer?.role !== LinkRole.CLIENT) continue;
        this.seen.add(link);
        link.on('link:cell', (cell) => this.add(cell.circId, 1, cell.command));
        const send = link.sendCell.bind(link);
        link.sendCell = (circId, command, body): void => {
          send(circId, command, body);
          this.add(circId, -1, command);
        };
      }
    }
  }

  private add(circId: number, dir: 1 | -1, command: number): void {
    if (circId === 0) return;
    let t = this.traces.get(circId);
    if (!t) this.traces.set(circId, (t = []));
    t.push({ t: Date.now(), dir, command });
  }
}

/** The feature vector of one circuit's first WINDOW_MS at the guard. */
export function features(trace: readonly Cell[]): number[] {
  const t0 = trace[0]?.t ?? 0;
  const cells = trace.filter((c) => c.t - t0 < WINDOW_MS);
  const relay = cells.filter((c) => c.command === CellCommand.RELAY || c.command === CellCommand.RELAY_EARLY);
  const bins = (dir: 1 | -1): number[] =>
    BINS.slice(1).map((hi, i) => Math.log1p(relay.filter((c) => c.dir === dir && c.t - t0 >= BINS[i]! && c.t - t0 < hi).length));
  const created = cells.find((c) => c.command === CellCommand.CREATED)?.t ?? t0;
  const firstBack = relay.find((c) => c.dir === -1)?.t;
  const gaps: number[] = [];
  const dirs: number[] = [];
  for (let i = 0; i < 6; i++) {
    const a = relay[i];
    const prev = i === 0 ? created : relay[i - 1]?.t;
    gaps.push(a && prev !== undefined ? Math.log1p(a.t - prev) : Math.log1p(WINDOW_MS));
    dirs.push(a ? a.dir : 0);
  }
  let burst = 0;
  let run = 0;
  let last = -Infinity;
  for (const c of relay) {
    if (c.dir !== -1) continue;
    run = c.t - last <= 5 ? run + 1 : 1;
    last = c.t;
    burst = Math.max(burst, run);
  }
  const lastT = relay.length > 0 ? relay[relay.length - 1]!.t - t0 : 0;
  return [
    ...bins(1),
    ...bins(-1),
    Math.log1p(relay.filter((c) => c.dir === 1).length),
    Math.log1p(relay.filter((c) => c.dir === -1).length),
    Math.log1p(firstBack === undefined ? WINDOW_MS : firstBack - created),
    ...gaps,
    ...dirs,
    Math.log1p(burst),
    Math.log1p(lastT),
  ];
}

/** The names of features()'s columns, in order. */
export const FEATURE_NAMES: readonly string[] = [
  ...BINS.slice(1).map((hi, i) => `cells out ${BINS[i]}–${hi} ms`),
  ...BINS.slice(1).map((hi, i) => `cells back ${BINS[i]}–${hi} ms`),
  'cells out',
  'cells back',
  'first answer',
  ...Array.from({ length: 6 }, (_, i) => `gap ${i}`),
  ...Array.from({ length: 6 }, (_, i) => `direction ${i}`),
  'longest burst back',
  'last cell',
];

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);
export const FEATURE_SETS: Readonly<Record<string, readonly number[]>> = {
  all: range(0, 29),
  counts: range(0, 14),
  timing: range(14, 29),
  'first second and first cells': [0, 1, 2, 6, 7, 8, ...range(14, 27)],
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The last hop's record of the circuit whose third hop handshake gave `binding`. */
function farEnd(relays: readonly FullRelay[], circuit: ClientCircuit): { relay: FullRelay; hop: CircuitHop } {
  const last = circuit.path[circuit.path.length - 1]!;
  const relay = relays.find((r) => r.fingerprint === last.fingerprint)!;
  const binding = Buffer.from(circuit.bindings[circuit.bindings.length - 1]!).toString('hex');
  for (const hop of relay.reactor.circuits()) if (hop.binding && Buffer.from(hop.binding).toString('hex') === binding) return { relay, hop };
  throw new Error('the last hop does not know the circuit');
}

/** Plays `steps` on a circuit; resolves when the last cell is sent. Returns the cells sent by the two ends. */
async function play(relays: readonly FullRelay[], circuit: ClientCircuit, steps: readonly Step[], oneWay: number, deadline: number): Promise<number> {
  const far = farEnd(relays, circuit);
  let arrived = 0;
  let waiting: { n: number; resolve: () => void } | null = null;
  // The client's cells as they reach the last hop (padding stops at the middle, so these are the script's).
  const { link, circId } = far.hop.prev;
  const off = link.on('link:cell', (cell) => {
    if (cell.circId !== circId || cell.command !== CellCommand.RELAY) return;
    arrived++;
    if (waiting && arrived >= waiting.n) {
      const w = waiting;
      waiting = null;
      w.resolve();
    }
  });
  const drop = { command: RelayCommand.DROP, streamId: 0, data: new Uint8Array(0) };
  let sentByClient = 0;
  let sent = 0;
  for (let i = 0; i < steps.length && Date.now() < deadline && circuit.state === 'open'; i++) {
    const s = steps[i]!;
    const prev = steps[i - 1];
    if (s.from === 'client') {
      if (prev?.from === 'far') await sleep(oneWay);
      await sleep(s.after);
      for (let k = 0; k < s.cells; k++) {
        if (k > 0 && s.spacing > 0) await sleep(s.spacing);
        if (!circuit.send(drop)) break;
        sentByClient++;
        sent++;
      }
    } else {
      if (prev?.from === 'client' && arrived < sentByClient) {
        await Promise.race([new Promise<void>((resolve) => (waiting = { n: sentByClient, resolve })), sleep(deadline - Date.now())]);
      }
      await sleep(s.after);
      for (let k = 0; k < s.cells; k++) {
        if (k > 0 && s.spacing > 0) await sleep(s.spacing);
        if (!far.relay.reactor.sendBackward(far.hop, drop)) break;
        sent++;
      }
    }
  }
  off();
  return sent;
}

export interface Collected {
  samples: Sample[];
  /** Each circuit's build time (ms): its round trip through the path, what SCHEDULE's early slots scale with. */
  builds: number[];
  /** Padding cells (machines and negotiation) and payload cells after setup, per purpose, at the guard. */
  padding: Record<Purpose, number>;
  payload: Record<Purpose, number>;
  circuits: number;
}

export async function collect(w: World, padding: boolean | 'schedule', perPurpose: number): Promise<Collected> {
  const relays: FullRelay[] = [];
  for (let i = 0; i < 8; i++) {
    const r = new FullRelay(w, w.network.addHost(), i, { exit: i < 2 });
    relays.push(r);
    r.start(relays.slice(0, 1));
    await w.run(1000);
  }
  await w.run(30_000);
  const client = new AlliumClient({
    bootstrap: relays.slice(0, 3).map((r) => r.bootstrapLine),
    socketFactory: w.network.socketFactory(w.network.addHost()),
    poolSize: 0,
    linkPadding: 'off',
    circuitPadding: padding,
  } as ConstructorParameters<typeof AlliumClient>[0]);
  await w.wait(client.start());
  // Warm up: the links to the guards open, then every relay's client links are recorded.
  for (let i = 0; i < 3; i++) (await w.wait(client.newCircuit())).close();
  const recorder = new GuardRecorder();
  recorder.attach(relays);
  const rng = w.rng.fork();
  const jobs: { purpose: Purpose; circId: number; payload: number; build: number }[] = [];
  const order = PURPOSES.flatMap((p) => Array<Purpose>(perPurpose).fill(p));
  rng.shuffle(order);
  const runOne = async (purpose: Purpose, startAt: number): Promise<void> => {
    await sleep(startAt);
    const steps = script(purpose, rng);
    const began = Date.now();
    let circuit: ClientCircuit;
    try {
      circuit = await client.newCircuit();
    } catch {
      return;
    }
    const oneWay = (Date.now() - began) / 2;
    const job = { purpose, circId: circuit.circId, payload: 0, build: 2 * oneWay };
    jobs.push(job);
    recorder.attach(relays);
    job.payload = await play(relays, circuit, steps, oneWay, began + WINDOW_MS);
    await sleep(WINDOW_MS + 1000 - (Date.now() - began));
    circuit.close();
  };
  await w.wait(Promise.all(order.map((p, i) => runOne(p, i * 250 + rng.exponential(100)))));
  await w.wait(client.stop().catch(() => undefined));
  for (const r of relays) r.dispose();
  const out: Collected = {
    samples: [],
    builds: [],
    padding: Object.fromEntries(PURPOSES.map((p) => [p, 0])) as Record<Purpose, number>,
    payload: Object.fromEntries(PURPOSES.map((p) => [p, 0])) as Record<Purpose, number>,
    circuits: 0,
  };
  for (const j of jobs) {
    const trace = recorder.traces.get(j.circId);
    if (!trace || trace[0]?.command !== CellCommand.CREATE) continue;
    out.circuits++;
    out.samples.push({ label: j.purpose, features: features(trace) });
    out.builds.push(j.build);
    const relayCells = trace.filter((c) => c.command === CellCommand.RELAY || c.command === CellCommand.RELAY_EARLY).length;
    out.payload[j.purpose] += j.payload;
    out.padding[j.purpose] += Math.max(0, relayCells - j.payload);
  }
  return out;
}

/** The simulated world's seed: 1 for the default seed (the recorded figures), else a hash of --seed. */
export function worldSeed(seed: string): number {
  if (seed === 'allium-shape-1') return 1;
  let h = 0x811c9dc5;
  for (const ch of seed) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

function confusionText(s: Scored): string {
  return PURPOSES.map((p) => {
    const row = s.confusion[p] ?? {};
    const n = Object.values(row).reduce((a, b) => a + b, 0);
    return `${p} ${pct((row[p] ?? 0) / Math.max(1, n), 0)}`;
  }).join(', ');
}

export async function purposeClassifier(o: ShapeOptions): Promise<ShapeRow[]> {
  const perPurpose = o.quick ? 30 : 80;
  const chance = 1 / PURPOSES.length;
  const rows: ShapeRow[] = [];
  // Off, the default machine (SLOTS), and SCHEDULE (opt-in: circuitPadding 'schedule').
  for (const padding of [false, true, 'schedule'] as const) {
    const mode = padding === 'schedule' ? 'on (SCHEDULE, opt-in)' : padding ? 'on (default, SLOTS)' : 'off';
    o.progress?.(`purpose classifier: circuit padding ${mode}, ${perPurpose} circuits per purpose`);
    const c = await simulate({ seed: worldSeed(o.seed) }, (w) => collect(w, padding, perPurpose));
    const scored = bestKnn(c.samples, FEATURE_SETS, new Rng(7).random);
    const ratio = scored.accuracy / chance;
    const importance = featureImportance(c.samples, FEATURE_NAMES, new Rng(7).random);
    const top = importance
      .slice(0, 4)
      .map((f) => `${f.feature} ${pct(f.accuracy, 0)}`)
      .join(', ');
    rows.push({
      id: `purpose/accuracy/${padding === 'schedule' ? 'schedule' : padding ? 'on' : 'off'}`,
      section: SECTION,
      metric: `k-NN accuracy at telling a circuit's purpose (${PURPOSES.join(' / ')}) from its first ${WINDOW_MS / 1000} s at the guard, circuit padding ${mode} (${c.circuits} circuits, 5-fold cross-validation, best k and feature set; chance ${pct(chance, 0)})`,
      value: scored.accuracy,
      display: `${pct(scored.accuracy)} = ${ratio.toFixed(2)} × chance (k = ${scored.k}, features: ${scored.featureSet}; per purpose: ${confusionText(scored)}; best single features: ${top})`,
      goal: padding === 'schedule' ? '≤ 1.2 × chance (opt-in machine)' : padding ? '≤ 1.2 × chance with padding on' : '— (padding off)',
      met: padding ? ratio <= 1.2 : null,
      detail: { circuits: c.circuits, k: scored.k, featureSet: scored.featureSet, confusion: scored.confusion, importance },
    });
    if (padding) {
      const tag = padding === 'schedule' ? 'schedule' : 'slots';
      const pad = PURPOSES.reduce((s, p) => s + c.padding[p], 0);
      const pay = PURPOSES.reduce((s, p) => s + c.payload[p], 0);
      const b = [...c.builds].sort((x, y) => x - y);
      const q = (p: number): number => b[Math.min(b.length - 1, Math.floor(p * b.length))] ?? NaN;
      const scaled = b.filter((x) => scheduleScale(paddingRttUnits(x)) < 1).length / Math.max(1, b.length);
      if (padding === 'schedule')
        rows.push({
          id: 'purpose/round-trips',
          section: SECTION,
          metric: `the circuits' round trips in the simulated network (build time, ms), which SCHEDULE's early and middle slots scale with (padding.md §4.4; slots shorter than tabled below ${SCHEDULE_REFERENCE_RTT_MS} ms)`,
          value: q(0.5),
          display: `median ${q(0.5).toFixed(0)} ms (p10 ${q(0.1).toFixed(0)}, p90 ${q(0.9).toFixed(0)}, min ${(b[0] ?? NaN).toFixed(0)}, max ${(b[b.length - 1] ?? NaN).toFixed(0)}); ${pct(scaled, 0)} of circuits with slots scaled below the table`,
          goal: '—',
          met: null,
          detail: { p10: q(0.1), median: q(0.5), p90: q(0.9), scaled },
        });
      rows.push({
        id: `purpose/overhead/${tag}`,
        section: SECTION,
        metric: `circuit padding cells (negotiation and machines) per payload cell in the observed window, all purposes (per purpose in brackets), ${tag.toUpperCase()}`,
        value: pad / pay,
        display: `${pct(pad / pay)} (${PURPOSES.map((p) => `${p} ${pct(c.padding[p] / Math.max(1, c.payload[p]), 0)}`).join(', ')}); ${(pad / Math.max(1, c.circuits)).toFixed(0)} padding cells per circuit on average`,
        goal: '—',
        met: null,
        detail: { padding: c.padding, payload: c.payload },
      });
    }
  }
  return rows;
}
