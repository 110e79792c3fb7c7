// A small JSON GET for the API-based sources (Consul, Kubernetes) over undici, honouring the
// refresh's abort signal, with a clear error for non-2xx answers.
import { Agent, request, type Dispatcher } from 'undici';

export async function getJson(url: string, opts: { signal: AbortSignal; headers?: Record<string, string>; dispatcher?: Dispatcher }): Promise<unknown> {
  const res = await request(url, {
    method: 'GET',
    headers: { accept: 'application/json', ...(opts.headers ?? {}) },
    signal: opts.signal,
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`GET ${new URL(url).pathname}: HTTP ${res.statusCode} ${text.slice(0, 200).trim()}`);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`GET ${new URL(url).pathname}: the answer is not JSON`, { cause: e });
  }
}

/** A keep-alive agent for one source (closed with it). */
export function apiAgent(tls?: { ca?: Buffer | undefined; cert?: Buffer | undefined; key?: Buffer | undefined; rejectUnauthorized?: boolean; servername?: string }): Agent {
  return new Agent({ keepAliveTimeout: 60_000, connect: { timeout: 5000, ...(tls ?? {}) } });
}
