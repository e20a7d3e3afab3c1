/**
 * sybil_admission (relay/config.ts, specs/directory.md §5.5): on by default, and it can be turned off only on a closed
 * test network, so a configuration mistake cannot open a public relay's directory to made-up relays.
 */
import { expect } from 'chai';
import { resolveRelayConfig } from '../../relay/config.js';
import { isAlliumError } from '../../protocol/errors.js';

function refusal(input: unknown): string | null {
  try {
    resolveRelayConfig(input);
    return null;
  } catch (e) {
    return isAlliumError(e) ? `${e.code}: ${e.message}` : String(e);
  }
}

describe('relay configuration: sybil_admission', () => {
  it('is on by default', () => {
    expect(resolveRelayConfig({}).sybil_admission).to.equal(true);
  });

  it('is refused off on a public relay, and allowed off with allow_private_addresses', () => {
    expect(refusal({ sybil_admission: false })).to.match(/^ERR_CONFIG: sybil_admission: may be turned off only on a closed test network/);
    expect(resolveRelayConfig({ sybil_admission: false, allow_private_addresses: true }).sybil_admission).to.equal(false);
  });
});
