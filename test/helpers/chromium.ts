/**
 * Headless Chromium (Debian's package, installed by .ci/run) for page tests: the DOM after scripts ran, and a
 * screenshot. Only loopback pages are loaded; background networking is off so Chromium contacts nothing else.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findProgram } from './programs.js';

const run = promisify(execFile);

export function chromiumPath(): string | null {
  return findProgram('chromium');
}

function flags(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-extensions',
    `--user-data-dir=${profile}`,
  ];
}

/** The page's DOM after `budgetMs` of virtual time (scripts and their fetches ran). */
export async function dumpDom(url: string, budgetMs = 4000): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'allium-chromium-'));
  try {
    const { stdout } = await run(chromiumPath()!, [...flags(profile), `--virtual-time-budget=${budgetMs}`, '--dump-dom', url], {
      maxBuffer: 1 << 24,
      timeout: 60_000,
    });
    return stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

export async function screenshot(url: string, file: string, budgetMs = 4000): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), 'allium-chromium-'));
  try {
    await run(
      chromiumPath()!,
      [...flags(profile), `--virtual-time-budget=${budgetMs}`, '--window-size=1280,1000', '--hide-scrollbars', `--screenshot=${file}`, url],
      { timeout: 60_000 },
    );
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The text of the element with this id in a dumped DOM. */
export function textById(dom: string, id: string): string | null {
  const m = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(dom);
  return m ? m[1]!.trim() : null;
}

/**
 * Headless Chromium driven through puppeteer-core with the flags above and a fresh profile, for tests that need to
 * click, seek media or take screenshots. Requests are not intercepted: a test of what pages try to reach sees it.
 */
export async function launchBrowser(): Promise<{
  browser: import('puppeteer-core').Browser;
  newPage: () => Promise<import('puppeteer-core').Page>;
  close: () => Promise<void>;
}> {
  const { default: puppeteer } = await import('puppeteer-core');
  const profile = mkdtempSync(join(tmpdir(), 'allium-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: chromiumPath() ?? '/usr/bin/chromium',
    headless: true,
    pipe: true,
    userDataDir: profile,
    timeout: 120_000,
    protocolTimeout: 600_000,
    args: [
      ...flags(profile).filter((f) => f !== '--headless' && !f.startsWith('--user-data-dir')),
      '--disable-domain-reliability',
      '--no-pings',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  return {
    browser,
    async newPage() {
      const page = await browser.newPage();
      page.setDefaultTimeout(300_000);
      return page;
    },
    async close() {
      try {
        await browser.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
