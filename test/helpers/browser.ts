/**
 * Real-browser tests: the browser bundle built from the current sources, a static HTTP server on 127.0.0.1 for the
 * example page and the bundle, and headless Chromium (Debian's package, installed by .ci/run) driven through
 * puppeteer-core. Chromium runs with a fresh profile and its background networking off; pages load only from
 * 127.0.0.1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { buildBrowserBundle, type BrowserBuild } from '../../scripts/build-browser.js';
import { chromiumPath } from './chromium.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

let built: Promise<BrowserBuild> | null = null;

/** Builds dist/browser/allium.js from the current sources, once per test process. */
export function browserBundle(): Promise<BrowserBuild> {
  built ??= buildBrowserBundle();
  return built;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
};

export interface StaticServer {
  /** e.g. http://127.0.0.1:PORT */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Serves files of the checkout under the given folders (relative to the repository root, e.g. 'examples/browser'),
 * plus `extra` pages by path; everything else is 404.
 */
export async function serveStatic(folders: string[], extra: Record<string, string> = {}): Promise<StaticServer> {
  const allowed = folders.map((f) => join(ROOT, f) + sep);
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const page = extra[path];
      if (page !== undefined) return void res.writeHead(200, { 'Content-Type': TYPES['.html']! }).end(page);
      const file = normalize(join(ROOT, path.endsWith('/') ? `${path}index.html` : path));
      if (req.method !== 'GET' || !allowed.some((a) => file.startsWith(a))) return void res.writeHead(404).end();
      try {
        const body = await readFile(file);
        res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' }).end(body);
      } catch {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface ChromiumSession {
  readonly browser: Browser;
  /** A new tab whose console lines and uncaught errors go to `log()`, and which may request only 127.0.0.1. */
  newPage(): Promise<Page>;
  /** Everything the pages printed, for a failing test's message. */
  log(): string;
  close(): Promise<void>;
}

/** Starts headless Chromium with a throwaway profile. */
export async function launchChromium(): Promise<ChromiumSession> {
  const profile = mkdtempSync(join(tmpdir(), 'allium-chromium-'));
  const lines: string[] = [];
  const browser = await puppeteer.launch({
    executablePath: chromiumPath() ?? '/usr/bin/chromium',
    headless: true,
    pipe: true,
    userDataDir: profile,
    timeout: 120_000,
    protocolTimeout: 600_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-extensions',
      '--disable-domain-reliability',
      '--no-pings',
    ],
  });
  return {
    browser,
    async newPage() {
      const page = await browser.newPage();
      page.setDefaultTimeout(300_000);
      page.on('console', (m) => lines.push(`[console.${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => lines.push(`[pageerror] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
      page.on('requestfailed', (r) => lines.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`));
      await page.setRequestInterception(true);
      page.on('request', (r) => {
        const url = new URL(r.url());
        if (url.protocol === 'data:' || url.hostname === '127.0.0.1') void r.continue();
        else {
          lines.push(`[blocked] ${r.url()}`);
          void r.abort('accessdenied');
        }
      });
      return page;
    },
    log: () => lines.join('\n'),
    async close() {
      try {
        await browser.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
