/**
 * The README's main job, as a newcomer runs it: `allium devnet` starts a live network, prints a curl command that
 * works, round-trips a file, serves a network map (checked in headless Chromium), and stops cleanly on Ctrl-C.
 */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromiumPath, dumpDom, screenshot, textById } from '../helpers/chromium.js';
import { sleep } from '../helpers/network.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const OUT = join(ROOT, 'test-output');

describe('allium devnet (the main job)', function () {
  this.timeout(240_000);

  it('starts a network, shows each capability, serves a network map, and stops cleanly on Ctrl-C', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'allium.js'), 'devnet', '--relays', '4', '--exits', '1', '--socks-port', '0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 180_000;
      while (!out.includes('Running. Ctrl-C stops everything.')) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`devnet did not come up:\n${out}`);
        await sleep(200);
      }
      expect(out).to.match(/directory converged: every relay knows all 4 relays/);
      expect(out).to.match(/circuit built in \d+ ms, one round trip: you → \S+ → \S+ → \S+ → web server/);
      expect(out).to.match(/fetched it back by its link through anonymous circuits in \d+ ms: byte-exact/);
      expect(out).to.match(/two identities exchanged messages through a rendezvous point/);
      expect(out).to.include('Hello Alice, from Bob').and.include('Hi Bob!');

      const curlLine = /curl --socks5-hostname (127\.0\.0\.1:\d+) (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)!;
      const { stdout } = await run('curl', ['-sS', '--max-time', '30', '--socks5-hostname', curlLine[1]!, curlLine[2]!]);
      expect(stdout).to.include('reached anonymously through three Allium relays');

      const mapUrl = /network map: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)![1]!;
      if (chromiumPath()) {
        const dom = await dumpDom(mapUrl);
        expect(dom).to.include('data-ready="1"');
        expect(Number(textById(dom, 'relays'))).to.equal(4);
        expect(Number(textById(dom, 'links'))).to.be.at.least(3);
        expect(Number(textById(dom, 'circuits'))).to.be.at.least(1);
        expect((dom.match(/class="circ"/g) ?? []).length).to.equal(Number(textById(dom, 'circuits')));
        mkdirSync(OUT, { recursive: true });
        await screenshot(mapUrl, join(OUT, 'network-map.png'));
        expect(statSync(join(OUT, 'network-map.png')).size).to.be.greaterThan(10_000);
      } else throw new Error('chromium is not installed (.ci/run installs it)');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).to.equal(0);
    expect(out).to.include('Stopped cleanly.');
  });
});
