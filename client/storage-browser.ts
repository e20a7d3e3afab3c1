/**
 * Storage for a client in a browser tab: the cached directory and the guard list in `localStorage` under a key
 * prefix, or in memory where there is no `localStorage` (workers, storage blocked by the user, private modes that
 * refuse writes). Either way the client works; with memory it picks new guards on every page load, which over time
 * gives a hostile relay more chances to be its entry (docs/developer-guide.md, "Connecting to a network").
 *
 * The directory is stored as base64 of its CBOR encoding. A write that the browser refuses (its quota, typically a
 * few megabytes per origin) keeps the value in memory for this page instead of failing the client.
 */
import { decodeCbor, encodeCbor } from '../protocol/cbor.js';
import type { ClientStorage } from './client.js';
import type { DirectoryCache } from './directory.js';
import type { GuardRecord, GuardStorage } from './guards.js';
import type { VanguardRecord, VanguardStorage } from './vanguards.js';

/** The part of the Web Storage API this module uses (`window.localStorage` has it). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The largest directory cache read back, as for the file storage in Node. */
const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;

/** A store that lives as long as the page. */
export function memoryStore(): KeyValueStore {
  const m = new Map<string, string>();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

/** `globalThis.localStorage` when it exists and accepts a write, else null. */
function usableLocalStorage(): KeyValueStore | null {
  try {
    const ls = (globalThis as { localStorage?: KeyValueStore }).localStorage;
    if (!ls) return null;
    const probe = 'allium:probe';
    ls.setItem(probe, '1');
    ls.removeItem(probe);
    return ls;
  } catch {
    return null; // SecurityError (storage blocked) or QuotaExceededError (a private mode)
  }
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * Client storage over `store` (default: `localStorage` if usable, else memory), with keys `${prefix}:directory` and
 * `${prefix}:guards` and `${prefix}:vanguards`. Use one prefix per client identity on an origin. Unreadable or corrupt values load as empty.
 */
export function browserStorage(options: { prefix?: string; store?: KeyValueStore } = {}): ClientStorage & { readonly persistent: boolean } {
  const prefix = options.prefix ?? 'allium';
  const given = options.store ?? usableLocalStorage();
  const persistent = given !== null;
  const primary = given ?? memoryStore();
  const fallback = memoryStore();

  const read = (key: string): string | null => {
    const k = `${prefix}:${key}`;
    try {
      return fallback.getItem(k) ?? primary.getItem(k);
    } catch {
      return null;
    }
  };
  const write = (key: string, value: string): void => {
    const k = `${prefix}:${key}`;
    try {
      primary.setItem(k, value);
      fallback.removeItem(k);
    } catch {
      fallback.setItem(k, value); // over quota: this page keeps it in memory
    }
  };

  const directory: DirectoryCache = {
    async load() {
      const text = read('directory');
      if (text === null) return null;
      try {
        const v = decodeCbor(fromBase64(text), MAX_DIRECTORY_BYTES);
        return Array.isArray(v) ? v.filter((x): x is Uint8Array => x instanceof Uint8Array) : null;
      } catch {
        return null;
      }
    },
    async save(raws) {
      write('directory', toBase64(encodeCbor(raws)));
    },
  };
  const guards: GuardStorage = {
    async load() {
      const text = read('guards');
      if (text === null) return null;
      try {
        const v: unknown = JSON.parse(text);
        return Array.isArray(v) ? (v as GuardRecord[]) : null;
      } catch {
        return null;
      }
    },
    async save(records) {
      write('guards', JSON.stringify(records));
    },
  };
  const vanguards: VanguardStorage = {
    async load() {
      const text = read('vanguards');
      if (text === null) return null;
      try {
        const v: unknown = JSON.parse(text);
        return Array.isArray(v) ? (v as VanguardRecord[]) : null;
      } catch {
        return null;
      }
    },
    async save(records) {
      write('vanguards', JSON.stringify(records));
    },
  };
  return { directory, guards, vanguards, persistent };
}
