/**
 * Errors without stack traces (docs/operator-guide.md, "Signals and exit codes"): bad input to the `allium` command,
 * run as a process, ends with one line `allium: …` that names the setting, and the exit status of its kind — and
 * everything that can be checked is checked before keys are made or the network is contacted.
 */
import { expect } from 'chai';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { IdentityKey } from '../../crypto/keys.js';
import { crypto } from '../../crypto/index.js';
import { formatLink } from '../../protocol/content-link.js';
import { toHex } from '../../protocol/bytes.js';
import { oneLine, runAllium, spawnAllium } from '../helpers/cli.js';
import { startNetwork, tempDir, waitFor, type TestNetwork } from '../helpers/network.js';

/** A port something else already listens on. */
async function takenPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as { port: number }).port, server };
}

/** 64 hex digits that are not an Ed25519 public key (not on the curve). */
function notAKey(): string {
  for (let i = 0; ; i++) {
    const candidate = toHex(crypto().hash(32, Uint8Array.of(i)));
    if (!crypto().edIsValidPoint(Uint8Array.from(Buffer.from(candidate, 'hex')))) return candidate;
  }
}

describe('allium CLI: errors are one line naming the setting, with the exit status of their kind', function () {
  this.timeout(120_000);
  let dir: string;
  let taken: { port: number; server: Server };
  let VALID_FP = '';

  before(async () => {
    VALID_FP = IdentityKey.generate().fingerprint;
    dir = tempDir('allium-cli-errors-');
    chmodSync(dir, 0o755);
    taken = await takenPort();
  });
  after(() => {
    taken?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--help lists the exit statuses, not found among them', async () => {
    const r = await runAllium(['--help']);
    expect(r.code).to.equal(0);
    expect(r.stdout)
      .to.include('Exit status:')
      .and.include('4  not found')
      .and.include('3  network unreachable')
      .and.include('2  usage or configuration error');
  });

  it('the listen port in use: exit 1, "listen 127.0.0.1:P: address already in use", no key made', async () => {
    const data = join(dir, 'listen-in-use');
    const r = await runAllium(['relay', '--listen', `127.0.0.1:${taken.port}`, '--data-dir', data]);
    expect(oneLine(r)).to.equal(`allium: listen 127.0.0.1:${taken.port}: address already in use`);
    expect(r.code).to.equal(1);
    expect(existsSync(data), 'data directory created').to.equal(false);
  });

  it('the metrics port in use: the same, naming metrics, before any key', async () => {
    const data = join(dir, 'metrics-in-use');
    const r = await runAllium(['relay', '--listen', '127.0.0.1:0', '--metrics', `127.0.0.1:${taken.port}`, '--data-dir', data]);
    expect(oneLine(r)).to.equal(`allium: metrics 127.0.0.1:${taken.port}: address already in use`);
    expect(r.code).to.equal(1);
    expect(existsSync(data)).to.equal(false);
  });

  it('the SOCKS port in use: "--socks 127.0.0.1:P: address already in use", before the network is contacted', async () => {
    const r = await runAllium([
      'client',
      '--bootstrap',
      `ws://127.0.0.1:1/allium ${VALID_FP}`,
      '--socks',
      `127.0.0.1:${taken.port}`,
      '--data-dir',
      join(dir, 'c1'),
    ]);
    expect(oneLine(r)).to.equal(`allium: --socks 127.0.0.1:${taken.port}: address already in use`);
    expect(r.code).to.equal(1);
  });

  it('a file where the data directory should be: exit 2, before any key', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const r = await runAllium(['relay', '--listen', '127.0.0.1:0', '--data-dir', file]);
    expect(oneLine(r)).to.equal(`allium: data_dir ${file}: is a file, not a directory`);
    expect(r.code).to.equal(2);
    const r2 = await runAllium(['relay', '--listen', '127.0.0.1:0', '--data-dir', join(file, 'sub')]);
    expect(oneLine(r2)).to.equal(`allium: data_dir ${join(file, 'sub')}: ${file} is a file, not a directory`);
    expect(r2.code).to.equal(2);
  });

  it('a data directory this user cannot write or create: exit 1, permission denied, no key', async () => {
    // As root every directory is writable, so the relay runs as nobody there; otherwise as this user.
    const root = process.getuid?.() === 0;
    const parent = join(dir, 'locked');
    mkdirSync(parent, { mode: 0o755 });
    if (!root) chmodSync(parent, 0o555);
    const as = root ? { uid: 65534, gid: 65534 } : {};
    const inside = join(parent, 'relay');
    const r = await runAllium(['relay', '--listen', '127.0.0.1:0', '--data-dir', inside], as);
    expect(oneLine(r)).to.equal(`allium: data_dir ${inside}: cannot create it: permission denied in ${parent}`);
    expect(r.code).to.equal(1);
    const r2 = await runAllium(['relay', '--listen', '127.0.0.1:0', '--data-dir', parent], as);
    expect(oneLine(r2)).to.match(new RegExp(`^allium: data_dir ${parent}: permission denied \\(this process, uid \\d+, must be able to write there\\)$`));
    expect(r2.code).to.equal(1);
    expect(readdirSync(parent)).to.deep.equal([]);
    chmodSync(parent, 0o755);
  });

  it('a bootstrap fingerprint of 64 hex digits that is not a key: a configuration error (relay and client)', async () => {
    const bad = notAKey();
    const line = `ws://127.0.0.1:1/allium ${bad}`;
    const r = await runAllium(['relay', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'fp'), '--bootstrap', line]);
    expect(oneLine(r)).to.equal(
      `allium: bootstrap line "${line}": the fingerprint is 64 hex digits but not a relay identity key (not a valid Ed25519 public key: a typo?)`,
    );
    expect(r.code).to.equal(2);
    const c = await runAllium([
      'get',
      formatLink({ type: 'chk', rk: new Uint8Array(32), dk: new Uint8Array(32), flags: 0 }),
      '-o',
      '-',
      '--bootstrap',
      line,
      '--data-dir',
      join(dir, 'c2'),
    ]);
    expect(oneLine(c)).to.equal(
      `allium: bootstrap line "${line}": the fingerprint is 64 hex digits but not a relay identity key (not a valid Ed25519 public key: a typo?)`,
    );
    expect(c.code).to.equal(2);
  });

  it('bootstrap lines naming other directory authorities than --authority or each other, or some naming none: a configuration error', async () => {
    const [a, b, c] = [IdentityKey.generate().fingerprint, IdentityKey.generate().fingerprint, IdentityKey.generate().fingerprint];
    const line = `ws://127.0.0.1:1/allium ${VALID_FP} authorities=${[a, b].sort().join('+')}`;
    const link = formatLink({ type: 'chk', rk: new Uint8Array(32), dk: new Uint8Array(32), flags: 0 });
    const get = await runAllium(['get', link, '-o', '-', '--bootstrap', line, '--authority', c, '--data-dir', join(dir, 'auth1')]);
    expect(oneLine(get)).to.match(/^allium: bootstrap line of [0-9a-f]{16}… names 2 directory authorities other than the 1 configured/);
    expect(get.stderr).not.to.include('trying');
    expect(get.code).to.equal(2);
    const other = `ws://127.0.0.1:2/allium ${IdentityKey.generate().fingerprint} authorities=${c}`;
    const two = await runAllium(['get', link, '-o', '-', '--bootstrap', line, '--bootstrap', other, '--data-dir', join(dir, 'auth2')]);
    expect(oneLine(two)).to.match(/^allium: bootstrap lines name different sets of directory authorities/);
    expect(two.code).to.equal(2);
    const relay = await runAllium(['relay', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'auth3'), '--bootstrap', line, '--bootstrap', other]);
    expect(oneLine(relay)).to.match(/^allium: bootstrap lines name different sets of directory authorities/);
    expect(relay.code).to.equal(2);
    // Without --authority, a line naming authorities beside one that names none: which one speaks for the network?
    const plain = `ws://127.0.0.1:3/allium ${IdentityKey.generate().fingerprint}`;
    const mixed = await runAllium(['get', link, '-o', '-', '--bootstrap', plain, '--bootstrap', line, '--data-dir', join(dir, 'auth4')]);
    expect(oneLine(mixed)).to.match(/^allium: the bootstrap line of [0-9a-f]{16}… names no directory authorities but others name 2/);
    expect(mixed.stderr).not.to.include('trying');
    expect(mixed.code).to.equal(2);
  });

  it('a mistyped link is refused before the network is contacted (exit 2)', async () => {
    const r = await runAllium(['get', 'allium:chk/notalink', '-o', '-', '--bootstrap', `ws://127.0.0.1:1/allium ${VALID_FP}`, '--data-dir', join(dir, 'c3')]);
    expect(oneLine(r)).to.equal('allium: a chk link has 69 bytes');
    expect(r.stderr).not.to.include('trying');
    expect(r.code).to.equal(2);
  });

  it('a file to put that does not exist: exit 2, naming it', async () => {
    const missing = join(dir, 'nope.txt');
    const r = await runAllium(['put', missing, '--bootstrap', `ws://127.0.0.1:1/allium ${VALID_FP}`, '--data-dir', join(dir, 'c4')]);
    expect(oneLine(r)).to.equal(`allium: ${missing}: no such file or directory`);
    expect(r.code).to.equal(2);
  });

  describe('config files: units, TOML errors with line and column, "did you mean"', () => {
    const cfg = (name: string, text: string): string => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const verify = (file: string) => runAllium(['relay', '--config', file, '--verify-config']);

    it('a TOML syntax error names the line and the column', async () => {
      const f = cfg('syntax.toml', 'nickname = "ok"\nlisten = 127.0.0.1:9001\n');
      const r = await verify(f);
      expect(oneLine(r)).to.equal(`allium: config file ${f}, line 2, column 15: not valid TOML: illegal character in numeric literal`);
      expect(r.code).to.equal(2);
    });

    it('a misspelt key gets "did you mean", a key after [timing] is told to move up', async () => {
      const f = cfg('typo.toml', 'bandwith_rate = 1000\n');
      expect(oneLine(await verify(f))).to.equal('allium: unknown configuration key "bandwith_rate": did you mean "bandwidth_rate"?');
      const g = cfg('table.toml', '[timing]\ngossip_interval = 1000\nmetrics = "127.0.0.1:0"\n');
      const r = await verify(g);
      expect(oneLine(r)).to.equal(
        'allium: unknown configuration key "timing.metrics": "metrics" is a top-level key: move it above the [timing] table (TOML puts every key after [timing] into it)',
      );
      expect(r.code).to.equal(2);
    });

    it('sizes and durations take units; a wrong unit says what is expected', async () => {
      const ok = cfg(
        'units.toml',
        `listen = "127.0.0.1:0"\ndata_dir = "${join(dir, 'units')}"\nbandwidth_rate = "10 MB"\nstorage_quota = "2 GiB"\n[timing]\nrepair_interval = "2 min"\n`,
      );
      const r = await verify(ok);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.include('bandwidth_rate = 10000000').and.include('storage_quota = 2147483648').and.include('timing.repair_interval = 120000');
      expect(existsSync(join(dir, 'units')), '--verify-config makes nothing').to.equal(false);
      const bad = cfg('badunit.toml', 'bandwidth_rate = "10 MX"\n');
      const b = await verify(bad);
      expect(oneLine(b)).to.match(
        /^allium: configuration key "bandwidth_rate": "10 MX" is not a size per second: a number of bytes, or a number and a unit: B, KB, MB/,
      );
      expect(b.code).to.equal(2);
    });
  });

  describe('against a network of 3 relays', () => {
    let net: TestNetwork;
    before(async function () {
      this.timeout(120_000);
      net = await startNetwork(3);
    });
    after(async () => {
      await net?.stop();
    });

    it('a wrong fingerprint: says which bootstrap relay failed and why, then exit 3', async () => {
      const url = net.bootstrap.split(' ')[0]!;
      const r = await runAllium([
        'get',
        formatLink({ type: 'chk', rk: new Uint8Array(32), dk: new Uint8Array(32), flags: 0 }),
        '-o',
        '-',
        '--bootstrap',
        `${url} ${VALID_FP}`,
        '--data-dir',
        join(dir, 'c5'),
        '--test-network',
      ]);
      expect(r.stderr).to.include(
        `allium: bootstrap relay ${url} (${VALID_FP.slice(0, 8)}): a relay answers there, but not as this fingerprint: the link handshake failed (a wrong fingerprint, or another relay at that address)`,
      );
      expect(r.stderr.trim().split('\n').pop()).to.equal('allium: no entry reachable: tried 1 relay and 0 bridges');
      expect(r.stderr).not.to.match(/^\s+at /m);
      expect(r.code).to.equal(3);
    });

    it('content that does not exist: exit 4 (not found)', async () => {
      const link = formatLink({ type: 'chk', rk: crypto().random(32), dk: crypto().random(32), flags: 0 });
      const r = await runAllium(['get', link, '-o', '-', '--bootstrap', net.bootstrap, '--data-dir', join(dir, 'c6'), '--test-network']);
      expect(r.stderr.trim().split('\n').pop()).to.match(/^allium: content not found/);
      expect(r.code).to.equal(4);
    });

    it('plain HTTP sent to the SOCKS port gets a page that explains it (501)', async () => {
      const client = spawnAllium(['client', '--bootstrap', net.bootstrap, '--socks', '127.0.0.1:0', '--data-dir', join(dir, 'c7'), '--test-network']);
      try {
        let socks = '';
        await waitFor(
          () => {
            socks = /SOCKS5 on (127\.0\.0\.1:\d+)/.exec(client.stdout())?.[1] ?? '';
            return socks !== '';
          },
          60_000,
          () => `the client to print its SOCKS address:\n${client.stdout()}${client.stderr()}`,
        );
        const res = await fetch(`http://${socks}/`);
        expect(res.status).to.equal(501);
        const page = await res.text();
        expect(page).to.include('not an HTTP proxy').and.include('--socks5-hostname');
      } finally {
        await client.kill();
      }
    });
  });
});
