/** Mocha root hooks: initialise the crypto facade once for every test file. */
import { initCrypto } from '../../crypto/index.js';

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    await initCrypto();
  },
};
