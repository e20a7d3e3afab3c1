/**
 * Networks of relay processes on this machine, for the tests, the benchmarks and anything else that needs a live
 * network on 127.0.0.1 quickly: relays with fast timings (descriptors renewed in seconds, flags earned in seconds), the
 * single-host limits (relay/config.ts SINGLE_HOST_NETWORK), and by default three directory authorities. Relays are
 * started by cli/relay-process.ts (the devnet's launcher too). Not for real networks: the timings and limits here
 * suit a network that lives for seconds on one machine.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SINGLE_HOST_NETWORK } from '../relay/config.js';
import { spawnRelay, type RelayProcess } from './relay-process.js';

export interface RelayProcessOptions {
  dataDir?: string;
  bootstrap?: string[];
  exitPolicy?: string[];
  nickname?: string;
  timing?: Record<string, number>;
  extra?: Record<string, unknown>;
  listen?: string;
  /** How the relay process runs (benchmarks: compiled JS, profiler flags; tests: the sources when newer). */
  process?: { entry?: readonly string[]; nodeArgs?: readonly string[] };
  /** Extra environment variables for the relay process (e.g. NODE_EXTRA_CA_CERTS for a test certificate). */
  env?: Record<string, string>;
}

export const FAST_TIMING = {
  gossip_interval: 1000,
  maintenance_interval: 250,
  descriptor_lifetime: 30_000,
  descriptor_renew: 10_000,
  // Directory authorities (specs/directory.md §7): a consensus a second; relays tested every five seconds (the first
  // test as soon as an authority holds the descriptor: flags count from it, FAST_FLAGS, not from later tests) and
  // measured briefly once in ten minutes, the first measurement at once (a local network lives for less: each relay is
  // measured once). Dials and measurements are most of what an idle local network costs (bench/idle.ts).
  consensus_interval: 1000,
  reachability_interval: 5000,
  measurement_interval: 600_000,
  measurement_duration: 200,
};

/** Flags earned in seconds rather than days (specs/directory.md §7.4), for test networks with authorities. */
export const FAST_FLAGS = {
  fast_min: 1,
  stable_mtbf: 1000,
  guard_min_known: 2000,
  guard_min_wfu: 0.5,
  guard_bw_guarantee: 1,
  holder_min_uptime: 2000,
  dir_min_known: 1000,
};

/** A data directory with an identity made in advance, so its fingerprint can go into other relays' configuration. */
export function preparedRelayDir(prefix = 'allium-relay-'): { dataDir: string; fingerprint: string } {
  const dataDir = tempDir(prefix);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const seed = randomBytes(32);
  writeFileSync(join(dataDir, 'identity.key'), seed.toString('hex') + '\n', { mode: 0o600 });
  return { dataDir, fingerprint: identityFingerprint(seed) };
}

/** The fingerprint (hex Ed25519 public key) of a 32-byte identity seed, as relay/keystore.ts derives it. */
function identityFingerprint(seed: Uint8Array): string {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]);
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  return Buffer.from(spki.subarray(spki.length - 32)).toString('hex');
}

export function tempDir(prefix = 'allium-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startRelay(o: RelayProcessOptions = {}): Promise<RelayProcess> {
  const dataDir = o.dataDir ?? tempDir('allium-relay-');
  rmSync(join(dataDir, 'ready.json'), { force: true });
  const config = {
    nickname: o.nickname ?? 'test',
    listen: o.listen ?? '127.0.0.1:0',
    bootstrap: o.bootstrap ?? [],
    exit_policy: o.exitPolicy ?? ['reject *:*'],
    // a loopback test network (relay/config.ts SINGLE_HOST_NETWORK)
    ...SINGLE_HOST_NETWORK,
    metrics: '127.0.0.1:0',
    log_level: 'info',
    // Test machines may have little free disk; stores here hold a few megabytes.
    storage_min_free_disk: 16 * 1024 * 1024,
    ...o.extra,
    timing: { ...FAST_TIMING, ...o.timing },
  };
  return spawnRelay(dataDir, config, {
    ...(o.process?.entry ? { entry: o.process.entry } : {}),
    ...(o.process?.nodeArgs ? { nodeArgs: o.process.nodeArgs } : {}),
    ...(o.env ? { env: o.env } : {}),
  });
}

export interface LocalNetwork {
  relays: RelayProcess[];
  bootstrap: string;
  /** Fingerprints of the network's directory authorities (the first relays), for clients: `authorities`. */
  authorities: string[];
  stop(): Promise<void>;
}

/**
 * Starts `n` relays (the first is the bootstrap; the last `exits` allow exits to 127.0.0.1) and waits until every
 * relay's directory holds all of them. The first `authorities` relays (default: 3, or 1 below 3 relays; 0 for none)
 * are directory authorities (specs/directory.md §7) with FAST_FLAGS; then it also waits until every relay holds a
 * consensus listing all of them as Guards, its store relays as Holders. The network's `bootstrap` line then names the
 * authorities (specs/directory.md §6.7): a client given it follows their consensus.
 */
export async function startNetwork(
  n: number,
  o: {
    exits?: number;
    timing?: Record<string, number>;
    extra?: Record<string, unknown>;
    process?: RelayProcessOptions['process'];
    env?: Record<string, string>;
    authorities?: number;
    /** Called as each stage is reached: every relay started, every directory full, every relay holding a consensus, the flags. */
    onStage?: (stage: 'started' | 'directory' | 'consensus' | 'flags') => void;
  } = {},
): Promise<LocalNetwork> {
  const exits = o.exits ?? 0;
  const policy = (i: number): string[] => (i >= n - exits ? ['accept 127.0.0.1:*', 'accept [::1]:*', 'reject *:*'] : ['reject *:*']);
  const launch = { ...(o.process ? { process: o.process } : {}), ...(o.env ? { env: o.env } : {}) };
  const nAuth = Math.min(n, o.authorities ?? (n >= 3 ? 3 : 1));
  const prepared = Array.from({ length: nAuth }, () => preparedRelayDir('allium-auth-'));
  const authorities = prepared.map((p) => p.fingerprint);
  const extraFor = (i: number): Record<string, unknown> =>
    nAuth === 0 ? (o.extra ?? {}) : { directory_authorities: authorities, ...(i < nAuth ? { authority: true, authority_flags: FAST_FLAGS } : {}), ...o.extra };
  const dirFor = (i: number): { dataDir?: string } => (i < nAuth ? { dataDir: prepared[i]!.dataDir } : {});
  const first = await startRelay({ nickname: 'r0', exitPolicy: policy(0), timing: o.timing ?? {}, extra: extraFor(0), ...dirFor(0), ...launch });
  const started: RelayProcess[] = [first];
  const relays = [first];
  try {
    // allSettled: when one relay fails to start, the others are still collected and stopped below.
    const rest = await Promise.allSettled(
      Array.from({ length: n - 1 }, (_, i) =>
        startRelay({
          nickname: `r${i + 1}`,
          bootstrap: [first.bootstrap],
          exitPolicy: policy(i + 1),
          timing: o.timing ?? {},
          extra: extraFor(i + 1),
          ...dirFor(i + 1),
          ...launch,
        }),
      ),
    );
    for (const r of rest) if (r.status === 'fulfilled') started.push(r.value);
    const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    relays.push(...started.slice(1));
    o.onStage?.('started');
    await waitFor(
      async () => (await Promise.all(relays.map((r) => r.metric('allium_directory_relays')))).every((x) => x === n),
      60_000,
      `a directory of ${n} relays at every relay`,
    );
    o.onStage?.('directory');
    if (nAuth > 0) {
      await waitFor(
        async () => (await Promise.all(relays.map((r) => r.metric('allium_consensus_relays', { flag: 'all' })))).every((x) => x === n),
        60_000,
        `a consensus of ${n} relays at every relay`,
      );
      o.onStage?.('consensus');
      // Clients given the network's bootstrap line follow its consensus (specs/directory.md §6.7): they enter through
      // Guard relays and place content at Holder relays only (specs/content.md §6.1). Wait until every relay earned
      // Guard and every store relay Holder (FAST_FLAGS: seconds), so a client's first circuit and first put find them.
      const stores = o.extra?.['storage_quota'] === 0 ? 0 : (await Promise.all(relays.map((r) => r.metric('allium_store_open')))).filter((x) => x === 1).length;
      await waitFor(
        async () =>
          (
            await Promise.all(
              relays.map(async (r) => [
                await r.metric('allium_consensus_relays', { flag: 'guard' }),
                await r.metric('allium_consensus_relays', { flag: 'holder' }),
              ]),
            )
          ).every(([g, h]) => g === n && h === stores),
        60_000,
        `a consensus in which all ${n} relays are Guards and the ${stores} store relays Holders, at every relay`,
      );
      o.onStage?.('flags');
    }
  } catch (e) {
    // A network that did not come up must not outlive the test: its processes would keep mocha from exiting.
    await Promise.all(started.map((r) => r.kill('SIGKILL')));
    for (const r of started) rmSync(r.dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    relays,
    bootstrap: first.bootstrap,
    authorities,
    async stop() {
      await Promise.all(relays.map((r) => r.kill('SIGKILL')));
      for (const r of relays) rmSync(r.dataDir, { recursive: true, force: true });
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 50 ms; `what` names it in the timeout error (a function is read when the wait fails). */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string) = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(50);
  }
}
