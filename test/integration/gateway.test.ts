/**
 * Sites through the gateway in a real browser (specs/content.md §10–§14), on relay processes: a folder site (pages,
 * CSS, images, a video, a subfolder) published under an updatable key and browsed in headless Chromium — rendered
 * (screenshot checked), links followed, the video sought with range requests; a second edition found by a bookmark;
 * the hostile-page corpus against a canary HTTP server on 127.0.0.1 (which hears nothing through the gateway, and
 * hears most pages when they are served unfiltered); the Host and Origin rules; the error pages; and a publish
 * interrupted and resumed without sending an acknowledged block twice.
 */
import { expect } from 'chai';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { AlliumClient } from '../../client/client.js';
import { ContentClient } from '../../client/content.js';
import { memoryBookmarkStorage } from '../../client/gateway/bookmarks.js';
import { startGateway, type Gateway } from '../../client/gateway/server.js';
import { memoryJournal } from '../../client/insert-journal.js';
import { folderSources } from '../../client/site-folder.js';
import { publishSite } from '../../client/site.js';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { toHex } from '../../protocol/bytes.js';
import { formatLink } from '../../protocol/content-link.js';
import { isAlliumError } from '../../protocol/errors.js';
import { launchBrowser } from '../helpers/chromium.js';
import { patternBytes, startClient } from '../helpers/content.js';
import { hostilePages } from '../helpers/hostile-pages.js';
import { startNetwork, tempDir, waitFor, type TestNetwork } from '../helpers/network.js';
import { readPng } from '../helpers/png.js';
import { needProgram } from '../helpers/programs.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const BACKGROUND: [number, number, number] = [233, 247, 223];

function writeTree(dir: string, files: Record<string, string | Buffer>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
}

function gardenSite(dir: string, edition: number): void {
  writeTree(dir, {
    'index.html': `<!DOCTYPE html><html lang="en"><head><title>Garden notes</title><link rel="stylesheet" href="style.css"></head><body>
<h1 id="title">Garden notes</h1><p id="news">${edition === 1 ? 'Leeks are up.' : 'Garlic is planted.'}</p>
<p><img id="logo" src="img/garlic.png" width="160" height="90" alt="garlic"> <img id="leaf" src="img/leaf.svg" width="40" height="40" alt="leaf"></p>
<p><a id="about" href="docs/about.html">About this garden</a></p>
<video id="clip" src="video/leeks.webm" width="320" height="180" controls muted preload="metadata"></video></body></html>`,
    'style.css': `body{background:rgb(${BACKGROUND.join(',')});color:#1d2a1f;font-family:sans-serif;margin:0;padding:20px}h1{color:rgb(47,107,32)}`,
    'docs/about.html': `<!DOCTYPE html><html><head><title>About</title><link rel="stylesheet" href="../style.css"></head><body><h1 id="title">About</h1><p><a id="home" href="../index.html">Back home</a></p></body></html>`,
    'img/leaf.svg': `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4" fill="rgb(60,140,40)"/></svg>`,
    ...(edition > 1 ? { 'news.html': '<!DOCTYPE html><p>News: garlic.</p>' } : {}),
  });
  mkdirSync(join(dir, 'img'), { recursive: true });
  mkdirSync(join(dir, 'video'), { recursive: true });
  copyFileSync(join(FIXTURES, 'garlic.png'), join(dir, 'img', 'garlic.png'));
  copyFileSync(join(FIXTURES, 'leeks.webm'), join(dir, 'video', 'leeks.webm'));
}

/** A canary: an HTTP server that records every connection and request it gets. */
async function startCanary(): Promise<{ origin: string; hits: string[]; connections: () => number; close: () => Promise<void> }> {
  const hits: string[] = [];
  let connections = 0;
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'Content-Type': 'image/png', 'Access-Control-Allow-Origin': '*' }).end();
  });
  server.on('connection', () => connections++);
  server.on('upgrade', (req, socket) => {
    hits.push(`UPGRADE ${req.url}`);
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    origin: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    hits,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A raw GET to the gateway with the headers given (Host included). */
function rawGet(
  port: number,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, setHost: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('latin1')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Tabs that load the hostile-page corpus at once. */
const CORPUS_TABS = 4;

async function visit(page: Page, url: string): Promise<void> {
  await page.goto(url, { waitUntil: 'networkidle0', timeout: 120_000 });
}

describe('gateway: sites in Chromium through the gateway (relay processes)', function () {
  this.timeout(600_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let content: ContentClient;
  let gateway: Gateway;
  let chromium: Awaited<ReturnType<typeof launchBrowser>>;
  let dir: string;
  let publisher: IdentityKey;
  let siteLink = '';
  let firstFiles: Map<string, { rk: Uint8Array; dk: Uint8Array }>;

  before(async function () {
    needProgram(this, 'chromium');
    publisher = IdentityKey.generate();
    net = await startNetwork(5, { timing: { repair_interval: 60_000 } });
    client = await startClient(net.bootstrap);
    content = new ContentClient(client);
    gateway = await startGateway({ content, bookmarks: memoryBookmarkStorage() }, { port: 0, pollIntervalMs: 0 });
    chromium = await launchBrowser();
    dir = tempDir('allium-site-');
  });

  after(async () => {
    await chromium?.close();
    await gateway?.stop();
    content?.close();
    await client?.stop();
    await net?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('publishes a folder site and Chromium renders it through the gateway: styles, images, links between pages (screenshot checked)', async () => {
    gardenSite(dir, 1);
    const r = await publishSite(content, folderSources(dir), { publisher, name: 'garden' });
    expect(r.edition).to.equal(1);
    expect(r.manifest.files.map((f) => f.path)).to.deep.equal([
      'docs/about.html',
      'img/garlic.png',
      'img/leaf.svg',
      'index.html',
      'style.css',
      'video/leeks.webm',
    ]);
    siteLink = r.link;
    firstFiles = r.files;
    const page = await chromium.newPage();
    await page.setViewport({ width: 800, height: 600 });
    await visit(page, gateway.url.replace(/\/$/, '') + gateway.pathOf(siteLink));
    expect(page.url()).to.match(/\/allium:ssk\/[a-z2-7]+\/garden\/$/);
    expect(await page.title()).to.equal('Garden notes');
    expect(await page.$eval('#news', (e) => e.textContent)).to.equal('Leeks are up.');
    expect(await page.$eval('body', (e) => getComputedStyle(e).backgroundColor)).to.equal(`rgb(${BACKGROUND.join(', ')})`);
    expect(await page.$eval('#logo', (e) => (e as HTMLImageElement).naturalWidth)).to.equal(160);
    expect(await page.$eval('#leaf', (e) => (e as HTMLImageElement).naturalWidth)).to.be.greaterThan(0);
    const file = join(tmpdir(), `allium-gateway-${process.pid}.png`);
    await page.screenshot({ path: file as `${string}.png` });
    const shot = readPng(readFileSync(file));
    expect(shot.pixel(5, 5), 'the page background (the stylesheet was applied)').to.deep.equal(BACKGROUND);
    const logo = await page.$eval('#logo', (e) => {
      const b = e.getBoundingClientRect();
      return { x: Math.round(b.x + b.width / 2), y: Math.round(b.y + b.height / 2) };
    });
    expect(shot.pixel(logo.x, logo.y), 'the image is drawn').to.not.deep.equal(BACKGROUND);
    rmSync(file, { force: true });
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#about')]);
    expect(page.url()).to.match(/\/garden\/docs\/about\.html$/);
    expect(await page.$eval('#title', (e) => e.textContent)).to.equal('About');
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#home')]);
    expect(await page.$eval('#news', (e) => e.textContent)).to.equal('Leeks are up.');
    await page.close();
  });

  it('seeks the video: Chromium asks for byte ranges and plays from the middle', async () => {
    const page = await chromium.newPage();
    const ranges: { status: number; range: string | undefined }[] = [];
    page.on('response', (r) => {
      if (r.url().endsWith('/video/leeks.webm')) ranges.push({ status: r.status(), range: r.headers()['content-range'] });
    });
    await visit(page, gateway.url.replace(/\/$/, '') + gateway.pathOf(siteLink));
    // Scripts are off in filtered pages (CSP and sandbox), so the page's own event listeners never run: the test
    // reads the video's state from outside until it is there.
    const state = (): Promise<{ duration: number; time: number; ready: number; seeking: boolean }> =>
      page.$eval('#clip', (el) => {
        const v = el as HTMLVideoElement;
        return { duration: v.duration, time: v.currentTime, ready: v.readyState, seeking: v.seeking };
      });
    await waitFor(async () => (await state()).ready >= 1, 120_000, 'the video metadata');
    await page.$eval('#clip', (el) => void ((el as HTMLVideoElement).currentTime = 20));
    await waitFor(
      async () => {
        const s = await state();
        return !s.seeking && s.ready >= 2;
      },
      120_000,
      'the seek to 20 s',
    );
    const seeked = await state();
    expect(seeked.duration).to.be.closeTo(24, 0.5);
    expect(seeked.time).to.be.closeTo(20, 1);
    expect(seeked.ready).to.be.at.least(2);
    expect(ranges.length, JSON.stringify(ranges)).to.be.at.least(1);
    expect(
      ranges.every((r) => r.status === 206 && /^bytes \d+-\d+\/2942981$/.test(r.range ?? '')),
      JSON.stringify(ranges),
    ).to.equal(true);
    expect(
      ranges.some((r) => Number(/^bytes (\d+)/.exec(r.range ?? '')?.[1]) > 1_000_000),
      `a range past the first segment: ${JSON.stringify(ranges)}`,
    ).to.equal(true);
    await page.close();
    // And byte-exact from Node: a range in the third segment.
    const whole = readFileSync(join(FIXTURES, 'leeks.webm'));
    const path = `${gateway.pathOf(siteLink)}/video/leeks.webm`;
    const res = await fetch(gateway.url.replace(/\/$/, '') + path, { headers: { Range: 'bytes=2500000-2500099' } });
    expect(res.status).to.equal(206);
    expect(res.headers.get('content-range')).to.equal('bytes 2500000-2500099/2942981');
    expect(Buffer.from(await res.arrayBuffer()).equals(whole.subarray(2_500_000, 2_500_100))).to.equal(true);
  });

  it('a bookmark finds the second edition, and the home page shows what changed; unchanged files are not sent again', async () => {
    const page = await chromium.newPage();
    await visit(page, gateway.url);
    await page.type('form[action="/bookmarks"] input[name=link]', siteLink);
    await page.type('form[action="/bookmarks"] input[name=title]', 'Garden notes');
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('form[action="/bookmarks"] button')]);
    await gateway.bookmarks.poll();
    expect(gateway.bookmarks.list()[0]!.edition).to.equal(1);

    gardenSite(dir, 2);
    const r = await publishSite(content, folderSources(dir), { publisher, name: 'garden', previous: firstFiles, note: 'Garlic planted; a news page.' });
    expect(r.edition).to.equal(2);
    expect(r.stats.reused, 'five of the seven files are unchanged').to.equal(5);

    await visit(page, gateway.url);
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('form[action="/bookmarks/poll"] button')]);
    const card = await page.$eval('.card.changed', (e) => e.textContent ?? '');
    expect(card).to.include('New edition 2');
    expect(card).to.match(/changed: index\.html/);
    expect(card).to.match(/added: news\.html/);
    expect(card).to.include('Garlic planted; a news page.');
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('.card.changed a')]);
    expect(await page.$eval('#news', (e) => e.textContent)).to.equal('Garlic is planted.');
    await page.close();
  });

  it('the hostile-page corpus: through the gateway the canary hears nothing, for every page; unfiltered, it hears most of them', async () => {
    const canary = await startCanary();
    const hostileDir = tempDir('allium-hostile-');
    let plain: Server | null = null;
    try {
      const pages = hostilePages(canary.origin);
      expect(pages.length).to.be.at.least(30);
      const files: Record<string, string> = { 'ok.png': '' };
      for (const p of pages) Object.assign(files, { [p.file]: p.content }, p.extra ?? {});
      writeTree(hostileDir, files);
      copyFileSync(join(FIXTURES, 'garlic.png'), join(hostileDir, 'ok.png'));
      const r = await publishSite(content, folderSources(hostileDir));
      const sitePath = gateway.url.replace(/\/$/, '') + gateway.pathOf(r.link);
      // Four tabs take the pages in turn: each page is still loaded until the network has been idle for 500 ms
      // (and clicked where it asks to be), only not one after another.
      const queue = [...pages];
      await Promise.all(
        Array.from({ length: CORPUS_TABS }, async () => {
          const page = await chromium.newPage();
          try {
            for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
              await visit(page, sitePath + p.file);
              if (p.click && (await page.$(p.click))) {
                await Promise.all([page.waitForNetworkIdle({ idleTime: 300 }), page.click(p.click)]);
              }
              expect(canary.hits, `after ${p.name}`).to.deep.equal([]);
              expect(canary.connections(), `connections after ${p.name}`).to.equal(0);
            }
          } finally {
            await page.close();
          }
        }),
      );

      // The control: the same pages without the gateway reach the canary, so the check above can fail.
      plain = createServer((req, res) => {
        const file = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).slice(1);
        const body = files[file];
        if (body === undefined) return void res.writeHead(404).end();
        res
          .writeHead(200, {
            'Content-Type': file.endsWith('.svg') ? 'image/svg+xml' : file.endsWith('.css') ? 'text/css' : file.endsWith('.png') ? 'image/png' : 'text/html',
          })
          .end(file.endsWith('.png') ? readFileSync(join(hostileDir, file)) : body);
      });
      await new Promise<void>((res) => plain!.listen(0, '127.0.0.1', () => res()));
      const plainOrigin = `http://127.0.0.1:${(plain.address() as { port: number }).port}/`;
      const controlQueue = [...pages];
      await Promise.all(
        Array.from({ length: CORPUS_TABS }, async () => {
          const control = await chromium.newPage();
          for (let p = controlQueue.shift(); p !== undefined; p = controlQueue.shift()) {
            try {
              // The control only counts which pages reach the canary, and an unfiltered page does so while it loads:
              // a short quiet spell after the load is enough (the filtered run above waits for the network to stay
              // idle).
              await control.goto(plainOrigin + p.file, { waitUntil: 'load', timeout: 120_000 });
              await control.waitForNetworkIdle({ idleTime: 150, timeout: 5_000 }).catch(() => undefined);
              if (p.click && (await control.$(p.click))) await Promise.all([control.waitForNetworkIdle({ idleTime: 300 }), control.click(p.click)]);
            } catch {
              /* a page that navigated away to the canary, for instance */
            }
          }
          await control.close();
        }),
      );
      const reached = new Set(canary.hits.map((h) => /^\S+ \/([a-z-]+)/.exec(h)?.[1]).filter((x): x is string => !!x));
      console.log(`      unfiltered, ${reached.size} of ${pages.length} pages reached the canary`);
      expect(reached.size).to.be.at.least(25);
    } finally {
      plain?.closeAllConnections();
      plain?.close();
      await canary.close();
      rmSync(hostileDir, { recursive: true, force: true });
    }
  });

  it('refuses another Host (DNS rebinding), other origins, changes without an Origin, and embedding by other sites', async () => {
    const host = `127.0.0.1:${gateway.port}`;
    expect((await rawGet(gateway.port, '/', { Host: host })).status).to.equal(200);
    expect((await rawGet(gateway.port, '/', { Host: `localhost:${gateway.port}` })).status).to.equal(200);
    expect((await rawGet(gateway.port, '/', { Host: `rebind.example:${gateway.port}` })).status).to.equal(421);
    expect((await rawGet(gateway.port, '/', {})).status, 'no Host at all (Node itself refuses it)').to.be.oneOf([400, 421]);
    expect((await rawGet(gateway.port, '/', { Host: host, Origin: 'http://rebind.example' })).status).to.equal(403);
    expect((await rawGet(gateway.port, '/bookmarks/poll', { Host: host }, 'POST')).status).to.equal(403);
    expect((await rawGet(gateway.port, '/bookmarks/poll', { Host: host, Origin: 'null' }, 'POST')).status).to.equal(403);
    const sub = gateway.pathOf(siteLink) + '/img/garlic.png';
    expect(
      (await rawGet(gateway.port, sub, { Host: host, 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'image' })).status,
    ).to.equal(403);
    expect(
      (await rawGet(gateway.port, '/', { Host: host, 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document' })).status,
    ).to.equal(200);
    const page = await rawGet(gateway.port, gateway.pathOf(siteLink) + '/', { Host: host });
    expect(page.status).to.equal(200);
    expect(page.headers['content-security-policy'])
      .to.match(/default-src 'none'/)
      .and.match(/sandbox/)
      .and.not.match(/script-src/);
    expect(page.headers['x-content-type-options']).to.equal('nosniff');
  });

  it('answers a link nobody stored with a not-found page, a mistyped link with a mistyped-link page', async () => {
    const page = await chromium.newPage();
    const missing = formatLink({ type: 'chk', rk: crypto().random(32), dk: crypto().random(32), flags: 0 });
    const r1 = await page.goto(gateway.url.replace(/\/$/, '') + gateway.pathOf(missing));
    expect(r1?.status()).to.equal(404);
    expect(await page.$eval('h1', (e) => e.textContent)).to.include('Not found');
    const typo = missing.slice(0, 20) + (missing[20] === 'a' ? 'b' : 'a') + missing.slice(21);
    const r2 = await page.goto(`${gateway.url}${typo}`);
    expect(r2?.status()).to.equal(400);
    expect(await page.$eval('h1', (e) => e.textContent)).to.include('Mistyped link');
    const r3 = await page.goto(`${gateway.url.replace(/\/$/, '')}${gateway.pathOf(siteLink)}/no/such/page.html`);
    expect(r3?.status()).to.equal(404);
    expect(await page.$eval('h1', (e) => e.textContent)).to.include('Not in this site');
    await page.close();
  });

  it("a site's files get random keys by default (the same folder twice: unrelated blocks), convergent ones only on request", async () => {
    const dir = tempDir('allium-site-keys-');
    try {
      writeTree(dir, { 'index.html': '<p>the same page</p>', 'data.bin': Buffer.from(patternBytes(70_000, 9)) });
      const rks = async (o: Parameters<typeof publishSite>[2]): Promise<string[]> =>
        (await publishSite(content, folderSources(dir), o)).manifest.files.map((f) => toHex(f.ref.rk));
      const [a, b, c, d] = [await rks({}), await rks({}), await rks({ convergent: true }), await rks({ convergent: true })];
      expect({ defaultRunsShareKeys: a.some((k, i) => k === b[i]), convergentRunsShareKeys: c.every((k, i) => k === d[i]) }).to.deep.equal({
        defaultRunsShareKeys: false,
        convergentRunsShareKeys: true,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resumes an interrupted publish: blocks the network acknowledged are not sent again', async () => {
    const resumeDir = tempDir('allium-resume-');
    try {
      writeTree(resumeDir, { 'index.html': '<p>big</p>', 'big.bin': Buffer.from(crypto().random(2_500_000)) });
      const journal = memoryJournal();
      const runSecret = crypto().random(32); // kept with the journal (content.md §10.4): a resumed run makes the same blocks
      const stop = new AbortController();
      let acknowledged = 0;
      const first = await publishSite(content, folderSources(resumeDir), {
        journal,
        convergenceSecret: runSecret,
        onProgress: () => {
          if (journal.size >= 30 && !stop.signal.aborted) {
            acknowledged = journal.size;
            stop.abort();
          }
        },
        signal: stop.signal,
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isAlliumError(first) && first.code, 'the first run was stopped').to.equal('ERR_ABORTED');
      const inJournal = journal.size;
      expect(inJournal).to.be.at.least(acknowledged);
      const second = await publishSite(content, folderSources(resumeDir), { journal, convergenceSecret: runSecret });
      expect(second.stats.blocksSkipped, 'every journalled block of the files was skipped').to.equal(inJournal);
      const total = second.stats.blocksStored + second.stats.blocksSkipped;
      expect(total).to.be.greaterThan(inJournal);
      expect(journal.size, 'each block acknowledged once, in one run or the other').to.equal(total);
      const back = await content.get(second.manifestLink);
      expect(back.length).to.be.greaterThan(0);
    } finally {
      rmSync(resumeDir, { recursive: true, force: true });
    }
  });
});
