/**
 * The browser bundle (dist/browser/allium.js, built by scripts/build-browser.ts): nothing Node-only went in, it has
 * no imports left, and it loads in headless Chromium, where libsodium runs as WebAssembly, addresses round-trip,
 * typos are refused with their codes, guards persist in localStorage and an unreachable relay fails cleanly.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative, resolve } from 'node:path';
import type { Page } from 'puppeteer-core';
import { BROWSER_ENTRY } from '../../scripts/build-browser.js';
import { browserBundle, launchChromium, serveStatic, type ChromiumSession, type StaticServer } from '../helpers/browser.js';
import { needProgram } from '../helpers/programs.js';

/** A 127.0.0.1 port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const PAGE = (deadPort: number): string => `<!doctype html><meta charset="utf-8"><title>bundle</title>
<script type="module">
  const out = {};
  try {
    const a = await import('/dist/browser/allium.js');
    out.exports = Object.keys(a).sort();
    const c = await a.initCrypto();
    out.binding = c.bindingName;
    const id = a.createIdentity();
    out.address = a.formatAddress(id.publicKey);
    out.roundTrip = Array.from(a.parseAddress(out.address)).join(',') === Array.from(id.publicKey).join(',');
    const i = 3;
    const typo = out.address.slice(0, i) + (out.address[i] === 'a' ? 'b' : 'a') + out.address.slice(i + 1);
    try { a.parseAddress(typo); out.typo = 'accepted'; } catch (e) { out.typo = e instanceof a.AlliumError ? e.code : String(e); }
    const storage = a.browserStorage({ prefix: 'bundle-test' });
    out.persistent = storage.persistent;
    const record = { fingerprint: 'ab'.repeat(32), addedAt: 1, expiresAt: 2, failedAt: null };
    await storage.guards.save([record]);
    out.guards = await a.browserStorage({ prefix: 'bundle-test' }).guards.load();
    await storage.directory.save([new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(7)]);
    out.directory = (await storage.directory.load()).map((r) => Array.from(r));
    out.stored = localStorage.getItem('bundle-test:guards') !== null;
    try { await a.browserSocketFactory('ws://127.0.0.1:${deadPort}/allium'); out.dead = 'connected'; } catch (e) { out.dead = e instanceof a.AlliumError ? e.code : String(e); }
  } catch (e) {
    out.error = String(e && e.stack || e);
  }
  window.__result = out;
</script>`;

describe('browser bundle (dist/browser/allium.js)', function () {
  this.timeout(300_000);
  let text: string;
  let bundleFile: string;
  let inputs: string[];
  let imports: unknown[];
  let server: StaticServer;
  let chromium: ChromiumSession;
  let page: Page;

  before(async () => {
    const built = await browserBundle();
    bundleFile = built.file;
    text = readFileSync(built.file, 'utf8');
    const out = Object.entries(built.metafile.outputs).find(([k]) => k.endsWith('allium.js'))![1];
    inputs = Object.keys(out.inputs);
    imports = out.imports;
  });

  after(async () => {
    await chromium?.close();
    await server?.close();
  });

  it('contains no Node-only module: no sodium-native, node:net, better-sqlite3, ws, file storage or SOCKS', () => {
    for (const name of ['sodium-native', 'better-sqlite3', 'ws', 'bufferutil', 'socks-proxy-agent']) {
      expect(
        inputs.filter((i) => i.includes(`node_modules/${name}/`)),
        name,
      ).to.deep.equal([]);
    }
    expect(inputs.filter((i) => /^node:|^(crypto|fs|path|net|module)$/.test(i))).to.deep.equal([]);
    for (const own of ['crypto/binding-native.ts', 'client/socks.ts', 'client/storage-node.ts', 'net/ws-node.ts', 'relay/']) {
      expect(
        inputs.filter((i) => i.includes(own)),
        own,
      ).to.deep.equal([]);
    }
    expect(inputs.some((i) => i.includes('node_modules/libsodium-wrappers-sumo/'))).to.equal(true);
    expect(imports, 'imports left in the bundle').to.deep.equal([]);
    expect(text).not.to.include('node:net');
    expect(text).not.to.include('better-sqlite3');
    expect(text).not.to.match(/node:[a-z_]+/);
    // The binding's name is a string the facade reports ('sodium-native' | 'libsodium-wrappers'); the module itself
    // is never required or imported.
    expect(text).not.to.match(/(require|import)\s*\(\s*["'`]sodium-native|from\s*["'`]sodium-native/);
  });

  it("is what package.json's allium/browser entry names, with the types tsc emits for client/browser.ts", () => {
    const root = resolve(import.meta.dirname, '..', '..');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
      files: string[];
    };
    const entry = pkg.exports['./browser']!;
    expect(entry.default).to.equal(`./${relative(root, bundleFile)}`);
    expect(entry.types).to.equal(`./dist/${relative(root, BROWSER_ENTRY).replace(/\.ts$/, '.d.ts')}`);
    expect(pkg.files).to.include('dist/browser');
  });

  it('loads in headless Chromium: WebAssembly libsodium, addresses, localStorage, a clean connection failure', async function () {
    needProgram(this, 'chromium');
    server = await serveStatic(['dist/browser'], { '/bundle-test.html': PAGE(await closedPort()) });
    chromium = await launchChromium();
    page = await chromium.newPage();
    await page.goto(`${server.origin}/bundle-test.html`);
    await page.waitForFunction('window.__result !== undefined', { timeout: 120_000 });
    const r = (await page.evaluate('window.__result')) as Record<string, unknown>;
    expect(r['error'], chromium.log()).to.equal(undefined);
    for (const name of [
      'initCrypto',
      'AlliumClient',
      'Messenger',
      'ContentClient',
      'createIdentity',
      'parseAddress',
      'formatAddress',
      'fromBrowserWebSocket',
      'browserSocketFactory',
      'browserStorage',
      'browserGroupStorage',
      'memoryGroupStorage',
      'Group',
      'MAX_GROUP_MESSAGE_BYTES',
      'AlliumError',
    ]) {
      expect(r['exports']).to.include(name);
    }
    expect(r['binding']).to.equal('libsodium-wrappers');
    expect(r['address']).to.match(/^[a-z2-7]{56}\.allium$/);
    expect(r['roundTrip']).to.equal(true);
    expect(r['typo']).to.equal('ERR_ADDRESS_CHECKSUM');
    expect(r['persistent']).to.equal(true);
    expect(r['stored']).to.equal(true);
    expect(r['guards']).to.deep.equal([{ fingerprint: 'ab'.repeat(32), addedAt: 1, expiresAt: 2, failedAt: null }]);
    expect(r['directory']).to.deep.equal([[1, 2, 3], Array(300).fill(7)]);
    expect(r['dead']).to.equal('ERR_UNREACHABLE');
  });
});
