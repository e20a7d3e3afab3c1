/**
 * Packaging: `npm pack` gives a package that installs in an empty folder without compiling anything (no native
 * module built from source: better-sqlite3 is an optional peer dependency, loaded by a relay's content store only),
 * whose `allium` command runs (help, and a relay that starts and stops cleanly), whose typed entry points import
 * (the root "." too), and which ships its examples, its licence and no source map that points at a missing source.
 */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { alliumCommand } from '../../cli/devnet.js';
import { sleep, tempDir } from '../helpers/network.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');

/** Every file under `dir`, relative to it. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(p.slice(base.length + 1));
  }
  return out;
}

describe('packaging (npm pack, install in an empty folder)', function () {
  this.timeout(600_000);
  let dir: string;
  let tarball: string;
  let installLog = '';
  let pkgDir: string;

  before(async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'allium.js'))) await run('npm', ['run', '-s', 'build'], { cwd: ROOT });
    const packDir = tempDir('allium-pack-');
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: ROOT });
    tarball = join(packDir, stdout.trim().split('\n').pop()!);
    dir = tempDir('allium-install-');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'empty', version: '1.0.0', private: true, type: 'module' }));
    const t0 = Date.now();
    const r = await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: dir, maxBuffer: 1 << 24 });
    installLog = r.stdout + r.stderr;
    pkgDir = join(dir, 'node_modules', 'allium');
    console.log(`      package ${(statSync(tarball).size / 1e6).toFixed(2)} MB; installed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs without compiling anything, and without the relay-only or test-only packages', () => {
    expect(installLog).not.to.match(/gyp info spawn|node-gyp rebuild|CXX\(target\)/);
    const built = walk(join(dir, 'node_modules')).filter((f) => /(^|\/)build\/Release\/[^/]+\.node$/.test(f));
    expect(built, 'native modules compiled at install').to.deep.equal([]);
    for (const name of ['better-sqlite3', 'tweetnacl', 'mocha', 'tsx']) {
      expect(existsSync(join(dir, 'node_modules', name)), name).to.equal(false);
    }
    // cbor-x encodes; its optional native decoder comes in the one version with prebuilt binaries (our own optional
    // dependency pins it, and cbor-x's range takes it), and nothing of it was compiled (above)
    expect(JSON.parse(readFileSync(join(dir, 'node_modules', 'cbor-extract', 'package.json'), 'utf8')).version).to.equal('2.2.2');
  });

  it('ships examples/, LICENSE, and source maps only with their sources inside', () => {
    expect(existsSync(join(pkgDir, 'LICENSE'))).to.equal(true);
    expect(readFileSync(join(pkgDir, 'LICENSE'), 'utf8')).to.include('MIT License');
    expect(existsSync(join(pkgDir, 'examples', 'publish-and-fetch.ts'))).to.equal(true);
    expect(existsSync(join(pkgDir, 'examples', 'browser', 'index.html'))).to.equal(true);
    for (const f of walk(pkgDir).filter((f) => f.endsWith('.map'))) {
      const map = JSON.parse(readFileSync(join(pkgDir, f), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      map.sources.forEach((s, i) => {
        const shipped = existsSync(resolve(join(pkgDir, f, '..'), s));
        expect(shipped || typeof map.sourcesContent?.[i] === 'string', `${f}: ${s}`).to.equal(true);
      });
    }
  });

  it('npx allium --help and --version work from the installed package', async () => {
    const help = await run('npx', ['allium', '--help'], { cwd: dir });
    expect(help.stdout).to.include('relay').and.include('devnet').and.include('put');
    const version = await run('npx', ['allium', '--version'], { cwd: dir });
    expect(version.stdout.trim()).to.equal(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('a relay with a content store and no better-sqlite3 stops at once with the install command (exit 2)', async () => {
    const r = await run('npx', ['allium', 'relay', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'relay-nostore')], { cwd: dir }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).to.equal(2);
    expect(r.stderr.trim()).to.equal(
      'allium: storage_quota: the content store needs the better-sqlite3 package, which is not installed: run "npm install better-sqlite3@^12" where allium is installed, or set storage_quota = 0 (no content store)',
    );
    expect(existsSync(join(dir, 'relay-nostore', 'identity.key')), 'no key made').to.equal(false);
  });

  async function relayStartsAndStops(name: string, config: string): Promise<string> {
    const ready = join(dir, `${name}.json`);
    const cfg = join(dir, `${name}.toml`);
    writeFileSync(cfg, `listen = "127.0.0.1:0"\ndata_dir = "${join(dir, name)}"\n${config}`);
    const child = spawn('npx', ['allium', 'relay', '--config', cfg, '--ready-file', ready], { cwd: dir, stdio: 'pipe' });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!existsSync(ready)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`relay did not start: ${out}`);
      await sleep(100);
    }
    expect(out).to.include('bootstrap line: ws://127.0.0.1:');
    const pid = (JSON.parse(readFileSync(ready, 'utf8')) as { pid: number }).pid;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    process.kill(pid, 'SIGTERM');
    expect(await exited).to.equal(0);
    return out;
  }

  it('npx allium relay without a content store starts and stops cleanly on SIGTERM', async () => {
    await relayStartsAndStops('relay-zero', 'storage_quota = 0\n');
    expect(existsSync(join(dir, 'relay-zero', 'store.sqlite'))).to.equal(false);
  });

  it('with better-sqlite3 installed beside it, the relay opens its store', async () => {
    // Copied from this checkout rather than installed, which would compile it again.
    for (const name of ['better-sqlite3', 'bindings', 'file-uri-to-path'])
      cpSync(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name), { recursive: true });
    await relayStartsAndStops('relay-store', '');
    expect(existsSync(join(dir, 'relay-store', 'store.sqlite'))).to.equal(true);
  });

  it('the typed entry points import (allium, allium/client, allium/relay)', async () => {
    const script =
      "const root = await import('allium'); const c = await import('allium/client'); const r = await import('allium/relay'); console.log(root.AlliumClient === c.AlliumClient, typeof c.ContentClient, typeof r.Relay);";
    const { stdout } = await run('node', ['--input-type=module', '-e', script], { cwd: dir });
    expect(stdout.trim()).to.equal('true function function');
    expect(existsSync(join(pkgDir, 'dist', 'client', 'index.d.ts'))).to.equal(true);
  });

  it("npm install -g puts allium where the systemd unit's ExecStart and Documentation look", async () => {
    const prefix = join(dir, 'global');
    await run('npm', ['install', '-g', '--prefix', prefix, tarball, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, maxBuffer: 1 << 24 });
    const unit = readFileSync(join(ROOT, 'contrib', 'allium-relay.service'), 'utf8');
    const exec = /^ExecStart=\/usr\/bin\/env (\S+) relay /m.exec(unit)![1]!;
    // systemd's PATH has /usr/local/bin (and /usr/bin): with --prefix /usr/local, the command would be there.
    const version = await run('/usr/bin/env', [exec, '--version'], { env: { ...process.env, PATH: `${join(prefix, 'bin')}:/usr/bin:/bin` } });
    expect(version.stdout.trim()).to.equal(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
    const docs = /^Documentation=(.*)$/m
      .exec(unit)![1]!
      .split(' ')
      .map((d) => d.replace(/^file:/, ''));
    expect(docs).to.include('/usr/local/lib/node_modules/allium/docs/operator-guide.md');
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'allium', 'docs', 'operator-guide.md'))).to.equal(true);
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'allium', 'contrib', 'allium-relay.service'))).to.equal(true);
  });

  it('the devnet names the command as it is run: npx allium from a package, node bin/allium.js in a checkout', () => {
    expect(alliumCommand(pkgDir, dir)).to.equal('npx allium');
    expect(alliumCommand(ROOT, ROOT)).to.equal('node bin/allium.js');
    expect(alliumCommand(ROOT, tempDir())).to.equal(`node ${join(ROOT, 'bin', 'allium.js')}`);
  });
});
