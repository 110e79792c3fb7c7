// What a caller and later rules can see of a transaction, for tests that run the same requests
// through two engines of the same rules with an evaluation shortcut on and off (fold.test.ts,
// groups.test.ts): the intervention, the matched rules (logged ones with messages, data and
// matched values; nolog ones by id), and, through PROBES, TX and MATCHED_VAR(S) at the end of
// each phase.
import type { Waf } from '../../../src/waf/index.ts';

export interface Req {
  uri: string;
  headers?: [string, string][];
  body?: string;
  /** Rule ids removed before phase 1 (as a scoped exclusion does). */
  remove?: string[];
  /** Body sent before phase 1 runs (an early 413 with SecRequestBodyLimitAction Reject). */
  bodyFirst?: boolean;
  /** No response: phases 3-4 run from processLogging, as for a request-side-only agent. */
  noResponse?: boolean;
  /** The response's headers (default a text/html Content-Type). */
  responseHeaders?: [string, string][];
}

/** Rules every case ends with: they log TX in order, MATCHED_VAR(S) and HIGHEST_SEVERITY at the
 * end of each phase, so any difference in state shows in the matched rules. */
export const PROBES = [1, 2, 3, 4, 5]
  .map((p) => `SecRule TX "@unconditionalMatch" "id:99${p}1,phase:${p},pass,log,msg:'tx'"
SecRule MATCHED_VARS "@unconditionalMatch" "id:99${p}2,phase:${p},pass,log,msg:'mv',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule HIGHEST_SEVERITY "@unconditionalMatch" "id:99${p}3,phase:${p},pass,log,msg:'hs'"`)
  .join('\n');

export function outcome(waf: Waf, r: Req): string {
  const headers: [string, string][] = [['Host', 'example.com'], ...(r.headers ?? [])];
  const tx = waf.newTransaction({ clientIp: '10.0.0.1', clientPort: 4000, serverPort: 80, method: r.body === undefined ? 'GET' : 'POST', uri: r.uri, protocol: 'HTTP/1.1', headers });
  if (r.remove) tx.removeRules(r.remove, []);
  const out: unknown[] = [];
  let it = r.bodyFirst && r.body !== undefined ? tx.appendRequestBody(r.body) : undefined;
  it ??= tx.processRequestHeaders();
  if (!it && r.body !== undefined && !r.bodyFirst) it = tx.appendRequestBody(r.body);
  it ??= tx.processRequestBody();
  if (!r.noResponse) {
    it ??= tx.processResponseHeaders(200, r.responseHeaders ?? [['Content-Type', 'text/html']]);
    if (!it) tx.processResponseBody();
  }
  tx.processLogging();
  out.push(tx.interrupted, tx.engineMode);
  out.push(tx.matchedRules().map((m) => [m.id, m.phase, m.msg, m.logdata, m.matched, m.disruptive]));
  out.push(tx.allMatchedRules().map((m) => m.id));
  return JSON.stringify(out);
}
