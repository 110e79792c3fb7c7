// OWASP CRS regression suite (go-ftw YAML format), run in-process against the engine.
// Data: $CRS_DIR (default ../shared/conformance/crs), read at run time, never copied.
// Each test stage becomes one transaction on a WAF loaded once with the regression setup the
// CRS project uses for go-ftw (PL4, DetectionOnly, its argument limits). The backend go-ftw
// talks to (albedo) is emulated: /reflect answers with the status, headers and body given in
// the JSON request body; every other path answers 200 text/plain.
//
// Env: CRS_DIR, CRS_TEST_FILTER (regex over "<rule>-<test>"), CRS_VERBOSE=1 (every failure).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parse as parseYaml } from 'yaml';

import { loadWaf, type MatchedRule, type Waf } from '../../../src/waf/index.ts';
import type { SuiteResult } from '../types.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const crsDir = process.env.CRS_DIR ?? join(repoRoot, '..', 'shared', 'conformance', 'crs');
const overridesPath = process.env.CRS_OVERRIDES ?? join(repoRoot, 'test', 'conformance', 'crs-overrides.yaml');

/** The engine setup of the CRS regression suite (tests/regression README, rule 900005). */
export const regressionSetup = `
SecAction "id:900005,phase:1,nolog,pass,ctl:ruleEngine=DetectionOnly,ctl:ruleRemoveById=910000,\\
  setvar:tx.blocking_paranoia_level=4,setvar:tx.crs_validate_utf8_encoding=1,\\
  setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,\\
  setvar:tx.max_num_args=255,setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535"
SecRule REQUEST_HEADERS:X-CRS-Test "@rx ^.*$" "id:999999,phase:1,pass,t:none,log,msg:'X-CRS-Test %{MATCHED_VAR}'"
`;

interface StageInput {
  method?: string;
  uri?: string;
  version?: string;
  headers?: Record<string, string | number>;
  data?: string;
  encoded_request?: string;
  autocomplete_headers?: boolean;
  dest_addr?: string;
  port?: number;
}

interface StageOutput {
  status?: number | number[];
  log?: { expect_ids?: number[]; no_expect_ids?: number[]; match_regex?: string; no_match_regex?: string };
  log_contains?: string;
  no_log_contains?: string;
  expect_error?: boolean;
}

interface FtwTest {
  test_id: number;
  stages: { input?: StageInput; output?: StageOutput; stage?: { input: StageInput; output: StageOutput } }[];
}

interface FtwFile {
  rule_id?: number;
  tests: FtwTest[];
}

interface Override {
  rule_id: number;
  test_ids?: number[];
  reason: string;
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (name.endsWith('.yaml') || name.endsWith('.yml')) out.push(p);
  }
  return out;
}

interface HttpRequest {
  method: string;
  uri: string;
  protocol: string;
  headers: [string, string][];
  body: string;
}

/** Parses a raw HTTP/1.x request (go-ftw's encoded_request), de-chunking the body. */
export function parseRawRequest(raw: string): HttpRequest {
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = headEnd < 0 ? raw : raw.slice(0, headEnd);
  const body = headEnd < 0 ? '' : raw.slice(headEnd + 4);
  const lines = head.split('\r\n');
  const [method = '', uri = '', protocol = ''] = (lines[0] ?? '').split(' ');
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const c = line.indexOf(':');
    if (c > 0) headers.push([line.slice(0, c), line.slice(c + 1).trim()]);
  }
  return frontEnd({ method, uri, protocol, headers, body });
}

function dechunk(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const eol = s.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = Number.parseInt(s.slice(i, eol), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
  return out;
}

/** Go's url.QueryEscape over bytes: unreserved bytes kept, space -> '+', the rest %XX. */
function queryEscape(bytes: string): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    const ch = bytes[i]!;
    if (/[A-Za-z0-9\-_.~]/.test(ch)) out += ch;
    else if (c === 0x20) out += '+';
    else out += '%' + c.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** go-ftw url-encodes form data whose unescaping would change nothing (no '%' and no '+'). */
function encodeFormData(data: string): string {
  if (/[%+]/.test(data)) return data;
  return data
    .split('&')
    .map((token) => {
      const eq = token.indexOf('=');
      return eq < 0 ? queryEscape(token) : `${queryEscape(token.slice(0, eq))}=${queryEscape(token.slice(eq + 1))}`;
    })
    .join('&');
}

/** Builds the request go-ftw would send for a stage (ftwhttp/request.go BuildRequest). */
export function requestFromStage(input: StageInput): HttpRequest {
  if (input.encoded_request) {
    return parseRawRequest(Buffer.from(input.encoded_request.replace(/\s+/g, ''), 'base64').toString('latin1'));
  }
  // go-ftw keeps one value per header name, names compared case-sensitively, written sorted.
  const bytes = (t: string): string => Buffer.from(t, 'utf8').toString('latin1');
  const headers = new Map<string, string>(Object.entries(input.headers ?? {}).map(([k, v]) => [bytes(k), bytes(String(v))]));
  const add = (k: string, v: string): void => {
    if (!headers.get(k)) headers.set(k, v);
  };
  // YAML text goes out as UTF-8 bytes; the engine works on bytes as latin1 chars.
  let body = input.data === undefined || input.data === null ? '' : bytes(renderTemplate(String(input.data)));
  const method = input.method ?? 'GET';
  const auto = input.autocomplete_headers !== false;
  if (body.length > 0 && auto) {
    add('Content-Type', 'application/x-www-form-urlencoded');
    if (headers.get('Content-Type') === 'application/x-www-form-urlencoded') body = encodeFormData(body);
  }
  if ((headers.get('Content-Type') ?? '').startsWith('multipart/form-data;')) body = body.replace(/\n/g, '\r\n');
  if (auto) {
    add('Connection', 'close');
    if (body.length > 0 || /^POST|PUT|PATCH|DELETE$/.test(method)) add('Content-Length', String(body.length));
  }
  return frontEnd({
    method,
    uri: bytes(input.uri ?? '/'),
    protocol: input.version ?? 'HTTP/1.1',
    headers: [...headers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    body,
  });
}

/** go-ftw renders data as a Go template; the CRS tests only use `{{ "x" | repeat N }}`. */
function renderTemplate(data: string): string {
  return data.replace(/\{\{\s*"([^"]*)"\s*\|\s*repeat\s+(\d+)\s*\}\}/g, (_m, text: string, n: string) => text.repeat(Number(n)));
}

/**
 * What the HTTP server in front of the WAF does to the message (RFC 9112 framing): with
 * Transfer-Encoding the body is de-chunked and Content-Length dropped; without either
 * header a request has no body. */
function frontEnd(req: HttpRequest): HttpRequest {
  const has = (n: string): boolean => req.headers.some(([k]) => k.toLowerCase() === n);
  const te = req.headers.find(([k]) => k.toLowerCase() === 'transfer-encoding')?.[1].toLowerCase();
  if (te === 'chunked') {
    return { ...req, headers: req.headers.filter(([k]) => k.toLowerCase() !== 'content-length'), body: dechunk(req.body) };
  }
  if (!has('content-length')) return { ...req, body: '' };
  return req;
}

/** What the emulated backend answers. */
function backendResponse(req: HttpRequest): { status: number; headers: [string, string][]; body: string } {
  const path = req.uri.split('?')[0];
  if (path === '/reflect') {
    try {
      const spec = JSON.parse(Buffer.from(req.body, 'latin1').toString('utf8')) as {
        status?: number;
        headers?: Record<string, string>;
        body?: string;
      };
      const headers: [string, string][] = Object.entries(spec.headers ?? {});
      const body = Buffer.from(spec.body ?? '', 'utf8').toString('latin1');
      // Go's net/http sniffs a Content-Type when the handler sets none.
      if (!headers.some(([k]) => k.toLowerCase() === 'content-type')) {
        headers.push(['Content-Type', /^\s*<(?:!doctype html|html|head|body|script|title|div|p|table|br|a|b)\b/i.test(body) ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8']);
      }
      return { status: spec.status ?? 200, headers, body };
    } catch {
      // not a reflect spec: fall through to the default answer
    }
  }
  return { status: 200, headers: [['Content-Type', 'text/plain; charset=utf-8']], body: '' };
}

/** ModSecurity writes control and non-ASCII bytes of log fields as \xHH. */
function logEscape(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** ModSecurity-style error-log lines, for match_regex / log_contains checks. */
function logLines(rules: MatchedRule[]): string {
  return rules
    .map((r) => {
      const tags = r.tags.map((t) => ` [tag "${t}"]`).join('');
      const sev = r.severity === undefined ? '' : ` [severity "${r.severity}"]`;
      return `[id "${r.id}"] [msg "${logEscape(r.msg)}"] [data "${logEscape(r.logdata)}"]${sev}${tags}`;
    })
    .join('\n');
}

export interface StageOutcome {
  ok: boolean;
  why?: string;
}

export function runStage(waf: Waf, input: StageInput, output: StageOutput): StageOutcome {
  if (output.expect_error) return { ok: false, why: 'expects a transport error (no HTTP front end in-process)' };
  const req = requestFromStage(input);
  const tx = waf.newTransaction({
    clientIp: '127.0.0.1',
    clientPort: 40000,
    serverPort: input.port ?? 80,
    method: req.method,
    uri: req.uri,
    protocol: req.protocol,
    headers: req.headers,
  });
  let status = 200;
  let it = tx.processRequestHeaders();
  if (!it && req.body.length) it = tx.appendRequestBody(req.body);
  if (!it) it = tx.processRequestBody();
  if (!it) {
    const resp = backendResponse(req);
    status = resp.status;
    it = tx.processResponseHeaders(resp.status, resp.headers);
    if (!it) {
      tx.appendResponseBody(resp.body);
      it = tx.processResponseBody();
    }
  }
  tx.processLogging();
  if (it) status = it.status;
  const logged = tx.matchedRules();
  const ids = new Set(logged.map((m) => m.id));
  const problems: string[] = [];
  const log = output.log ?? {};
  for (const id of log.expect_ids ?? []) if (!ids.has(id)) problems.push(`expected ${id}`);
  for (const id of log.no_expect_ids ?? []) if (ids.has(id)) problems.push(`unexpected ${id}`);
  const text = logLines(logged);
  if (log.match_regex && !new RegExp(log.match_regex).test(text)) problems.push(`log does not match /${log.match_regex}/`);
  if (log.no_match_regex && new RegExp(log.no_match_regex).test(text)) problems.push(`log matches /${log.no_match_regex}/`);
  if (output.log_contains && !new RegExp(output.log_contains).test(text)) problems.push(`log lacks /${output.log_contains}/`);
  if (output.no_log_contains && new RegExp(output.no_log_contains).test(text)) problems.push(`log has /${output.no_log_contains}/`);
  if (output.status !== undefined) {
    const want = Array.isArray(output.status) ? output.status : [output.status];
    if (!want.includes(status)) problems.push(`status ${status}, expected ${want.join('|')}`);
  }
  if (problems.length === 0) return { ok: true };
  return { ok: false, why: `${problems.join('; ')} (matched: ${[...ids].join(',')})` };
}

export function loadOverrides(path: string): Map<string, string> {
  const doc = parseYaml(readFileSync(path, 'utf8')) as { test_overrides?: Override[] } | null;
  const out = new Map<string, string>();
  for (const o of doc?.test_overrides ?? []) {
    if (!o.reason) throw new Error(`${path}: override for rule ${o.rule_id} has no reason`);
    for (const t of o.test_ids ?? []) out.set(`${o.rule_id}-${t}`, o.reason);
  }
  return out;
}

export async function run(): Promise<SuiteResult> {
  const testsDir = join(crsDir, 'tests', 'regression', 'tests');
  try {
    statSync(testsDir);
  } catch {
    throw new Error(`CRS regression tests not found at ${testsDir}: set CRS_DIR to a CRS v4 checkout (rules/, tests/regression/tests/)`);
  }
  const overrides = loadOverrides(overridesPath);
  const filter = process.env.CRS_TEST_FILTER ? new RegExp(process.env.CRS_TEST_FILTER) : undefined;
  const verbose = process.env.CRS_VERBOSE === '1';
  const started = Date.now();
  const waf = loadWaf({ mode: 'detection', crsDir, directives: regressionSetup });
  const loadMs = Date.now() - started;
  const result = { passed: 0, failed: 0, skipped: 0 };
  const failures: string[] = [];
  for (const file of yamlFiles(testsDir)) {
    const doc = parseYaml(readFileSync(file, 'utf8')) as FtwFile | null;
    if (!doc) continue;
    const ruleId = doc.rule_id ?? Number(/(\d{6})/.exec(file)?.[1]);
    for (const t of doc.tests ?? []) {
      const name = `${ruleId}-${t.test_id}`;
      if (filter && !filter.test(name)) continue;
      if (overrides.has(name)) {
        result.skipped++;
        continue;
      }
      let outcome: StageOutcome = { ok: true };
      try {
        for (const s of t.stages) {
          const input = s.input ?? s.stage?.input ?? {};
          const output = s.output ?? s.stage?.output ?? {};
          outcome = runStage(waf, input, output);
          if (!outcome.ok) break;
        }
      } catch (e) {
        outcome = { ok: false, why: `threw: ${(e as Error).stack ?? String(e)}` };
      }
      if (outcome.ok) result.passed++;
      else {
        result.failed++;
        failures.push(`  FAIL ${name}: ${outcome.why}`);
      }
    }
  }
  const shown = verbose ? failures : failures.slice(0, 40);
  for (const f of shown) console.log(f);
  if (shown.length < failures.length) console.log(`  ... ${failures.length - shown.length} more (CRS_VERBOSE=1 shows all)`);
  console.log(`crs: rules loaded in ${loadMs} ms (${waf.ruleCount} rules); ${result.passed + result.failed} tests run in ${Date.now() - started - loadMs} ms`);
  return result;
}
