// Pure tls option translation: versions, cipher suites, handshake failure reasons, SAN parsing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cipherList, parseTlsVersion, versionRange } from '../../../plugins/tls/options.ts';
import { classifyHandshakeError } from '../../../plugins/tls/handshake.ts';
import { commonName, parseSubjectAltName } from '../../../plugins/tls/certs.ts';

describe('parseTlsVersion', () => {
  for (const [v, want] of [
    ['1.2', 'TLSv1.2'],
    ['1.3', 'TLSv1.3'],
    ['tls1.3', 'TLSv1.3'],
    ['TLSv1.3', 'TLSv1.3'],
    ['tlsv1.2', 'TLSv1.2'],
    ['TLS1.2', 'TLSv1.2'],
    ['tls13', 'TLSv1.3'],
  ] as const) {
    it(`${v} -> ${want}`, () => assert.equal(parseTlsVersion('min-version', v), want));
  }
  for (const v of ['1.1', '1.0', 'ssl3', 'tls1.4', '', 'latest']) {
    it(`rejects "${v}" (Sentinel silently used 1.2)`, () => assert.throws(() => parseTlsVersion('min-version', v), /expected "1\.2" or "1\.3"/));
  }
  it('min above max is an error', () => assert.throws(() => versionRange('1.3', '1.2'), /higher than max-version/));
  it('defaults: 1.2 .. 1.3', () => assert.deepEqual(versionRange(undefined, undefined), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }));
});

describe('cipherList', () => {
  const both = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' } as const;
  it('none configured -> node defaults', () => assert.equal(cipherList(undefined, both), undefined));
  it('rustls/IANA names map to OpenSSL names; TLS 1.3 keeps defaults when only 1.2 suites are listed', () => {
    assert.equal(
      cipherList(['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'tls_ecdhe_ecdsa_with_chacha20_poly1305_sha256'], both),
      'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305',
    );
  });
  it('rustls TLS13_ names and OpenSSL names are accepted; duplicates collapse', () => {
    assert.equal(cipherList(['TLS13_AES_256_GCM_SHA384', 'TLS_AES_256_GCM_SHA384', 'ECDHE-RSA-AES256-GCM-SHA384'], both), 'TLS_AES_256_GCM_SHA384:ECDHE-RSA-AES256-GCM-SHA384');
  });
  it('only TLS 1.3 suites are fine when min-version is 1.3', () => {
    assert.equal(cipherList(['TLS13_CHACHA20_POLY1305_SHA256'], { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }), 'TLS_CHACHA20_POLY1305_SHA256');
  });
  it('only TLS 1.3 suites with min-version 1.2 is an error (1.2 would have no cipher)', () => {
    assert.throws(() => cipherList(['TLS13_AES_128_GCM_SHA256'], both), /only TLS 1\.3 suites/);
  });
  it('unknown and weak suites are rejected with the supported list', () => {
    assert.throws(() => cipherList(['TLS_RSA_WITH_AES_128_CBC_SHA'], both), /unknown or not allowed; supported: .*TLS13_AES_128_GCM_SHA256/);
    assert.throws(() => cipherList(['RC4-MD5'], both), /unknown or not allowed/);
  });
});

describe('classifyHandshakeError', () => {
  const cases: [{ code?: string; message?: string }, string][] = [
    [{ code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', message: 'peer did not return a certificate' }, 'client_cert_missing'],
    [{ code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, 'client_cert_untrusted'],
    [{ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, 'client_cert_untrusted'],
    [{ code: 'CERT_HAS_EXPIRED' }, 'client_cert_expired'],
    [{ code: 'ERR_SSL_UNSUPPORTED_PROTOCOL', message: 'unsupported protocol' }, 'protocol_version'],
    [{ code: 'ERR_SSL_NO_SHARED_CIPHER', message: 'no shared cipher' }, 'no_shared_cipher'],
    [{ code: 'ERR_SSL_HTTP_REQUEST', message: 'http request' }, 'plain_http'],
    [{ code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }, 'timeout'],
    [{ code: 'ECONNRESET', message: 'socket hang up' }, 'client_reset'],
    [{ message: 'wrong version number' }, 'malformed'],
    [{ message: 'something new' }, 'other'],
  ];
  for (const [err, want] of cases) it(`${err.code ?? err.message} -> ${want}`, () => assert.equal(classifyHandshakeError(err), want));
});

describe('parseSubjectAltName / commonName', () => {
  it('splits node\'s subjectAltName string by type', () => {
    assert.deepEqual(parseSubjectAltName('DNS:a.test, DNS:*.b.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, email:x@y.test, URI:spiffe://t/ns/a'), {
      dns: ['a.test', '*.b.test'],
      ip: ['127.0.0.1', '0:0:0:0:0:0:0:1'],
      email: ['x@y.test'],
      uri: ['spiffe://t/ns/a'],
    });
  });
  it('reads JSON-quoted values containing separators', () => {
    assert.deepEqual(parseSubjectAltName('DNS:a.test, URI:"http://x/?a=1, b=2", DNS:c.test').uri, ['http://x/?a=1, b=2']);
    assert.deepEqual(parseSubjectAltName('DNS:a.test, URI:"http://x/?a=1, b=2", DNS:c.test').dns, ['a.test', 'c.test']);
  });
  it('empty / absent', () => assert.deepEqual(parseSubjectAltName(undefined), { dns: [], ip: [], uri: [], email: [] }));
  it('CN from a node subject', () => {
    assert.equal(commonName('C=US\nO=Org\nCN=host.test'), 'host.test');
    assert.equal(commonName('O=Org'), undefined);
  });
});
