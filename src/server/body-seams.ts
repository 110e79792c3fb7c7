// Seams for tests: one diagnostics_channel message per body chunk the gateway reads, so a test
// can send its next write only once the previous one was read as a chunk of its own. Stream-mode
// tests used timed pauses between writes instead, and a stalled machine coalesced them. Free when
// nobody subscribes (a `hasSubscribers` check per chunk).
import { channel } from 'node:diagnostics_channel';
import type { Readable } from 'node:stream';

/** `readBody` took a chunk of a request body from `stream` (after its `onChunk` saw it). */
export interface RequestChunkRead {
  stream: Readable;
  /** bytes read from the stream so far, this chunk included */
  received: number;
}
export const REQUEST_CHUNK_READ = 'sentinel.request-body.chunk-read';
export const requestChunkRead = channel(REQUEST_CHUNK_READ);

/** The relay of a filtered response body took a chunk from the upstream (before the filters see it). */
export interface ResponseChunkRead {
  /** the client request's path */
  path: string;
  /** bytes read from the upstream's body so far, this chunk included */
  received: number;
}
export const RESPONSE_CHUNK_READ = 'sentinel.response-body.chunk-read';
export const responseChunkRead = channel(RESPONSE_CHUNK_READ);
