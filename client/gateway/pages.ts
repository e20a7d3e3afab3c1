/**
 * The gateway's own pages (specs/content.md §12.2–§12.5): home, errors, the external-link page and folder listings.
 * Every value from a link, a manifest or a request is escaped text; no page of the gateway links outside it.
 */

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;color:#1d2a1f;background:#fbfdf8}
h1{font-size:1.6rem;margin:.2rem 0 1rem}h1 span{color:#4d7a3a}h2{font-size:1.15rem;margin-top:2rem}
a{color:#2f6b20}code,.link{font:13px ui-monospace,monospace;word-break:break-all}
form.inline{display:inline}input[type=text]{width:70%;padding:.35rem;font:14px ui-monospace,monospace}
button{padding:.3rem .7rem;margin:.1rem}.card{border:1px solid #cfdcc4;border-radius:6px;padding:.7rem 1rem;margin:.6rem 0;background:#fff}
.changed{background:#f2fbe9;border-color:#7fb061}.muted{color:#67735f;font-size:.9rem}.warn{color:#8a3b12}
progress{width:12rem}ul.files{margin:.3rem 0;padding-left:1.2rem}`;

export function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><meta name="viewport" content="width=device-width"><style>${STYLE}</style></head><body>${body}</body></html>`;
}

export function errorPage(status: number, title: string, detail: string, extra = ''): string {
  return page(
    title,
    `<h1><span>Allium</span> · ${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p>${extra}<p class="muted">HTTP ${status} · <a href="/">gateway home</a></p>`,
  );
}

export function externalPage(url: string): string {
  return page(
    'Leaving Allium',
    `<h1><span>Allium</span> · a link out of Allium</h1><p>This page links to an address outside Allium:</p><p class="card link">${escapeHtml(url)}</p>` +
      `<p class="warn">Opening it would connect your browser to that address directly, and reveal your network address to whoever runs it. The gateway does not open it for you. If you decide to, copy it into a browser you use for the open web, or into Tor Browser.</p><p><a href="/">gateway home</a></p>`,
  );
}

export function listingPage(title: string, base: string, entries: readonly string[]): string {
  const items = entries.map((e) => `<li><a href="${escapeHtml(base + e.split('/').map(encodeURIComponent).join('/'))}">${escapeHtml(e)}</a></li>`).join('');
  return page(title, `<h1><span>Allium</span> · ${escapeHtml(title)}</h1><ul class="files">${items}</ul><p class="muted"><a href="/">gateway home</a></p>`);
}

export interface BookmarkView {
  readonly id: string;
  readonly title: string;
  readonly path: string;
  readonly link: string;
  readonly edition: number | null;
  readonly lastChange: number | null;
  readonly lastPoll: number | null;
  readonly changes: { added: string[]; removed: string[]; changed: string[] } | null;
  readonly note: string | null;
  readonly fresh: boolean;
  readonly scripts: boolean;
  readonly error: string | null;
}

export interface TransferView {
  readonly path: string;
  readonly done: number;
  readonly total: number;
}

const when = (t: number | null): string => (t === null ? 'never' : new Date(t).toISOString().replace('T', ' ').slice(0, 16) + ' UTC');
const list = (label: string, xs: string[]): string =>
  xs.length
    ? `<div class="muted">${label}: ${xs
        .slice(0, 20)
        .map((x) => `<code>${escapeHtml(x)}</code>`)
        .join(', ')}${xs.length > 20 ? ` and ${xs.length - 20} more` : ''}</div>`
    : '';

export function homePage(o: { bookmarks: readonly BookmarkView[]; transfers: readonly TransferView[]; polling: boolean; message?: string }): string {
  const marks = o.bookmarks
    .map((b) => {
      const ch = b.changes;
      const changed =
        b.fresh && ch
          ? `<div><strong>New edition ${b.edition}</strong> (${when(b.lastChange)})</div>${list('changed', ch.changed)}${list('added', ch.added)}${list('removed', ch.removed)}${b.note ? `<div>Publisher's note: ${escapeHtml(b.note)}</div>` : ''}`
          : '';
      const meta =
        b.edition !== null
          ? `edition ${b.edition} · last change ${when(b.lastChange)} · checked ${when(b.lastPoll)}`
          : b.link.startsWith('allium:ssk/')
            ? `checked ${when(b.lastPoll)}`
            : 'fixed content';
      return `<div class="card${b.fresh ? ' changed' : ''}" data-bookmark="${escapeHtml(b.id)}"><a href="${escapeHtml(b.path)}"><strong>${escapeHtml(b.title)}</strong></a>${changed}<div class="muted">${escapeHtml(meta)}${b.error ? ` · <span class="warn">${escapeHtml(b.error)}</span>` : ''}</div><div class="muted link">${escapeHtml(b.link)}</div>
<form class="inline" method="post" action="/bookmarks/remove"><input type="hidden" name="id" value="${escapeHtml(b.id)}"><button>Remove</button></form>
<form class="inline" method="post" action="/scripts"><input type="hidden" name="id" value="${escapeHtml(b.id)}"><input type="hidden" name="on" value="${b.scripts ? '0' : '1'}"><button title="Scripts can reveal who you are">${b.scripts ? 'Turn scripts off' : 'Allow scripts (unsafe)'}</button></form></div>`;
    })
    .join('');
  const transfers = o.transfers.length
    ? `<h2>Transfers</h2>${o.transfers.map((t) => `<div class="card"><code>${escapeHtml(t.path)}</code> <progress max="${t.total}" value="${t.done}"></progress> ${(t.done / 1e6).toFixed(1)} of ${(t.total / 1e6).toFixed(1)} MB</div>`).join('')}`
    : '';
  return page(
    'Allium gateway',
    `<h1><span>Allium</span> gateway</h1>${o.message ? `<p class="card">${escapeHtml(o.message)}</p>` : ''}
<form method="get" action="/open"><input type="text" name="link" placeholder="allium:chk/… or allium:ssk/…/name" autofocus> <button>Open</button></form>
<h2>Bookmarks</h2>${marks || '<p class="muted">No bookmarks yet.</p>'}
<form method="post" action="/bookmarks"><input type="text" name="link" placeholder="link to bookmark"> <input type="text" name="title" placeholder="title" style="width:20%"> <button>Bookmark</button></form>
<form method="post" action="/bookmarks/poll"><button${o.polling ? ' disabled' : ''}>Check for new editions now</button></form>${transfers}
<p class="muted">Pages are filtered so that they cannot make your browser contact anything outside Allium. Scripts are off unless you allow them for a site.</p>`,
  );
}
