/**
 * Publishing sites with the `allium` command (docs/publishing.md, specs/content.md §10.4) on relay processes:
 * `publish DIR --name`, `update DIR` (unchanged files not sent again), `put DIR`, `status LINK`, a publish stopped by
 * SIGINT and run again (the journal keeps what holders acknowledged), and `allium gateway` serving the site.
 */
import { expect } from 'chai';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { runAllium, spawnAllium } from '../helpers/cli.js';
import { startNetwork, tempDir, waitFor, type TestNetwork } from '../helpers/network.js';

describe('allium CLI: sites (relay processes)', function () {
  this.timeout(300_000);
  let net: TestNetwork;
  let work: string;
  let site: string;
  const common = (): string[] => ['--bootstrap', net.bootstrap, '--test-network', '--data-dir', join(work, 'state')];

  before(async () => {
    net = await startNetwork(5);
    work = tempDir('allium-site-cli-');
    site = join(work, 'site');
    mkdirSync(join(site, 'docs'), { recursive: true });
    writeFileSync(join(site, 'index.html'), '<!DOCTYPE html><title>Garden</title><h1>Garden notes</h1><a href="docs/a.html">a</a>');
    writeFileSync(join(site, 'docs', 'a.html'), '<p>About</p>');
    writeFileSync(join(site, 'big.bin'), randomBytes(1_500_000));
    writeFileSync(join(site, '.secret'), 'not published');
  });

  after(async () => {
    await net?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let link = '';

  it('publish DIR --name: a stable allium:ssk link, edition 1, the key file made', async () => {
    const r = await runAllium(['publish', site, '--name', 'garden', '--key', join(work, 'pub.key'), ...common()], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).to.equal(0);
    link = r.stdout.trim();
    expect(link).to.match(/^allium:ssk\/[a-z2-7]{111}\/garden$/);
    expect(r.stderr)
      .to.match(/3 files \(0 unchanged, not sent again\)/)
      .and.match(/edition 1/);
    expect(readFileSync(join(work, 'pub.key'), 'utf8')).to.match(/^[0-9a-f]{64}\n$/);
  });

  it('update DIR: the same link, edition 2, only the changed file sent again', async () => {
    writeFileSync(join(site, 'index.html'), '<!DOCTYPE html><title>Garden</title><h1>Garden notes, edition 2</h1>');
    const r = await runAllium(['update', site, '--note', 'a new front page', ...common()], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal(link);
    expect(r.stderr)
      .to.match(/3 files \(2 unchanged, not sent again\)/)
      .and.match(/edition 2/);
  });

  it('status LINK: every block of the site at its holders', async () => {
    const r = await runAllium(['status', link, ...common()], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).to.equal(0);
    const blocks = Number(/(\d+) blocks/.exec(r.stdout)?.[1]);
    expect(/^3 files/.test(r.stdout), r.stdout).to.equal(true);
    expect(blocks).to.be.greaterThan(50);
    expect(r.stdout).to.include(`at every holder: ${blocks} (100.0%)`);
  });

  it('a publish stopped by SIGINT says so, and the same command run again sends only the rest', async () => {
    const other = join(work, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'index.html'), '<p>other</p>');
    writeFileSync(join(other, 'large.bin'), randomBytes(6_000_000));
    const args = ['put', other, ...common()];
    const p = spawnAllium(args);
    const journalDir = join(work, 'state', 'sites');
    await waitFor(() => journalText(journalDir).split('\n').length > 40, 180_000, 'forty acknowledged blocks in the journal');
    const code = await p.kill('SIGINT');
    expect(code, p.stderr()).to.equal(130);
    expect(p.stderr()).to.match(/stopped; (\d+) acknowledged blocks are in the journal/);
    const journalled = Number(/stopped; (\d+) acknowledged/.exec(p.stderr())![1]);
    const again = await runAllium(args, { timeoutMs: 180_000 });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.include(`resuming: ${journalled} blocks were acknowledged by an earlier run`);
    const skipped = Number(/(\d+) already acknowledged/.exec(again.stderr)![1]);
    expect(skipped).to.equal(journalled);
    expect(again.stdout.trim()).to.match(/^allium:chk\/[a-z2-7]{111}\/$/);
  });

  it('gateway: serves the site at the printed URL', async () => {
    const g = spawnAllium(['gateway', '--listen', '127.0.0.1:0', ...common()]);
    try {
      await waitFor(() => /Allium gateway ready: (http:\/\/\S+)/.test(g.stdout()), 60_000, 'the gateway');
      const url = /Allium gateway ready: (http:\/\/\S+)/.exec(g.stdout())![1]!;
      const res = await fetch(`${url}${link}/`);
      expect(res.status).to.equal(200);
      expect(await res.text()).to.include('Garden notes, edition 2');
      expect(res.headers.get('content-security-policy')).to.match(/^default-src 'none'/);
    } finally {
      await g.kill('SIGTERM');
    }
  });
});

/** The text of the one journal in a folder (a site's id is a hash of its path); '' before there is one. */
function journalText(dir: string): string {
  try {
    const f = readdirSync(dir).find((n) => n.endsWith('.journal'));
    return f ? readFileSync(join(dir, f), 'utf8') : '';
  } catch {
    return '';
  }
}
