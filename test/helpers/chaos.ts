/**
 * Chaos runs on relay processes (docs/chaos.md), shared by test/integration/chaos.test.ts (short) and
 * `npm run chaos` (bench/chaos.ts, longer): a network of relay processes on 127.0.0.1 carries a steady workload of
 * streams, content puts and gets and private messages while
 *
 * - relays are killed with SIGKILL at random and restarted after a few seconds on the same port and data directory
 *   (never more than `maxDown` at once, fewer than the replication factor k);
 * - one relay — the first entry of the client that does the streams and puts — is flooded with handshakes and
 *   garbage by a separate process (test/helpers/chaos-flood.ts);
 * - one relay's disk fills: its data directory is a small tmpfs this run mounts and fills up to `freeBytes`, or, where
 *   mounting is not permitted, its storage quota is set to `freeBytes` instead (the report says which).
 *
 * Every request is tried up to three times; the report counts first-try successes, successes after a retry and
 * failures (with error codes), checks at the end that every block ever acknowledged is still held somewhere and
 * every link still fetches, and gives peak RSS per relay and the time each restarted relay took to carry a circuit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { Messenger } from '../../client/messaging/node.js';
import { AlliumError, isAlliumError } from '../../protocol/errors.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { circuitTo, fileLayout, openStore, patternBytes, sha256 } from './content.js';
import { sleep, startRelay, tempDir, waitFor, type RelayProcess } from './network.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface ChaosOptions {
  relays: number;
  exits: number;
  /** replication_factor of every relay and of the content client. */
  k: number;
  /** How long the workload runs under faults. */
  durationMs: number;
  /** Time between two kills, drawn uniformly from [min, max]. */
  killIntervalMs: [number, number];
  /** How long a killed relay stays down, drawn uniformly from [min, max]. */
  downMs: [number, number];
  /** Relays down at the same time at most (must be below k for the no-loss guarantee). */
  maxDown: number;
  /** Flood window, from the start of the workload. */
  flood: { startMs: number; durationMs: number; workers: number; handshakesPerSecond: number } | null;
  /** Room left on the full relay's disk (or its storage quota where no tmpfs can be mounted). */
  disk: { freeBytes: number } | null;
  /** Content sizes put, drawn uniformly from [min, max] bytes. */
  putBytes: [number, number];
  seed: number;
  log?: (line: string) => void;
}

export type RequestKind = 'stream' | 'put' | 'get' | 'message';
export const REQUEST_KINDS: readonly RequestKind[] = ['stream', 'put', 'get', 'message'];

export interface RequestStats {
  total: number;
  firstTry: number;
  afterRetry: number;
  failed: number;
  /** Error codes of failed attempts (also those later retried successfully). */
  codes: Record<string, number>;
}

export interface KillRecord {
  relay: string;
  downMs: number;
  /** Process start until the relay was listening. */
  restartMs: number;
  /** Listening until a client had built a circuit ending at it (null: none within 60 s). */
  circuitMs: number | null;
}

export interface ChaosReport {
  options: Omit<ChaosOptions, 'log'>;
  wallMs: number;
  requests: Record<RequestKind, RequestStats>;
  messages: { sent: number; delivered: number; receipts: Record<string, { accepted: number; arrived: number }> };
  /** Time from the end of the faults until a request of each kind first worked (null: not within 120 s). */
  recovery: Record<RequestKind, number | null>;
  content: { puts: number; blocks: number; blocksLost: number; linksLost: number; copies: Record<number, number>; belowK: number };
  kills: KillRecord[];
  maxDownSeen: number;
  peakRss: { relay: string; role: string; bytes: number }[];
  flood: { counts: Record<string, number> | null; handshakeRefusals: number; probes: number; frameErrors: number; alive: boolean; servesAfter: boolean } | null;
  disk: { mode: 'tmpfs' | 'quota'; storeRefusals: number; storeOpen: boolean; alive: boolean; servesAfter: boolean; blocksHeld: number } | null;
  /** A request of each kind after the faults stopped, every relay back up. */
  final: Record<RequestKind, boolean>;
  /** Failed attempts whose error was not an AlliumError (a bug: every failure should have a code). */
  untyped: number;
}

/** mulberry32: the run's own choices (which relay, how long), reproducible from the seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const codeOf = (e: unknown): string => (isAlliumError(e) ? e.code : e instanceof Error ? `untyped:${e.message.slice(0, 60)}` : 'untyped');

/** Mounts a tmpfs of `bytes` at `dir`; false when mounting is not permitted here. */
export function mountTmpfs(dir: string, bytes: number): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    /* not mounted */
  }
}

/** Body of an HTTP/1.0 response read from a stream through a circuit. */
async function httpGet(client: AlliumClient, port: number, isolation: string, signal: AbortSignal): Promise<Uint8Array> {
  const s = await client.connect('127.0.0.1', port, { isolation, signal });
  return new Promise((resolveBody, reject) => {
    const parts: Uint8Array[] = [];
    const onAbort = (): void => reject(new AlliumError('ERR_TIMEOUT', 'response did not complete in time'));
    signal.addEventListener('abort', onAbort, { once: true });
    s.on('stream:data', (d: Uint8Array) => {
      parts.push(Uint8Array.from(d));
      s.consumed(1);
    });
    s.once('stream:end', () => {
      signal.removeEventListener('abort', onAbort);
      const all = Buffer.concat(parts);
      const at = all.indexOf('\r\n\r\n');
      if (at < 0) return reject(new AlliumError('ERR_STREAM_FAILED', 'no HTTP response'));
      resolveBody(all.subarray(at + 4));
    });
    s.write(new TextEncoder().encode('GET / HTTP/1.0\r\nHost: target\r\n\r\n'));
  });
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? (() => undefined);
  const random = seeded(o.seed);
  const between = ([a, b]: [number, number]): number => a + random() * (b - a);
  const started = Date.now();
  const FLOODED = 1;
  const FULL = 2;
  const exitFrom = o.relays - o.exits;
  const role = (i: number): string =>
    [i === 0 ? 'bootstrap' : '', i === FLOODED && o.flood ? 'flooded' : '', i === FULL && o.disk ? 'disk-full' : '', i >= exitFrom ? 'exit' : '']
      .filter(Boolean)
      .join('+') || 'relay';

  // ---------------------------------------------------------------- the network
  const dirs: string[] = Array.from({ length: o.relays }, () => tempDir('allium-chaos-'));
  let diskMode: 'tmpfs' | 'quota' | null = null;
  if (o.disk) {
    // Room for the keys, the config and an empty store, plus freeBytes once filled.
    diskMode = mountTmpfs(dirs[FULL]!, 8 * 1024 * 1024) ? 'tmpfs' : 'quota';
  }
  const relays: RelayProcess[] = [];
  const ports: number[] = [];
  const peak = new Map<number, number>();
  const launch = (i: number, bootstrap: string[]): Promise<RelayProcess> =>
    startRelay({
      nickname: `c${i}`,
      dataDir: dirs[i]!,
      ...(ports[i] ? { listen: `127.0.0.1:${ports[i]}` } : {}),
      bootstrap,
      exitPolicy: i >= exitFrom ? ['accept 127.0.0.1:*', 'reject *:*'] : ['reject *:*'],
      timing: { repair_interval: 2000 },
      extra: {
        replication_factor: o.k,
        ...(i === FULL && diskMode === 'quota' ? { storage_quota: o.disk!.freeBytes } : {}),
        // The full relay's store closes when a write fails for want of space (specs/content.md §7.3), not before.
        ...(i === FULL && diskMode === 'tmpfs' ? { storage_min_free_disk: 0 } : {}),
        ...(i === FLOODED && o.flood ? { handshakes_per_second: o.flood.handshakesPerSecond } : {}),
      },
    });
  const web: Server = createServer((_req, res) => res.end(page));
  const page = patternBytes(64 * 1024, o.seed);
  let clients: AlliumClient[] = [];
  let messengers: Messenger[] = [];
  let floodProc: ChildProcess | null = null;
  const down = new Set<number>();
  try {
    relays.push(await launch(0, []));
    ports[0] = Number(new URL(relays[0]!.address).port);
    relays.push(...(await Promise.all(Array.from({ length: o.relays - 1 }, (_, i) => launch(i + 1, [relays[0]!.bootstrap])))));
    relays.forEach((r, i) => (ports[i] = Number(new URL(r.address).port)));
    await waitFor(async () => (await Promise.all(relays.map((r) => r.metric('allium_directory_relays')))).every((x) => x === o.relays), 60_000, 'directory');
    if (diskMode === 'tmpfs') {
      const st = statfsSync(dirs[FULL]!);
      const free = st.bavail * st.bsize;
      writeFileSync(join(dirs[FULL]!, 'filler'), Buffer.alloc(Math.max(0, free - o.disk!.freeBytes)));
    }
    log(`${o.relays} relays up (${relays.map((r, i) => `c${i}=${role(i)}`).join(', ')}); disk: ${diskMode ?? 'not filled'}`);
    const rssTimer = setInterval(() => {
      relays.forEach((r, i) => {
        try {
          peak.set(i, Math.max(peak.get(i) ?? 0, r.rssBytes()));
        } catch {
          /* down */
        }
      });
    }, 500);

    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    const webPort = (web.address() as { port: number }).port;
    const everyLine = (): string[] => relays.map((r) => r.bootstrap);
    const client = (entry: number[] | null): AlliumClient =>
      new AlliumClient({
        bootstrap: everyLine(),
        socketFactory: nodeSocketFactory,
        ...SINGLE_HOST_CLIENT,
        poolSize: 0,
        ...(entry ? { entryRelays: entry.map((i) => relays[i]!.fingerprint) } : {}),
      });
    // A: streams, puts, sends messages; its first entry is the flooded relay. B: gets, receives messages. P: probes.
    const ca = client([FLOODED, 3]);
    const cb = client([4, 0]);
    const probe = client(null);
    clients = [ca, cb, probe];
    await Promise.all(clients.map((c) => c.start()));
    const putter = new ContentClient(ca, { replication: o.k });
    const getter = new ContentClient(cb, { replication: o.k });
    const receiver = new Messenger(cb, undefined, { republishMs: 5000 });
    const sender = new Messenger(ca, undefined, { republishMs: 5000 });
    messengers = [receiver, sender];
    await receiver.startListening();
    const received = new Set<string>();
    receiver.on('message:received', (m) => received.add(new TextDecoder().decode(m.data)));

    // ---------------------------------------------------------------- requests
    const stats = Object.fromEntries(REQUEST_KINDS.map((k) => [k, { total: 0, firstTry: 0, afterRetry: 0, failed: 0, codes: {} }])) as Record<
      RequestKind,
      RequestStats
    >;
    let untyped = 0;
    async function attempt<T>(kind: RequestKind, fn: (signal: AbortSignal) => Promise<T>, tries = 3): Promise<T | null> {
      const s = stats[kind];
      s.total++;
      for (let t = 0; t < tries; t++) {
        try {
          // One signal serves every block request of a put (an abort listener each): more than Node's default ten.
          const signal = AbortSignal.timeout(45_000);
          setMaxListeners(1000, signal);
          const v = await fn(signal);
          if (t === 0) s.firstTry++;
          else s.afterRetry++;
          return v;
        } catch (e) {
          const code = codeOf(e);
          if (code.startsWith('untyped')) untyped++;
          s.codes[code] = (s.codes[code] ?? 0) + 1;
          await sleep(1000);
        }
      }
      s.failed++;
      return null;
    }
    const stored: { link: string; data: Uint8Array }[] = [];
    const sent = new Set<string>();
    const statusOf = new Map<string, string>();
    let stopped = false;
    let seq = 0;
    const streams = async (): Promise<void> => {
      for (let i = 0; !stopped; i++) {
        await attempt('stream', async (signal) => {
          const body = await httpGet(ca, webPort, `chaos-${i % 3}`, signal);
          if (sha256(body) !== sha256(page)) throw new AlliumError('ERR_STREAM_FAILED', 'response body differs');
        });
        await sleep(300);
      }
    };
    const content = async (): Promise<void> => {
      for (let i = 0; !stopped; i++) {
        const data = patternBytes(Math.round(between(o.putBytes)), o.seed * 1000 + i);
        const link = await attempt('put', (signal) => putter.put(data, { convergent: true, signal }));
        if (link) stored.push({ link, data });
        const pick = stored[Math.floor(random() * stored.length)];
        if (pick) {
          await attempt('get', async (signal) => {
            const back = await getter.get(pick.link, { signal });
            if (sha256(back) !== sha256(pick.data)) throw new AlliumError('ERR_CONTENT_TAMPERED', 'fetched content differs');
          });
        }
        await sleep(300);
      }
    };
    const messages = async (): Promise<void> => {
      while (!stopped) {
        const text = `chaos message ${seq++}`;
        const receipt = await attempt('message', (signal) => sender.send(receiver.address, new TextEncoder().encode(text), { signal }));
        if (receipt !== null) {
          sent.add(text);
          statusOf.set(text, receipt.status);
        }
        await sleep(500);
      }
    };

    // ---------------------------------------------------------------- faults
    const kills: KillRecord[] = [];
    let maxDownSeen = 0;
    const t0 = Date.now();
    // The flooded relay is not killed from shortly before its flood until its counters have been read after it (the
    // flood process may outlast its nominal duration, and a restart would zero the counters).
    let floodCountersRead = false;
    const floodWindow = (): boolean => !!o.flood && Date.now() - t0 >= o.flood.startMs - 5000 && !floodCountersRead;
    const cycles: Promise<void>[] = [];
    const probes: Promise<void>[] = [];
    const cycle = async (i: number): Promise<void> => {
      down.add(i);
      maxDownSeen = Math.max(maxDownSeen, down.size);
      const downMs = between(o.downMs);
      log(`kill c${i} (${role(i)}) for ${(downMs / 1000).toFixed(1)} s; down now: ${[...down].map((x) => `c${x}`).join(' ')}`);
      await relays[i]!.kill('SIGKILL');
      await sleep(downMs);
      const s = Date.now();
      relays[i] = await launch(
        i,
        everyLine().filter((_, j) => j !== i),
      );
      const restartMs = Date.now() - s;
      down.delete(i);
      const record: KillRecord = { relay: `c${i}`, downMs: Math.round(downMs), restartMs, circuitMs: null };
      kills.push(record);
      const c0 = Date.now();
      probes.push(
        circuitTo(probe, relays[i]!, 60_000).then(
          (c) => {
            record.circuitMs = Date.now() - c0;
            c.close();
          },
          () => undefined,
        ),
      );
    };
    const killer = async (): Promise<void> => {
      while (!stopped) {
        await sleep(between(o.killIntervalMs));
        if (stopped) break;
        if (down.size >= o.maxDown) continue;
        const candidates = relays.map((_, i) => i).filter((i) => !down.has(i) && !(i === FULL && o.disk) && !(i === FLOODED && floodWindow()));
        if (candidates.length === 0) continue;
        cycles.push(cycle(candidates[Math.floor(random() * candidates.length)]!));
      }
    };
    let floodCounts: Record<string, number> | null = null;
    let floodSeen = { handshakeRefusals: 0, probes: 0, frameErrors: 0 };
    const flood = async (): Promise<void> => {
      if (!o.flood) return;
      await sleep(o.flood.startMs);
      if (stopped) {
        floodCountersRead = true;
        return;
      }
      log(`flooding c${FLOODED} for ${o.flood.durationMs / 1000} s with ${o.flood.workers} workers`);
      floodProc = spawn(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'chaos-flood.ts'), relays[FLOODED]!.bootstrap, String(o.flood.durationMs), String(o.flood.workers)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
          cwd: ROOT,
        },
      );
      let out = '';
      floodProc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((r) => floodProc!.once('exit', r));
      try {
        floodCounts = JSON.parse(out.trim().split('\n').pop() ?? 'null') as Record<string, number>;
      } catch {
        floodCounts = null;
      }
      // Read now: the relay may be killed (and its counters restart) once the flood is over.
      const m = (name: string, labels: Record<string, string>): Promise<number> => relays[FLOODED]!.metric(name, labels).catch(() => 0);
      floodSeen = {
        handshakeRefusals: await m('allium_handshakes_total', { result: 'handshake_rate' }),
        probes: await m('allium_handshakes_total', { result: 'ERR_LINK_PROBE' }),
        frameErrors: await m('allium_errors_total', { code: 'ERR_LINK_FRAME' }),
      };
      floodCountersRead = true;
    };

    log(`workload and faults for ${o.durationMs / 1000} s`);
    const loops = [streams(), content(), messages(), killer(), flood()];
    await sleep(o.durationMs);
    stopped = true;
    await Promise.all(loops);
    await Promise.all(cycles);
    log(`faults stopped, every relay up; ${kills.length} kills; checking recovery`);

    // ---------------------------------------------------------------- after the faults
    // Every relay is up again. Each kind of request is retried every 2 s for up to 120 s (longer than the 60 s for
    // which a client avoids a relay that failed it); the time until it first works is its recovery time.
    const final = {} as Record<RequestKind, boolean>;
    const recovery = {} as Record<RequestKind, number | null>;
    const before = Object.fromEntries(REQUEST_KINDS.map((k) => [k, { ...stats[k], codes: { ...stats[k].codes } }])) as Record<RequestKind, RequestStats>;
    const stoppedAt = Date.now();
    const until = async <T>(kind: RequestKind, fn: (signal: AbortSignal) => Promise<T>): Promise<T | null> => {
      const deadline = stoppedAt + 120_000;
      for (;;) {
        const v = await attempt(kind, fn, 1);
        if (v !== null || Date.now() > deadline) {
          final[kind] = v !== null;
          recovery[kind] = v !== null ? Date.now() - stoppedAt : null;
          return v;
        }
        await sleep(1000);
      }
    };
    const finalData = patternBytes(50_000, o.seed + 99);
    const finalText = 'chaos final message';
    await Promise.all([
      until('stream', async (signal) => {
        if (sha256(await httpGet(ca, webPort, 'final', signal)) !== sha256(page)) throw new AlliumError('ERR_STREAM_FAILED', 'response body differs');
      }),
      (async () => {
        const finalLink = await until('put', (signal) => putter.put(finalData, { convergent: true, signal }));
        if (finalLink) stored.push({ link: finalLink, data: finalData });
        if (finalLink) await until('get', (signal) => getter.get(finalLink, { signal }));
        else final.get = false;
      })(),
      (async () => {
        const rc = await until('message', (signal) => sender.send(receiver.address, new TextEncoder().encode(finalText), { signal }));
        if (rc !== null) {
          sent.add(finalText);
          statusOf.set(finalText, rc.status);
        }
      })(),
    ]);
    await Promise.all(probes);
    // The report counts the run's requests; the final ones only say whether and when service came back.
    for (const k of REQUEST_KINDS) stats[k] = before[k];

    // Every block acknowledged is still somewhere, and repair restores copies (the full relay excepted).
    const blocks = new Map<string, Uint8Array>();
    for (const s of stored) for (const [hex, b] of (await fileLayout(s.data)).blocks) blocks.set(hex, b.ref.rk);
    const copiesOf = (): Map<string, number> => {
      const count = new Map<string, number>([...blocks.keys()].map((h) => [h, 0]));
      for (const r of relays) {
        let db;
        try {
          db = openStore(r);
        } catch {
          continue;
        }
        try {
          const q = db.prepare<[Uint8Array], { n: number }>('SELECT 1 AS n FROM blocks WHERE rk = ?');
          for (const [h, rk] of blocks) if (q.get(rk)) count.set(h, count.get(h)! + 1);
        } finally {
          db.close();
        }
      }
      return count;
    };
    const wanted = o.k;
    await waitFor(() => [...copiesOf().values()].every((n) => n >= wanted - (o.disk ? 1 : 0)), 60_000, 'repair').catch(() => undefined);
    const copies = copiesOf();
    const histogram: Record<number, number> = {};
    for (const n of copies.values()) histogram[n] = (histogram[n] ?? 0) + 1;
    let linksLost = 0;
    for (const s of stored) {
      const back = await getter.get(s.link, { signal: AbortSignal.timeout(60_000) }).catch(() => null);
      if (!back || sha256(back) !== sha256(s.data)) linksLost++;
    }
    // Messages left in a mailbox arrive when the receiver next collects.
    await waitFor(() => [...sent].every((t) => received.has(t)), 20_000, 'messages').catch(() => undefined);
    const delivered = [...sent].filter((t) => received.has(t)).length;
    // By what send() reported: how many were accepted, and how many of those arrived.
    const receipts: Record<string, { accepted: number; arrived: number }> = {};
    for (const t of sent) {
      const st = statusOf.get(t) ?? 'unknown';
      const r = (receipts[st] ??= { accepted: 0, arrived: 0 });
      r.accepted++;
      if (received.has(t)) r.arrived++;
    }

    // The flooded and the full relay: alive, and still carrying circuits.
    const serves = async (i: number): Promise<boolean> => {
      try {
        const c = await circuitTo(probe, relays[i]!, 30_000);
        c.close();
        return true;
      } catch {
        return false;
      }
    };
    const alive = (i: number): boolean => relays[i]!.proc.exitCode === null && relays[i]!.proc.signalCode === null;
    const floodReport = o.flood
      ? {
          counts: floodCounts,
          ...floodSeen,
          alive: alive(FLOODED),
          servesAfter: await serves(FLOODED),
        }
      : null;
    let diskReport: ChaosReport['disk'] = null;
    if (o.disk) {
      const drops = await Promise.all(['store_invalid', 'store_quota'].map((reason) => relays[FULL]!.metric('allium_drops_total', { reason })));
      diskReport = {
        mode: diskMode!,
        storeRefusals: drops[0]! + drops[1]!,
        storeOpen: (await relays[FULL]!.metric('allium_store_open')) === 1,
        alive: alive(FULL),
        servesAfter: await serves(FULL),
        blocksHeld: await relays[FULL]!.metric('allium_store_blocks'),
      };
    }
    clearInterval(rssTimer);
    const report: ChaosReport = {
      options: { ...o, log: undefined } as unknown as ChaosReport['options'],
      wallMs: Date.now() - started,
      requests: stats,
      messages: { sent: sent.size, delivered, receipts },
      recovery,
      content: {
        puts: stored.length,
        blocks: blocks.size,
        blocksLost: [...copies.values()].filter((n) => n === 0).length,
        linksLost,
        copies: histogram,
        belowK: [...copies.values()].filter((n) => n < o.k).length,
      },
      kills,
      maxDownSeen,
      peakRss: relays.map((r, i) => ({ relay: `c${i}`, role: role(i), bytes: peak.get(i) ?? 0 })),
      flood: floodReport,
      disk: diskReport,
      final,
      untyped,
    };
    delete (report.options as { log?: unknown }).log;
    return report;
  } finally {
    for (const m of messengers) m.close();
    await Promise.all(clients.map((c) => c.stop()));
    web.close();
    if (floodProc && (floodProc as ChildProcess).exitCode === null) (floodProc as ChildProcess).kill('SIGKILL');
    await Promise.all(relays.map((r) => r.kill('SIGKILL')));
    if (diskMode === 'tmpfs') unmount(dirs[FULL]!);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** The report as Markdown tables (docs/chaos.md). */
export function formatChaosReport(r: ChaosReport): string {
  const mb = (b: number): string => `${(b / 1e6).toFixed(0)} MB`;
  const s = (ms: number | null): string => (ms === null ? 'none' : `${(ms / 1000).toFixed(1)} s`);
  const lines: string[] = [];
  lines.push('| requests | total | first try | after retry | failed | error codes of failed attempts |');
  lines.push('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const k of REQUEST_KINDS) {
    const x = r.requests[k];
    const codes = Object.entries(x.codes)
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} ×${n}`)
      .join(', ');
    lines.push(`| ${k} | ${x.total} | ${x.firstTry} | ${x.afterRetry} | ${x.failed} | ${codes || '—'} |`);
  }
  lines.push('');
  const receipts = Object.entries(r.messages.receipts)
    .map(([k, n]) => `"${k}": ${n.arrived} of ${n.accepted}`)
    .join(', ');
  lines.push(`Messages: ${r.messages.delivered} of ${r.messages.sent} accepted sends arrived; by what send() reported, ${receipts || 'none'}.`);
  const hist = Object.entries(r.content.copies)
    .map(([n, c]) => `${c} with ${n}`)
    .join(', ');
  lines.push(
    `Content: ${r.content.puts} puts, ${r.content.blocks} distinct blocks; blocks lost: **${r.content.blocksLost}**, links that no longer fetch: **${r.content.linksLost}**; copies after repair: ${hist} (${r.content.belowK} below k = ${r.options.k}).`,
  );
  lines.push('');
  lines.push('| restarted relay | down | process start to listening | listening to first circuit through it |');
  lines.push('| --- | ---: | ---: | ---: |');
  for (const k of r.kills) lines.push(`| ${k.relay} | ${s(k.downMs)} | ${s(k.restartMs)} | ${s(k.circuitMs)} |`);
  lines.push('');
  lines.push(`At most ${r.maxDownSeen} relays were down at once (limit ${r.options.maxDown}, k = ${r.options.k}).`);
  lines.push('');
  lines.push('| relay | role | peak RSS |');
  lines.push('| --- | --- | ---: |');
  for (const p of r.peakRss) lines.push(`| ${p.relay} | ${p.role} | ${mb(p.bytes)} |`);
  lines.push('');
  if (r.flood) {
    const c = r.flood.counts;
    lines.push(
      `Flood (${r.options.flood!.durationMs / 1000} s, ${r.options.flood!.workers} workers, relay limit ${r.options.flood!.handshakesPerSecond} handshakes/s): ${c ? `${c['upgrades']} upgrade attempts (${c['upgradesRefused']} refused), ${c['garbageSent']} garbage messages, ${c['links']} authenticated links sending a forged frame` : 'no counts'}; ` +
        `the relay counted ${r.flood.handshakeRefusals} rate-limit refusals, ${r.flood.probes} failed handshakes and ${r.flood.frameErrors} bad frames; alive: ${r.flood.alive}, carries circuits afterwards: ${r.flood.servesAfter}.`,
    );
  }
  if (r.disk) {
    lines.push(
      `Full disk (${r.disk.mode === 'tmpfs' ? `a tmpfs with ${(r.options.disk!.freeBytes / 1024).toFixed(0)} KiB left` : `storage quota of ${(r.options.disk!.freeBytes / 1024).toFixed(0)} KiB: mounting a tmpfs was not permitted`}): ${r.disk.storeRefusals} stores refused, ${r.disk.blocksHeld} blocks held, store ${r.disk.storeOpen ? 'still open' : 'closed (not advertised)'} at the end; alive: ${r.disk.alive}, carries circuits afterwards: ${r.disk.servesAfter}.`,
    );
  }
  lines.push('');
  lines.push(
    `After the faults, with every relay back, first success of each kind: ${REQUEST_KINDS.map((k) => `${k} ${r.final[k] ? `after ${s(r.recovery[k])}` : 'none within 120 s'}`).join(', ')}. ` +
      `Untyped errors: ${r.untyped}. Wall time ${(r.wallMs / 1000).toFixed(0)} s.`,
  );
  return lines.join('\n');
}
