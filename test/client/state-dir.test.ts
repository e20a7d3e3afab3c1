/**
 * Where a Node client keeps its state by default (client/storage-node.ts): ALLIUM_STATE_DIR, else
 * $XDG_STATE_HOME/allium (an absolute one only, as the XDG spec says), else ~/.local/state/allium; and the Node
 * client uses it unless given `storage` or `stateDir: false`.
 */
import { expect } from 'chai';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AlliumClient } from '../../client/node-client.js';
import { defaultStateDir } from '../../client/storage-node.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { tempDir } from '../helpers/network.js';

describe('client state directory (Node)', () => {
  it('ALLIUM_STATE_DIR, then an absolute XDG_STATE_HOME, then ~/.local/state/allium', () => {
    expect(defaultStateDir({ ALLIUM_STATE_DIR: '/srv/a', XDG_STATE_HOME: '/x' }, '/home/u')).to.equal('/srv/a');
    expect(defaultStateDir({ XDG_STATE_HOME: '/x/state' }, '/home/u')).to.equal('/x/state/allium');
    expect(defaultStateDir({ XDG_STATE_HOME: 'relative' }, '/home/u')).to.equal('/home/u/.local/state/allium');
    expect(defaultStateDir({}, '/home/u')).to.equal('/home/u/.local/state/allium');
  });

  it('the Node client persists there by default; stateDir picks another place; false keeps state in memory', async () => {
    const dir = tempDir('allium-state-');
    const previous = process.env['ALLIUM_STATE_DIR'];
    process.env['ALLIUM_STATE_DIR'] = join(dir, 'default');
    try {
      const make = (o: { stateDir?: string | false }): AlliumClient => new AlliumClient({ bootstrap: [], socketFactory: nodeSocketFactory, ...o });
      // Loading the guards waits for the storage's directory (a client with no storage has none to wait for).
      await make({ stateDir: false }).guards.load();
      expect(existsSync(join(dir, 'default')), 'stateDir: false touches no directory').to.equal(false);
      await make({ stateDir: join(dir, 'chosen') }).guards.load();
      expect(existsSync(join(dir, 'chosen'))).to.equal(true);
      expect(existsSync(join(dir, 'default'))).to.equal(false);
      await make({}).guards.load();
      expect(existsSync(join(dir, 'default')), 'the default state directory').to.equal(true);
      expect(statSync(join(dir, 'default')).mode & 0o777).to.equal(0o700);
    } finally {
      if (previous === undefined) delete process.env['ALLIUM_STATE_DIR'];
      else process.env['ALLIUM_STATE_DIR'] = previous;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
