/**
 * The content filter on its own (specs/content.md §13): every page of the hostile corpus comes out with no trace of
 * the address it tries to reach, and ordinary pages keep their text, links, images, styles and media, with every
 * URL rewritten to a gateway path. (test/integration/gateway.test.ts runs the same corpus in Chromium.)
 */
import { expect } from 'chai';
import { filterDocument, treatmentOf } from '../../client/content-filter/index.js';
import { filterCss } from '../../client/content-filter/css.js';
import { rewriteUrl } from '../../client/content-filter/url.js';
import { hostilePages } from '../helpers/hostile-pages.js';

const CANARY = 'http://127.0.0.1:1';
const base = (file: string): URL => new URL(`http://127.0.0.1:8888/allium:chk/abcdefgh/hostile/${file}`);
const filter = (file: string, text: string): string => {
  const t = treatmentOf(file.endsWith('.svg') ? 'image/svg+xml' : file.endsWith('.css') ? 'text/css' : 'text/html');
  return filterDocument(t as 'html' | 'css' | 'svg', new TextEncoder().encode(text), base(file), false).body;
};

describe('content filter: the hostile corpus, filtered', () => {
  const pages = hostilePages(CANARY);
  it('has at least 30 escapes', () => expect(pages.length).to.be.at.least(30));
  for (const p of pages) {
    it(`${p.name}: nothing of 127.0.0.1:1 survives, except as the text of an /external link`, () => {
      for (const [file, text] of [[p.file, p.content] as const, ...Object.entries(p.extra ?? {})]) {
        // Links to /external name the address as text, and a title attribute may hold it as text: neither loads.
        const out = filter(file, text)
          .replace(/href="\/external\?url=[^"]*"/g, '')
          .replace(/ title="[^"<>]*"/g, '');
        expect(out, `${file}:\n${out}`).to.not.match(
          /127\.0\.0\.1(:|%3A)1|\/\/127|<script|\son[a-z]+=|<iframe|<object|<embed|<base|<meta http|@import\s+"http|javascript:/i,
        );
      }
    });
  }
});

describe('content filter: ordinary pages keep what is safe', () => {
  it('keeps text, structure, links, images, styles and media, with URLs as gateway paths', () => {
    const out = filter(
      'index.html',
      `<!doctype html><html lang="en"><head><title>Garden</title><link rel="stylesheet" href="style.css"><style>h1{color:#2f6b20}</style></head><body><h1 id="t">Garden <em>notes</em></h1><img src="img/a.png" alt="A"><a href="docs/about.html#x">About</a><a href="allium:chk/bbbb">other</a><video src="v.webm" controls></video><table><tr><td colspan="2">c</td></tr></table></body></html>`,
    );
    expect(out).to.include('<html lang="en">').and.include('<meta charset="utf-8">').and.include('<title>Garden</title>');
    expect(out).to.include('<link rel="stylesheet" href="/allium:chk/abcdefgh/hostile/style.css">');
    expect(out).to.include('<style>h1{color:#2f6b20}</style>');
    expect(out).to.include('<h1 id="t">Garden <em>notes</em></h1>');
    expect(out).to.include('<img src="/allium:chk/abcdefgh/hostile/img/a.png" alt="A">');
    expect(out).to.include('<a href="/allium:chk/abcdefgh/hostile/docs/about.html#x">About</a>');
    expect(out).to.include('<a href="/allium:chk/bbbb">other</a>');
    expect(out).to.include('<video src="/allium:chk/abcdefgh/hostile/v.webm" controls="">');
    expect(out).to.include('<td colspan="2">c</td>');
  });

  it("does not let a relative URL climb out of the site to the gateway's own pages", () => {
    expect(rewriteUrl('../../../bookmarks', base('index.html'), 'resource')).to.equal(null);
    expect(rewriteUrl('allium:chk/abcdefgh/../../../bookmarks', base('index.html'), 'resource')).to.equal(null);
    expect(rewriteUrl('/allium:chk/abcdefgh/%2e%2e/%2e%2e/x', base('index.html'), 'resource')).to.equal(null);
    expect(rewriteUrl('../img/a.png', base('index.html'), 'resource')).to.equal('/allium:chk/abcdefgh/img/a.png');
  });

  it("keeps scripts only for a site whose reader turned them on, under a sandbox without the gateway's origin", async () => {
    const { filterHtml, documentCsp } = await import('../../client/content-filter/index.js');
    const page =
      '<script src="app.js"></script><script>document.title = "x"</script><script src="http://127.0.0.1:1/x.js"></script><img src=a.png onerror="alert(1)">';
    const off = filterHtml(page, { base: base('index.html') });
    expect(off).to.not.include('<script');
    const on = filterHtml(page, { base: base('index.html'), scripts: true });
    expect(on).to.include('<script src="/allium:chk/abcdefgh/hostile/app.js"></script>').and.include('<script>document.title = "x"</script>');
    expect(on).to.not.include('127.0.0.1:1').and.not.include('onerror');
    expect(documentCsp(false)).to.not.match(/script-src/);
    expect(documentCsp(false)).to.match(/sandbox allow-same-origin allow-downloads$/);
    expect(documentCsp(true))
      .to.match(/script-src 'self' 'unsafe-inline'/)
      .and.match(/sandbox allow-scripts allow-downloads$/);
    expect(documentCsp(true)).to.not.match(/allow-same-origin/);
  });

  it('escapes "<" in CSS, so a stylesheet cannot close its <style> element', () => {
    const css = filterCss('p::after{content:"</style><img src=x>"}', base('index.html'));
    expect(css).to.not.include('<');
  });

  it('refuses CSS nested deeper than MAX_CSS_DEPTH with ERR_FILTER, and deep HTML without a stack overflow', () => {
    let code = '';
    try {
      filterCss('a{b:' + 'calc('.repeat(100) + '1px' + ')'.repeat(100) + '}', base('x.css'));
    } catch (e) {
      code = (e as { code?: string }).code ?? String(e);
    }
    expect(code).to.equal('ERR_FILTER');
    const deep = '<div>'.repeat(100_000) + 'deep' + '</div>'.repeat(100_000);
    const out = filter('deep.html', deep);
    expect(out).to.include('deep');
    expect((out.match(/<div>/g) ?? []).length).to.equal(256);
  });
});
