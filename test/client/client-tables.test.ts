/**
 * The client's own record of relays that failed (specs/path.md §5) holds live exclusions only: an entry goes when
 * its 60 s exclusion ends, so relays that fail once each over a long run leave nothing behind. The client has no
 * network here; its clock is injected.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { toHex } from '../../protocol/bytes.js';
import { AlliumClient } from '../../client/client.js';
import { nodeSocketFactory } from '../../net/ws-node.js';

describe('client tables', () => {
  it('failed relays are forgotten when their exclusion ends', async () => {
    const clock = { now: 1_000_000 };
    const client = new AlliumClient({ bootstrap: [], socketFactory: nodeSocketFactory, poolSize: 0, now: () => clock.now });
    const inside = client as unknown as { state: string; failed: Map<string, number> };
    inside.state = 'running';
    // 1000 relays failed a build (as linkTo and buildCircuit record them), each once.
    for (let i = 0; i < 1000; i++) inside.failed.set(toHex(crypto().random(32)), clock.now);
    const attempt = (): Promise<string> =>
      client.newCircuit({ exitPort: null }).then(
        () => 'built',
        (e: { code: string }) => e.code,
      );
    clock.now += 30_000;
    expect({ build: await attempt(), failed: inside.failed.size }).to.deep.equal({ build: 'ERR_ONION_PATH', failed: 1000 });
    clock.now += 30_000;
    expect({ build: await attempt(), failed: inside.failed.size }).to.deep.equal({ build: 'ERR_ONION_PATH', failed: 0 });
  });
});
