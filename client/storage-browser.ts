/**
 * Storage for a client in a browser tab: the cached directory and the guard list in `localStorage` under a key
 * prefix, or in memory where there is no `localStorage` (workers, storage blocked by the user, private modes that
 * refuse writes). Either way the client works; with memory it picks new guards on every page load, which over time
 * gives a hostile relay more chances to be its entry (docs/developer-guide.md, "Connecting to a network").
 *
 * The directory is stored as base64 of its CBOR encoding. A write that the browser refuses (its quota, typically a
 * few megabytes per origin) keeps the value in memory for this page instead of failing the client.
 *
 * Group state (browserGroupStorage, the Messenger's `groupStorage`) is kept the same way, except that a refused write
 * throws instead: a sender key must never come back older than the indexes it has used.
 */
import { decodeCbor, encodeCbor } from '../protocol/cbor.js';
import { ConfigError, SystemError } from '../protocol/errors.js';
import type { ClientStorage } from './client.js';
import type { DirectoryCache } from './directory.js';
import type { GuardRecord, GuardStorage } from './guards.js';
import type { GroupStorage } from './messaging/group-store.js';
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

/** A group record's name (group-store.ts: a group id in hex, or "orphans"), as for the file storage in Node. */
const GROUP_RECORD_NAME = /^[0-9a-z-]{1,80}$/;

/** The browser's refusal of a write (its quota, storage blocked) as a typed error naming the setting. */
function storageRefused(key: string, e: unknown): SystemError {
  const errno = e instanceof Error && e.name !== 'Error' ? e.name : 'EIO';
  return new SystemError('groupStorage', errno, `groupStorage ${key}: the browser refused the write (${errno})`);
}

/**
 * Group state for a page (Messenger option `groupStorage`; docs/developer-guide.md, "Groups"): each sealed record
 * (client/messaging/group-store.ts) as base64 under `${prefix}:group:<name>`, and the list of names under
 * `${prefix}:groups`, in `store` (default: `localStorage` if usable, else memory, when `persistent` is false and the
 * groups live as long as the page). Use one prefix per identity on an origin.
 *
 * Unlike the client's storage, a write the browser refuses (its quota, typically a few megabytes per origin; a
 * record is the size of its group's roster and keys) is never kept in memory instead: `save` throws ERR_SYSTEM
 * (SystemError, setting "groupStorage", errno the browser's error name) and the record keeps its previous value, so
 * `group.send` fails before anything leaves and a reload never restores a sender key whose indexes were used. A name
 * goes on the list before its record is written and comes off after it is deleted; a listed name without a record
 * loads as nothing.
 */
export function browserGroupStorage(options: { prefix?: string; store?: KeyValueStore } = {}): GroupStorage & { readonly persistent: boolean } {
  const prefix = options.prefix ?? 'allium';
  const given = options.store ?? usableLocalStorage();
  const store = given ?? memoryStore();
  const listKey = `${prefix}:groups`;
  const recordKey = (name: string): string => `${prefix}:group:${name}`;

  const names = (): string[] => {
    let text: string | null;
    try {
      text = store.getItem(listKey);
    } catch (e) {
      throw storageRefused(listKey, e);
    }
    if (text === null) return [];
    try {
      const v: unknown = JSON.parse(text);
      return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string' && GROUP_RECORD_NAME.test(n)) : [];
    } catch {
      return [];
    }
  };
  const setItem = (key: string, value: string): void => {
    try {
      store.setItem(key, value);
    } catch (e) {
      throw storageRefused(key, e);
    }
  };

  return {
    persistent: given !== null,
    async load() {
      const out: Array<[string, Uint8Array]> = [];
      for (const name of [...new Set(names())].sort()) {
        let text: string | null;
        try {
          text = store.getItem(recordKey(name));
        } catch (e) {
          throw storageRefused(recordKey(name), e);
        }
        if (text === null) continue;
        let bytes: Uint8Array;
        try {
          bytes = fromBase64(text);
        } catch {
          bytes = new Uint8Array(0); // not base64: handed on, and refused as not a record (ERR_SCHEMA), never replaced
        }
        out.push([name, bytes]);
      }
      return out;
    },
    async save(name, bytes) {
      if (!GROUP_RECORD_NAME.test(name)) throw new ConfigError(`groupStorage: not a record name: ${name.slice(0, 16)}`);
      const listed = names();
      if (bytes) {
        if (!listed.includes(name)) setItem(listKey, JSON.stringify([...listed, name]));
        setItem(recordKey(name), toBase64(bytes));
      } else {
        try {
          store.removeItem(recordKey(name));
        } catch (e) {
          throw storageRefused(recordKey(name), e);
        }
        if (listed.includes(name)) setItem(listKey, JSON.stringify(listed.filter((n) => n !== name)));
      }
    },
  };
}
