/**
 * The Node client (what `allium/client` exports as AlliumClient): the library's client with safe defaults for an
 * application in Node. Its directory cache and guards persist in the default state directory
 * (client/storage-node.ts: ~/.local/state/allium) unless `storage` or `stateDir` says otherwise, so that a program
 * keeps its entry guards from one run to the next and starts from a cached, cross-checked directory; a client that
 * forgets its guards picks new entry relays every run, giving a hostile relay more chances to be its entry.
 */
import { AlliumClient as BaseClient, type ClientOptions as BaseOptions } from './client.js';
import { defaultStateDir, fileStorage } from './storage-node.js';

export interface ClientOptions extends BaseOptions {
  /**
   * Where the directory cache and guards persist when `storage` is not given: a directory (created with mode 0700),
   * or false to keep them in memory only (every run starts afresh). Default: the state directory,
   * $ALLIUM_STATE_DIR, else $XDG_STATE_HOME/allium, else ~/.local/state/allium.
   */
  stateDir?: string | false;
}

export class AlliumClient extends BaseClient {
  constructor(o: ClientOptions) {
    const { stateDir, ...rest } = o;
    const storage = o.storage ?? (stateDir === false ? undefined : fileStorage(stateDir ?? defaultStateDir()));
    super(storage ? { ...rest, storage } : rest);
  }
}
