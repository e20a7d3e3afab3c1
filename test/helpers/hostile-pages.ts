/**
 * The hostile-page corpus (specs/content.md §13–§14): pages that each try one way of making a browser contact an
 * address outside the gateway — here a canary HTTP server on 127.0.0.1, whose every request names the page that
 * made it (`/<name>`). A test publishes them as a site, opens each through the gateway in Chromium, and expects the
 * canary to hear nothing; the same pages served unfiltered make it hear from most of them (the harness can fail).
 *
 * Pages with `click` name an element the test clicks (pings, links, buttons).
 */
export interface HostilePage {
  readonly name: string;
  /** The file in the site (HTML unless the extension says otherwise). */
  readonly file: string;
  readonly content: string;
  /** A CSS selector to click after loading. */
  readonly click?: string;
  /** Other files the page needs (path → content), published with it. */
  readonly extra?: Readonly<Record<string, string>>;
}

export function hostilePages(canary: string): HostilePage[] {
  const c = (name: string): string => `${canary}/${name}`;
  const host = canary.replace(/^http:\/\//, '');
  const html = (name: string, body: string, head = ''): HostilePage => ({
    name,
    file: `${name}.html`,
    content: `<!DOCTYPE html><html><head><title>${name}</title>${head}</head><body><p>${name}</p>${body}</body></html>`,
  });
  return [
    html('img', `<img src="${c('img')}">`),
    html('img-protocol-relative', `<img src="//${host}/img-protocol-relative">`),
    html('img-whitespace', `<img src="  \n${c('img-whitespace')}  ">`),
    html('img-backslashes', `<img src="http:\\\\${host}\\img-backslashes">`),
    html('img-tab-in-scheme', `<img src="ht&#9;tp://${host}/img-tab-in-scheme">`),
    html('srcset', `<img src="ok.png" srcset="${c('srcset')} 2x, ${c('srcset')} 1x">`),
    html('picture-source', `<picture><source srcset="${c('picture-source')}"><img src="x.png"></picture>`),
    html('script-src', `<script src="${c('script-src')}"></script>`),
    html('inline-script', `<script>new Image().src=${JSON.stringify(c('inline-script'))}</script>`),
    html('event-handler', `<img src="missing.png" onerror="new Image().src=${JSON.stringify(c('event-handler'))}">`),
    {
      name: 'body-onload',
      file: 'body-onload.html',
      content: `<!DOCTYPE html><html><body onload='fetch(${JSON.stringify(c('body-onload'))})'><p>x</p></body></html>`,
    },
    html('websocket', `<script>new WebSocket(${JSON.stringify(`ws://${host}/websocket`)})</script>`),
    html('beacon', `<script>navigator.sendBeacon(${JSON.stringify(c('beacon'))}, 'x')</script>`),
    html('iframe', `<iframe src="${c('iframe')}"></iframe>`),
    html('iframe-srcdoc', `<iframe srcdoc="<img src='${c('iframe-srcdoc')}'>"></iframe>`),
    html('object', `<object data="${c('object')}" type="text/html"></object>`),
    html('embed', `<embed src="${c('embed')}" type="image/png">`),
    html('link-stylesheet', '', `<link rel="stylesheet" href="${c('link-stylesheet')}">`),
    html('link-prefetch', '', `<link rel="prefetch" href="${c('link-prefetch')}">`),
    html('link-preload', '', `<link rel="preload" as="image" href="${c('link-preload')}">`),
    html('link-preconnect', '', `<link rel="preconnect" href="${c('link-preconnect')}"><link rel="dns-prefetch" href="${c('link-preconnect')}">`),
    html('link-icon', '', `<link rel="icon" href="${c('link-icon')}">`),
    html('link-modulepreload', '', `<link rel="modulepreload" href="${c('link-modulepreload')}">`),
    html('style-url', `<div class="x">x</div>`, `<style>.x{background:url(${c('style-url')})}</style>`),
    html('style-import', '', `<style>@import url("${c('style-import')}");</style>`),
    html('style-import-string', '', `<style>@import "${c('style-import-string')}";</style>`),
    html('style-attribute', `<div style="background-image:url('${c('style-attribute')}')">x</div>`),
    html('css-escaped-url', `<div class="x">x</div>`, `<style>.x{background:u\\72 l(${c('css-escaped-url')})}</style>`),
    html('css-image-set', `<div class="x">x</div>`, `<style>.x{background-image:image-set("${c('css-image-set')}" 1x)}</style>`),
    html('css-custom-property', `<div class="x">x</div>`, `<style>.x{--u:url(${c('css-custom-property')});background:var(--u)}</style>`),
    html('css-font-face', `<p class="x">text</p>`, `<style>@font-face{font-family:f;src:url(${c('css-font-face')})}.x{font-family:f}</style>`),
    {
      name: 'stylesheet-file',
      file: 'stylesheet-file.html',
      content: `<!DOCTYPE html><html><head><link rel="stylesheet" href="hostile.css"></head><body><p class="x">x</p></body></html>`,
      extra: { 'hostile.css': `@import "${c('stylesheet-file')}";\n.x{background:url(${c('stylesheet-file')})}\n` },
    },
    html('meta-refresh', '', `<meta http-equiv="refresh" content="0; url=${c('meta-refresh')}">`),
    html('base-href', `<img src="base-href">`, `<base href="${canary}/">`),
    html('form-input-image', `<form action="${c('form-input-image')}"><input type="image" src="${c('form-input-image')}"></form>`),
    { ...html('form-submit', `<form action="${c('form-submit')}" method="post"><input name="q" value="1"><button id="go">go</button></form>`), click: '#go' },
    { ...html('button-formaction', `<form><button id="go" formaction="${c('button-formaction')}">go</button></form>`), click: '#go' },
    html('video-poster', `<video poster="${c('video-poster')}"></video>`),
    html('video-src', `<video src="${c('video-src')}" autoplay muted></video>`),
    html('video-source', `<video autoplay muted><source src="${c('video-source')}"></video>`),
    html('audio-src', `<audio src="${c('audio-src')}" autoplay></audio>`),
    html('track', `<video src="ok.webm"><track default src="${c('track')}"></video>`),
    {
      name: 'body-background',
      file: 'body-background.html',
      content: `<!DOCTYPE html><html><body background="${c('body-background')}"><p>x</p></body></html>`,
    },
    html('table-background', `<table background="${c('table-background')}"><tr><td>x</td></tr></table>`),
    html('inline-svg-image', `<svg width="10" height="10"><image href="${c('inline-svg-image')}" width="10" height="10"/></svg>`),
    html('inline-svg-use', `<svg width="10" height="10"><use href="${c('inline-svg-use')}#a"/></svg>`),
    html('noscript-img', `<noscript><img src="${c('noscript-img')}"></noscript>`),
    html('mxss-noscript', `<noscript><p title="</noscript><img src=${c('mxss-noscript')}>"></p></noscript>`),
    html('mxss-svg-style', `<svg><style><img src="${c('mxss-svg-style')}"></style></svg>`),
    html('mxss-math', `<math><mtext><table><mglyph><style><img src="${c('mxss-math')}">`),
    { ...html('a-ping', `<a id="go" href="#here" ping="${c('a-ping')}">go</a><p id="here">here</p>`), click: '#go' },
    { ...html('a-href', `<a id="go" href="${c('a-href')}">go</a>`), click: '#go' },
    { ...html('a-javascript', `<a id="go" href="javascript:location='${c('a-javascript')}'">go</a>`), click: '#go' },
    html('portal', `<portal src="${c('portal')}"></portal><fencedframe src="${c('portal')}"></fencedframe>`),
    {
      name: 'svg-file-image',
      file: 'svg-file-image.svg',
      content: `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="20" height="20"><image xlink:href="${c('svg-file-image')}" width="20" height="20"/><image href="${c('svg-file-image')}" width="20" height="20"/></svg>`,
    },
    {
      name: 'svg-file-script',
      file: 'svg-file-script.svg',
      content: `<svg xmlns="http://www.w3.org/2000/svg" onload="fetch('${c('svg-file-script')}')"><script>fetch('${c('svg-file-script')}')</script><rect width="5" height="5"/></svg>`,
    },
    {
      name: 'svg-file-style',
      file: 'svg-file-style.svg',
      content: `<svg xmlns="http://www.w3.org/2000/svg"><style>rect{fill:url(${c('svg-file-style')}#p)}</style><rect width="5" height="5" fill="url(${c('svg-file-style')}#q)"/></svg>`,
    },
    {
      name: 'svg-file-foreign',
      file: 'svg-file-foreign.svg',
      content: `<svg xmlns="http://www.w3.org/2000/svg"><foreignObject width="50" height="50"><img xmlns="http://www.w3.org/1999/xhtml" src="${c('svg-file-foreign')}"/></foreignObject><feImage href="${c('svg-file-foreign')}"/></svg>`,
    },
    {
      name: 'xml-stylesheet-pi',
      file: 'xml-stylesheet-pi.svg',
      content: `<?xml-stylesheet href="${c('xml-stylesheet-pi')}"?><svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5"/></svg>`,
    },
  ];
}
