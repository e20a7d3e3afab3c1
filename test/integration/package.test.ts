/**
 * Packaging: `npm pack` gives a package that installs in an empty folder, whose `allium` command runs (help and a
 * relay that starts and stops cleanly), and whose typed entry points import.
 */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { sleep, tempDir } from '../helpers/network.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');

describe('packaging (npm pack, install in an empty folder)', function () {
  this.timeout(600_000);
  let dir: string;
  let tarball: string;

  before(async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'allium.js'))) await run('npm', ['run', '-s', 'build'], { cwd: ROOT });
    const packDir = tempDir('allium-pack-');
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: ROOT });
    tarball = join(packDir, stdout.trim().split('\n').pop()!);
    dir = tempDir('allium-install-');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'empty', version: '1.0.0', private: true, type: 'module' }));
    await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, maxBuffer: 1 << 24 });
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('npx allium --help and --version work from the installed package', async () => {
    const help = await run('npx', ['allium', '--help'], { cwd: dir });
    expect(help.stdout).to.include('relay').and.include('devnet').and.include('put');
    const version = await run('npx', ['allium', '--version'], { cwd: dir });
    expect(version.stdout.trim()).to.equal(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('npx allium relay starts a relay that stops cleanly on SIGTERM', async () => {
    const ready = join(dir, 'ready.json');
    const child = spawn('npx', ['allium', 'relay', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'relay'), '--ready-file', ready], { cwd: dir, stdio: 'pipe' });
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
  });

  it('the typed entry points import (allium/client, allium/relay)', async () => {
    const script = "const c = await import('allium/client'); const r = await import('allium/relay'); console.log(typeof c.AlliumClient, typeof c.ContentClient, typeof r.Relay);";
    const { stdout } = await run('node', ['--input-type=module', '-e', script], { cwd: dir });
    expect(stdout.trim()).to.equal('function function function');
    expect(existsSync(join(dir, 'node_modules', 'allium', 'dist', 'client', 'index.d.ts'))).to.equal(true);
  });
});
