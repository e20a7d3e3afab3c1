/**
 * The site commands of `allium` (docs/publishing.md): `put DIR`, `publish DIR --name NAME`, `update DIR`,
 * `status LINK` and `gateway`. Thin shells over client/site.ts, client/site-folder.ts and client/gateway/: flags,
 * the state directory, a progress bar, signals.
 *
 * Ctrl-C during a publish stops it cleanly: every block a holder acknowledged is already in the insert journal,
 * and the same command run again sends only the rest (specs/content.md §10.4).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { crypto } from '../crypto/index.js';
import { IdentityKey } from '../crypto/keys.js';
import { AlliumClient } from '../client/client.js';
import { ContentClient } from '../client/content.js';
import { startGateway } from '../client/gateway/server.js';
import { fileBookmarkStorage } from '../client/gateway/storage-node.js';
import { openInsertJournal } from '../client/insert-journal.js';
import { folderSources, filesRecord, loadSiteState, previousFiles, saveSiteState, siteStatePaths, type SiteState } from '../client/site-folder.js';
import { publishSite, siteStatus } from '../client/site.js';
import { fromHex, toHex } from '../protocol/bytes.js';
import { parseLink, validateName } from '../protocol/content-link.js';
import { AbortedError, ConfigError } from '../protocol/errors.js';
import { parseHostPort } from '../relay/config.js';
import { writeFileAtomic } from '../relay/keystore.js';
import { clientOptionsFrom, type ClientFlags } from './client-session.js';
import { EXIT } from './errors.js';
import { blocksBar } from './progress.js';

export interface SiteCommandFlags extends ClientFlags {
  name?: string;
  key?: string;
  note?: string;
  /** Plain convergent keys (content.md §9, §10.4); default: keys convergent under a run secret, random to others. */
  convergent?: boolean;
}

async function startClient(flags: ClientFlags): Promise<{ client: AlliumClient; dataDir: string }> {
  const { options, dataDir } = clientOptionsFrom(flags);
  const client = new AlliumClient(options);
  client.on('client:progress', (m) => process.stderr.write(`allium: ${m}\n`));
  await client.start();
  return { client, dataDir };
}

function loadKey(keyFile: string, create: boolean): IdentityKey {
  if (existsSync(keyFile)) return IdentityKey.fromSeed(fromHex(readFileSync(keyFile, 'utf8').trim()));
  if (!create) throw new ConfigError(`no publisher key at ${keyFile}: run "allium publish DIR --name NAME" first, or pass --key`);
  const key = IdentityKey.generate();
  writeFileAtomic(keyFile, toHex(key.seed) + '\n');
  process.stderr.write(`allium: created publisher key ${keyFile} (back it up: it is the only way to update this site)\n`);
  return key;
}

/** An AbortSignal fired by the first SIGINT or SIGTERM. */
function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return { signal: ac.signal, dispose: () => (process.off('SIGINT', stop), process.off('SIGTERM', stop)) };
}

/**
 * `put DIR` (mode 'put'), `publish DIR --name NAME` ('publish') and `update DIR` ('update'): publishes a folder as a
 * site, resuming an interrupted run from its journal, and prints the site's link.
 */
export async function runSitePublish(mode: 'put' | 'publish' | 'update', dir: string, flags: SiteCommandFlags): Promise<void> {
  const sources = folderSources(dir); // a bad folder is refused before the network is contacted
  const { dataDir } = clientOptionsFrom(flags);
  const before = loadSiteState(dataDir, dir);
  let name: string | null = null;
  let keyFile: string | null = null;
  if (mode !== 'put') {
    name = flags.name ?? before?.name ?? null;
    if (name === null)
      throw new ConfigError(
        mode === 'update' ? `${dir} was never published with a name: run "allium publish ${dir} --name NAME" first` : 'publish needs --name NAME',
      );
    validateName(name);
    keyFile = resolve(flags.key ?? before?.key ?? './allium-publisher.key');
  }
  const key = keyFile ? loadKey(keyFile, mode === 'publish') : null;
  const journal = openInsertJournal(siteStatePaths(dataDir, dir).journal);
  // The run secret (content.md §10.4): a resumed run (a journal left by an interrupted one) keeps the secret it was
  // started with, so it makes the same blocks; a new run draws a fresh one, so no two runs' blocks are related.
  const secret = flags.convergent ? null : journal.size > 0 && before?.secret ? fromHex(before.secret) : crypto().random(32);
  const state: SiteState = before ?? { v: 1, dir: resolve(dir), name, key: keyFile, secret: null, edition: null, link: null, files: {} };
  state.name = name;
  state.key = keyFile;
  state.secret = secret ? toHex(secret) : null;
  saveSiteState(dataDir, state); // the secret must survive a crash, or a resumed run would make other blocks
  if (journal.size > 0) process.stderr.write(`allium: resuming: ${journal.size} blocks were acknowledged by an earlier run and are not sent again\n`);

  const { client } = await startClient(flags);
  const content = new ContentClient(client);
  const bar = blocksBar(mode);
  const { signal, dispose } = interruptSignal();
  try {
    const r = await publishSite(content, sources, {
      previous: previousFiles(before),
      journal,
      ...(secret ? { convergenceSecret: secret } : { convergent: true }),
      ...(flags.note !== undefined ? { note: flags.note } : {}),
      ...(key && name !== null ? { publisher: key, name } : {}),
      onProgress: (p) => bar.update(p.doneBlocks, p.totalBlocks, p.current),
      signal,
    });
    bar.stop();
    journal.clear();
    state.edition = r.edition;
    state.link = r.link;
    state.secret = null; // the edition is out: the run secret is forgotten with the journal
    state.files = filesRecord(r.files, new Set(sources.map((s) => s.sha256)));
    saveSiteState(dataDir, state);
    process.stdout.write(`${r.link}\n`);
    process.stderr.write(
      `allium: ${r.stats.files} files (${r.stats.reused} unchanged, not sent again); ${r.stats.blocksStored} blocks stored, ${r.stats.blocksSkipped} already acknowledged${r.edition !== null ? `; edition ${r.edition}` : ''}\n`,
    );
  } catch (e) {
    bar.stop();
    if (e instanceof AbortedError || signal.aborted) {
      process.stderr.write(`allium: stopped; ${journal.size} acknowledged blocks are in the journal: run the same command again to go on from there\n`);
      content.close();
      await client.stop();
      process.exit(130);
    }
    throw e;
  } finally {
    dispose();
  }
  content.close();
  await client.stop();
  process.exit(EXIT.OK);
}

/** `status LINK`: how many of the blocks of a file or site are at their holders. */
export async function runStatus(link: string, flags: ClientFlags): Promise<void> {
  parseLink(link.trim().replace(/\/$/, '')); // a mistyped link is refused before the network is contacted
  const { client } = await startClient(flags);
  const content = new ContentClient(client);
  const bar = blocksBar('status');
  const s = await siteStatus(content, link.trim(), { onProgress: (d, t) => bar.update(d, t, '') });
  bar.stop();
  const pct = (n: number): string => (s.blocks ? ((100 * n) / s.blocks).toFixed(1) : '0.0');
  process.stdout.write(
    `${s.files} file${s.files === 1 ? '' : 's'}, ${s.blocks} blocks\n` +
      `  at every holder: ${s.atAll} (${pct(s.atAll)}%)\n  at some holders: ${s.partial} (${pct(s.partial)}%)\n  at none:         ${s.missing} (${pct(s.missing)}%)\n` +
      `  copies: ${s.copies} of ${s.wanted}\n`,
  );
  content.close();
  await client.stop();
  process.exit(s.missing > 0 ? EXIT.NOT_FOUND : EXIT.OK);
}

/** `gateway`: the local HTTP gateway until SIGINT or SIGTERM. */
export async function runGateway(flags: ClientFlags & { listen?: string; allowRemote?: boolean; hostName?: string[] }): Promise<void> {
  const at = parseHostPort(flags.listen ?? '127.0.0.1:8888', '--listen');
  const { client, dataDir } = await startClient({ ...flags, poolSize: 0 });
  const content = new ContentClient(client);
  const gw = await startGateway(
    { content, bookmarks: fileBookmarkStorage(join(dataDir, 'gateway', 'bookmarks.json')) },
    { host: at.host, port: at.port, allowRemote: !!flags.allowRemote, hostNames: flags.hostName ?? [] },
  );
  if (flags.allowRemote) process.stderr.write('allium: warning: the gateway has no authentication; anyone who can reach it can use it\n');
  process.stdout.write(`Allium gateway ready: ${gw.url}\n  open it in a browser; paste allium: links into its box\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      await gw.stop();
      content.close();
      await client.stop();
      process.exit(EXIT.OK);
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
