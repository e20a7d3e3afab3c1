/**
 * `npm run vectors`: writes the deterministic test vectors to specs/vectors/*.json (scripts/vectors/ builds them).
 * `npm run vectors -- --check` writes nothing and exits 1 if a committed file differs from what would be written.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { initCrypto } from '../crypto/index.js';
import { buildVectorFiles } from './vectors/index.js';

const dir = new URL('../specs/vectors/', import.meta.url);
const checkOnly = process.argv.includes('--check');

await initCrypto();
const files = buildVectorFiles();
let stale = 0;
mkdirSync(dir, { recursive: true });
for (const [name, text] of files) {
  const url = new URL(name, dir);
  let old: string | null = null;
  try {
    old = readFileSync(url, 'utf8');
  } catch {
    old = null;
  }
  const same = old === text;
  if (!same) stale++;
  if (!checkOnly && !same) writeFileSync(url, text);
  console.log(`${same ? 'unchanged' : checkOnly ? 'DIFFERS  ' : 'written  '} specs/vectors/${name} (${text.length} bytes)`);
}
if (checkOnly && stale > 0) process.exit(1);
