/**
 * The relay status page in real headless Chromium: it loads with no external assets, its figures match the relay's
 * own status and metrics, and a screenshot is saved (test-output/status-page.png).
 */
import { expect } from 'chai';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseBootstrap } from '../../client/bootstrap.js';
import { fetchFromRelay } from '../../client/directory.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { needProgram } from '../helpers/programs.js';
import { dumpDom, screenshot, textById } from '../helpers/chromium.js';
import { startRelay, waitFor, type RelayProcess } from '../helpers/network.js';

const OUT = resolve(import.meta.dirname, '..', '..', 'test-output');

describe('relay status page (headless Chromium)', function () {
  this.timeout(120_000);
  let a: RelayProcess;
  let b: RelayProcess;

  before(async function () {
    needProgram(this, 'chromium');
    a = await startRelay({ nickname: 'statusA', extra: { admin: '127.0.0.1:0' } });
    b = await startRelay({ nickname: 'statusB', bootstrap: [a.bootstrap] });
    await waitFor(async () => (await a.metric('allium_directory_relays')) === 2, 15_000, 'two relays');
  });
  after(async () => {
    await a?.kill('SIGKILL');
    await b?.kill('SIGKILL');
  });

  it('refuses requests without the page being on loopback (no token needed there) and serves status.json', async () => {
    const s = (await (await fetch(new URL('status.json', a.admin!))).json()) as { nickname: string; directory: unknown[] };
    expect(s.nickname).to.equal('statusA');
    expect(s.directory).to.have.length(2);
  });

  it('shows figures that match the relay and saves a screenshot', async () => {
    // Some client traffic so the numbers are not all zero.
    const line = parseBootstrap(a.bootstrap);
    const link = await openLink(nodeSocketFactory, line.url, { role: 'initiator', responder: line.identity });
    await fetchFromRelay(link, 0);
    const dom = await dumpDom(a.admin!);
    expect(dom).to.include('data-ready="1"');
    const status = (await (await fetch(new URL('status.json', a.admin!))).json()) as {
      fingerprint: string;
      links: { relay: number; client: number };
      directory: unknown[];
      version: string;
      circuits: number;
    };
    expect(textById(dom, 'fp')).to.equal(status.fingerprint);
    expect(textById(dom, 'version')).to.equal(status.version);
    expect(Number(textById(dom, 'dir-size')))
      .to.equal(status.directory.length)
      .and.to.equal(await a.metric('allium_directory_relays'));
    expect(Number(textById(dom, 'links-relay'))).to.equal(await a.metric('allium_links', { kind: 'relay' }));
    expect(Number(textById(dom, 'links-client'))).to.equal(await a.metric('allium_links', { kind: 'client' }));
    expect(Number(textById(dom, 'circuits'))).to.equal(await a.metric('allium_circuits'));
    expect(dom).to.not.match(/<(script|link|img)[^>]+(src|href)="https?:/); // no external assets
    mkdirSync(OUT, { recursive: true });
    const png = join(OUT, 'status-page.png');
    await screenshot(a.admin!, png);
    expect(statSync(png).size).to.be.greaterThan(10_000);
    link.close();
  });
});
