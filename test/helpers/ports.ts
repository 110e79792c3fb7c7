// Free loopback ports for the servers tests and benches start (one picker for both).
//
// Not `listen(0)`: the kernel hands that out from the ephemeral range (ip_local_port_range), the
// same range outgoing connections take their source ports from. Between our probe's close and the
// server's bind, a client connection (a load generator, an upstream pool) could take the port as
// its source port, and the server failed with EADDRINUSE (seen once in ~100 gateway starts of a
// bench run). Ports below (or above) the ephemeral range are never taken that way.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where ports are picked from: below the ephemeral range when there is room, else above it. */
export function pickRange(ephemeral: readonly [number, number]): readonly [number, number] {
  const [lo, hi] = ephemeral;
  if (lo - 1 >= 20_000) return [10_000, lo - 1];
  if (hi + 1 <= 55_535) return [hi + 1, 65_535];
  throw new Error(`ip_local_port_range ${lo}-${hi} leaves no room for test ports outside it`);
}

/** `/proc/sys/net/ipv4/ip_local_port_range`, or Linux's default when it cannot be read. */
export function ephemeralRange(text?: string): readonly [number, number] {
  let raw = text;
  if (raw === undefined) {
    try {
      raw = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    } catch {
      return [32_768, 60_999];
    }
  }
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(raw);
  if (!m) return [32_768, 60_999];
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  return lo <= hi ? [lo, hi] : [32_768, 60_999];
}

/** picked on first use, so a machine without room fails only the callers that need a port */
let range: readonly [number, number] | undefined;
/** ports this process handed out recently: not handed out again while the caller may not have bound yet */
const handedOut = new Set<number>();
const RECENT = 512;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A loopback port nothing listens on now, outside the ephemeral range (see above). */
export async function freePort(): Promise<number> {
  const [lo, hi] = (range ??= pickRange(ephemeralRange()));
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    if (handedOut.size > RECENT) handedOut.delete(handedOut.values().next().value!);
    return port;
  }
  throw new Error(`no free loopback port found in ${lo}-${hi} after 200 attempts`);
}
