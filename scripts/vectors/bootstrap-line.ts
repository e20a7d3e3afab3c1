/**
 * specs/vectors/bootstrap-line.json: bootstrap lines (specs/directory.md §6.7). `valid`: lines with what
 * parseBootstrapLine makes of them; `invalid`: lines it refuses, with the code; `format`: the line a relay prints
 * (formatBootstrapLine); `sets`: the authorities a client requires for its lines and its `authorities` option
 * (authoritiesFor), or the code of the refusal.
 */
import { fingerprintOf, IdentityKey } from '../../crypto/keys.js';
import { authoritiesFor, formatBootstrapLine, MAX_BOOTSTRAP_LINE, parseBootstrapLine } from '../../protocol/bootstrap-line.js';
import { MAX_AUTHORITIES } from '../../protocol/consensus.js';
import { check, errorCodeOf, expectCode, seeded, VECTORS_VERSION, type VectorFile } from './common.js';

const fp = (name: string): string => IdentityKey.fromSeed(seeded(`bootstrap-line/${name}`)(32)).fingerprint;

export function bootstrapLineFile(): VectorFile {
  const relay = fp('relay');
  const other = fp('relay-2');
  const auth = [0, 1, 2].map((i) => fp(`authority-${i}`)).sort();
  const [a0, a1, a2] = auth as [string, string, string];
  const stranger = fp('authority-9');
  const many = Array.from({ length: MAX_AUTHORITIES + 1 }, (_, i) => fp(`many-${i}`));
  // 64 hex digits that are no Ed25519 public key (y ≥ p: not canonical).
  const notKey = 'ff'.repeat(32);
  const url = 'ws://198.51.100.7:9001/allium';

  const validLines: { name: string; line: string }[] = [
    { name: 'without authorities (the form of a relay without them)', line: `${url} ${relay}` },
    { name: 'three authorities, ascending', line: `${url} ${relay} authorities=${auth.join('+')}` },
    { name: 'one authority', line: `wss://relay.example.org/some/path ${relay} authorities=${a1}` },
    {
      name: 'authorities in another order and case, tabs and extra blanks',
      line: `  ${url}\t${relay.toUpperCase()}   authorities=${a2}+${a0.toUpperCase()}+${a1}  `,
    },
    { name: `${MAX_AUTHORITIES} authorities`, line: `${url} ${relay} authorities=${many.slice(0, MAX_AUTHORITIES).join('+')}` },
    { name: 'an IPv6 address', line: `ws://[2001:db8::7]:9001/allium ${relay} authorities=${auth.join('+')}` },
  ];
  const valid = validLines.map(({ name, line }) => {
    const b = parseBootstrapLine(line);
    return { name, line, url: b.url, fingerprint: fingerprintOf(b.identity), authorities: b.authorities ?? null };
  });

  const long = `ws://198.51.100.7:9001/${'a'.repeat(MAX_BOOTSTRAP_LINE)} ${relay}`;
  const invalidLines: { name: string; line: string }[] = [
    { name: 'empty', line: '' },
    { name: 'a URL alone', line: url },
    { name: 'not a link URL (http)', line: `http://198.51.100.7:9001/allium ${relay}` },
    { name: 'a URL with a query', line: `${url}?x=1 ${relay}` },
    { name: 'a fingerprint of 63 hex digits', line: `${url} ${relay.slice(1)}` },
    { name: 'a fingerprint that is no public key', line: `${url} ${notKey}` },
    { name: 'a third field that is not authorities=', line: `${url} ${relay} secret=${'ab'.repeat(32)}` },
    { name: 'four fields', line: `${url} ${relay} authorities=${a0} authorities=${a1}` },
    { name: 'authorities= with nothing after it', line: `${url} ${relay} authorities=` },
    { name: 'two + in a row', line: `${url} ${relay} authorities=${a0}++${a1}` },
    { name: 'a trailing +', line: `${url} ${relay} authorities=${a0}+${a1}+` },
    { name: 'authorities separated by commas', line: `${url} ${relay} authorities=${a0},${a1}` },
    { name: 'one authority twice (case differs)', line: `${url} ${relay} authorities=${a0}+${a0.toUpperCase()}` },
    { name: 'an authority that is no public key', line: `${url} ${relay} authorities=${a0}+${notKey}` },
    { name: `${MAX_AUTHORITIES + 1} authorities`, line: `${url} ${relay} authorities=${many.join('+')}` },
    { name: `longer than ${MAX_BOOTSTRAP_LINE} characters`, line: long },
    // Fields are separated by spaces and tabs only (§6.7): other white space stays inside a field.
    { name: 'a line break between the fields', line: `${url}\n${relay}` },
    { name: 'a line break before authorities=', line: `${url} ${relay}\nauthorities=${a0}` },
    { name: 'a no-break space (U+00A0) between the fields', line: `${url}\u00a0${relay}` },
    { name: 'a line separator (U+2028) before authorities=', line: `${url} ${relay}\u2028authorities=${a0}` },
    { name: 'an ideographic space (U+3000) between the fields', line: `${url}\u3000${relay}` },
    { name: 'a trailing line break', line: `${url} ${relay}\n` },
  ];
  check(long.length > MAX_BOOTSTRAP_LINE, 'the long line is long');
  const invalid = invalidLines.map(({ name, line }) => ({
    name,
    line,
    code: expectCode(
      errorCodeOf(() => parseBootstrapLine(line), name),
      'ERR_CONFIG',
      name,
    ),
  }));

  const formatCases: { name: string; url: string; fingerprint: string; authorities: string[] }[] = [
    { name: 'a relay without authorities', url, fingerprint: relay, authorities: [] },
    { name: 'a relay with three, configured out of order and in capitals', url, fingerprint: relay, authorities: [a2.toUpperCase(), a0, a1] },
  ];
  const format = formatCases.map((c) => {
    const line = formatBootstrapLine(c.url, c.fingerprint, c.authorities);
    check(JSON.stringify(parseBootstrapLine(line).authorities ?? []) === JSON.stringify(auth.filter(() => c.authorities.length > 0)), `${c.name}: parses back`);
    return { ...c, line };
  });

  const withAuth = `${url} ${relay} authorities=${auth.join('+')}`;
  const plain = `ws://198.51.100.8:9001/allium ${other}`;
  const setCases: { name: string; lines: string[]; configured: string[]; code?: string }[] = [
    { name: 'no line names authorities, none configured', lines: [plain], configured: [] },
    { name: 'the only line names them, none configured', lines: [withAuth], configured: [] },
    { name: 'two lines name the same set in other orders', lines: [withAuth, `${plain} authorities=${a2}+${a1}+${a0}`], configured: [] },
    { name: 'configured, lines name none', lines: [plain], configured: [a1] },
    { name: 'configured, a line names the same set', lines: [withAuth], configured: [a2, a1.toUpperCase(), a0] },
    { name: 'configured, one line names the same set and one none', lines: [plain, withAuth], configured: [a0, a1, a2] },
    { name: 'none configured, one line names a set and one none', lines: [withAuth, plain], configured: [], code: 'ERR_CONFIG' },
    { name: 'none configured, a line of the old form first', lines: [plain, withAuth], configured: [], code: 'ERR_CONFIG' },
    { name: 'two lines name different sets', lines: [withAuth, `${plain} authorities=${a0}+${a1}+${stranger}`], configured: [], code: 'ERR_CONFIG' },
    { name: 'a line names a subset of the other', lines: [withAuth, `${plain} authorities=${a0}+${a1}`], configured: [], code: 'ERR_CONFIG' },
    { name: 'a line names a set other than the configured one', lines: [withAuth], configured: [a0, a1], code: 'ERR_CONFIG' },
  ];
  const sets = setCases.map((c) => {
    const run = (): string[] => authoritiesFor(c.lines.map(parseBootstrapLine), c.configured);
    const base = { name: c.name, lines: c.lines, configured: c.configured };
    if (c.code) return { ...base, code: expectCode(errorCodeOf(run, c.name), c.code, c.name) };
    return { ...base, authorities: run() };
  });

  return {
    description:
      'Bootstrap lines (specs/directory.md §6.7). valid: parseBootstrapLine(line) gives url, the relay fingerprint and the authorities (lowercase, ascending; null: the line names none). invalid: parseBootstrapLine(line) throws `code`. format: formatBootstrapLine(url, fingerprint, authorities) = line. sets: authoritiesFor(lines parsed, configured) = authorities, or throws `code`.',
    version: VECTORS_VERSION,
    valid,
    invalid,
    format,
    sets,
  };
}
