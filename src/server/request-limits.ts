// Per-request limits checked in the front half (docs/security.md "Configuration strictness"):
// `limits { max-header-name-bytes; max-header-value-bytes }` -> 431, `max-in-flight-requests`
// (and `-per-worker`: each worker is its own process) -> 503.

export const DEFAULT_MAX_HEADER_NAME_BYTES = 256;
export const DEFAULT_MAX_HEADER_VALUE_BYTES = 4096;

/** Which part of which header is over its limit (bytes as received: latin1 length), or undefined. */
export function oversizedHeader(rawHeaders: readonly string[], maxName: number, maxValue: number): { part: 'name' | 'value'; name: string } | undefined {
  // A string's latin1 byte length is its length (one byte per UTF-16 unit): what
  // Buffer.byteLength(s, 'latin1') returns, without its argument and encoding checks per field.
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length > maxName) return { part: 'name', name: name.slice(0, 64) };
    if (rawHeaders[i + 1]!.length > maxValue) return { part: 'value', name };
  }
  return undefined;
}

/** The in-flight cap of this process: the smaller of the two settings, undefined when neither is set. */
export function inFlightCap(limits: { 'max-in-flight-requests'?: number | undefined; 'max-in-flight-requests-per-worker'?: number | undefined }): number | undefined {
  const caps = [limits['max-in-flight-requests'], limits['max-in-flight-requests-per-worker']].filter((x): x is number => x !== undefined);
  return caps.length > 0 ? Math.min(...caps) : undefined;
}
