/**
 * The gateway (specs/content.md §12): an HTTP server on the reader's machine through which any browser reads Allium
 * content, as Hyphanet's FProxy does. Node only.
 *
 *   const gw = await startGateway({ content, bookmarks }, { port: 8888 })     // gw.url: http://127.0.0.1:8888/
 *   await gw.stop()
 *
 * Every request passes guard.ts (Host, Origin, Sec-Fetch-Site) first. HTML, CSS and SVG pass the content filter
 * (client/content-filter/) and carry a strict Content-Security-Policy; media and other safe types are streamed as
 * their segments arrive, with byte ranges; everything else is offered as a download.
 *
 * Why ~410 lines: one request's path through the caches of roots and sites, the filter and the range reader shares
 * the server's state and its stop signal; the guard, pages, ranges and bookmarks are modules of their own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once, setMaxListeners } from 'node:events';
import { toHex } from '../../protocol/bytes.js';
import type { BlockRef } from '../../protocol/chk.js';
import { formatLink, parseLink } from '../../protocol/content-link.js';
import { ConfigError, isAlliumError, LimitError, NotFoundError } from '../../protocol/errors.js';
import { checkSitePath, type SiteEntry } from '../../protocol/site-manifest.js';
import { essence, FILE_CSP, filterDocument, GATEWAY_PAGE_CSP, isFilterRefusal, MAX_FILTERED_BYTES, treatmentOf } from '../content-filter/index.js';
import type { ContentClient, OpenedContent } from '../content.js';
import { readSite, type OpenedSite } from '../site.js';
import { BOOKMARK_POLL_INTERVAL_MS, Bookmarks, siteIdOf, type BookmarkStorage } from './bookmarks.js';
import { checkRequest, gatewayHosts } from './guard.js';
import { errorPage, externalPage, homePage, listingPage } from './pages.js';
import { parseRange } from './range.js';

export const MAX_GATEWAY_TRANSFERS = 64;
export const SSK_RESOLVE_CACHE_MS = 60_000;
const SSK_CACHE_ENTRIES = 1024;
const SITE_CACHE_ENTRIES = 64;
const MAX_FORM_BYTES = 8192;

export interface GatewayOptions {
  /** Listen address (default 127.0.0.1). Anything but loopback needs allowRemote. */
  host?: string;
  /** Port (default 8888; 0: any free port). */
  port?: number;
  /** Listen on an address that is not loopback (the gateway has no authentication). */
  allowRemote?: boolean;
  /** Further Host names to answer to ("name" or "name:port"). */
  hostNames?: readonly string[];
  /** Poll bookmarks every … ms (default BOOKMARK_POLL_INTERVAL_MS, 10 minutes; 0: only on request). */
  pollIntervalMs?: number;
  now?: () => number;
}

export interface GatewayComponents {
  content: ContentClient;
  bookmarks: BookmarkStorage;
}

export interface Gateway {
  /** http://host:port/ */
  readonly url: string;
  readonly port: number;
  readonly bookmarks: Bookmarks;
  /** The gateway path of a link: /allium:chk/… or /allium:ssk/…/NAME/ */
  pathOf(link: string): string;
  stop(): Promise<void>;
}

interface Transfer {
  path: string;
  done: number;
  total: number;
}

const isLoopback = (h: string): boolean => h === 'localhost' || h === '::1' || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h);

const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

/** What an error means for the reader: status, title and explanation (content.md §12.3). */
function describeError(e: unknown): { status: number; title: string; detail: string } {
  const code = isAlliumError(e) ? e.code : 'ERR_INTERNAL';
  switch (code) {
    case 'ERR_NOT_FOUND':
      return {
        status: 404,
        title: 'Not found',
        detail: 'Every holder that was asked says it has no such content. It may never have been published, or it has been lost.',
      };
    case 'ERR_UNREACHABLE':
    case 'ERR_TIMEOUT':
      return {
        status: 503,
        title: 'Unreachable for now',
        detail: 'Some of the relays holding this content could not be reached, and the others do not have it. Try again in a minute.',
      };
    case 'ERR_LINK_CHECKSUM':
      return { status: 400, title: 'Mistyped link', detail: 'The checksum of this link does not match: a character was changed or lost when it was copied.' };
    case 'ERR_LINK_OUTDATED':
      return {
        status: 400,
        title: 'Outdated link',
        detail:
          'This allium:ssk link is of the first format, which carries no secret (anyone who guessed its name could read it), and is no longer read. Ask the publisher for the current link: allium:ssk/ followed by 111 characters and the name.',
      };
    case 'ERR_LINK_FORMAT':
      return { status: 400, title: 'Not an Allium link', detail: 'This address is not a well-formed allium: link or site path.' };
    case 'ERR_CONTENT':
    case 'ERR_CONTENT_TAMPERED':
    case 'ERR_SITE_MANIFEST':
    case 'ERR_SCHEMA':
    case 'ERR_CBOR_MALFORMED':
    case 'ERR_CBOR_NONCANONICAL':
    case 'ERR_CBOR_DEPTH':
    case 'ERR_CBOR_TOO_LARGE':
    case 'ERR_LIMIT':
      return {
        status: 502,
        title: 'Corrupt content',
        detail: 'What the network returned for this link is damaged or malformed, or too large to read, and was refused.',
      };
    case 'ERR_ABORTED':
      return { status: 503, title: 'Stopped', detail: 'The gateway is stopping.' };
    default:
      return { status: 500, title: 'Error', detail: 'The gateway could not serve this.' };
  }
}

/** Parses a content path: /allium:chk/KEY[/rest] or /allium:ssk/KEY/NAME[/rest]. */
function parseContentPath(pathname: string): { link: string; rest: string | null } | null {
  const m = /^\/allium(?::|%3a)(chk|ssk)\/([A-Za-z2-7]+)(\/.*)?$/i.exec(pathname);
  if (!m) return null;
  const kind = m[1]!.toLowerCase();
  let tail = m[3] ?? null;
  if (kind === 'chk') return { link: `allium:chk/${m[2]!.toLowerCase()}`, rest: tail };
  if (!tail || tail === '/') return { link: `allium:ssk/${m[2]!.toLowerCase()}/`, rest: null }; // no name: refused by parseLink
  const slash = tail.indexOf('/', 1);
  const name = slash < 0 ? tail.slice(1) : tail.slice(1, slash);
  tail = slash < 0 ? null : tail.slice(slash);
  return { link: `allium:ssk/${m[2]!.toLowerCase()}/${name}`, rest: tail };
}

function contentDisposition(path: string): string {
  const base = path.split('/').pop() || 'download';
  const ascii = base.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'download';
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

/** Starts the gateway. Throws ERR_CONFIG (a remote address without allowRemote), ERR_SYSTEM (address in use). */
export async function startGateway(components: GatewayComponents, init: GatewayOptions = {}): Promise<Gateway> {
  const host = init.host ?? '127.0.0.1';
  if (!isLoopback(host) && !init.allowRemote)
    throw new ConfigError(
      `gateway: ${host} is not a loopback address; the gateway has no authentication (pass allowRemote / --allow-remote to listen there anyway)`,
    );
  const { content } = components;
  const now = init.now ?? Date.now;
  const bookmarks = new Bookmarks(components.bookmarks, content, now);
  const sskCache = new Map<string, { at: number; edition: number; target: string }>();
  const siteCache = new Map<string, Promise<OpenedSite | null>>();
  const transfers = new Set<Transfer>();
  const stopping = new AbortController();
  setMaxListeners(0, stopping.signal);
  let hosts = new Set<string>();

  /** The CHK root of a link, an updatable one at its newest known edition (never older than a bookmark's). */
  async function rootOf(link: string, signal: AbortSignal): Promise<{ root: BlockRef; updatable: boolean }> {
    const l = parseLink(link);
    if (l.type === 'chk') return { root: l, updatable: false };
    const id = siteIdOf(link);
    let hit = sskCache.get(id);
    const bookmarked = bookmarks.known(id);
    if (hit && bookmarked && bookmarked.edition > hit.edition) hit = { ...hit, ...bookmarked }; // a poll found a newer one
    if (!hit || now() - hit.at > SSK_RESOLVE_CACHE_MS) {
      const known = bookmarks.known(id);
      let latest: { edition: number; target: string } | null = null;
      try {
        latest = await content.latestEdition(l, { signal, strict: !known, now: now() });
      } catch (e) {
        if (!known) throw e;
      }
      const best = latest && (!known || latest.edition >= known.edition) ? latest : known;
      if (!best) throw new NotFoundError('no holder has an edition of this key'); // strict: an unreachable holder threw already
      hit = { at: now(), ...best };
      sskCache.delete(id);
      sskCache.set(id, hit);
      if (sskCache.size > SSK_CACHE_ENTRIES) sskCache.delete(sskCache.keys().next().value!);
    }
    const t = parseLink(hit.target);
    if (t.type !== 'chk') throw new ConfigError('an updatable key must point at a chk link');
    return { root: t, updatable: true };
  }

  function siteAt(root: BlockRef, file: OpenedContent, signal: AbortSignal): Promise<OpenedSite | null> {
    const key = toHex(root.rk);
    let p = siteCache.get(key);
    if (!p) {
      p = readSite(root, file, { signal });
      siteCache.set(key, p);
      p.catch(() => siteCache.delete(key));
      if (siteCache.size > SITE_CACHE_ENTRIES) siteCache.delete(siteCache.keys().next().value!);
    }
    return p;
  }

  function send(res: ServerResponse, status: number, body: string, headers: Record<string, string | number>): void {
    const buf = Buffer.from(body);
    res.writeHead(status, { ...COMMON_HEADERS, 'Content-Length': buf.length, ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : buf);
  }

  // The gateway's own pages send their forms with their Origin: under `no-referrer` a browser sends `Origin: null`.
  const pageHeaders = {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': GATEWAY_PAGE_CSP,
    'Referrer-Policy': 'same-origin',
  };
  const sendPage = (res: ServerResponse, status: number, html: string): void => send(res, status, html, pageHeaders);
  const sendError = (res: ServerResponse, e: unknown): void => {
    const d = describeError(e);
    if (res.headersSent) return void res.destroy();
    sendPage(res, d.status, errorPage(d.status, d.title, d.detail));
  };
  const redirect = (res: ServerResponse, location: string, status = 302): void => {
    res.writeHead(status, { ...COMMON_HEADERS, Location: location, 'Cache-Control': 'no-store', 'Content-Length': 0 });
    res.end();
  };

  /** Streams bytes of an opened file (a range, or all of it), counting a transfer for the home page. */
  async function stream(
    req: IncomingMessage,
    res: ServerResponse,
    file: OpenedContent,
    label: string,
    headers: Record<string, string | number>,
    signal: AbortSignal,
  ): Promise<void> {
    const range = parseRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, file.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...COMMON_HEADERS, 'Content-Range': `bytes */${file.size}`, 'Content-Length': 0 });
      return void res.end();
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? file.size;
    res.writeHead(range ? 206 : 200, {
      ...COMMON_HEADERS,
      ...headers,
      'Accept-Ranges': 'bytes',
      'Content-Length': end - start,
      ...(range ? { 'Content-Range': `bytes ${start}-${end - 1}/${file.size}` } : {}),
    });
    if (req.method === 'HEAD' || end === start) return void res.end();
    const t: Transfer = { path: label, done: 0, total: end - start };
    transfers.add(t);
    try {
      for await (const chunk of file.read({ start, end, signal, onProgress: (d) => void (t.done = d) })) {
        if (!res.write(chunk)) await once(res, 'drain', { signal });
      }
      res.end();
    } finally {
      transfers.delete(t);
    }
  }

  /** Serves one file of a site (or a bare file with a type) through the filter rules of its media type. */
  async function serveFile(
    req: IncomingMessage,
    res: ServerResponse,
    o: { file: OpenedContent; type: string; path: string; base: URL; siteId: string; updatable: boolean; download: boolean; signal: AbortSignal },
  ): Promise<void> {
    const scripts = bookmarks.scriptsOn(o.siteId);
    const cache = o.updatable ? 'no-cache' : 'private, max-age=31536000, immutable';
    let treatment = o.download ? 'download' : treatmentOf(o.type);
    if (treatment === 'script' && !scripts) treatment = 'text';
    if ((treatment === 'html' || treatment === 'css' || treatment === 'svg') && o.file.size > MAX_FILTERED_BYTES) treatment = 'download';
    if (treatment === 'html' || treatment === 'css' || treatment === 'svg') {
      const parts: Uint8Array[] = [];
      for await (const chunk of o.file.read({ signal: o.signal })) parts.push(chunk);
      try {
        const f = filterDocument(treatment, Buffer.concat(parts), o.base, scripts);
        return send(res, 200, f.body, { 'Content-Type': f.contentType, 'Content-Security-Policy': f.csp, 'Cache-Control': cache });
      } catch (e) {
        if (!isFilterRefusal(e)) throw e;
        return sendPage(
          res,
          200,
          errorPage(
            200,
            'Cannot be shown safely',
            'The content filter could not make this document safe to show (it is too large, nested too deeply, or malformed).',
            `<p><a href="?download">Download it instead</a> (open it only with a program you trust not to connect to the network).</p>`,
          ),
        );
      }
    }
    const headers: Record<string, string | number> = { 'Cache-Control': cache, 'Content-Security-Policy': FILE_CSP };
    if (treatment === 'pass') headers['Content-Type'] = essence(o.type);
    else if (treatment === 'text') headers['Content-Type'] = 'text/plain; charset=utf-8';
    else if (treatment === 'script') headers['Content-Type'] = 'text/javascript; charset=utf-8';
    else {
      headers['Content-Type'] = 'application/octet-stream';
      headers['Content-Disposition'] = contentDisposition(o.path);
    }
    await stream(req, res, o.file, o.path, headers, o.signal);
  }

  async function serveContent(req: IncomingMessage, res: ServerResponse, url: URL, signal: AbortSignal): Promise<void> {
    const parsed = parseContentPath(url.pathname);
    if (!parsed) return sendPage(res, 404, errorPage(404, 'Not found', 'The gateway has no page at this address.'));
    const { root, updatable } = await rootOf(parsed.link, signal);
    const siteId = siteIdOf(parsed.link);
    const linkPath = updatable
      ? `/${parsed.link}`
      : `/${formatLink({ type: 'chk', rk: root.rk, dk: root.dk, flags: (parseLink(parsed.link) as { flags: number }).flags })}`;
    const base = new URL(url.pathname, `http://${req.headers.host}`);
    const download = url.searchParams.has('download');
    if (transfers.size >= MAX_GATEWAY_TRANSFERS)
      return sendPage(res, 503, errorPage(503, 'Busy', `The gateway is already fetching ${MAX_GATEWAY_TRANSFERS} files. Try again in a moment.`));
    // A site already read is served without fetching its root again; anything else is opened (and looked at) now.
    const known = siteCache.get(toHex(root.rk));
    let file: OpenedContent | null = null;
    let site = known ? await known : null;
    if (!known) {
      file = await content.open(root, { signal });
      site = await siteAt(root, file, signal);
    }
    if (parsed.rest === null) {
      if (site) return redirect(res, `${linkPath}/`, 301);
      file ??= await content.open(root, { signal });
      const asked = url.searchParams.get('type');
      const type = asked && !download ? asked.toLowerCase() : 'application/octet-stream';
      return serveFile(req, res, { file, type, path: parsed.link.split('/').pop() ?? 'file', base, siteId, updatable, download, signal });
    }
    if (!site)
      return sendPage(
        res,
        404,
        errorPage(404, 'Not a site', 'This link is a single file, not a site: it has no paths.', `<p><a href="${linkPath}?download">Download the file</a></p>`),
      );
    bookmarks.seen(siteId);
    let path: string;
    try {
      path = decodeURIComponent(parsed.rest.slice(1));
    } catch {
      return sendPage(res, 400, errorPage(400, 'Bad path', 'The path of this address is not valid percent-encoding.'));
    }
    let entry: SiteEntry | undefined;
    if (path === '' || path.endsWith('/')) {
      const folder = path.replace(/\/$/, '');
      entry = site.entry(folder ? `${folder}/index.html` : 'index.html') ?? (folder === '' ? site.entry(site.manifest.idx) : undefined);
      if (!entry) {
        const names = site.list(folder);
        if (names.length === 0) return sendPage(res, 404, errorPage(404, 'Not in this site', 'This site has no such folder.'));
        return sendPage(res, 200, listingPage(folder || '/', `${linkPath}/${folder ? folder.split('/').map(encodeURIComponent).join('/') + '/' : ''}`, names));
      }
    } else {
      try {
        checkSitePath(path);
      } catch {
        return sendPage(res, 400, errorPage(400, 'Bad path', 'This is not a path a site can have.'));
      }
      entry = site.entry(path);
      if (!entry) {
        if (site.list(path).length) return redirect(res, `${url.pathname}/`, 301);
        return sendPage(
          res,
          404,
          errorPage(404, 'Not in this site', 'This site has no file at this path. The link that led here may be mistyped or out of date.'),
        );
      }
    }
    const f = await content.open(entry.ref, { signal });
    if (f.size !== entry.size) throw new LimitError('SITE_ENTRY_SIZE', 'a file is not the size its manifest says', 'ERR_SITE_MANIFEST');
    await serveFile(req, res, { file: f, type: entry.type, path: entry.path, base, siteId, updatable, download, signal });
  }

  async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
    let body = '';
    for await (const chunk of req) {
      body += (chunk as Buffer).toString('utf8');
      if (body.length > MAX_FORM_BYTES) throw new LimitError('MAX_FORM_BYTES', 'form too large');
    }
    return new URLSearchParams(body);
  }

  function home(res: ServerResponse, message?: string): void {
    const views = bookmarks.list().map((b) => {
      return { ...b, path: `/${b.link}`, scripts: bookmarks.scriptsOn(b.id) };
    });
    sendPage(res, 200, homePage({ bookmarks: views, transfers: [...transfers], polling: bookmarks.isPolling, ...(message ? { message } : {}) }));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const verdict = checkRequest(req.method ?? 'GET', req.headers, hosts);
    if (!verdict.ok) {
      res.writeHead(verdict.status, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
      return void res.end(`${verdict.reason}\n`);
    }
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const method = req.method ?? 'GET';
    const done = new AbortController();
    const signal = AbortSignal.any([done.signal, stopping.signal]);
    setMaxListeners(0, signal); // every block fetched for this request listens to it
    res.once('close', () => done.abort());
    try {
      if (method === 'POST') {
        const form = await readForm(req);
        if (url.pathname === '/bookmarks') {
          try {
            bookmarks.add(form.get('link') ?? '', form.get('title') ?? undefined);
            void bookmarks.poll({ signal: stopping.signal }).catch(() => undefined);
          } catch (e) {
            return home(res, `Not bookmarked: ${describeError(e).detail}`);
          }
        } else if (url.pathname === '/bookmarks/remove') bookmarks.remove(form.get('id') ?? '');
        else if (url.pathname === '/bookmarks/poll') await bookmarks.poll({ signal: stopping.signal });
        else if (url.pathname === '/scripts') bookmarks.setScripts(form.get('id') ?? '', form.get('on') === '1');
        else return sendPage(res, 404, errorPage(404, 'Not found', 'No such form.'));
        return redirect(res, '/', 303);
      }
      if (method !== 'GET' && method !== 'HEAD') {
        res.writeHead(405, { ...COMMON_HEADERS, Allow: 'GET, HEAD, POST', 'Content-Length': 0 });
        return void res.end();
      }
      if (url.pathname === '/') return home(res);
      if (url.pathname === '/open') {
        const link = (url.searchParams.get('link') ?? '').trim();
        const slash = link.endsWith('/');
        parseLink(slash ? link.slice(0, -1) : link);
        return redirect(res, `/${link}`);
      }
      if (url.pathname === '/external') return sendPage(res, 200, externalPage(url.searchParams.get('url') ?? ''));
      if (url.pathname === '/favicon.ico') {
        res.writeHead(204, { ...COMMON_HEADERS, 'Cache-Control': 'max-age=86400' });
        return void res.end();
      }
      await serveContent(req, res, url, signal);
    } catch (e) {
      if (signal.aborted && !stopping.signal.aborted) return void res.destroy(); // the browser went away
      sendError(res, e);
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res));
  const port = init.port ?? 8888;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new ConfigError(`gateway: ${host}:${port} is in use (pass another --port, or 0 for any)`) : e),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  hosts = gatewayHosts(host, bound, init.hostNames);
  const shown = host.includes(':') ? `[${host}]` : host;
  const interval = init.pollIntervalMs ?? BOOKMARK_POLL_INTERVAL_MS;
  const timer = interval > 0 ? setInterval(() => void bookmarks.poll({ signal: stopping.signal }).catch(() => undefined), interval) : null;
  (timer as { unref?: () => void } | null)?.unref?.();
  void bookmarks.poll({ signal: stopping.signal }).catch(() => undefined);
  return {
    url: `http://${shown}:${bound}/`,
    port: bound,
    bookmarks,
    pathOf(link: string) {
      const l = link.trim();
      parseLink(l.endsWith('/') ? l.slice(0, -1) : l);
      return `/${l}`;
    },
    async stop() {
      if (timer) clearInterval(timer);
      stopping.abort();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
