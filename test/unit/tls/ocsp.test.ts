// Pure OCSP pieces: the DER codec, the CertID/request layout, response parsing of a response
// built here (so the parser is tested without a responder), and the cache schedule.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TAG, children, decodeGeneralizedTime, decodeOid, encode, encodeOid, readTlv, value } from '../../../plugins/tls/der.ts';
import { parseOcspResponse, retryDelayMs, stapleSchedule, type CertId } from '../../../plugins/tls/ocsp.ts';

describe('DER', () => {
  it('encodes short and long lengths and reads them back', () => {
    for (const n of [0, 1, 127, 128, 255, 256, 65535, 70000]) {
      const der = encode(TAG.OCTET_STRING, Buffer.alloc(n, 7));
      const t = readTlv(der, 0);
      assert.equal(t.tag, TAG.OCTET_STRING);
      assert.equal(t.end - t.start, n);
      assert.equal(t.end, der.length);
    }
  });
  it('OIDs round-trip (multi-byte arcs)', () => {
    for (const oid of ['1.3.14.3.2.26', '1.3.6.1.5.5.7.48.1.1', '1.2.840.113549.1.1.11', '2.5.29.17', '1.2.840.10045.4.3.2']) assert.equal(decodeOid(value(encodeOid(oid), readTlv(encodeOid(oid), 0))), oid);
    // the SHA-1 OID's well-known encoding
    assert.equal(encodeOid('1.3.14.3.2.26').toString('hex'), '06052b0e03021a');
  });
  it('GeneralizedTime with and without fractions', () => {
    assert.equal(decodeGeneralizedTime(Buffer.from('20261128213000Z')).toISOString(), '2026-11-28T21:30:00.000Z');
    assert.equal(decodeGeneralizedTime(Buffer.from('20261128213000.25Z')).toISOString(), '2026-11-28T21:30:00.250Z');
    assert.throws(() => decodeGeneralizedTime(Buffer.from('261128213000Z')), /GeneralizedTime/);
  });
  it('refuses truncated input and elements running past their parent', () => {
    assert.throws(() => readTlv(Buffer.from([0x30]), 0), /truncated/);
    assert.throws(() => readTlv(Buffer.from([0x30, 0x05, 0x01]), 0), /runs past/);
    assert.throws(() => readTlv(Buffer.from([0x1f, 0x01, 0x00]), 0), /multi-byte tag/);
  });
  it('children walks a SEQUENCE', () => {
    const der = encode(TAG.SEQUENCE, encode(TAG.INTEGER, Buffer.from([5])), encode(TAG.NULL));
    assert.deepEqual(children(der, readTlv(der, 0)).map((c) => c.tag), [TAG.INTEGER, TAG.NULL]);
  });
});

/** A BasicOCSPResponse with one SingleResponse, shaped per RFC 6960 (signature not valid). */
function response(opts: { serial: Buffer; status: 'good' | 'revoked' | 'unknown'; thisUpdate: string; nextUpdate?: string; responseStatus?: number }): Buffer {
  const gt = (s: string) => encode(TAG.GENERALIZED_TIME, Buffer.from(s));
  if (opts.responseStatus) return encode(TAG.SEQUENCE, encode(TAG.ENUMERATED, Buffer.from([opts.responseStatus])));
  const certId = encode(TAG.SEQUENCE, encode(TAG.SEQUENCE, encodeOid('1.3.14.3.2.26'), encode(TAG.NULL)), encode(TAG.OCTET_STRING, Buffer.alloc(20, 1)), encode(TAG.OCTET_STRING, Buffer.alloc(20, 2)), encode(TAG.INTEGER, opts.serial));
  const certStatus = opts.status === 'good' ? Buffer.from([0x80, 0x00]) : opts.status === 'revoked' ? encode(0xa1, gt('20260101000000Z')) : Buffer.from([0x82, 0x00]);
  const single = encode(TAG.SEQUENCE, certId, certStatus, gt(opts.thisUpdate), ...(opts.nextUpdate ? [encode(0xa0, gt(opts.nextUpdate))] : []));
  const tbs = encode(TAG.SEQUENCE, encode(0xa2, encode(TAG.OCTET_STRING, Buffer.alloc(20, 2))), gt(opts.thisUpdate), encode(TAG.SEQUENCE, single));
  const basic = encode(TAG.SEQUENCE, tbs, encode(TAG.SEQUENCE, encodeOid('1.2.840.10045.4.3.2')), encode(TAG.BIT_STRING, Buffer.from([0, 1, 2, 3])));
  return encode(TAG.SEQUENCE, encode(TAG.ENUMERATED, Buffer.from([0])), encode(0xa0, encode(TAG.SEQUENCE, encodeOid('1.3.6.1.5.5.7.48.1.1'), encode(TAG.OCTET_STRING, basic))));
}

describe('parseOcspResponse', () => {
  const id: CertId = { der: Buffer.alloc(0), issuerNameHash: Buffer.alloc(20, 1), issuerKeyHash: Buffer.alloc(20, 2), serial: Buffer.from([0x12, 0x34]) };
  it('reads status, times and signature parts of the matching SingleResponse', () => {
    const p = parseOcspResponse(response({ serial: id.serial, status: 'good', thisUpdate: '20261128000000Z', nextUpdate: '20261129000000Z' }), id);
    assert.equal(p.responseStatus, 0);
    assert.equal(p.certStatus, 'good');
    assert.equal(p.thisUpdate?.toISOString(), '2026-11-28T00:00:00.000Z');
    assert.equal(p.nextUpdate?.toISOString(), '2026-11-29T00:00:00.000Z');
    assert.equal(p.signatureAlgorithm, '1.2.840.10045.4.3.2');
    assert.deepEqual(p.signature, Buffer.from([1, 2, 3]));
  });
  it('revoked / unknown / no nextUpdate', () => {
    assert.equal(parseOcspResponse(response({ serial: id.serial, status: 'revoked', thisUpdate: '20261128000000Z' }), id).certStatus, 'revoked');
    const u = parseOcspResponse(response({ serial: id.serial, status: 'unknown', thisUpdate: '20261128000000Z' }), id);
    assert.equal(u.certStatus, 'unknown');
    assert.equal(u.nextUpdate, undefined);
  });
  it('a non-successful responseStatus is returned as such (tryLater = 3)', () => {
    assert.equal(parseOcspResponse(response({ serial: id.serial, status: 'good', thisUpdate: '20261128000000Z', responseStatus: 3 }), id).responseStatus, 3);
  });
  it('another serial is not accepted', () => {
    assert.throws(() => parseOcspResponse(response({ serial: Buffer.from([9]), status: 'good', thisUpdate: '20261128000000Z' }), id), /does not cover/);
  });
  it('garbage and trailing bytes are errors', () => {
    assert.throws(() => parseOcspResponse(Buffer.from('<html>'), id));
    const ok = response({ serial: id.serial, status: 'good', thisUpdate: '20261128000000Z' });
    assert.throws(() => parseOcspResponse(Buffer.concat([ok, Buffer.from([0])]), id), /trailing/);
  });
});

describe('stapleSchedule / retryDelayMs', () => {
  const H = 3_600_000;
  const t0 = Date.UTC(2026, 10, 28);
  it('7-day response: staple until nextUpdate, refetch within the hour', () => {
    const s = stapleSchedule(new Date(t0), new Date(t0 + 168 * H), t0);
    assert.equal(s.expiresAt, t0 + 168 * H);
    assert.equal(s.refreshAt, t0 + H);
  });
  it('short window: refresh a quarter of the window before nextUpdate', () => {
    const s = stapleSchedule(new Date(t0), new Date(t0 + 40 * 60_000), t0);
    assert.equal(s.refreshAt, t0 + 30 * 60_000);
  });
  it('near the end: refresh a quarter-window (at most 1 h) before nextUpdate', () => {
    const s = stapleSchedule(new Date(t0), new Date(t0 + 168 * H), t0 + 167 * H - 60_000);
    assert.equal(s.refreshAt, t0 + 167 * H);
  });
  it('no nextUpdate: trusted 24 h, refreshed hourly', () => {
    const s = stapleSchedule(new Date(t0), undefined, t0);
    assert.equal(s.expiresAt, t0 + 24 * H);
    assert.equal(s.refreshAt, t0 + H);
  });
  it('never schedules in the past', () => {
    const s = stapleSchedule(new Date(t0), new Date(t0 + 10_000), t0 + 20_000);
    assert.equal(s.refreshAt, t0 + 21_000);
  });
  it('retry backoff: 10 s doubling, capped at 10 min', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map(retryDelayMs), [10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 600_000, 600_000]);
  });
});
