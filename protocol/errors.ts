/**
 * The error hierarchy, for the protocol layer and everything above it. It is defined in errors/ — the one module
 * below crypto/, which imports nothing — so that crypto/ can throw Allium's errors without importing upwards.
 */
export * from '../errors/index.js';
