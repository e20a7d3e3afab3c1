/**
 * allium/relay — run a relay from code (docs/operator-guide.md covers the `allium relay` command).
 *
 *   import { initCrypto, Relay } from 'allium/relay';
 *   await initCrypto();
 *   const relay = new Relay({ listen: '0.0.0.0:9001', data_dir: '/var/lib/allium' });
 *   await relay.start();
 */
export { initCrypto } from '../crypto/index.js';
export { Relay, ALLIUM_VERSION, type RelayOptions } from './relay.js';
export { resolveRelayConfig, loadRelayConfigFile, type RelayConfig, type RelayConfigInput } from './config.js';
export { createLogger } from './logger.js';
