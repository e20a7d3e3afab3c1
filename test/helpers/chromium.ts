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
    const { stdout } = await run(chromiumPath()!, [...flags(profile), `--virtual-time-budget=${budgetMs}`, '--dump-dom', url], { maxBuffer: 1 << 24, timeout: 60_000 });
    return stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

export async function screenshot(url: string, file: string, budgetMs = 4000): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), 'allium-chromium-'));
  try {
    await run(chromiumPath()!, [...flags(profile), `--virtual-time-budget=${budgetMs}`, '--window-size=1280,1000', '--hide-scrollbars', `--screenshot=${file}`, url], { timeout: 60_000 });
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The text of the element with this id in a dumped DOM. */
export function textById(dom: string, id: string): string | null {
  const m = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(dom);
  return m ? m[1]!.trim() : null;
}
