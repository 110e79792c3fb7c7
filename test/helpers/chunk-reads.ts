// Writes paced by the gateway's reads instead of timed pauses: the body seams of
// src/server/body-seams.ts report each chunk the gateway reads, so a test (or a test upstream)
// sends its next part only once the previous one was read as a chunk of its own. A pause only
// hopes for that, and a stalled machine coalesces the parts.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { REQUEST_CHUNK_READ, RESPONSE_CHUNK_READ, type RequestChunkRead, type ResponseChunkRead } from '../../src/server/body-seams.ts';
import { until } from './until.ts';

export interface ReadWatch {
  /** bytes the gateway read so far */
  readonly bytes: number;
  /** chunks the gateway read so far */
  readonly reads: number;
  /** Resolves once `bytes` were read (or `unless()` holds); rejects naming `what` after the `until` bound. */
  upTo(bytes: number, what: string, unless?: () => boolean): Promise<void>;
  close(): void;
}

function watch<T extends { received: number }>(name: string, mine: (m: T) => boolean): ReadWatch {
  let bytes = 0;
  let reads = 0;
  const onMessage = (m: unknown) => {
    if (!mine(m as T)) return;
    bytes = (m as T).received;
    reads++;
  };
  subscribe(name, onMessage);
  return {
    get bytes() {
      return bytes;
    },
    get reads() {
      return reads;
    },
    upTo: (n, what, unless) => until(() => `the gateway to read ${what} (read ${bytes} of ${n} bytes in ${reads} chunks)`, () => bytes >= n || unless?.() === true),
    close: () => void unsubscribe(name, onMessage),
  };
}

/** The gateway's reads of the request bodies whose request target is exactly `url`. */
export const requestReads = (url: string): ReadWatch => watch<RequestChunkRead>(REQUEST_CHUNK_READ, (m) => (m.stream as IncomingMessage).url === url);

/** The gateway's reads of the upstream response bodies (filtered relay) of requests for `path` (no query). */
export const responseReads = (path: string): ReadWatch => watch<ResponseChunkRead>(RESPONSE_CHUNK_READ, (m) => m.path === path);
