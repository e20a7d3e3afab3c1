/**
 * Bootstrap lines that name the network's authorities (specs/directory.md §6.7), where they are used: the client
 * takes the set as its `authorities` when it has none and every line names it, the command line does the same,
 * conflicting sets (and, at a client without authorities, lines with and without them) are ERR_CONFIG at the client,
 * the command line and the relay's configuration, a relay prints its set and warns when its
 * lines name authorities it does not follow. Malformed lines: typed errors, bounded messages.
 */
import { expect } from 'chai';
import { AlliumClient } from '../../client/client.js';
import { clientOptionsFrom } from '../../cli/client-session.js';
import { fingerprintOf, IdentityKey } from '../../crypto/keys.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { MAX_BOOTSTRAP_LINE, parseBootstrapLine, parseBridgeLine } from '../../protocol/bootstrap-line.js';
import { resolveRelayConfig } from '../../relay/config.js';
import { configWarnings } from '../../relay/notices.js';
import { tempDir } from '../../cli/local-network.js';
import { expectCode } from '../helpers/vectors.js';

const fp = (): string => IdentityKey.generate().fingerprint;

describe('bootstrap lines naming directory authorities', () => {
  let relay: string;
  let auth: string[];
  let line: string;
  let plain: string;
  before(() => {
    relay = fp();
    auth = [fp(), fp(), fp()].sort();
    line = `ws://127.0.0.1:9001/allium ${relay} authorities=${auth.join('+')}`;
    plain = `ws://127.0.0.1:9002/allium ${fp()}`;
  });

  it('a client without authorities requires those its bootstrap lines name', () => {
    const twin = `ws://127.0.0.1:9003/allium ${fp()} authorities=${[...auth].reverse().join('+')}`;
    const c = new AlliumClient({ bootstrap: [twin, line], socketFactory: nodeSocketFactory });
    expect(c.authorities).to.deep.equal(auth);
    expect(c.directory.usesAuthorities).to.equal(true);
    const empty = new AlliumClient({ bootstrap: [line], socketFactory: nodeSocketFactory, authorities: [] });
    expect(empty.authorities).to.deep.equal(auth);
  });

  it('a client given only the old form has none, as before', () => {
    const c = new AlliumClient({ bootstrap: [plain], socketFactory: nodeSocketFactory });
    expect(c.authorities).to.deep.equal([]);
    expect(c.directory.usesAuthorities).to.equal(false);
  });

  it('conflicting sets are ERR_CONFIG at the client', () => {
    const wrong = `${plain} authorities=${[auth[0]!, auth[1]!, fp()].join('+')}`;
    expectCode(() => new AlliumClient({ bootstrap: [line, wrong], socketFactory: nodeSocketFactory }), 'ERR_CONFIG');
    expectCode(() => new AlliumClient({ bootstrap: [line], socketFactory: nodeSocketFactory, authorities: auth.slice(0, 2) }), 'ERR_CONFIG');
    // the configured set, in any case and order, agrees with the line's
    const c = new AlliumClient({ bootstrap: [line], socketFactory: nodeSocketFactory, authorities: [...auth].reverse().map((a) => a.toUpperCase()) });
    expect(c.authorities).to.deep.equal(auth);
  });

  it('one planted line naming authorities among lines of the old form is ERR_CONFIG, not the whole directory', () => {
    // The attacker's authorities, in a line slipped in beside genuine lines that name none: before, that one line
    // decided whose consensus the client accepted (only the attacker's); now the mix is refused, in either order.
    const planted = `ws://127.0.0.1:9009/allium ${fp()} authorities=${[fp(), fp(), fp()].join('+')}`;
    const genuine = [plain, `ws://127.0.0.1:9004/allium ${fp()}`];
    const e = expectCode(() => new AlliumClient({ bootstrap: [...genuine, planted], socketFactory: nodeSocketFactory }), 'ERR_CONFIG');
    expect(e.message).to.match(/names no directory authorities but others name 3/);
    expectCode(() => new AlliumClient({ bootstrap: [planted, ...genuine], socketFactory: nodeSocketFactory }), 'ERR_CONFIG');
    expectCode(() => new AlliumClient({ bootstrap: [line, plain], socketFactory: nodeSocketFactory, authorities: [] }), 'ERR_CONFIG');
    const dataDir = tempDir('allium-cli-');
    expectCode(() => new AlliumClient(clientOptionsFrom({ bootstrap: [...genuine, planted], dataDir }).options), 'ERR_CONFIG');
    // With the authorities configured, a line of the old form says nothing about them: no conflict.
    expect(new AlliumClient({ bootstrap: [plain, line], socketFactory: nodeSocketFactory, authorities: auth }).authorities).to.deep.equal(auth);
    expect(new AlliumClient(clientOptionsFrom({ bootstrap: [plain, line], dataDir, authority: auth }).options).authorities).to.deep.equal(auth);
    // A relay's lines never choose its authorities: a mix is no conflict there (it warns when it follows none).
    const relayCfg = resolveRelayConfig({ bootstrap: [plain, line] });
    expect(configWarnings(relayCfg, fp()).some((w) => w.startsWith('the bootstrap lines name 3 directory authorities'))).to.equal(true);
  });

  it('fields are separated by spaces and tabs only: line breaks and other Unicode spaces are refused', () => {
    const [u, f] = plain.split(' ') as [string, string];
    expect(fingerprintOf(parseBootstrapLine(` \t${u} \t ${f}\t `).identity)).to.equal(f);
    for (const sep of ['\n', '\r\n', '\u00a0', '\u2028', '\u2029', '\u3000', '\v', '\f', '\u200b']) {
      expectCode(() => parseBootstrapLine(`${u}${sep}${f}`), 'ERR_CONFIG');
      expectCode(() => parseBootstrapLine(`${line.split(' authorities=')[0]}${sep}authorities=${auth.join('+')}`), 'ERR_CONFIG');
      expectCode(() => parseBootstrapLine(`${plain}${sep}`), 'ERR_CONFIG');
      expectCode(() => parseBridgeLine(`bridge ${u}${sep}${f} secret=${'ab'.repeat(32)}`), 'ERR_CONFIG');
    }
  });

  it('the command line does the same (no --authority: the lines decide; a conflict is refused)', () => {
    const dataDir = tempDir('allium-cli-');
    const { options } = clientOptionsFrom({ bootstrap: [line], dataDir });
    expect(new AlliumClient(options).authorities).to.deep.equal(auth);
    const { options: conflicting } = clientOptionsFrom({ bootstrap: [line], dataDir, authority: [fp()] });
    expectCode(() => new AlliumClient(conflicting), 'ERR_CONFIG');
  });

  it('ALLIUM_BOOTSTRAP splits lines at commas, which a line naming authorities does not contain', () => {
    const dataDir = tempDir('allium-cli-');
    const before = process.env['ALLIUM_BOOTSTRAP'];
    const twin = `ws://127.0.0.1:9003/allium ${fp()} authorities=${auth.join('+')}`;
    process.env['ALLIUM_BOOTSTRAP'] = `${line},${twin}`;
    try {
      const { options } = clientOptionsFrom({ bootstrap: [], dataDir });
      expect(options.bootstrap).to.deep.equal([line, twin]);
      expect(new AlliumClient(options).authorities).to.deep.equal(auth);
    } finally {
      if (before === undefined) delete process.env['ALLIUM_BOOTSTRAP'];
      else process.env['ALLIUM_BOOTSTRAP'] = before;
    }
  });

  it("a relay's configuration takes the form, refuses a set other than its own, and warns when it follows none", () => {
    expect(resolveRelayConfig({ bootstrap: [line], directory_authorities: auth }).bootstrap).to.deep.equal([line]);
    expectCode(() => resolveRelayConfig({ bootstrap: [line], directory_authorities: [fp()] }), 'ERR_CONFIG');
    expectCode(() => resolveRelayConfig({ bootstrap: [line, `${plain} authorities=${auth[0]}`] }), 'ERR_CONFIG');
    const unset = resolveRelayConfig({ bootstrap: [line] });
    const warnings = configWarnings(unset, fp());
    expect(warnings.some((w) => w.startsWith('the bootstrap lines name 3 directory authorities but directory_authorities is not set'))).to.equal(true);
    expect(configWarnings(resolveRelayConfig({ bootstrap: [line], directory_authorities: auth }), fp()).join('\n')).to.not.include('directory_authorities');
  });

  it('malformed lines: ERR_CONFIG with a bounded message, never another error', () => {
    const huge = `ws://127.0.0.1:9001/${'x'.repeat(1 << 20)} ${relay}`;
    const e = expectCode(() => parseBootstrapLine(huge), 'ERR_CONFIG');
    expect(e.message.length).to.be.below(200);
    expectCode(() => parseBridgeLine(`bridge ${huge} secret=${'ab'.repeat(32)}`), 'ERR_CONFIG');
    const plusses = `ws://127.0.0.1:9001/allium ${relay} authorities=${'+'.repeat(MAX_BOOTSTRAP_LINE - 200)}`;
    expect(expectCode(() => parseBootstrapLine(plusses), 'ERR_CONFIG').message).to.match(/more than 16 authorities/);
    for (const bad of [`${line} x`, `${line}+`, `${plain} authorities`, `${plain} AUTHORITIES=${auth[0]}`, `${plain} authorities=${auth[0]}=`]) {
      expectCode(() => parseBootstrapLine(bad), 'ERR_CONFIG');
    }
  });
});
