/**
 * A relay that says what it is doing (docs/operator-guide.md, "Logs" and "Signals and exit codes"), checked on
 * `allium relay` processes: warnings for a configuration that runs but cannot work as meant, which bootstrap relay
 * failed and why, "joined", the reachability self-test, the heartbeat, readable lines on a terminal and JSON lines
 * otherwise, SIGHUP reloading what it can, and readiness told to systemd.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { join, resolve } from 'node:path';
import { IdentityKey } from '../../crypto/keys.js';
import { spawnAllium, type RunningAllium } from '../helpers/cli.js';
import { DEFAULT_ENTRY, makeTestCertificate, tempDir, waitFor } from '../helpers/network.js';
import { findProgram, needProgram } from '../helpers/programs.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** JSON log lines of a relay's stderr. */
function jsonLines(text: string): { level: number; msg: string; [k: string]: unknown }[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string });
}

describe('relay notices (allium relay processes)', function () {
  this.timeout(120_000);
  let dir: string;
  const running: RunningAllium[] = [];
  let n = 0;

  /** Starts a relay with these config lines (TOML) and waits for its banner. */
  async function relay(toml: string, o: { env?: Record<string, string> } = {}): Promise<{ r: RunningAllium; config: string; bootstrap: string }> {
    const name = `r${n++}`;
    const config = join(dir, `${name}.toml`);
    // a network on one machine: relays dial each other on 127.0.0.1
    writeFileSync(config, `data_dir = "${join(dir, name)}"\nstorage_quota = 0\nallow_private_addresses = true\n${toml}`);
    const r = spawnAllium(['relay', '--config', config], o);
    running.push(r);
    await waitFor(
      () => /bootstrap line: (\S+ \S+)/.test(r.stdout()) || /bridge line/.test(r.stdout()),
      60_000,
      () => `relay ${name} to start:\n${r.stdout()}${r.stderr()}`,
    );
    return { r, config, bootstrap: /bootstrap line: (\S+ \S+)/.exec(r.stdout())?.[1] ?? '' };
  }
  const waitLog = (r: RunningAllium, re: RegExp, what: string): Promise<void> =>
    waitFor(
      () => re.test(r.stderr()),
      60_000,
      () => `${what}:\n${r.stderr()}`,
    );

  before(() => {
    dir = tempDir('allium-notices-');
  });
  after(async () => {
    await Promise.all(running.map((r) => r.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });

  it('with no bootstrap relay: warns of a one-relay network; logs JSON lines when stderr is not a terminal; the self-test passes', async () => {
    const { r } = await relay('listen = "127.0.0.1:0"\n');
    await waitLog(r, /reachability: the published address/, 'the self-test');
    const lines = jsonLines(r.stderr());
    expect(
      r
        .stderr()
        .split('\n')
        .filter(Boolean)
        .every((l) => l.startsWith('{')),
      'every line JSON',
    ).to.equal(true);
    const warn = lines.find((l) => l.level === 40 && l.msg.startsWith('no bootstrap relay'));
    expect(warn?.msg).to.equal(
      'no bootstrap relay: this relay starts a network of its own (one relay); to join an existing network, add a bootstrap line its operators give you',
    );
    expect(lines.find((l) => l.msg.startsWith('reachability:'))?.msg).to.match(
      /^reachability: the published address ws:\/\/127\.0\.0\.1:\d+\/allium answers \(a link handshake with this relay completed\)$/,
    );
  });

  it('a wildcard listen without public_address, and a published address that does not answer, are warned about', async () => {
    const { r } = await relay('listen = "0.0.0.0:0"\n');
    await waitLog(r, /wildcard/, 'the wildcard warning');
    expect(r.stderr()).to.include(
      'listen is the wildcard address 0.0.0.0:0 and public_address is not set: the relay publishes that address, which no one else can dial; set public_address',
    );
    const { r: r2 } = await relay('listen = "127.0.0.1:0"\npublic_address = "ws://127.0.0.1:1/allium"\n');
    await waitLog(r2, /reachability:/, 'the self-test');
    const w = jsonLines(r2.stderr()).find((l) => l.msg.startsWith('reachability:'))!;
    expect(w.level).to.equal(40);
    expect(w.msg).to.match(
      /^reachability: the published address ws:\/\/127\.0\.0\.1:1\/allium does not answer from this machine: nothing listens at that address \(connection refused\)\./,
    );
  });

  it('says which bootstrap relay failed and why: nothing there, or a relay with another fingerprint', async () => {
    const { bootstrap: good } = await relay('listen = "127.0.0.1:0"\n');
    const other = IdentityKey.generate().fingerprint;
    const wrong = `${good.split(' ')[0]} ${other}`;
    const closed = `ws://127.0.0.1:1/allium ${IdentityKey.generate().fingerprint}`;
    const { r } = await relay(`listen = "127.0.0.1:0"\nbootstrap = ["${wrong}", "${closed}"]\n[timing]\nmaintenance_interval = 200\n`);
    await waitLog(r, /bootstrap relay ws:\/\/127\.0\.0\.1:1\/allium/, 'the closed port reported');
    await waitLog(r, new RegExp(`bootstrap relay ${good.split(' ')[0]!.replace(/[/.]/g, '\\$&')}`), 'the wrong fingerprint reported');
    const msgs = jsonLines(r.stderr()).filter((l) => l.msg.startsWith('bootstrap relay'));
    expect(msgs.map((l) => l.msg)).to.include.members([
      `bootstrap relay ${good.split(' ')[0]} (${other.slice(0, 8)}) failed: a relay answers there, but not as this fingerprint: the link handshake failed (a wrong fingerprint, or another relay at that address)`,
      `bootstrap relay ws://127.0.0.1:1/allium (${closed.split(' ')[1]!.slice(0, 8)}) failed: nothing listens at that address (connection refused)`,
    ]);
    // Retried every maintenance interval, reported once per reason.
    expect(msgs.length).to.equal(2);
    expect(msgs.every((l) => l.level === 40)).to.equal(true);
  });

  it('logs "joined: N relays known, M links" once it has joined, and a heartbeat line', async () => {
    const { bootstrap } = await relay('listen = "127.0.0.1:0"\n[timing]\ngossip_interval = 1000\nmaintenance_interval = 250\n');
    const { r } = await relay(
      `listen = "127.0.0.1:0"\nbootstrap = ["${bootstrap}"]\n[timing]\ngossip_interval = 1000\nmaintenance_interval = 250\nheartbeat_interval = "1 s"\n`,
    );
    await waitLog(r, /joined: /, 'joined');
    await waitLog(r, /heartbeat: /, 'a heartbeat');
    const lines = jsonLines(r.stderr());
    expect(lines.find((l) => l.msg.startsWith('joined:'))!.msg).to.equal('joined: 2 relays known, 1 links');
    const hb = lines.find((l) => l.msg.startsWith('heartbeat:'))!;
    expect(hb.msg).to.match(
      /^heartbeat: up \d+m \d+s; 1 relay links, \d+ client links; 0 circuits; [\d.]+ (B|kB|MB) in, [\d.]+ (B|kB|MB) out; directory 2 relays; no content store$/,
    );
    expect(hb).to.include({ relayLinks: 1, circuits: 0, relays: 2 });
    expect(lines.some((l) => l.msg.startsWith('no bootstrap relay'))).to.equal(false);
  });

  it('readable lines on a terminal (auto), and with log_format = "pretty"', async function () {
    const { r } = await relay('listen = "127.0.0.1:0"\nlog_format = "pretty"\n');
    await waitLog(r, /reachability:/, 'the self-test');
    const lines = r.stderr().split('\n').filter(Boolean);
    expect(
      lines.some((l) => l.startsWith('{')),
      'no JSON line',
    ).to.equal(false);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d WARN {2}no bootstrap relay: /.test(l))).to.equal(true);
    expect(
      lines.some((l) => /^\d\d:\d\d:\d\d INFO {2}relay running {2}relay=[0-9a-f]{8} address=ws:\/\/127\.0\.0\.1:\d+\/allium bridge=false/.test(l)),
    ).to.equal(true);
    // Under a terminal (a pseudo-terminal from script(1)), "auto" is readable too, with the level in colour.
    needProgram(this, 'script');
    const config = join(dir, 'tty.toml');
    writeFileSync(config, `data_dir = "${join(dir, 'tty')}"\nstorage_quota = 0\nlisten = "127.0.0.1:0"\n[timing]\nheartbeat_interval = 300\n`);
    const cmd = [process.execPath, ...DEFAULT_ENTRY, 'relay', '--config', config].map((a) => `'${a}'`).join(' ');
    const tty: ChildProcess = spawn(findProgram('script')!, ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    tty.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(
        () => out.includes('heartbeat:'),
        60_000,
        () => `a heartbeat on the terminal:\n${out}`,
      );
    } finally {
      tty.kill('SIGKILL');
    }
    expect(out).not.to.match(/^\{"level"/m);
    expect(out).to.match(/\d\d:\d\d:\d\d \x1b\[32mINFO \x1b\[0m relay running/);
  });

  it('SIGHUP reloads the configuration: applies what it can, names what needs a restart, survives a bad file', async () => {
    const { r, config } = await relay('listen = "127.0.0.1:0"\nnickname = "before"\nadmin = "127.0.0.1:0"\n');
    const admin = /status page: (\S+)/.exec(r.stdout())![1]!;
    const status = async (): Promise<{ nickname: string }> => (await (await fetch(`${admin}status.json`)).json()) as { nickname: string };
    expect((await status()).nickname).to.equal('before');
    writeFileSync(
      config,
      `data_dir = "${join(dir, `r${n - 1}`)}"\nstorage_quota = 0\nallow_private_addresses = true\nlisten = "127.0.0.1:9"\nnickname = "after"\nadmin = "127.0.0.1:0"\nbandwidth_rate = "20 MB"\nlog_level = "debug"\n`,
    );
    process.kill(r.pid, 'SIGHUP');
    await waitLog(r, /reloaded the configuration/, 'the reload');
    const lines = jsonLines(r.stderr());
    expect(lines.find((l) => l.msg.startsWith('reloaded the configuration'))!.msg).to.equal(
      'reloaded the configuration: applied nickname, bandwidth_rate, log_level',
    );
    expect(lines.find((l) => l.msg.startsWith('these changes need a restart'))!.msg).to.equal('these changes need a restart and were not applied: listen');
    expect((await status()).nickname).to.equal('after');
    writeFileSync(config, 'nickname = "broken\n');
    process.kill(r.pid, 'SIGHUP');
    await waitLog(r, /reload failed/, 'the failed reload');
    expect(jsonLines(r.stderr()).find((l) => l.msg.startsWith('reload failed'))!.msg).to.match(
      /^reload failed, nothing changed: config file .*, line 1, column \d+: not valid TOML: /,
    );
    expect((await status()).nickname).to.equal('after');
    const code = await r.kill('SIGTERM');
    expect(code, 'still running after both SIGHUPs, then an orderly stop').to.equal(0);
  });

  it('SIGHUP reads the TLS certificate again, even at the same paths', async function () {
    needProgram(this, 'openssl');
    const a = makeTestCertificate(tempDir('allium-cert-a-'));
    const b = makeTestCertificate(tempDir('allium-cert-b-'));
    const cert = join(dir, 'tls-cert.pem');
    const key = join(dir, 'tls-key.pem');
    copyFileSync(a.cert, cert);
    copyFileSync(a.key, key);
    const { r } = await relay(`listen = "127.0.0.1:0"\ntls_cert = "${cert}"\ntls_key = "${key}"\n`, { env: { NODE_EXTRA_CA_CERTS: a.cert } });
    const port = Number(/wss:\/\/127\.0\.0\.1:(\d+)\//.exec(r.stdout())![1]);
    const served = (): Promise<string> =>
      new Promise((res, rej) => {
        const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          res(s.getPeerX509Certificate()!.fingerprint256);
          s.destroy();
        });
        s.once('error', rej);
      });
    const fp = (file: string): string => new X509Certificate(readFileSync(file)).fingerprint256;
    expect(await served()).to.equal(fp(a.cert));
    copyFileSync(b.cert, cert);
    copyFileSync(b.key, key);
    process.kill(r.pid, 'SIGHUP');
    await waitLog(r, /reloaded the configuration/, 'the reload');
    expect(jsonLines(r.stderr()).find((l) => l.msg.startsWith('reloaded the configuration'))!.msg).to.equal(
      'reloaded the configuration: nothing to apply; TLS certificate read again',
    );
    expect(await served()).to.equal(fp(b.cert));
  });

  it('tells systemd it is ready, reloading and stopping (NOTIFY_SOCKET, through systemd-notify)', async function () {
    needProgram(this, 'systemd-notify', 'python3');
    const socket = join(dir, 'notify.sock');
    const fake = spawn(findProgram('python3')!, [join(ROOT, 'test', 'helpers', 'fake-notify.py'), socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let got = '';
    fake.stdout!.on('data', (d: Buffer) => (got += d.toString()));
    try {
      await waitFor(() => got.includes('listening'), 10_000, 'the fake notify socket');
      const { r } = await relay('listen = "127.0.0.1:0"\n', { env: { NOTIFY_SOCKET: socket } });
      await waitFor(
        () => got.includes('READY=1'),
        30_000,
        () => `READY=1:\n${got}`,
      );
      expect(got).to.match(new RegExp(`MAINPID=${r.pid} \\| READY=1 \\| STATUS=relay [0-9a-f]{8} running at ws://127\\.0\\.0\\.1:\\d+/allium`));
      process.kill(r.pid, 'SIGHUP');
      await waitFor(
        () => /RELOADING=1[\s\S]*\| READY=1/.test(got),
        30_000,
        () => `RELOADING=1 then READY=1:\n${got}`,
      );
      expect(await r.kill('SIGTERM')).to.equal(0);
      expect(got).to.include('STOPPING=1');
    } finally {
      fake.kill('SIGKILL');
    }
  });
});
