// The pure part of the `_method` override check (src/server/method-param.ts), as tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formKind, namesMethodParam, overrideCouldMove, overridesInBody, overridesInUrlencoded, refusedOverride } from '../../../src/server/method-param.ts';

test('names read as _method: as sent, or as PHP registers them', () => {
  const table: [string, boolean][] = [
    ['_method', true],
    ['.method', true], // PHP: . -> _
    [' method', false], // PHP drops the leading space first: `method`
    [' _method', true],
    ['  .method', true],
    ['_method\0junk', true], // PHP: a C string
    ['_method[]', false], // an array
    ['_method[', false], // PHP: `_method_`
    ['_method ', false], // PHP: `_method_`
    ['_METHOD', false], // names compare with case everywhere
    ['method', false],
    ['x_method', false],
    ['', false],
  ];
  for (const [name, want] of table) assert.equal(namesMethodParam(name), want, JSON.stringify(name));
});

test('values found in a query string or urlencoded body (every one, decoded, upper-cased)', () => {
  const table: [string, string[]][] = [
    ['', []],
    ['a=1&b=2', []],
    ['_method=delete', ['DELETE']],
    ['%5Fmethod=DELETE', ['DELETE']],
    ['%5fmethod=put', ['PUT']],
    ['_method=DEL%45TE', ['DELETE']],
    ['+_method=PATCH', ['PATCH']],
    ['.method=PATCH', ['PATCH']],
    ['_method%00x=GET', ['GET']],
    ['a=1;_method=DELETE', ['DELETE']],
    ['_method=POST&_method=DELETE', ['POST', 'DELETE']],
    ['_method', []], // no value: nothing a framework would act on
    ['_method=', ['']],
    ['_method=%ZZ', ['%ZZ']], // a bad escape stays
    ['_method=opt%C4%B1ons', ['OPTIONS']], // dotless i upper-cases to I (Ruby, Java, JavaScript)
    ['_method[]=DELETE&_METHOD=DELETE', []],
  ];
  for (const [text, want] of table) assert.deepEqual(overridesInUrlencoded(text), want, text);
});

test('which bodies a framework reads _method from', () => {
  const table: [string | undefined, string | undefined][] = [
    [undefined, 'urlencoded'],
    ['', 'urlencoded'],
    ['application/x-www-form-urlencoded', 'urlencoded'],
    ['Application/X-WWW-Form-Urlencoded; charset=UTF-8', 'urlencoded'],
    ['multipart/form-data; boundary=x', 'multipart'],
    ['multipart/mixed; boundary=x', 'multipart'],
    ['application/json', 'json'],
    ['application/vnd.api+json', 'json'],
    ['text/plain', undefined],
    ['application/octet-stream', undefined],
    ['application/grpc', undefined],
  ];
  for (const [ct, want] of table) assert.equal(formKind(ct), want, String(ct));
});

test('bodies: urlencoded, JSON (top-level string only), multipart fields', () => {
  assert.deepEqual(overridesInBody(Buffer.from('a=1&_method=delete'), 'urlencoded', undefined), ['DELETE']);
  assert.deepEqual(overridesInBody(Buffer.from('{"_method":"patch"}'), 'json', 'application/json'), ['PATCH']);
  assert.deepEqual(overridesInBody(Buffer.from('{"_method":["DELETE"]}'), 'json', 'application/json'), []);
  assert.deepEqual(overridesInBody(Buffer.from('["_method"]'), 'json', 'application/json'), []);
  assert.deepEqual(overridesInBody(Buffer.from('{bad'), 'json', 'application/json'), []);
  const mp = '--b\r\nContent-Disposition: form-data; name=".method"\r\n\r\ndelete\r\n--b\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\nDELETE\r\n--b--\r\n';
  assert.deepEqual(overridesInBody(Buffer.from(mp), 'multipart', 'multipart/form-data; boundary=b'), ['DELETE']);
});

test('the decision: POST, listed methods and the same route pass; another route or none is refused', () => {
  const A = 'A';
  const rematch = (m: string) => (m === 'DELETE' ? 'D' : m === 'GET' ? undefined : A);
  const table: [string[], ReadonlySet<string> | undefined, string | undefined][] = [
    [[], undefined, undefined],
    [['POST'], undefined, undefined],
    [['PUT'], undefined, undefined], // same route
    [['DELETE'], undefined, 'DELETE'], // another route
    [['GET'], undefined, 'GET'], // no route
    [['PUT', 'DELETE'], undefined, 'DELETE'], // any value refused refuses
    [['DELETE'], new Set(['DELETE']), undefined], // forward-method-override lists it
    [['GET'], new Set(['DELETE']), 'GET'],
  ];
  for (const [values, listed, want] of table) assert.equal(refusedOverride(values, A, listed, rematch), want, `${values.join(',')} ${[...(listed ?? [])].join(',')}`);
  assert.equal(overrideCouldMove(['DELETE'], A, undefined, rematch), true);
  assert.equal(overrideCouldMove(['DELETE'], A, new Set(['DELETE']), rematch), false);
  assert.equal(overrideCouldMove(['PUT'], A, undefined, rematch), false);
  assert.equal(overrideCouldMove(['PUT'], A, undefined, (m) => (m === '' ? 'B' : A)), true); // any other method goes elsewhere
});

test('multipart: an RFC 2231 name* beside name (busboy, werkzeug, Go read it) and a body without any spelling', () => {
  const star = '--b\r\nContent-Disposition: form-data; name="x"; name*=UTF-8\'\'%5Fmethod\r\n\r\nDELETE\r\n--b--\r\n';
  assert.deepEqual(overridesInBody(Buffer.from(star), 'multipart', 'multipart/form-data; boundary=b'), ['DELETE']);
  const none = '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nDELETE\r\n--b--\r\n';
  assert.deepEqual(overridesInBody(Buffer.from(none), 'multipart', 'multipart/form-data; boundary=b'), []);
});
