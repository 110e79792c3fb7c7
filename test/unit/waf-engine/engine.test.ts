import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { SecLangError, wafFromDirectives, wafFromText, type NewTransactionInput, type Waf } from '../../../src/waf/index.ts';
import { keyLiteralMatches, literalKeyRegex } from '../../../src/waf/engine/rule.ts';
import { loadDirectives } from '../../../src/waf/seclang/parser.ts';

const req = (over: Partial<NewTransactionInput> = {}): NewTransactionInput => ({
  clientIp: '192.0.2.1',
  clientPort: 1234,
  serverPort: 80,
  method: 'GET',
  uri: '/',
  protocol: 'HTTP/1.1',
  headers: [['Host', 'example.test']],
  ...over,
});

/** Runs a request through all phases; returns the logged rule ids and the intervention. */
function run(waf: Waf, over: Partial<NewTransactionInput> = {}, body?: string) {
  const tx = waf.newTransaction(req(over));
  let it = tx.processRequestHeaders();
  if (!it && body !== undefined) it = tx.appendRequestBody(body);
  if (!it) it = tx.processRequestBody();
  if (!it) it = tx.processResponseHeaders(200, [['Content-Type', 'text/plain']]);
  if (!it) it = tx.processResponseBody();
  tx.processLogging();
  return { ids: tx.matchedRules().map((m) => m.id), it, tx };
}

const engine = (rules: string, mode = 'On') => wafFromText(`SecRuleEngine ${mode}\nSecRequestBodyAccess On\n${rules}`);

describe('variables', () => {
  it('ARGS from query and urlencoded body, ARGS_GET/POST, names, counts', () => {
    const waf = engine(`
SecRule ARGS_GET:a "@streq 1" "id:1,phase:1,pass,log"
SecRule ARGS_POST:b "@streq 2" "id:2,phase:2,pass,log"
SecRule &ARGS "@eq 3" "id:3,phase:2,pass,log"
SecRule ARGS_NAMES "@streq c" "id:4,phase:2,pass,log"
SecRule &ARGS:a "@eq 1" "id:5,phase:1,pass,log"
SecRule &ARGS:zz "@eq 0" "id:6,phase:1,pass,log"`);
    const { ids } = run(
      waf,
      { method: 'POST', uri: '/p?a=1&c=x', headers: [['Content-Type', 'application/x-www-form-urlencoded']] },
      'b=2',
    );
    assert.deepEqual(ids.sort(), [1, 2, 3, 4, 5, 6]);
  });

  it('header and cookie keys are case-insensitive; /regex/ keys select', () => {
    const waf = engine(`
SecRule REQUEST_HEADERS:user-agent "@contains bot" "id:10,phase:1,pass,log"
SecRule REQUEST_COOKIES:/^sess/ "@streq abc" "id:11,phase:1,pass,log"
SecRule REQUEST_COOKIES_NAMES "@streq other" "id:12,phase:1,pass,log"`);
    const { ids } = run(waf, { headers: [['USER-AGENT', 'evilbot'], ['Cookie', 'session_id=abc; other=1']] });
    assert.deepEqual(ids, [10, 11, 12]);
  });

  it('exclusions with ! remove single keys or regex-selected keys', () => {
    const waf = engine(`
SecRule ARGS|!ARGS:safe "@contains attack" "id:20,phase:1,pass,log"
SecRule ARGS|!ARGS:/^ok_/ "@contains attack" "id:21,phase:1,pass,log"`);
    assert.deepEqual(run(waf, { uri: '/?safe=attack' }).ids, [21]);
    assert.deepEqual(run(waf, { uri: '/?ok_1=attack' }).ids, [20]);
  });

  it('an excluded argument or cookie name skips that spelling only; header names without case', () => {
    // ModSecurity 3 compares ctl / SecRuleUpdateTarget keys with case; backends read `A` apart from `a`
    const waf = engine(`
SecRule REQUEST_FILENAME "@beginsWith /c" "id:40,phase:1,pass,nolog,ctl:ruleRemoveTargetById=41;ARGS:a,ctl:ruleRemoveTargetById=41;REQUEST_COOKIES:k"
SecRule ARGS|REQUEST_COOKIES "@contains attack" "id:41,phase:1,pass,log"
SecRule ARGS|!ARGS:a|REQUEST_HEADERS|!REQUEST_HEADERS:x-a "@contains attack" "id:42,phase:1,pass,log"
SecRule ARGS "@contains attack" "id:43,phase:1,pass,log"
SecRuleUpdateTargetById 43 "!ARGS:a"`);
    assert.deepEqual(run(waf, { uri: '/c?a=attack' }).ids, []);
    assert.deepEqual(run(waf, { uri: '/c?A=attack' }).ids, [41, 42, 43]);
    assert.deepEqual(run(waf, { uri: '/c', headers: [['Cookie', 'k=attack']] }).ids, [42]); // 42 reads the Cookie header
    assert.deepEqual(run(waf, { uri: '/c', headers: [['Cookie', 'K=attack']] }).ids, [41, 42]);
    assert.deepEqual(run(waf, { uri: '/', headers: [['X-A', 'attack']] }).ids, []);
  });

  it('XML:/* and XML://@* select the body texts and attributes, and nothing without an XML body', () => {
    const waf = engine(`
SecRule REQUEST_HEADERS:Content-Type "@rx ^text/xml" "id:35,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule XML:/* "@streq hi" "id:36,phase:2,pass,log"
SecRule XML://@* "@streq 7" "id:37,phase:2,pass,log"
SecRule XML:/* "!@streq zz" "id:38,phase:2,pass,log"
SecRule &XML:/* "@eq 0" "id:39,phase:2,pass,log"`);
    const xml = { method: 'POST', headers: [['Content-Type', 'text/xml']] as [string, string][] };
    assert.deepEqual(run(waf, xml, '<a n="7"><b>hi</b></a>').ids, [36, 37, 38]);
    assert.deepEqual(run(waf, { uri: '/?x=hi' }).ids, [39]);
  });

  it('request line variables and decoded REQUEST_FILENAME', () => {
    const waf = engine(`
SecRule REQUEST_FILENAME "@streq /a b/c.php" "id:30,phase:1,pass,log"
SecRule REQUEST_BASENAME "@streq c.php" "id:31,phase:1,pass,log"
SecRule QUERY_STRING "@streq x=%41" "id:32,phase:1,pass,log"
SecRule REQUEST_LINE "@streq GET /a%20b/c.php?x=%41 HTTP/1.1" "id:33,phase:1,pass,log"
SecRule ARGS:x "@streq A" "id:34,phase:1,pass,log"`);
    assert.deepEqual(run(waf, { uri: '/a%20b/c.php?x=%41' }).ids, [30, 31, 32, 33, 34]);
  });

  it('a JSON body without a processor (no or another Content-Type) still gives ARGS (session 16 audit)', () => {
    const waf = engine(`
SecRule ARGS:json.q "@contains attack" "id:40,phase:2,pass,log"
SecRule ARGS_POST_NAMES "@streq json.a.0" "id:41,phase:2,pass,log"
SecRule REQBODY_ERROR "!@eq 0" "id:42,phase:2,pass,log"
SecRule REQBODY_PROCESSOR "@rx ." "id:43,phase:2,pass,log"`);
    const post = (ct: string | undefined, body: string) => run(waf, { method: 'POST', uri: '/p', headers: ct ? [['Content-Type', ct]] : [] }, body).ids;
    const doc = '{"a":[1],"q":"an attack"}';
    const table: [string | undefined, string, number[]][] = [
      ['text/plain', doc, [40, 41]],
      [undefined, doc, [40, 41]],
      ['application/x-json', `\xef\xbb\xbf \r\n${doc}`, [40, 41]],
      ['text/json', `[${doc}]`, []], // json.0.q and json.0.a.0: other names
      ['text/plain', '{not json', []], // no REQBODY_ERROR: the body never said it was JSON
      ['text/plain', 'q=an attack', []], // a text form gives ARGS:q (session 24, bodies/sniff.ts), not json.q
      // JSON Lines (session 23 WAF evasion audit): each line that parses alone gives ARGS
      ['application/x-ndjson', `{"b":2}\n${doc}\n`, [40, 41]],
      ['text/plain', `{"b":2}\r\n  ${doc}\r\n`, [40, 41]],
      [undefined, `{"b":2}\n{not json\n${doc}`, [40, 41]], // a broken line is skipped, the rest still read
      ['text/plain', `{"b":2}\nq=an attack`, []], // only the lines that are JSON
    ];
    for (const [ct, body, want] of table) assert.deepEqual(post(ct, body), want, `${ct} ${body}`);
  });
});

describe('actions', () => {
  it('chain: every link must match; setvar, capture and macros', () => {
    const waf = engine(`
SecRule ARGS:q "@rx ^(\\w+)-(\\d+)$" "id:40,phase:1,pass,log,capture,chain,msg:'got %{TX.1}',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}',setvar:tx.seen=%{tx.2}"
  SecRule TX:seen "@eq 42" "setvar:tx.score=+5"
SecRule TX:score "@eq 5" "id:41,phase:1,pass,log"`);
    const { ids, tx } = run(waf, { uri: '/?q=abc-42' });
    assert.deepEqual(ids, [40, 41]);
    const m = tx.matchedRules()[0]!;
    assert.equal(m.msg, 'got abc');
    // logdata is expanded once the chain matched: MATCHED_VAR is the last link's.
    assert.equal(m.logdata, 'TX:seen=42');
    assert.deepEqual(run(waf, { uri: '/?q=abc-41' }).ids, []);
  });

  it('a chain link over MATCHED_VARS sees the transformed values of the previous link', () => {
    const waf = engine(`
SecRule ARGS "@rx abc" "id:45,phase:1,pass,log,t:lowercase,chain"
  SecRule MATCHED_VARS "@rx abc"`);
    assert.deepEqual(run(waf, { uri: '/?a=xABCx&b=ABC&c=zzz' }).ids, [45]);
    assert.deepEqual(run(waf, { uri: '/?c=zzz' }).ids, []);
  });

  it('setvar =+, =- and ! ; counts with &TX', () => {
    const waf = engine(`
SecAction "id:50,phase:1,pass,nolog,setvar:tx.a=10,setvar:tx.a=+5,setvar:tx.a=-3,setvar:tx.gone=1,setvar:!tx.gone"
SecRule TX:a "@eq 12" "id:51,phase:1,pass,log"
SecRule &TX:gone "@eq 0" "id:52,phase:1,pass,log"`);
    assert.deepEqual(run(waf).ids, [51, 52]);
  });

  it('skipAfter jumps to the marker; skip N skips rules', () => {
    const waf = engine(`
SecAction "id:60,phase:1,pass,nolog,skipAfter:END"
SecAction "id:61,phase:1,pass,log"
SecMarker END
SecAction "id:62,phase:1,pass,log,skip:1"
SecAction "id:63,phase:1,pass,log"
SecAction "id:64,phase:1,pass,log"`);
    assert.deepEqual(run(waf).ids, [62, 64]);
  });

  it('deny intervenes in On mode and stops later rules; DetectionOnly only logs', () => {
    const rules = `
SecRule ARGS "@contains evil" "id:70,phase:1,deny,status:418,log"
SecAction "id:71,phase:2,pass,log"`;
    const on = run(engine(rules), { uri: '/?x=evil' });
    assert.deepEqual(on.it, { status: 418, ruleId: 70, action: 'deny' });
    assert.deepEqual(on.ids, [70]);
    const det = run(engine(rules, 'DetectionOnly'), { uri: '/?x=evil' });
    assert.equal(det.it, undefined);
    assert.deepEqual(det.ids, [70, 71]);
  });

  it('block takes the phase default action; SecDefaultAction supplies log/transformations', () => {
    const waf = engine(`
SecDefaultAction "phase:1,log,deny,status:406,t:lowercase"
SecRule ARGS "@streq evil" "id:80,phase:1,block"`);
    assert.deepEqual(run(waf, { uri: '/?x=EVIL' }).it, { status: 406, ruleId: 80, action: 'deny' });
  });

  it('multiMatch tests the value before and after each transformation', () => {
    const waf = engine(`
SecRule ARGS "@streq %41" "id:90,phase:1,pass,log,t:urlDecode"
SecRule ARGS "@streq %41" "id:91,phase:1,pass,log,t:urlDecode,multiMatch"`);
    assert.deepEqual(run(waf, { uri: '/?x=%2541' }).ids, [91]);
  });

  it('a chain changed by SecRuleUpdateActionById has its own transformation results', () => {
    // Both rules read the same item with `t:lowercase` until the update gives rule 101 another
    // chain; its results must not come from the cache of rule 100's (the chain's key was once
    // computed before the update, and rule 101 then saw "abc").
    const waf = engine(`
SecRule ARGS:a "@streq abc" "id:100,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS:a "@streq ABC" "id:101,phase:1,pass,log,t:none,t:lowercase"
SecRuleUpdateActionById 101 "t:none,t:urlDecode"
SecRule ARGS:a "@streq abc" "id:102,phase:1,pass,log,t:none,t:lowercase"`);
    assert.deepEqual(run(waf, { uri: '/?a=ABC' }).ids, [100, 101, 102]);
  });

  it('redirect intervention expands its URL', () => {
    const waf = engine(`SecRule ARGS:go "@streq 1" "id:95,phase:1,redirect:'https://example.test/blocked?id=%{rule.id}'"`);
    assert.deepEqual(run(waf, { uri: '/?go=1' }).it, { status: 302, ruleId: 95, action: 'redirect', url: 'https://example.test/blocked?id=95' });
  });
});

describe('ctl and removals', () => {
  it('ctl:ruleRemoveById / ruleRemoveTargetById / ruleEngine apply to this transaction only', () => {
    const waf = engine(`
SecRule ARGS:off "@streq 1" "id:100,phase:1,pass,nolog,ctl:ruleRemoveById=102"
SecRule ARGS:skipq "@streq 1" "id:101,phase:1,pass,nolog,ctl:ruleRemoveTargetById=103;ARGS:q"
SecAction "id:102,phase:1,pass,log"
SecRule ARGS "@contains x" "id:103,phase:1,pass,log"
SecRule ARGS:det "@streq 1" "id:104,phase:1,pass,nolog,ctl:ruleEngine=DetectionOnly"
SecRule ARGS "@contains bad" "id:105,phase:2,deny,log"`);
    assert.deepEqual(run(waf, { uri: '/?off=1' }).ids, []);
    assert.deepEqual(run(waf, { uri: '/' }).ids, [102]);
    assert.deepEqual(run(waf, { uri: '/?skipq=1&q=x' }).ids, [102]);
    assert.deepEqual(run(waf, { uri: '/?q=x' }).ids, [102, 103]);
    assert.equal(run(waf, { uri: '/?det=1&a=bad' }).it, undefined);
    assert.equal(run(waf, { uri: '/?a=bad' }).it?.ruleId, 105);
  });

  it('SecRuleRemoveById/ByTag and SecRuleUpdateTargetById act on earlier rules', () => {
    const waf = engine(`
SecAction "id:110,phase:1,pass,log"
SecAction "id:111,phase:1,pass,log,tag:'noisy'"
SecRule ARGS "@contains x" "id:112,phase:1,pass,log"
SecRuleRemoveById 110
SecRuleRemoveByTag noisy
SecRuleUpdateTargetById 112 "!ARGS:ok"`);
    assert.deepEqual(run(waf, { uri: '/?ok=x' }).ids, []);
    assert.deepEqual(run(waf, { uri: '/?other=x' }).ids, [112]);
  });

  it('ctl:requestBodyProcessor=JSON parses JSON bodies into ARGS', () => {
    const waf = engine(`
SecRule REQUEST_HEADERS:Content-Type "@contains json" "id:120,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule ARGS:json.user.name "@streq bob" "id:121,phase:2,pass,log"
SecRule REQBODY_PROCESSOR "@streq JSON" "id:122,phase:1,pass,log"`);
    const { ids } = run(waf, { method: 'POST', headers: [['Content-Type', 'application/json']] }, '{"user":{"name":"bob"}}');
    assert.deepEqual(ids, [122, 121]);
  });

  it('a body over SecRequestBodyLimit is rejected with 413 in On mode', () => {
    const waf = wafFromText('SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit 10\nSecRequestBodyLimitAction Reject');
    const tx = waf.newTransaction(req({ method: 'POST' }));
    tx.processRequestHeaders();
    assert.deepEqual(tx.appendRequestBody('x'.repeat(11)), { status: 413, ruleId: 0, action: 'deny' });
  });
});

describe('scoped exclusions', () => {
  it('remove rules only for requests matching the path prefix and host', () => {
    const text = `SecRuleEngine On
SecRule ARGS "@contains x" "id:140,phase:1,pass,log,tag:'t1'"
SecRule ARGS "@contains x" "id:141,phase:1,pass,log,tag:'t2'"`;
    const waf = wafFromDirectives(loadDirectives(text, 'inline', '.'), [
      { pathPrefix: '/upload', ruleIds: ['140'] },
      { host: 'api.test', tags: ['t2'] },
    ]);
    assert.deepEqual(run(waf, { uri: '/upload/a?v=x' }).ids, [141]);
    assert.deepEqual(run(waf, { uri: '/other?v=x' }).ids, [140, 141]);
    assert.deepEqual(run(waf, { uri: '/other?v=x', headers: [['Host', 'API.test:8443']] }).ids, [140]);
    // the same headers as a flat list (the in-process agent's form), the host not first
    assert.deepEqual(run(waf, { uri: '/other?v=x', headerList: ['accept', '*/*', 'host', 'api.test'] }).ids, [140]);
    assert.deepEqual(run(waf, { uri: '/other?v=x', headerList: ['accept', 'host', 'host', 'other.test'] }).ids, [140, 141]);
  });
});

describe('response phases', () => {
  it('response headers and body (listed MIME types only) are inspected', () => {
    const waf = engine(`
SecResponseBodyAccess On
SecRule RESPONSE_STATUS "@streq 500" "id:130,phase:3,pass,log"
SecRule RESPONSE_BODY "@contains secret" "id:131,phase:4,pass,log"`);
    const tx = waf.newTransaction(req());
    tx.processRequestHeaders();
    tx.processRequestBody();
    tx.processResponseHeaders(500, [['Content-Type', 'text/html; charset=utf-8']]);
    tx.appendResponseBody('a secret leaked');
    tx.processResponseBody();
    assert.deepEqual(tx.matchedRules().map((m) => m.id), [130, 131]);
    const bin = waf.newTransaction(req());
    bin.processResponseHeaders(200, [['Content-Type', 'image/png']]);
    bin.appendResponseBody('secret');
    bin.processResponseBody();
    assert.deepEqual(bin.matchedRules().map((m) => m.id), []);
  });
});

describe('configuration errors', () => {
  const cases: [string, RegExp][] = [
    ['SecRule ARGS "@rx a" "phase:1,pass"', /rule has no id/],
    ['SecRule ARGS "@rx a" "id:1,phase:9"', /invalid phase "9"/],
    ['SecRule ARGS "@rx a" "id:1,bogus"', /unknown action "bogus"/],
    ['SecRule ARGS "@rx a" "id:1,t:nosuch"', /unknown transformation "nosuch"/],
    ['SecRule ARGS "@nosuchop a" "id:1"', /operator @nosuchop/],
    ['SecFrobnicate On', /unknown directive "SecFrobnicate"/],
    ['SecAction "id:1,pass"\nSecAction "id:1,pass"', /duplicate rule id 1/],
    ['SecRule ARGS "@rx a" "id:1,chain"', /opens a chain that never ends/],
  ];
  for (const [text, re] of cases) {
    it(text.split('\n')[0]!, () => {
      assert.throws(
        () => wafFromText(text, 'bad.conf'),
        (e: unknown) => e instanceof SecLangError && re.test(e.message) && e.message.startsWith('bad.conf:'),
      );
    });
  }
});

describe('rule loop bookkeeping (session 11)', () => {
  it('ctl:ruleRemoveTarget* reaches the chained links of the rule, in this transaction only', () => {
    const waf = engine(`
SecRule ARGS:skip "@streq 1" "id:200,phase:1,pass,nolog,ctl:ruleRemoveTargetById=201;ARGS:q"
SecRule ARGS "@contains x" "id:201,phase:1,pass,log,chain"
  SecRule ARGS "@contains y" "t:none"
SecRule ARGS:tag "@streq 1" "id:202,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=t1;ARGS:q"
SecRule ARGS "@contains z" "id:203,phase:1,pass,log,tag:'t1'"`);
    assert.deepEqual(run(waf, { uri: '/?q=xy' }).ids, [201]);
    // The chain's second link no longer sees ARGS:q either: y only in q, so no match.
    assert.deepEqual(run(waf, { uri: '/?skip=1&q=xy' }).ids, []);
    assert.deepEqual(run(waf, { uri: '/?skip=1&q=x&r=y' }).ids, []);
    assert.deepEqual(run(waf, { uri: '/?skip=1&r=xy' }).ids, [201]);
    assert.deepEqual(run(waf, { uri: '/?tag=1&q=z' }).ids, []);
    assert.deepEqual(run(waf, { uri: '/?q=z' }).ids, [203]);
    // Interleaved transactions keep their own exclusions.
    const a = waf.newTransaction(req({ uri: '/?skip=1&q=xy' }));
    const b = waf.newTransaction(req({ uri: '/?q=xy' }));
    a.processRequestHeaders();
    b.processRequestHeaders();
    assert.deepEqual(a.matchedRules().map((m) => m.id), []);
    assert.deepEqual(b.matchedRules().map((m) => m.id), [201]);
  });

  it('several ctl:ruleRemoveTarget* on one chain add up, by id and by tag, whatever the order', () => {
    const waf = engine(`
SecRule ARGS:one "@streq 1" "id:220,phase:1,pass,nolog,ctl:ruleRemoveTargetById=222;ARGS:a"
SecRule ARGS:two "@streq 1" "id:221,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=t2;ARGS:b,ctl:ruleRemoveTargetById=222-223;ARGS:c"
SecRule ARGS "@contains x" "id:222,phase:1,pass,log,tag:'t2',chain"
  SecRule ARGS "@contains y" "t:none"
SecRule ARGS "@contains x" "id:223,phase:1,pass,log,tag:'t2'"`);
    assert.deepEqual(run(waf, { uri: '/?a=xy&b=xy&c=xy' }).ids, [222, 223]);
    // 222 lost a (by id), b (by tag) and c (by id range); 223 only b and c.
    assert.deepEqual(run(waf, { uri: '/?one=1&two=1&a=xy&b=xy&c=xy' }).ids, [223]);
    assert.deepEqual(run(waf, { uri: '/?one=1&two=1&a=xy&b=xy&c=xy&d=xy' }).ids, [222, 223]);
    // Each removal alone leaves the other targets in.
    assert.deepEqual(run(waf, { uri: '/?one=1&a=xy' }).ids, [223]);
    assert.deepEqual(run(waf, { uri: '/?two=1&b=x&c=y&a=y' }).ids, []);
    assert.deepEqual(run(waf, { uri: '/?two=1&b=x&c=y&a=xy' }).ids, [222, 223]);
    // The first ctl's targets stay removed after the second added its own (a merged list).
    assert.deepEqual(run(waf, { uri: '/?one=1&two=1&a=xy' }).ids, [223]);
  });

  it('a first ctl:ruleRemoveTarget* is shared by the transactions: made once, and a later removal stays in its own transaction', () => {
    const waf = engine(`
SecAction "id:240,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=t3;ARGS:a"
SecRule ARGS:more "@streq 1" "id:241,phase:1,pass,nolog,ctl:ruleRemoveTargetById=242;ARGS:b"
SecRule ARGS "@contains x" "id:242,phase:1,pass,log,tag:'t3'"`);
    assert.deepEqual(run(waf, { uri: '/?a=x' }).ids, []);
    assert.deepEqual(run(waf, { uri: '/?b=x' }).ids, [242]);
    assert.deepEqual(run(waf, { uri: '/?more=1&b=x' }).ids, []);
    // The second removal (b) did not reach the shared first one.
    assert.deepEqual(run(waf, { uri: '/?b=x' }).ids, [242]);
    assert.deepEqual(run(waf, { uri: '/?more=1&a=x&c=x' }).ids, [242]);
    assert.deepEqual(run(waf, { uri: '/?more=1&a=x&b=x' }).ids, []);
    // No flag array per transaction for the first removal (the miss memo's arrays are made for
    // values new to it: the same request three times first).
    for (let i = 0; i < 3; i++) run(waf, { uri: '/?a=y&b=y' });
    const Original = globalThis.Uint32Array;
    let made = 0;
    globalThis.Uint32Array = class extends Original {
      constructor(...args: ConstructorParameters<typeof Uint32Array>) {
        super(...args);
        made++;
      }
    } as typeof Uint32Array;
    try {
      for (let i = 0; i < 5; i++) assert.deepEqual(run(waf, { uri: '/?a=y&b=y' }).ids, []);
    } finally {
      globalThis.Uint32Array = Original;
    }
    assert.equal(made, 0);
  });

  it('literal key regexes are answered without the RegExp, as the RegExp answers them', () => {
    const sources = ['^header_name_920450_', 'MULTIPART_HEADERS_CONTENT_TYPES_*', 'paramcounter_.*', '__utm', '^a', 'ab*', 'x_9', '^ki'];
    const parsed = sources.map((src) => literalKeyRegex(src));
    assert.deepEqual(parsed, [
      { lit: 'header_name_920450_', anchored: true },
      { lit: 'multipart_headers_content_types', anchored: false },
      { lit: 'paramcounter_', anchored: false },
      { lit: '__utm', anchored: false },
      { lit: 'a', anchored: true },
      { lit: 'a', anchored: false },
      { lit: 'x_9', anchored: false },
      { lit: 'ki', anchored: true },
    ]);
    for (const other of ['^a.b', 'a|b', '^(a)', 'a+', '[ab]', 'a$', '.*a', 'a\\d', '']) assert.equal(literalKeyRegex(other), undefined, other);
    const keys = ['', 'header_name_920450_cookie', 'HEADER_NAME_920450_x', 'xheader_name_920450_', 'header_name_920450', 'multipart_headers_content_types_x',
      'Multipart_Headers_Content_Types', 'pre-PARAMCOUNTER_1', 'paramcounter', '__UTMz', '_utm', 'A', 'ba', 'b', 'X_9', 'x-9',
      '\u017f', 'header_name_920450\u017f', '\u212a', 'a\u212a', '\u0130', 'hEaDeR_nAmE_920450_', 'AB', 'x_9\u017f', 'KI', '\u212ai', 'k\u0130', 'Ki\u0307'];
    sources.forEach((src, k) => {
      const re = new RegExp(src, 'i');
      const { lit, anchored } = parsed[k]!;
      for (const key of keys) assert.equal(keyLiteralMatches(key, lit, anchored), re.test(key), `/${src}/i on ${JSON.stringify(key)}`);
    });
  });

  it('TX and cookies selected and excluded by literal key regexes', () => {
    const waf = engine(`
SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "id:250,phase:1,pass,nolog,capture,setvar:'tx.hn_%{tx.0}=%{tx.0}'"
SecRule TX:/^HN_X-/ "@rx ." "id:251,phase:1,pass,log,multiMatch"
SecRule &TX:/^hn_x-/ "@eq 2" "id:252,phase:1,pass,log"
SecRule REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/ "@contains bad" "id:253,phase:1,pass,log"`);
    const headers: [string, string][] = [['Host', 'h'], ['X-One', '1'], ['x-two', '2'], ['Y-x-', '3']];
    assert.deepEqual(run(waf, { headers }).ids, [251, 252]);
    assert.deepEqual(run(waf, { headers: [['Host', 'h'], ['X-One', '1']] }).ids, [251]);
    assert.deepEqual(run(waf, { headers: [['Cookie', '__UTMa=bad; x__utm=bad']] }).ids, []);
    assert.deepEqual(run(waf, { headers: [['Cookie', '__utm=ok; \u017f__utm=x; other=bad']] }).ids, [253]);
  });

  it('a scalar written mid-phase (ctl:requestBodyProcessor) is read anew by the next rule', () => {
    const waf = engine(`
SecRule REQBODY_PROCESSOR "@streq URLENCODED" "id:230,phase:1,pass,log"
SecRule REQUEST_METHOD "@streq POST" "id:231,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_PROCESSOR "@streq JSON" "id:232,phase:1,pass,log"
SecRule REQBODY_PROCESSOR "@streq URLENCODED" "id:233,phase:1,pass,log"
SecRule &REQBODY_PROCESSOR "@eq 1" "id:234,phase:1,pass,log"`);
    const form = { method: 'POST', headers: [['Content-Type', 'application/x-www-form-urlencoded']] as [string, string][] };
    assert.deepEqual(run(waf, form, '{"a":1}').ids, [230, 232, 234]);
    assert.deepEqual(run(waf, { headers: [['Content-Type', 'application/x-www-form-urlencoded']] }).ids, [230, 233, 234]);
  });

  it('scalar variables, keyed specials and collections are told apart at compile time', () => {
    const waf = engine(`
SecRule REQUEST_URI "@contains a" "id:210,phase:1,pass,log"
SecRule TX:x "@streq 1" "id:211,phase:1,pass,log"
SecRule REQUEST_HEADERS:Host "@contains example" "id:212,phase:1,pass,log"
SecRule ARGS "@streq v" "id:213,phase:1,pass,log"
SecAction "id:214,phase:1,pass,nolog,setvar:tx.x=1"
SecRule TX:x "@streq 1" "id:215,phase:1,pass,log"
SecRule MATCHED_VARS "@streq 1" "id:216,phase:1,pass,log,chain"
  SecRule REQUEST_METHOD "@streq GET" "t:none"`);
    const vars = (id: number) => waf.ruleSet.byId.get(id)!.variables.map((v) => [v.name, v.scalar]);
    assert.deepEqual(vars(210), [['REQUEST_URI', true]]);
    assert.deepEqual(vars(211), [['TX', false]]);
    assert.deepEqual(vars(212), [['REQUEST_HEADERS', false]]);
    assert.deepEqual(vars(216), [['MATCHED_VARS', false]]);
    assert.deepEqual(waf.ruleSet.byId.get(216)!.chained!.variables.map((v) => v.scalar), [true]);
    // MATCHED_VARS is empty when a rule starts (216 never matches), as before.
    assert.deepEqual(run(waf, { uri: '/a?k=v' }).ids, [210, 212, 213, 215]);
  });

  it('a long value transformed in several chains gives the same results as one chain', () => {
    const long = `${'A'.repeat(300)}%41`;
    const waf = engine(`
SecRule ARGS:v "@rx ^a{301}$" "id:220,phase:1,pass,log,t:none,t:urlDecodeUni,t:lowercase"
SecRule ARGS:v "@rx ^a{300}%41$" "id:221,phase:1,pass,log,t:none,t:lowercase"
SecRule ARGS:v "@rx ^a{300}a$" "id:222,phase:1,pass,log,t:none,t:lowercase,t:urlDecodeUni,t:lowercase"
SecRule ARGS:v "@rx ^A{300}A$" "id:223,phase:1,pass,log,t:none,t:urlDecodeUni"`);
    // ARGS decoding already turned %2541 into %41.
    assert.deepEqual(run(waf, { uri: `/?v=${long.replace('%41', '%2541')}` }).ids, [220, 221, 222, 223]);
  });

  it('a link\'s own exclusions and a transaction\'s ctl removals both filter its items, on every selector they name', () => {
    const waf = engine(`
SecRule REQUEST_FILENAME "@streq /ctl" "id:299,phase:1,pass,nolog,ctl:ruleRemoveTargetById=300;ARGS:b,ctl:ruleRemoveTargetById=300;ARGS_GET:b"
SecRule ARGS|ARGS_GET|!ARGS:a|!ARGS_GET:a|!ARGS_GET:c "@streq x" "id:300,phase:1,pass,log,t:none"
SecRule ARGS|!REQUEST_HEADERS:a "@streq y" "id:301,phase:1,pass,log,t:none"`);
    const ids = (uri: string): number[] => run(waf, { uri }).ids;
    assert.deepEqual(ids('/p?a=x&c=z&d=y'), [301]);
    assert.deepEqual(ids('/p?a=x&c=x'), [300]); // ARGS:c is only excluded from ARGS_GET
    assert.deepEqual(ids('/p?a=x&b=x'), [300]);
    assert.deepEqual(ids('/ctl?a=x&b=x'), []);
    assert.deepEqual(ids('/ctl?a=x&b=x&e=x'), [300]);
  });

  it('TX keeps a Map\'s order across slotted, run-time and replayed keys (session 21)', () => {
    // 1 is the fold's replay (set-up prefix), 2 writes run-time keys (from a capture), 3-5 write
    // slotted keys by setvar: an update keeps its place, a deleted key that comes back goes last.
    const waf = engine(`
SecAction "id:1,phase:1,pass,nolog,setvar:tx.ka=1,setvar:tx.kb=2,setvar:tx.kc=3"
SecRule REQUEST_HEADERS:x-k "@rx ^(.*)$" "id:2,phase:1,pass,nolog,capture,setvar:'tx.k_%{tx.1}=4',setvar:'tx.k_%{tx.1}2=4'"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.kb=5,setvar:!tx.ka,setvar:tx.kd=6,setvar:'!tx.k_%{tx.1}'"
SecAction "id:4,phase:1,pass,nolog,setvar:tx.ka=+7,setvar:'tx.k_%{tx.1}=8'"
SecRule TX:/^k/ "@rx ." "id:10,phase:2,pass,log"
SecRule &TX:/^k/ "@eq 6" "id:11,phase:2,pass,log"
SecRule TX:ka "@eq 7" "id:12,phase:2,pass,log"`);
    const { tx, ids } = run(waf, { headers: [['X-K', 'Dyn']] });
    assert.deepEqual(ids, [10, 11, 12]);
    const names = tx.matchedRules()[0]!.matched.map((m) => `${m.variable}=${m.value}`);
    assert.deepEqual(names, ['TX:kb=5', 'TX:kc=3', 'TX:k_Dyn2=4', 'TX:kd=6', 'TX:ka=7', 'TX:k_Dyn=8']);
  });

  it('TX key regexes answer a slotted key by its spelling in this transaction (session 23 memo)', () => {
    // tx.ka and tx.\u212aa (KELVIN SIGN, lower-cased to "k") share the slot "ka"; /ka/i without
    // the u flag does not match the Kelvin sign, so the answer kept for one spelling is wrong for
    // the other.
    const waf = engine(`
SecRule REQUEST_HEADERS:x-s "@streq a" "id:1,phase:1,pass,nolog,setvar:tx.ka=1"
SecRule REQUEST_HEADERS:x-s "@streq b" "id:2,phase:1,pass,nolog,setvar:tx.\u212aa=1"
SecRule TX:/^ka/ "@rx ." "id:10,phase:1,pass,log"
SecRule TX:/^k[a-c]$/ "@rx ." "id:11,phase:1,pass,log"
SecRule &TX:/^k[a-c]$/ "@eq 0" "id:12,phase:1,pass,log"`);
    const ids = (s: string): number[] => run(waf, { headers: [['Host', 'h'], ['X-S', s]] }).ids;
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(ids('a'), [10, 11], `a, round ${i}`);
      assert.deepEqual(ids('b'), [12], `b, round ${i}`);
      assert.deepEqual(ids('c'), [12], `c, round ${i}`);
    }
  });

  it('a literal TX key regex no slotted key matches walks the run-time keys in TX order (session 23)', () => {
    // dd_* keys exist only at run time (from captures): deleted and set again, a key goes last;
    // a later rule set's slot named like them does not change what a running transaction sees.
    const waf = engine(`
SecRule REQUEST_HEADERS:x-k "@rx ^(.*)$" "id:1,phase:1,pass,nolog,capture,setvar:'tx.dd_%{tx.1}a=1',setvar:'tx.dd_%{tx.1}b=2',setvar:'tx.dd_%{tx.1}c=3',setvar:tx.other=4"
SecRule REQUEST_HEADERS:x-k "@rx ^(.*)$" "id:2,phase:1,pass,nolog,capture,setvar:'!tx.dd_%{tx.1}a',setvar:'tx.dd_%{tx.1}b=5',setvar:'tx.dd_%{tx.1}a=6'"
SecRule TX:/^DD_/ "@rx ." "id:10,phase:1,pass,log,multiMatch"
SecRule TX:/dd_x/ "@rx ." "id:11,phase:1,pass,log"
SecRule TX:/^dd_xz/ "@rx ." "id:12,phase:1,pass,log"`);
    const matched = (tx: { matchedRules(): { id: number; matched: { variable: string; value: string }[] }[] }, id: number): string[] =>
      tx.matchedRules().find((m) => m.id === id)?.matched.map((m) => `${m.variable}=${m.value}`) ?? [];
    const first = run(waf, { headers: [['X-K', 'X']] });
    assert.deepEqual(first.ids, [10, 11]);
    assert.deepEqual(matched(first.tx, 10), ['TX:dd_Xb=5', 'TX:dd_Xc=3', 'TX:dd_Xa=6']);
    engine(`SecAction "id:3,phase:1,pass,nolog,setvar:tx.dd_xzz=1"`);
    const later = run(waf, { headers: [['X-K', 'Xz']] });
    assert.deepEqual(later.ids, [10, 11, 12]);
    assert.deepEqual(matched(later.tx, 10), ['TX:dd_Xzb=5', 'TX:dd_Xzc=3', 'TX:dd_Xza=6']);
  });

  it('a TX key a later rule set names literally stays where a running transaction put it', () => {
    const key = 'zz_late_key_session21';
    const waf = engine(`SecRule REQUEST_HEADERS:x-k "@rx ^(.*)$" "id:1,phase:1,pass,nolog,capture,setvar:'tx.%{tx.1}=dyn'"`);
    const tx = waf.newTransaction(req({ headers: [['X-K', key]] }));
    tx.processRequestHeaders();
    assert.equal(tx.getTx(key), 'dyn');
    // Compiling this gives the key a slot the running transaction did not know.
    engine(`SecAction "id:2,phase:1,pass,nolog,setvar:tx.${key}=1"`);
    assert.equal(tx.getTx(key), 'dyn');
    const later = waf.newTransaction(req({ headers: [['X-K', key]] }));
    later.processRequestHeaders();
    assert.equal(later.getTx(key), 'dyn');
  });
});
