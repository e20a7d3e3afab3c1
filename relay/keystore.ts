/**
 * Persistent relay keys in the data directory (specs/directory.md §2.1): `identity.key` (the 32-byte Ed25519 seed,
 * hex) and `onion-keys.json` (current and overlapping X25519 onion keys with their creation times). Files are mode
 * 0600 in a 0700 directory, written atomically (temporary file, fsync, rename), so a crash never leaves half a key.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { crypto } from '../crypto/index.js';
import { IdentityKey, OnionKeyRing, type OnionKeyRingOptions } from '../crypto/keys.js';
import { fromHex, toHex } from '../protocol/bytes.js';
import { ConfigError, SystemError } from '../protocol/errors.js';
import { errnoText } from '../net/listen.js';

export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dfd = openSync(join(path, '..'), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* directory fsync is best effort */
  }
}

/** Creates the data directory (mode 0700). A refusal is a SystemError (ConfigError for a file in the way) naming data_dir. */
export function ensureDataDir(dir: string, setting = 'data_dir'): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new ConfigError(`${setting} ${dir}: a file is in the way (not a directory)`);
    throw new SystemError(setting, code, `${setting} ${dir}: ${errnoText(code)}`);
  }
}

export function loadOrCreateIdentity(dir: string): { identity: IdentityKey; created: boolean } {
  const path = join(dir, 'identity.key');
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new ConfigError(`${path} is damaged: restore it from your backup`);
    return { identity: IdentityKey.fromSeed(fromHex(text)), created: false };
  }
  const identity = IdentityKey.generate();
  writeFileAtomic(path, toHex(identity.seed) + '\n');
  return { identity, created: true };
}

interface StoredOnionKey {
  secret: string;
  created: number;
  /** When a newer key replaced it, and whether early (crypto/keys.ts). */
  replaced?: number;
  early?: boolean;
}

export function loadOrCreateOnionKeys(dir: string, now: number, options: OnionKeyRingOptions): OnionKeyRing {
  const path = join(dir, 'onion-keys.json');
  if (existsSync(path)) {
    let stored: StoredOnionKey[];
    try {
      stored = JSON.parse(readFileSync(path, 'utf8')) as StoredOnionKey[];
      if (!Array.isArray(stored) || stored.length === 0) throw new Error('empty');
    } catch {
      throw new ConfigError(`${path} is damaged: delete it and the relay will make new onion keys`);
    }
    return new OnionKeyRing(
      stored.map((s) => ({
        keyPair: crypto().x25519Keypair(fromHex(s.secret)),
        created: s.created,
        ...(typeof s.replaced === 'number' ? { replaced: s.replaced } : {}),
        ...(s.early === true ? { early: true } : {}),
      })),
      options,
    );
  }
  const ring = OnionKeyRing.create(now, options);
  saveOnionKeys(dir, ring);
  return ring;
}

export function saveOnionKeys(dir: string, ring: OnionKeyRing): void {
  const stored: StoredOnionKey[] = ring.all.map((e) => ({
    secret: toHex(e.keyPair.secretKey),
    created: e.created,
    ...(e.replaced !== undefined ? { replaced: e.replaced } : {}),
    ...(e.early ? { early: true } : {}),
  }));
  writeFileAtomic(join(dir, 'onion-keys.json'), JSON.stringify(stored));
}
