/**
 * The README's main job, as a newcomer runs it: `allium devnet` starts a live network, prints a curl command that
 * works, round-trips a file, serves a network map (checked in headless Chromium), and stops cleanly on Ctrl-C.
 * The curl and Chromium checks are tests of their own, so a machine without those programs skips them by name.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { dumpDom, screenshot, textById } from '../helpers/chromium.js';
import { sleep } from '../helpers/network.js';
import { needProgram } from '../helpers/programs.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const OUT = join(ROOT, 'test-output');

describe('allium devnet (the main job)', function () {
  this.timeout(240_000);
  let child: ChildProcess;
  let out = '';
  let exited: Promise<number | null>;

  before(async function () {
    this.timeout(200_000);
    child = spawn(process.execPath, [join(ROOT, 'bin', 'allium.js'), 'devnet', '--relays', '4', '--exits', '1', '--socks-port', '0', '--gateway-port', '0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const deadline = Date.now() + 180_000;
    while (!out.includes('Running. Ctrl-C stops everything.')) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGINT');
        throw new Error(`devnet did not come up:\n${out}`);
      }
      await sleep(200);
    }
  });

  after(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('starts a network and shows each capability', () => {
    expect(out).to.match(/directory converged: every relay knows all 4 relays/);
    expect(out).to.match(/circuit built in \d+ ms, one round trip: you → \S+ → \S+ → \S+ → web server/);
    expect(out).to.match(/fetched it back by its link through anonymous circuits in \d+ ms: byte-exact/);
    expect(out).to.match(/two identities exchanged messages through a rendezvous point/);
    expect(out).to.include('Hello Alice, from Bob').and.include('Hi Bob!');
  });

  it('prints a curl command that works', async function () {
    needProgram(this, 'curl');
    const curlLine = /curl --socks5-hostname (127\.0\.0\.1:\d+) (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)!;
    const { stdout } = await run('curl', ['-sS', '--max-time', '30', '--socks5-hostname', curlLine[1]!, curlLine[2]!]);
    expect(stdout).to.include('reached anonymously through three Allium relays');
  });

  it('serves a network map (headless Chromium)', async function () {
    needProgram(this, 'chromium');
    const mapUrl = /network map: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)![1]!;
    const dom = await dumpDom(mapUrl);
    expect(dom).to.include('data-ready="1"');
    expect(Number(textById(dom, 'relays'))).to.equal(4);
    expect(Number(textById(dom, 'links'))).to.be.at.least(3);
    expect(Number(textById(dom, 'circuits'))).to.be.at.least(1);
    expect((dom.match(/class="circ"/g) ?? []).length).to.equal(Number(textById(dom, 'circuits')));
    mkdirSync(OUT, { recursive: true });
    await screenshot(mapUrl, join(OUT, 'network-map.png'));
    expect(statSync(join(OUT, 'network-map.png')).size).to.be.greaterThan(10_000);
  });

  it('publishes a site and prints the gateway URL that shows it (headless Chromium)', async function () {
    needProgram(this, 'chromium');
    const siteUrl = /\n {4}(http:\/\/127\.0\.0\.1:\d+\/allium:ssk\/[a-z2-7]+\/demo\/)\n/.exec(out)?.[1];
    expect(siteUrl, out).to.be.a('string');
    const dom = await dumpDom(siteUrl!);
    expect(dom).to.include('A site published into Allium');
    expect(dom).to.include('/external?url=https%3A%2F%2Fexample.com%2F');
    mkdirSync(OUT, { recursive: true });
    await screenshot(siteUrl!, join(OUT, 'devnet-site.png'));
    expect(statSync(join(OUT, 'devnet-site.png')).size).to.be.greaterThan(10_000);
  });

  it('stops cleanly on Ctrl-C', async () => {
    child.kill('SIGINT');
    expect(await exited).to.equal(0);
    expect(out).to.include('Stopped cleanly.');
  });
});
