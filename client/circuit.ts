/** Client circuits live in net/circuit.ts (relays build one-hop circuits for replication too). */
export * from '../net/circuit.js';
