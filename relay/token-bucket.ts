/** The relay's rate limits are token buckets of protocol/token-bucket.ts (shared with the client's CREATE pacer). */
export { TokenBucket } from '../protocol/token-bucket.js';
