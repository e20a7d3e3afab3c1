/**
 * The HTML filter's allow-lists (specs/content.md §13.2). An element or attribute not named here does not reach the
 * output. Elements in DROP go with everything inside them; any other element not in HTML_ELEMENTS is replaced by
 * its content.
 */

/** Elements kept, with their allowed attributes (besides GLOBAL_ATTRIBUTES). */
export const HTML_ELEMENTS: Readonly<Record<string, readonly string[]>> = {
  html: [], head: [], body: [], title: [],
  link: ['rel', 'href', 'type', 'media', 'sizes'],
  div: ['align'], span: [], p: ['align'], br: [], hr: ['align', 'width', 'size', 'noshade'], wbr: [],
  h1: ['align'], h2: ['align'], h3: ['align'], h4: ['align'], h5: ['align'], h6: ['align'],
  a: ['href', 'name', 'download', 'hreflang', 'type'],
  em: [], strong: [], b: [], i: [], u: [], s: [], small: [], big: [], sub: [], sup: [], mark: [], tt: [], strike: [], center: [],
  font: ['color', 'face', 'size'],
  abbr: [], cite: [], q: [], dfn: [], kbd: [], samp: [], var: [], code: [], pre: ['width'], bdi: [], bdo: [], ruby: [], rt: [], rp: [],
  time: ['datetime'], data: ['value'], del: ['datetime'], ins: ['datetime'], address: [], blockquote: [],
  ul: ['type', 'compact'], ol: ['type', 'start', 'reversed', 'compact'], li: ['type', 'value'], dl: ['compact'], dt: [], dd: [], menu: [],
  table: ['align', 'border', 'cellpadding', 'cellspacing', 'width', 'summary', 'bgcolor', 'frame', 'rules'],
  caption: ['align'], colgroup: ['span', 'width', 'align', 'valign'], col: ['span', 'width', 'align', 'valign'],
  thead: ['align', 'valign'], tbody: ['align', 'valign'], tfoot: ['align', 'valign'], tr: ['align', 'valign', 'bgcolor'],
  td: ['colspan', 'rowspan', 'headers', 'align', 'valign', 'width', 'height', 'nowrap', 'bgcolor', 'abbr'],
  th: ['colspan', 'rowspan', 'headers', 'scope', 'align', 'valign', 'width', 'height', 'nowrap', 'bgcolor', 'abbr'],
  img: ['src', 'srcset', 'sizes', 'alt', 'width', 'height', 'loading', 'decoding', 'align', 'border', 'hspace', 'vspace'],
  picture: [], source: ['src', 'srcset', 'sizes', 'type', 'media', 'width', 'height'],
  video: ['src', 'poster', 'controls', 'width', 'height', 'loop', 'muted', 'preload', 'playsinline', 'autoplay'],
  audio: ['src', 'controls', 'loop', 'muted', 'preload', 'autoplay'],
  track: ['src', 'kind', 'srclang', 'label', 'default'],
  figure: [], figcaption: [], main: [], nav: [], header: [], footer: [], section: [], article: [], aside: [], hgroup: [], search: [],
  details: ['open'], summary: [], dialog: ['open'],
  label: ['for'], fieldset: ['disabled'], legend: [], output: ['for'],
  input: ['type', 'name', 'value', 'placeholder', 'checked', 'disabled', 'readonly', 'min', 'max', 'step', 'size', 'maxlength', 'minlength', 'multiple', 'required'],
  button: ['type', 'name', 'value', 'disabled'],
  select: ['name', 'multiple', 'size', 'disabled', 'required'], option: ['value', 'selected', 'disabled', 'label'], optgroup: ['label', 'disabled'],
  textarea: ['name', 'rows', 'cols', 'placeholder', 'disabled', 'readonly', 'wrap', 'maxlength'],
  progress: ['value', 'max'], meter: ['value', 'min', 'max', 'low', 'high', 'optimum'],
};

export const GLOBAL_ATTRIBUTES: ReadonlySet<string> = new Set(['id', 'class', 'title', 'lang', 'dir', 'hidden', 'role', 'tabindex', 'translate', 'style']);

/** Elements dropped together with their content. */
export const DROP: ReadonlySet<string> = new Set([
  'script', 'style', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'param', 'portal', 'fencedframe', 'template', 'svg', 'math',
  'noembed', 'noframes', 'canvas', 'base', 'meta', 'map', 'area', 'xmp', 'plaintext', 'slot',
]);

/** Attributes holding one URL (rewritten; dropped if the URL is). */
export const URL_ATTRIBUTES: ReadonlySet<string> = new Set(['href', 'src', 'poster']);

/** Elements that are useless without their URL attribute, and go when it does. */
export const NEEDS_URL: Readonly<Record<string, string>> = { link: 'href', source: 'src|srcset', track: 'src', img: 'src|srcset' };

/** Input types that neither submit nor load anything (no image, submit, file). */
export const INPUT_TYPES: ReadonlySet<string> = new Set([
  'text', 'checkbox', 'radio', 'button', 'number', 'range', 'color', 'date', 'time', 'datetime-local', 'month', 'week', 'email', 'tel', 'search', 'url', 'password', 'hidden', 'reset',
]);

/** <link rel> values kept. */
export const LINK_RELS: ReadonlySet<string> = new Set(['stylesheet', 'icon', 'shortcut icon']);
