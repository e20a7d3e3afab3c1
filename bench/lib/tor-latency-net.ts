/**
 * A private Tor network on 127.0.0.1 for bench:tor-latency, set up like the real-Tor anchor
 * (shared/anchors/tor-local/up.sh: TestingTorNetwork, 3 directory authorities, non-exit relays, exits that accept
 * only 127.0.0.1, a client with full descriptors and a fixed circuit-build timeout), with one change: every
 * non-authority relay advertises the port of a delaying TCP forwarder (bench/lib/delay-main.ts) in front of its
 * real ORPort —
 *
 *   ORPort 127.0.0.1:<forwarder> NoListen      what the descriptor and the consensus say
 *   ORPort 127.0.0.1:<real>      NoAdvertise   where tor listens; only the forwarder connects here
 *
 * so every connection a client or a relay opens to one of them (client→guard, guard→middle, middle→exit) waits
 * DELAY ms per direction, as Allium's links do under bench:circuit --latency. The authorities stay direct: they
 * carry directory traffic only and are never put on a measured path. The non-authority relays are not directory
 * caches (DirCache 0), so the client's directory fetches go to the authorities and no consensus-diff compression
 * runs on the measured relays.
 *
 * Every process is started here and stopped here by its own pid (tor runs in the foreground, RunAsDaemon 0); each
 * tor also has __OwningControllerProcess set to this process, so it exits by itself if this process dies.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sleep } from '../../cli/local-network.js';
import { startChild, type Child } from './children.js';
import type { Runtime } from './compiled.js';
import { TorControl } from './tor-latency-control.js';

const IP = '127.0.0.1';

export interface TorRelayInfo {
  readonly nick: string;
  readonly role: 'auth' | 'mid' | 'exit';
  readonly fingerprint: string;
  /** Where tor listens. */
  readonly realOrPort: number;
  /** What the consensus says (the forwarder's port; equal to realOrPort for the direct authorities). */
  readonly advertisedOrPort: number;
}

export interface TorNet {
  readonly name: string;
  readonly delayMs: number;
  readonly dir: string;
  readonly relays: readonly TorRelayInfo[];
  readonly control: TorControl;
  /** Pids of every tor and of the forwarder, for CPU accounting. */
  readonly pids: readonly number[];
  /** Seconds from starting the tors until the client had every measured relay's descriptor. */
  readonly bootstrapSeconds: number;
  stop(keep?: boolean): Promise<void>;
}

export interface TorNetOptions {
  readonly name: string;
  /** One-way delay of every non-authority relay's ORPort, ms (0: the forwarder is still there, with no delay). */
  readonly delayMs: number;
  /** No forwarder at all: every relay advertises its real ORPort (the reference without delay). */
  readonly direct?: boolean;
  readonly mids: number;
  readonly exits: number;
  /** How node modules of bench/lib are run (the forwarder). */
  readonly runtime: Runtime;
  readonly bootstrapTimeoutS: number;
  readonly log?: (msg: string) => void;
}

/** `n` distinct free TCP ports on 127.0.0.1 (each held open until all are found). */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      await new Promise<void>((r, j) => s.once('error', j).listen(0, IP, () => r()));
      servers.push(s);
      ports.push((s.address() as { port: number }).port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  return ports;
}

function run(cmd: string, args: readonly string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr ?? ''}${r.error?.message ?? ''}`);
  return r.stdout;
}

/** Is the tor (and tor-gencert) this benchmark needs installed? Returns why not, or null. */
export function torMissing(): string | null {
  for (const t of ['tor', 'tor-gencert']) {
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `${t} is not installed (Debian: apt-get install -y tor)`;
  }
  return null;
}

export function torVersion(): string {
  return run('tor', ['--version']).split('\n')[0]!.trim();
}

/** Relay identity fingerprint (tor creates the keys in `dataDir` on --list-fingerprint). */
function relayFingerprint(dataDir: string, nick: string): string {
  const out = run('tor', [
    '--defaults-torrc',
    '/dev/null',
    '-f',
    '/dev/null',
    '--ignore-missing-torrc',
    '--quiet',
    '--list-fingerprint',
    '--DataDirectory',
    dataDir,
    '--ORPort',
    '1',
    '--Nickname',
    nick,
    '--DirAuthority',
    `fake ${IP}:1 ${'f'.repeat(40)}`,
  ]);
  const line = out.split('\n').find((l) => l.startsWith(`${nick} `));
  const fp = line?.slice(nick.length + 1).replace(/\s+/g, '') ?? '';
  if (!/^[0-9A-F]{40}$/.test(fp)) throw new Error(`no fingerprint for ${nick}: ${out}`);
  return fp;
}

/** v3 authority identity, signing key and certificate; returns the v3 identity fingerprint. */
function authorityCertificate(dataDir: string, dirPort: number): string {
  const keys = path.join(dataDir, 'keys');
  mkdirSync(keys, { recursive: true, mode: 0o700 });
  run(
    'tor-gencert',
    [
      '--create-identity-key',
      '--passphrase-fd',
      '0',
      '-m',
      '12',
      '-a',
      `${IP}:${dirPort}`,
      '-i',
      'authority_identity_key',
      '-s',
      'authority_signing_key',
      '-c',
      'authority_certificate',
    ],
    { cwd: keys, input: '\n' },
  );
  const m = /^fingerprint ([0-9A-F]{40})$/m.exec(readFileSync(path.join(keys, 'authority_certificate'), 'utf8'));
  if (!m) throw new Error('tor-gencert wrote no fingerprint');
  return m[1]!;
}

function commonTorrc(nick: string, dataDir: string, dirAuthLines: string): string {
  return [
    'TestingTorNetwork 1',
    `DataDirectory ${dataDir}`,
    'RunAsDaemon 0',
    `Nickname ${nick}`,
    `Log notice file ${path.join(dataDir, 'notice.log')}`,
    'SafeLogging 0',
    'LogTimeGranularity 1',
    'ShutdownWaitLength 0',
    'ConnDirectionStatistics 0',
    'DirReqStatistics 0',
    'ExtraInfoStatistics 0',
    `OutboundBindAddress ${IP}`,
    `__OwningControllerProcess ${process.pid}`,
    dirAuthLines,
  ].join('\n');
}

/** Starts the network and waits until its client knows every non-authority relay. */
export async function startTorNet(o: TorNetOptions): Promise<TorNet> {
  const log = o.log ?? ((): void => {});
  const dir = mkdtempSync(path.join(os.tmpdir(), `allium-tor-latency-${o.name}-`));
  chmodSync(dir, 0o700);
  const tors: { nick: string; proc: ChildProcess }[] = [];
  let forwarder: Child<{ ports: number[] }> | null = null;
  let control: TorControl | null = null;

  const stop = async (keep = false): Promise<void> => {
    control?.close();
    control = null;
    const exits = tors.map(({ proc }) =>
      proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => proc.once('exit', () => r())),
    );
    for (const { proc } of tors) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const killer = setTimeout(() => {
      for (const { proc } of tors) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }, 10_000);
    await Promise.all(exits);
    clearTimeout(killer);
    await forwarder?.stop();
    forwarder = null;
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const nicks = [
      ...[0, 1, 2].map((i) => ({ nick: `auth${i}`, role: 'auth' as const })),
      ...Array.from({ length: o.mids }, (_, i) => ({ nick: `mid${i}`, role: 'mid' as const })),
      ...Array.from({ length: o.exits }, (_, i) => ({ nick: `exit${i}`, role: 'exit' as const })),
    ];
    const auths = nicks.filter((n) => n.role === 'auth');
    const others = nicks.filter((n) => n.role !== 'auth');
    // ORPort per relay, DirPort per authority, one SocksPort for the client.
    const ports = await freePorts(nicks.length + auths.length + 1);
    const orPort = new Map(nicks.map((n, i) => [n.nick, ports[i]!]));
    const dirPort = new Map(auths.map((n, i) => [n.nick, ports[nicks.length + i]!]));
    const socksPort = ports[ports.length - 1]!;

    if (!o.direct)
      forwarder = await startChild<{ ports: number[] }>(o.runtime, 'delay-main', [
        '--delay',
        String(o.delayMs),
        ...others.map((n) => String(orPort.get(n.nick))),
      ]);
    const advertised = new Map(forwarder ? others.map((n, i) => [n.nick, forwarder!.info.ports[i]!]) : []);

    log(`${o.name}: keys for ${nicks.length} relays`);
    const relays: TorRelayInfo[] = [];
    const v3 = new Map<string, string>();
    for (const n of nicks) {
      const d = path.join(dir, n.nick);
      mkdirSync(d, { recursive: true, mode: 0o700 });
      if (n.role === 'auth') v3.set(n.nick, authorityCertificate(d, dirPort.get(n.nick)!));
      relays.push({
        nick: n.nick,
        role: n.role,
        fingerprint: relayFingerprint(d, n.nick),
        realOrPort: orPort.get(n.nick)!,
        advertisedOrPort: advertised.get(n.nick) ?? orPort.get(n.nick)!,
      });
    }
    const fp = (nick: string): string => relays.find((r) => r.nick === nick)!.fingerprint;
    const dirAuthLines = auths
      .map((a) => `DirAuthority ${a.nick} orport=${orPort.get(a.nick)} no-v2 v3ident=${v3.get(a.nick)} ${IP}:${dirPort.get(a.nick)} ${fp(a.nick)}`)
      .join('\n');
    const exitFps = relays
      .filter((r) => r.role === 'exit')
      .map((r) => r.fingerprint)
      .join(',');
    const guardFps = relays
      .filter((r) => r.role !== 'exit')
      .map((r) => r.fingerprint)
      .join(',');
    writeFileSync(path.join(dir, 'resolv.conf'), `nameserver ${IP}\n`);

    for (const r of relays) {
      const d = path.join(dir, r.nick);
      const lines = [
        commonTorrc(r.nick, d, dirAuthLines),
        `Address ${IP}`,
        ...(r.role === 'auth'
          ? [`ORPort ${IP}:${r.realOrPort}`, `DirPort ${IP}:${dirPort.get(r.nick)}`]
          : r.advertisedOrPort === r.realOrPort
            ? [`ORPort ${IP}:${r.realOrPort}`, 'DirCache 0']
            : [`ORPort ${IP}:${r.advertisedOrPort} NoListen`, `ORPort ${IP}:${r.realOrPort} NoAdvertise`, 'DirCache 0']),
        'SocksPort 0',
        'AssumeReachable 1',
        `ContactInfo ${r.nick}@tor-latency.test`,
        `ServerDNSResolvConfFile ${path.join(dir, 'resolv.conf')}`,
        'ServerDNSDetectHijacking 0',
        'ServerDNSTestAddresses',
        'ServerDNSAllowBrokenConfig 1',
      ];
      if (r.role === 'auth') {
        lines.push(
          'AuthoritativeDirectory 1',
          'V3AuthoritativeDirectory 1',
          'ExitPolicy reject *:*',
          'V3AuthVotingInterval 60',
          'V3AuthVoteDelay 4',
          'V3AuthDistDelay 4',
          'TestingV3AuthInitialVotingInterval 20',
          'TestingV3AuthInitialVoteDelay 4',
          'TestingV3AuthInitialDistDelay 4',
          'V3AuthNIntervalsValid 2',
          `TestingDirAuthVoteExit ${exitFps}`,
          `TestingDirAuthVoteGuard ${guardFps}`,
          'TestingDirAuthVoteHSDir *',
          'TestingMinExitFlagThreshold 0',
          'TestingMinFastFlagThreshold 0',
          'AuthDirMaxServersPerAddr 0',
        );
      } else if (r.role === 'mid') {
        lines.push('ExitPolicy reject *:*');
      } else {
        lines.push(
          'ExitRelay 1',
          'ExitPolicyRejectPrivate 0',
          'ExitPolicyRejectLocalInterfaces 0',
          `ExitPolicy accept ${IP}:*`,
          'ExitPolicy reject *:*',
          'IPv6Exit 0',
        );
      }
      writeFileSync(path.join(d, 'torrc'), lines.join('\n') + '\n');
    }

    const clientDir = path.join(dir, 'client');
    mkdirSync(clientDir, { recursive: true, mode: 0o700 });
    writeFileSync(
      path.join(clientDir, 'torrc'),
      [
        commonTorrc('client', clientDir, dirAuthLines),
        `SocksPort ${IP}:${socksPort}`,
        `ControlSocket ${path.join(clientDir, 'control')}`,
        'CookieAuthentication 1',
        'ClientRejectInternalAddresses 0',
        // Exit policies accepting only 127.0.0.1 vanish from microdescriptor summaries (see the anchor's up.sh).
        'UseMicrodescriptors 0',
        // On loopback the learned timeout converges to tens of ms and then kills circuits; use a fixed one.
        'LearnCircuitBuildTimeout 0',
        'CircuitBuildTimeout 60',
      ].join('\n') + '\n',
    );

    const t0 = performance.now();
    for (const nick of [...relays.map((r) => r.nick), 'client']) {
      const d = path.join(dir, nick);
      const out = openSync(path.join(d, 'stdout.log'), 'a');
      const proc = spawn('tor', ['--defaults-torrc', '/dev/null', '-f', path.join(d, 'torrc'), '--quiet'], { stdio: ['ignore', out, out] });
      closeSync(out);
      tors.push({ nick, proc });
    }
    log(`${o.name}: started ${tors.length} tor processes (pids ${tors.map((t) => t.proc.pid).join(' ')}); waiting for the consensus`);

    const sock = path.join(clientDir, 'control');
    const cookie = path.join(clientDir, 'control_auth_cookie');
    const deadline = t0 + o.bootstrapTimeoutS * 1000;
    const alive = (): void => {
      const dead = tors.find((t) => t.proc.exitCode !== null || t.proc.signalCode !== null);
      if (dead)
        throw new Error(`${o.name}: tor ${dead.nick} exited (${dead.proc.exitCode ?? dead.proc.signalCode}); see ${path.join(dir, dead.nick)}/notice.log`);
    };
    while (!existsSync(sock) || !existsSync(cookie)) {
      alive();
      if (performance.now() > deadline) throw new Error(`${o.name}: the client opened no control socket`);
      await sleep(200);
    }
    control = await TorControl.open(sock, cookie);
    // The client must hold a consensus entry and a full descriptor of every relay a measured path uses.
    for (;;) {
      alive();
      let missing = 0;
      for (const r of relays.filter((x) => x.role !== 'auth')) {
        const ok = await control.getinfo(`ns/id/${r.fingerprint}`).then(
          () =>
            control!.getinfo(`desc/id/${r.fingerprint}`).then(
              () => true,
              () => false,
            ),
          () => false,
        );
        if (!ok) missing++;
      }
      if (missing === 0) break;
      if (performance.now() > deadline) throw new Error(`${o.name}: after ${o.bootstrapTimeoutS} s the client still lacks ${missing} relays; see ${dir}`);
      await sleep(2000);
    }
    const bootstrapSeconds = (performance.now() - t0) / 1000;
    log(`${o.name}: client knows every relay after ${bootstrapSeconds.toFixed(0)} s`);
    const ctl = control;
    return {
      name: o.name,
      delayMs: o.delayMs,
      dir,
      relays,
      control: ctl,
      pids: [...tors.map((t) => t.proc.pid!), ...(forwarder ? [forwarder.pid] : [])],
      bootstrapSeconds,
      stop,
    };
  } catch (e) {
    await stop(true);
    throw new Error(`${(e as Error).message} (files kept in ${dir})`);
  }
}
