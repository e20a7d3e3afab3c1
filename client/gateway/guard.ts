/**
 * Which requests the gateway answers (specs/content.md §12.1): the Host must be one of the gateway's own names (DNS
 * rebinding), an Origin must be the gateway's own (or `null`, for reads only: pages of sites whose scripts are on run
 * in an opaque origin), state changes need a matching Origin, and pages of other sites may only navigate to the
 * gateway, never embed or read it. Pure: headers in, a verdict out.
 */

export type Verdict = { ok: true } | { ok: false; status: 403 | 421; reason: string };

export type HeaderMap = Readonly<Record<string, string | string[] | undefined>>;

const one = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h);

/** The Host values a gateway listening on host:port answers to (plus `extra` names, each "name" or "name:port"). */
export function gatewayHosts(host: string, port: number, extra: readonly string[] = []): Set<string> {
  const names = new Set<string>(['localhost']);
  if (host === '::1' || host === '[::1]') names.add('[::1]');
  else if (host === '0.0.0.0' || host === '::') names.add('127.0.0.1').add('[::1]');
  else names.add(host.includes(':') && !host.startsWith('[') ? `[${host}]` : host);
  const out = new Set<string>();
  for (const n of names) {
    out.add(`${n.toLowerCase()}:${port}`);
    if (port === 80) out.add(n.toLowerCase());
  }
  for (const e of extra) out.add(e.toLowerCase().includes(':') ? e.toLowerCase() : `${e.toLowerCase()}:${port}`);
  return out;
}

export function checkRequest(method: string, headers: HeaderMap, hosts: ReadonlySet<string>): Verdict {
  const host = one(headers['host'])?.trim().toLowerCase();
  if (!host || !hosts.has(host)) return { ok: false, status: 421, reason: 'this gateway answers only to its own address' };
  const reading = method === 'GET' || method === 'HEAD';
  const origin = one(headers['origin']);
  if (origin !== undefined) {
    if (origin === 'null') {
      if (!reading) return { ok: false, status: 403, reason: 'an opaque origin may not change anything' };
    } else {
      let o: URL | null = null;
      try {
        o = new URL(origin);
      } catch {
        o = null;
      }
      if (!o || o.protocol !== 'http:' || !hosts.has(o.host.toLowerCase()) || o.origin !== origin.toLowerCase().replace(/\/$/, '')) {
        return { ok: false, status: 403, reason: 'requests from other origins are refused' };
      }
    }
  }
  if (!reading && (origin === undefined || origin === 'null')) return { ok: false, status: 403, reason: 'a change needs the Origin of a gateway page' };
  const site = one(headers['sec-fetch-site']);
  if (site === 'cross-site' || site === 'same-site') {
    const navigation = reading && one(headers['sec-fetch-mode']) === 'navigate' && one(headers['sec-fetch-dest']) === 'document';
    if (!navigation) return { ok: false, status: 403, reason: 'other sites may link to the gateway, not embed or read it' };
  }
  return { ok: true };
}
