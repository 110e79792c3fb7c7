// A transaction's request set-up (Transaction.setRequest): what the collections and scalars hold
// for the edges of a request line and headers, pinned value by value, and the regex-free helpers
// against the regexes they replace (session 23).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { wafFromText, type NewTransactionInput } from '../../../src/waf/index.ts';
import { withoutPort } from '../../../src/waf/engine/transaction.ts';
import { looseCookiePairs } from '../../../src/waf/bodies/cookie.ts';

const waf = wafFromText(`SecRuleEngine On
SecRequestBodyAccess On
SecRule ARGS_GET|ARGS_GET_NAMES|ARGS|ARGS_NAMES "@rx ^" "id:1,phase:1,pass,log,t:none"
SecRule REQUEST_COOKIES|REQUEST_COOKIES_NAMES "@rx ^" "id:2,phase:1,pass,log,t:none"
SecRule SERVER_NAME|REQUEST_URI|REQUEST_FILENAME|REQUEST_BASENAME|QUERY_STRING|REQBODY_PROCESSOR "@rx ^" "id:3,phase:1,pass,log,t:none"
SecRule REQUEST_HEADERS|REQUEST_HEADERS_NAMES "@rx ^" "id:4,phase:1,pass,log,t:none"`);

function vars(over: Partial<NewTransactionInput>): Record<number, string[]> {
  const tx = waf.newTransaction({ clientIp: '192.0.2.1', clientPort: 1234, serverPort: 80, method: 'GET', uri: '/', protocol: 'HTTP/1.1', headers: [], ...over });
  tx.processRequestHeaders();
  const out: Record<number, string[]> = {};
  for (const m of tx.matchedRules()) out[m.id] = m.matched.map((d) => `${d.variable}=${d.value}`);
  return out;
}

describe('request set-up', () => {
  it('a flat header list (name, value, ...) sets up what the same (name, value) pairs do', () => {
    const lists: [string, string][][] = [
      [],
      [['Host', 'Shop.test:8080'], ['Cookie', 'a=1; b=2'], ['content-type', 'application/x-www-form-urlencoded'], ['x-a', '1'], ['x-a', '2']],
      [['cookie', 'a=again'], ['HOST', 'h'], ['Content-Type', 'multipart/form-data; boundary=x'], ['', ''], ['x', '']],
    ];
    for (const pairs of lists) {
      const want = vars({ uri: '/p?a=1', headers: pairs });
      assert.deepEqual(vars({ uri: '/p?a=1', headerList: pairs.flat() }), want, JSON.stringify(pairs));
      // headerList wins over headers when both are given
      assert.deepEqual(vars({ uri: '/p?a=1', headers: [['host', 'ignored']], headerList: pairs.flat() }), want, JSON.stringify(pairs));
    }
  });

  it('query strings: duplicate keys, empty values and names, bare names, malformed escapes', () => {
    const v = vars({ uri: '/p?a=1&a=2&&=v&b=&c&d=%zz%4&e=%41+%2B&f=x=y' });
    assert.deepEqual(v[1], [
      'ARGS_GET:a=1', 'ARGS_GET:a=2', 'ARGS_GET:=v', 'ARGS_GET:b=', 'ARGS_GET:c=', 'ARGS_GET:d=%zz%4', 'ARGS_GET:e=A +', 'ARGS_GET:f=x=y',
      'ARGS_GET_NAMES:a=a', 'ARGS_GET_NAMES:a=a', 'ARGS_GET_NAMES:=', 'ARGS_GET_NAMES:b=b', 'ARGS_GET_NAMES:c=c', 'ARGS_GET_NAMES:d=d', 'ARGS_GET_NAMES:e=e', 'ARGS_GET_NAMES:f=f',
      'ARGS:a=1', 'ARGS:a=2', 'ARGS:=v', 'ARGS:b=', 'ARGS:c=', 'ARGS:d=%zz%4', 'ARGS:e=A +', 'ARGS:f=x=y',
      'ARGS_NAMES:a=a', 'ARGS_NAMES:a=a', 'ARGS_NAMES:=', 'ARGS_NAMES:b=b', 'ARGS_NAMES:c=c', 'ARGS_NAMES:d=d', 'ARGS_NAMES:e=e', 'ARGS_NAMES:f=f',
    ]);
    assert.equal(vars({ uri: '/p?' })[1], undefined);
    assert.equal(vars({ uri: '/p' })[1], undefined);
    assert.deepEqual(vars({ uri: '/p?&&' })[3], ['REQUEST_URI=/p?&&', 'REQUEST_FILENAME=/p', 'REQUEST_BASENAME=p', 'QUERY_STRING=&&']);
  });

  it('absolute-form and origin-form targets', () => {
    assert.deepEqual(vars({ uri: 'http://h.test:81/a%2Fb/c.php?x=1' })[3], [
      'REQUEST_URI=/a%2Fb/c.php?x=1', 'REQUEST_FILENAME=/a/b/c.php', 'REQUEST_BASENAME=c.php', 'QUERY_STRING=x=1',
    ]);
    assert.deepEqual(vars({ uri: 'HTTPS://h.test' })[3], ['REQUEST_URI=/', 'REQUEST_FILENAME=/', 'REQUEST_BASENAME=', 'QUERY_STRING=']);
    assert.deepEqual(vars({ uri: '//h.test/x' })[3], ['REQUEST_URI=//h.test/x', 'REQUEST_FILENAME=//h.test/x', 'REQUEST_BASENAME=x', 'QUERY_STRING=']);
    assert.deepEqual(vars({ uri: '*' })[3], ['REQUEST_URI=*', 'REQUEST_FILENAME=*', 'REQUEST_BASENAME=*', 'QUERY_STRING=']);
  });

  it('cookies with odd spellings', () => {
    const v = vars({ headers: [['Cookie', ' a=1;\tb=2;;c; =d;e=f=g; \t h = 3 ;'], ['cookie', 'a=again']] });
    assert.deepEqual(v[2], [
      'REQUEST_COOKIES:a=1', 'REQUEST_COOKIES:b=2', 'REQUEST_COOKIES:c=', 'REQUEST_COOKIES:=d', 'REQUEST_COOKIES:e=f=g', 'REQUEST_COOKIES:h = 3 ', 'REQUEST_COOKIES:a=again',
      'REQUEST_COOKIES_NAMES:a=a', 'REQUEST_COOKIES_NAMES:b=b', 'REQUEST_COOKIES_NAMES:c=c', 'REQUEST_COOKIES_NAMES:=', 'REQUEST_COOKIES_NAMES:e=e', 'REQUEST_COOKIES_NAMES:h =h ', 'REQUEST_COOKIES_NAMES:a=a',
    ]);
  });

  it('header case: the first Content-Type decides the body processor, Host gives SERVER_NAME without a port', () => {
    const v = vars({ headers: [['HOST', 'Shop.test:8080'], ['CONTENT-TYPE', 'Application/X-WWW-Form-Urlencoded; charset=utf-8'], ['content-type', 'multipart/form-data; boundary=x']] });
    assert.deepEqual(v[3], ['SERVER_NAME=Shop.test', 'REQUEST_URI=/', 'REQUEST_FILENAME=/', 'REQUEST_BASENAME=', 'QUERY_STRING=', 'REQBODY_PROCESSOR=URLENCODED']);
    assert.deepEqual(v[4], [
      'REQUEST_HEADERS:HOST=Shop.test:8080', 'REQUEST_HEADERS:CONTENT-TYPE=Application/X-WWW-Form-Urlencoded; charset=utf-8', 'REQUEST_HEADERS:content-type=multipart/form-data; boundary=x',
      'REQUEST_HEADERS_NAMES:HOST=HOST', 'REQUEST_HEADERS_NAMES:CONTENT-TYPE=CONTENT-TYPE', 'REQUEST_HEADERS_NAMES:content-type=content-type',
    ]);
    assert.deepEqual(vars({ headers: [['Content-Type', 'multipart/form-data; boundary=x']] })[3]!.at(-1), 'REQBODY_PROCESSOR=MULTIPART');
    for (const [host, name] of [['[::1]:443', '[::1]'], ['h:', 'h:'], [':80', ''], ['h:8o', 'h:8o'], ['h:\u0661', 'h:\u0661'], ['h::1', 'h:']] as const) {
      assert.deepEqual(vars({ headers: [['Host', host]] })[3]![0], `SERVER_NAME=${name}`, host);
    }
  });

  it('withoutPort answers as the regex it replaces; cookies are read as split() cut them (and the loose pairs)', () => {
    const alphabet = ['', ':', '0', '9', '5', 'a', ' ', '\t', '\u0661', '/', ';', '=', '\n', '\u00a0', 'x'];
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
    const random = (len: number): string => {
      let s = '';
      for (let j = 0, n = next() % len; j < n; j++) s += alphabet[next() % alphabet.length];
      return s;
    };
    for (const s of ['', ':', ':1', '1', 'a:1', 'a:1:2', 'a::12']) assert.equal(withoutPort(s), s.replace(/:\d+$/, ''), JSON.stringify(s));
    for (let i = 0; i < 5000; i++) {
      const s = random(8);
      assert.equal(withoutPort(s), s.replace(/:\d+$/, ''), JSON.stringify(s));
    }
    // The reference: the split() version the in-place reader replaced.
    // Pairs ASP.NET Core and Python's SimpleCookie read apart (session 28) come first.
    const reference = (header: string): string[] => {
      const out: string[] = looseCookiePairs(header).map(([n, v]) => `REQUEST_COOKIES:${n}=${v}`);
      for (const part of header.split(';')) {
        const p = part.replace(/^[ \t]+/, '');
        if (p === '') continue;
        const eq = p.indexOf('=');
        out.push(`REQUEST_COOKIES:${eq < 0 ? p : p.slice(0, eq)}=${eq < 0 ? '' : p.slice(eq + 1)}`);
      }
      return out;
    };
    for (let i = 0; i < 400; i++) {
      const header = random(14);
      const got = (vars({ headers: [['Cookie', header]] })[2] ?? []).filter((x) => x.startsWith('REQUEST_COOKIES:'));
      assert.deepEqual(got, reference(header), JSON.stringify(header));
    }
  });
});

describe('request set-up: the scalars written straight into a fresh transaction (session 24)', () => {
  const scalars = 'REMOTE_ADDR|REMOTE_HOST|REMOTE_PORT|SERVER_ADDR|SERVER_PORT|REQUEST_METHOD|REQUEST_PROTOCOL|REQUEST_LINE|REQUEST_URI_RAW|REQUEST_URI|REQUEST_FILENAME|PATH_INFO|REQUEST_BASENAME|QUERY_STRING|REQBODY_ERROR|REQBODY_PROCESSOR_ERROR|INBOUND_DATA_ERROR|OUTBOUND_DATA_ERROR|MULTIPART_STRICT_ERROR|MULTIPART_UNMATCHED_BOUNDARY|SERVER_NAME';
  const rules = `SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 8
SecRequestBodyLimitAction ProcessPartial
SecRule ${scalars} "@rx ^" "id:10,phase:2,pass,log,t:none"`;
  const line = (m: { matched: { variable: string; value: string }[] }): string[] => m.matched.map((d) => `${d.variable}=${d.value}`);
  const want = [
    'REMOTE_ADDR=192.0.2.1', 'REMOTE_HOST=192.0.2.1', 'REMOTE_PORT=1234', 'SERVER_ADDR=127.0.0.1', 'SERVER_PORT=80', 'REQUEST_METHOD=POST', 'REQUEST_PROTOCOL=HTTP/1.1',
    'REQUEST_LINE=POST /a/b%2e?x=1 HTTP/1.1', 'REQUEST_URI_RAW=/a/b%2e?x=1', 'REQUEST_URI=/a/b%2e?x=1', 'REQUEST_FILENAME=/a/b.', 'PATH_INFO=/a/b.', 'REQUEST_BASENAME=b.', 'QUERY_STRING=x=1',
  ];
  const zeros = ['REQBODY_ERROR=0', 'REQBODY_PROCESSOR_ERROR=0', 'INBOUND_DATA_ERROR=0', 'OUTBOUND_DATA_ERROR=0', 'MULTIPART_STRICT_ERROR=0', 'MULTIPART_UNMATCHED_BOUNDARY=0'];
  const post = (w: ReturnType<typeof wafFromText>, body: string) => {
    const tx = w.newTransaction({ clientIp: '192.0.2.1', clientPort: 1234, serverPort: 80, method: 'POST', uri: '/a/b%2e?x=1', protocol: 'HTTP/1.1', headers: [['Host', 'h.test:81'], ['Host', 'second:82'], ['Content-Type', 'application/json'], ['Content-Length', String(body.length)]] });
    tx.appendRequestBody(body);
    tx.processRequestBody();
    return line(tx.matchedRules().find((m) => m.id === 10)!);
  };

  it('every set-up scalar, the constant zeros included, and a body error does not leak into the next transaction', () => {
    const w = wafFromText(rules);
    // the last Host wins, as every write of a scalar does
    assert.deepEqual(post(w, '{"a":1}'), [...want, ...zeros, 'SERVER_NAME=second']);
    // a body over SecRequestBodyLimit (ProcessPartial): this transaction's INBOUND_DATA_ERROR is 1...
    const over = post(w, '{"a":"0123456789"}');
    assert.ok(over.includes('INBOUND_DATA_ERROR=1') && !over.includes('INBOUND_DATA_ERROR=0'), over.join(' '));
    // ...and the next transaction starts from the zeros again (its slots are a copy, not the template)
    assert.deepEqual(post(w, '{"a":2}'), [...want, ...zeros, 'SERVER_NAME=second']);
  });

  it('a rule set with more scalar slots (another template size) starts from the same zeros', () => {
    const w = wafFromText(`${rules}\nSecRule UNIQUE_ID|FULL_REQUEST_LENGTH|TIME_EPOCH "@rx ^" "id:11,phase:2,pass,log,t:none"`);
    assert.deepEqual(post(w, '{"a":1}'), [...want, ...zeros, 'SERVER_NAME=second']);
  });
});

describe('stored scalars: the item of the last selection, shared while the value is the same (session 25)', () => {
  // A hit and a miss per scalar, with and without a transformation (the memo keeps the misses and
  // the item its stages): each transaction sees only its own values.
  const w = wafFromText(`SecRuleEngine On
SecRule REQUEST_METHOD "@streq POST" "id:1,phase:1,pass,log,t:none"
SecRule REQUEST_METHOD|REQUEST_FILENAME "@rx ^/b|^get$" "id:2,phase:1,pass,log,t:none,t:lowercase"
SecRule REQUEST_BASENAME "@streq B" "id:3,phase:1,pass,log,t:none,t:uppercase"`);
  const open = (method: string, uri: string) => w.newTransaction({ clientIp: '192.0.2.1', clientPort: 1, serverPort: 80, method, uri, protocol: 'HTTP/1.1', headers: [] });
  const seen = (tx: ReturnType<typeof open>): string[] => tx.matchedRules().flatMap((m) => m.matched.map((d) => `${m.id} ${d.variable}=${d.value}`));
  const a = ['2 REQUEST_METHOD=get'];
  const b = ['1 REQUEST_METHOD=POST', '2 REQUEST_FILENAME=/b', '3 REQUEST_BASENAME=B'];

  it('one after another, the same values again and others', () => {
    for (const [method, uri, want] of [['GET', '/a', a], ['POST', '/b', b], ['POST', '/b', b], ['GET', '/a', a], ['GET', '/a', a], ['POST', '/b', b]] as const) {
      const tx = open(`${method}`, `${uri}`);
      tx.processRequestHeaders();
      assert.deepEqual(seen(tx), want, `${method} ${uri}`);
    }
  });

  it('two transactions open at once, run in either order', () => {
    const x = open('GET', '/a');
    const y = open('POST', '/b');
    y.processRequestHeaders();
    x.processRequestHeaders();
    assert.deepEqual(seen(x), a);
    assert.deepEqual(seen(y), b);
  });
});

describe('headers, cookies and arguments: the items made at the same position last time, while key and value are the same (session 25)', () => {
  const w = wafFromText(`SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS|REQUEST_HEADERS_NAMES "@rx ^" "id:1,phase:2,pass,log,t:none"
SecRule REQUEST_COOKIES|REQUEST_COOKIES_NAMES "@rx ^" "id:2,phase:2,pass,log,t:none"
SecRule ARGS_GET|ARGS_GET_NAMES|ARGS_POST|ARGS_POST_NAMES "@rx ^" "id:3,phase:2,pass,log,t:none"
SecRule REQUEST_HEADERS|ARGS|REQUEST_COOKIES "@rx a" "id:4,phase:2,pass,log,t:none,t:lowercase"`);
  type H = [string, string][];
  const open = (uri: string, headers: H, body = '') => {
    const all: H = body === '' ? headers : [...headers, ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(body.length)]];
    const tx = w.newTransaction({ clientIp: '192.0.2.1', clientPort: 1, serverPort: 80, method: body === '' ? 'GET' : 'POST', uri, protocol: 'HTTP/1.1', headers: all });
    if (body !== '') tx.appendRequestBody(body);
    return tx;
  };
  const seen = (tx: ReturnType<typeof open>): string[] => {
    tx.processRequestBody();
    return tx.matchedRules().flatMap((m) => m.matched.map((d) => `${m.id} ${d.variable}=${d.value}`));
  };
  // What a transaction of its own (the first of a fresh process would make the same items) sees.
  const alone = (uri: string, headers: H, body = ''): string[] => seen(open(uri, headers, body));
  const long = 'A'.repeat(1500);
  const many: H = Array.from({ length: 40 }, (_, i) => [`X-H${i % 3}`, `v${i % 2}`]);
  const cases: [string, H, string][] = [
    ['/p?a=1&b=2', [['Host', 'h'], ['Cookie', 'a=1; b=2'], ['Accept', 'A']], ''],
    ['/p?a=1&b=3', [['Host', 'h'], ['Cookie', 'a=1; b=3'], ['Accept', 'a']], ''],
    ['/p?b=2&a=1', [['Accept', 'A'], ['Host', 'h'], ['Cookie', 'b=2; a=1']], ''],
    ['/p?a=1&b=2', [['host', 'h'], ['Cookie', 'A=1; b=2'], ['Accept', 'A']], ''],
    [`/p?a=${long}`, [['Host', long], ['Cookie', `a=${long}`]], `a=${long}&c=x`],
    ['/p?a=1', many, 'a=1&c=x'],
    ['/p?a=1&b=2', [['Host', 'h'], ['Cookie', 'a=1; b=2'], ['Accept', 'A']], 'a=1&c=y'],
  ];

  it('each transaction sees its own headers, cookies and arguments, whatever came before', () => {
    const want = cases.map(([u, h, b]) => alone(u, h, b));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < cases.length; i++) {
        const [u, h, b] = cases[(i * 3 + round) % cases.length]!;
        assert.deepEqual(seen(open(u, h, b)), want[(i * 3 + round) % cases.length], `round ${round} case ${(i * 3 + round) % cases.length}`);
      }
    }
  });

  it('two transactions open at once, made in one order and run in the other', () => {
    const x = open(cases[0]![0], cases[0]![1]);
    const y = open(cases[1]![0], cases[1]![1]);
    const z = open(cases[0]![0], cases[0]![1]);
    assert.deepEqual(seen(y), alone(cases[1]![0], cases[1]![1]));
    assert.deepEqual(seen(x), alone(cases[0]![0], cases[0]![1]));
    assert.deepEqual(seen(z), alone(cases[0]![0], cases[0]![1]));
  });
});
