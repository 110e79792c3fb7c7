import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, normalizeHost, parseTarget, checkQuery, MAX_TARGET_LENGTH } from '../../../src/server/request-target.ts';

test('paths: already-normal paths come back unchanged (same string)', () => {
  for (const p of ['/', '/api', '/api/v1/users', '/a-b_c~d.e', "/x/!$&'()*+,=:@", '/a/b/', '/file.txt', '/a.b/c..d']) {
    const r = normalizePath(p);
    assert.deepEqual(r, { ok: true, path: p }, p);
  }
});

test('paths: normalisation table (RFC 3986 6.2.2 + 5.2.4, merged slashes)', () => {
  const table: [string, string][] = [
    ['/%61dmin', '/admin'],
    ['//admin', '/admin'],
    ['///admin//x', '/admin/x'],
    ['/./admin', '/admin'],
    ['/x/../admin', '/admin'],
    ['/%2e/admin', '/admin'],
    ['/%2E%2E/admin', '/admin'],
    ['/x/%2e%2e/admin', '/admin'],
    ['/../../admin', '/admin'],
    ['/..', '/'],
    ['/.', '/'],
    ['/a/..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/a//', '/a/'],
    ['/a/./b/../c', '/a/c'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a/.hidden', '/a/.hidden'],
    ['/%7euser', '/~user'],
    ['/%41%42%30', '/AB0'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    // not overlong: Latin-1 'À' / 'à' before ASCII, and the shortest 3- and 4-byte forms
    ['/%C0x', '/%C0x'],
    ['/%E0%A4%85', '/%E0%A4%85'],
    ['/%F0%9F%98%80', '/%F0%9F%98%80'],
    ['/%C0', '/%C0'],
    ['/a%2b', '/a%2B'],
    ['/100%25', '/100%25'],
    ['/a|b', '/a%7Cb'],
    ['/a"b<c>', '/a%22b%3Cc%3E'],
    ['/{id}', '/%7Bid%7D'],
    ['/a%20b', '/a%20b'],
  ];
  for (const [input, want] of table) assert.deepEqual(normalizePath(input), { ok: true, path: want }, input);
});

test('paths: rejections (400 kinds, 414)', () => {
  const table: [string, string][] = [
    ['/admin%00', 'control_character'],
    ['/a%0d%0aX: y', 'control_character'],
    ['/a%7f', 'control_character'],
    ['/a\u0001', 'control_character'],
    ['/a b', 'control_character'],
    ['/admin%2fx', 'encoded_slash'],
    ['/admin%2F', 'encoded_slash'],
    ['/admin%5cx', 'encoded_slash'],
    ['/admin\\', 'backslash'],
    ['/admin\\..\\x', 'backslash'],
    ['/admin;x', 'path_parameter'],
    ['/admin;jsessionid=1', 'path_parameter'],
    ['/admin%3bx', 'path_parameter'],
    ['/a#frag', 'fragment'],
    ['/%zz', 'bad_percent_encoding'],
    ['/%4', 'bad_percent_encoding'],
    ['/a%', 'bad_percent_encoding'],
    ['/%%41', 'bad_percent_encoding'],
    // overlong UTF-8: '.', '/' and '\\' spelled in 2, 3 and 4 bytes
    ['/%C0%AE%C0%AE/admin', 'overlong_utf8'],
    ['/%c0%af', 'overlong_utf8'],
    ['/%C1%9C', 'overlong_utf8'],
    ['/%E0%80%AF', 'overlong_utf8'],
    ['/%F0%80%80%AF', 'overlong_utf8'],
    ['/caf\u00e9', 'non_ascii'],
    ['/' + 'a'.repeat(MAX_TARGET_LENGTH), 'uri_too_long'],
  ];
  for (const [input, reason] of table) assert.deepEqual(normalizePath(input), { ok: false, reason }, JSON.stringify(input));
});

test('query: forwarded as sent; control characters and fragments refused', () => {
  assert.equal(checkQuery('a=1&b=%zz&c=x+y'), undefined);
  assert.equal(checkQuery('a=\u0000'), 'control_character');
  assert.equal(checkQuery('a=1#x'), 'fragment');
  assert.equal(checkQuery('a=\u00e9'), 'non_ascii');
});

test('targets: origin, absolute, asterisk forms', () => {
  assert.deepEqual(parseTarget('/a/../b?x=1'), { form: 'origin', path: '/b', query: 'x=1', changed: true });
  assert.deepEqual(parseTarget('/b?x=/../1'), { form: 'origin', path: '/b', query: 'x=/../1', changed: false });
  assert.deepEqual(parseTarget('/b'), { form: 'origin', path: '/b', query: '', changed: false });
  assert.deepEqual(parseTarget('http://Public.Example.com/admin'), { form: 'absolute', authority: 'public.example.com', path: '/admin', query: '' });
  assert.deepEqual(parseTarget('HTTP://h:80'), { form: 'absolute', authority: 'h', path: '/', query: '' });
  assert.deepEqual(parseTarget('https://h:443?q'), { form: 'absolute', authority: 'h', path: '/', query: 'q' });
  assert.deepEqual(parseTarget('http://h:8080//x/./y'), { form: 'absolute', authority: 'h:8080', path: '/x/y', query: '' });
  assert.deepEqual(parseTarget('*'), { form: 'asterisk' });
  const rejected: [string, string][] = [
    ['ftp://h/x', 'bad_scheme'],
    ['javascript://h/x', 'bad_scheme'],
    ['http://user@h/x', 'host_userinfo'],
    ['http:///x', 'bad_host'],
    ['http://h/%2e%2e%2fadmin', 'encoded_slash'],
    ['example.com:443', 'bad_target'],
    ['x', 'bad_target'],
    ['', 'bad_target'],
    ['/' + 'a'.repeat(MAX_TARGET_LENGTH), 'uri_too_long'],
    ['/a?' + 'q'.repeat(MAX_TARGET_LENGTH), 'uri_too_long'],
  ];
  for (const [t, reason] of rejected) assert.deepEqual(parseTarget(t), { form: 'rejected', reason }, t);
});

test('hosts: normalisation table', () => {
  const table: [string, number, string][] = [
    ['example.com', 80, 'example.com'],
    ['Example.COM', 80, 'example.com'],
    ['internal.example.com.', 80, 'internal.example.com'],
    ['internal.example.com.:80', 80, 'internal.example.com'],
    ['example.com:80', 80, 'example.com'],
    ['example.com:443', 443, 'example.com'],
    ['example.com:443', 80, 'example.com:443'],
    ['example.com:8080', 80, 'example.com:8080'],
    ['example.com:08080', 80, 'example.com:8080'],
    ['example.com:', 80, 'example.com'],
    ['127.0.0.1:9000', 80, '127.0.0.1:9000'],
    ['my_host', 80, 'my_host'],
    ['[::1]', 80, '[::1]'],
    ['[::1]:80', 80, '[::1]'],
    ['[2001:DB8::1]:8443', 443, '[2001:db8::1]:8443'],
    ['[::ffff:127.0.0.1]', 80, '[::ffff:127.0.0.1]'],
  ];
  for (const [raw, port, want] of table) assert.equal(normalizeHost(raw, port), want, raw);
  const bad: [string, string][] = [
    ['x@y', 'host_userinfo'],
    ['user:pass@y', 'bad_host'],
    ['', 'bad_host'],
    ['.', 'bad_host'],
    ['a..b', 'bad_host'],
    ['.a', 'bad_host'],
    ['a.b..', 'bad_host'],
    ['a b', 'bad_host'],
    ['a/b', 'bad_host'],
    ['a%41', 'bad_host'],
    ['a:b', 'bad_host'],
    ['a:99999', 'bad_host'],
    ['a:123456', 'bad_host'],
    ['a:1:2', 'bad_host'],
    ['[::1', 'bad_host'],
    ['[]', 'bad_host'],
    ['[::1]x', 'bad_host'],
    ['[fe80::1%25eth0]', 'bad_host'],
    ['[1:2:3:4:5:6:7:8:9]', 'bad_host'],
    ['[1::2::3]', 'bad_host'],
    ['[g::1]', 'bad_host'],
    ['a'.repeat(300), 'bad_host'],
  ];
  for (const [raw, reason] of bad) assert.deepEqual(normalizeHost(raw, 80), { reason }, raw);
});
