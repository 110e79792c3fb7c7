// The WebSocket upgrade gate (src/websocket/origin.ts): origin spelling, the route's
// websocket-allowed-origins (config errors, compiled form) and which upgrades are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configDiagnostics, configErrors } from '../../helpers/config-diagnostics.ts';
import { loadConfigText } from '../../../src/config/load.ts';
import { compileAllowedOrigins, normalizeOrigin, originAllowed, upgradeRefusal } from '../../../src/websocket/origin.ts';

const normalized: [string, string | undefined][] = [
  ['https://app.example.com', 'https://app.example.com'],
  ['HTTPS://App.Example.COM', 'https://app.example.com'],
  ['https://app.example.com:443', 'https://app.example.com'],
  ['http://app.example.com:80', 'http://app.example.com'],
  ['http://app.example.com:443', 'http://app.example.com:443'],
  ['https://app.example.com:80', 'https://app.example.com:80'],
  ['https://app.example.com:0443', 'https://app.example.com'],
  ['https://app.example.com:8443', 'https://app.example.com:8443'],
  ['wss://app.example.com:443', 'wss://app.example.com'],
  ['http://127.0.0.1:3000', 'http://127.0.0.1:3000'],
  ['http://[::1]:3000', 'http://[::1]:3000'],
  ['http://[FE80::1]', 'http://[fe80::1]'],
  ['chrome-extension://abcdefgh', 'chrome-extension://abcdefgh'],
  ['null', undefined],
  ['', undefined],
  ['https://app.example.com/', undefined],
  ['https://app.example.com/path', undefined],
  ['https://app.example.com?x', undefined],
  ['https://user@app.example.com', undefined],
  ['https://app.example.com:', undefined],
  ['https://app.example.com:65536', undefined],
  ['https://app.example.com.', undefined],
  ['https://', undefined],
  ['app.example.com', undefined],
  ['//app.example.com', undefined],
  ['https://app.example.com, https://evil.example', undefined],
  [' https://app.example.com', undefined],
  ['https://app..example.com', undefined],
];

for (const [input, want] of normalized) {
  test(`normalizeOrigin(${JSON.stringify(input)}) = ${JSON.stringify(want)}`, () => assert.equal(normalizeOrigin(input), want));
}

const allowed = compileAllowedOrigins(['https://App.Example.com', 'http://localhost:3000', 'https://admin.example.com:443']);

const matches: [string | undefined, boolean][] = [
  [undefined, true], // no Origin: not a browser
  ['https://app.example.com', true],
  ['HTTPS://APP.EXAMPLE.COM', true],
  ['https://app.example.com:443', true],
  ['https://admin.example.com', true],
  ['http://localhost:3000', true],
  ['http://app.example.com', false], // scheme is part of the origin
  ['https://app.example.com:8443', false],
  ['http://localhost', false],
  ['http://localhost:3001', false],
  ['https://app.example.com/', false], // browsers send no trailing slash; nothing else does either
  ['https://evil.example', false],
  ['https://app.example.com.evil.example', false],
  ['https://evilapp.example.com', false],
  ['null', false],
  ['NULL', false],
  ['', false],
  ['https://app.example.com, https://evil.example', false], // two Origin headers, joined by Node
  ['https://evil.example, https://app.example.com', false],
];

for (const [origin, want] of matches) {
  test(`originAllowed(${JSON.stringify(origin)}) = ${want}`, () => assert.equal(originAllowed(allowed, origin), want));
}

test('upgradeRefusal: not an upgrade, not enabled, foreign origin, unchecked', () => {
  const on = { websocket: true, websocketOrigins: allowed };
  const ws = (origin?: string) => ({ upgrade: 'WebSocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...(origin === undefined ? {} : { origin }) });
  assert.equal(upgradeRefusal(on, { origin: 'https://evil.example' }), undefined, 'a plain request is not gated');
  assert.equal(upgradeRefusal(on, { upgrade: 'h2c', origin: 'https://evil.example' }), undefined, 'another upgrade token is not gated');
  assert.equal(upgradeRefusal({ websocket: false, websocketOrigins: undefined }, ws())?.reason, 'websocket_not_enabled');
  assert.equal(upgradeRefusal({ websocket: false, websocketOrigins: allowed }, ws('https://app.example.com'))?.reason, 'websocket_not_enabled');
  assert.equal(upgradeRefusal(on, ws('https://evil.example'))?.reason, 'websocket_origin_not_allowed');
  assert.equal(upgradeRefusal(on, ws('null'))?.reason, 'websocket_origin_not_allowed');
  assert.equal(upgradeRefusal(on, ws('https://app.example.com')), undefined);
  assert.equal(upgradeRefusal(on, ws()), undefined);
  assert.equal(upgradeRefusal({ websocket: true, websocketOrigins: undefined }, ws('https://evil.example')), undefined, 'no key: unchecked (backward-compatible)');
  // session 22: the handshake key the gateway checks the upstream's 101 against
  for (const k of [undefined, '', 'abc', 'dGhlIHNhbXBsZSBub25jZR==', 'dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==']) {
    const h = { upgrade: 'websocket', ...(k === undefined ? {} : { 'sec-websocket-key': k }) };
    const r = upgradeRefusal(on, h);
    assert.deepEqual([r?.reason, r?.status], ['websocket_bad_key', 400], String(k));
  }
});

const withRoute = (keys: string) => `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; ${keys} } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;
const key = 'routes > route "r" > websocket-allowed-origins';

test('websocket-allowed-origins: accepted values and errors', () => {
  const cases: Array<[string, string, string[]]> = [
    ['origins', 'websocket #true; websocket-allowed-origins "https://app.example.com" "http://localhost:3000"', []],
    ['trailing slash', 'websocket #true; websocket-allowed-origins "https://app.example.com/"', [`${key}: "https://app.example.com/" is not an origin: write scheme://host[:port], without a path or trailing slash (e.g. "https://app.example.com")`]],
    ['a path', 'websocket #true; websocket-allowed-origins "https://app.example.com/chat"', [`${key}: "https://app.example.com/chat" is not an origin: write scheme://host[:port], without a path or trailing slash (e.g. "https://app.example.com")`]],
    ['no scheme', 'websocket #true; websocket-allowed-origins "app.example.com"', [`${key}: "app.example.com" is not an origin: write scheme://host[:port], without a path or trailing slash (e.g. "https://app.example.com")`]],
    ['null', 'websocket #true; websocket-allowed-origins "null"', [`${key}: "null" cannot be allowed: any page can make its WebSocket carry Origin: null (a sandboxed iframe, a data: URL), so it would let every site in`]],
    ['*', 'websocket #true; websocket-allowed-origins "*"', [`${key}: "*" would let every site in: remove websocket-allowed-origins to leave the Origin unchecked`]],
    ['a boolean', 'websocket #true; websocket-allowed-origins #true', [`${key}: expected a string, got boolean true`]],
    ['no argument', 'websocket #true; websocket-allowed-origins', [`${key}: expected one or more arguments`]],
  ];
  for (const [name, keys, want] of cases) assert.deepEqual(configErrors(withRoute(keys)), want, name);
});

test('websocket-allowed-origins: compiled normalised; unset leaves the Origin unchecked', () => {
  const pick = (keys: string) => loadConfigText(withRoute(keys)).routesById.get('r')!.websocketOrigins;
  assert.deepEqual([...pick('websocket #true; websocket-allowed-origins "HTTPS://App.example.com:443" "http://x:8080"')!], ['https://app.example.com', 'http://x:8080']);
  assert.equal(pick('websocket #true'), undefined);
});

test('websocket-allowed-origins without websocket #true: a warning (every upgrade is refused anyway)', () => {
  assert.deepEqual(configDiagnostics(withRoute('websocket-allowed-origins "https://app.example.com"')).warnings, [`${key}: has no effect without websocket #true (every upgrade is refused)`]);
  assert.deepEqual(configDiagnostics(withRoute('websocket #true; websocket-allowed-origins "https://app.example.com"')).warnings, []);
});
