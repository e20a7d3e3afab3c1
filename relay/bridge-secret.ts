/**
 * A bridge's secret (specs/link.md §2.5): 32 random bytes kept in data_dir/bridge.secret (64 hex digits), which its
 * clients must know to complete a handshake, handed out in the bridge line with the address and fingerprint.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crypto } from '../crypto/index.js';
import { fromHex, toHex } from '../protocol/bytes.js';
import { ConfigError } from '../protocol/errors.js';
import { writeFileAtomic } from './keystore.js';

/** Loads the bridge secret (data_dir/bridge.secret, 64 hex digits), creating it on first start. */
export function loadOrCreateBridgeSecret(dir: string): Uint8Array {
  const path = join(dir, 'bridge.secret');
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new ConfigError(`${path} is damaged: delete it for a new secret (and hand out the new bridge line)`);
    return fromHex(text);
  }
  const secret = crypto().random(32);
  writeFileAtomic(path, toHex(secret) + '\n');
  return secret;
}

/** "bridge URL FINGERPRINT secret=HEX" (specs/link.md §2.5). */
export function formatBridgeLine(url: string, fingerprint: string, secret: Uint8Array): string {
  return `bridge ${url} ${fingerprint} secret=${toHex(secret)}`;
}
