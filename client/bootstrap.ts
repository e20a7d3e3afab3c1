/** Bootstrap lines: "ws://host:port/path FINGERPRINT" (the same form `allium relay` prints). */
import { parseFingerprint } from '../crypto/keys.js';
import { ConfigError } from '../protocol/errors.js';

export interface BootstrapLine {
  readonly url: string;
  readonly identity: Uint8Array;
}

export function parseBootstrap(line: string): BootstrapLine {
  const parts = line.trim().split(/\s+/);
  if (parts.length !== 2 || !/^wss?:\/\/\S+$/.test(parts[0]!)) {
    throw new ConfigError(`bootstrap line "${line}": expected "ws://host:port/path FINGERPRINT"`);
  }
  try {
    return { url: parts[0]!, identity: parseFingerprint(parts[1]!) };
  } catch {
    throw new ConfigError(`bootstrap line "${line}": the fingerprint must be 64 hex digits`);
  }
}
