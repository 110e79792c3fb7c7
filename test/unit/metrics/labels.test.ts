// Label values derived from what a client sends fold into small fixed sets (docs/metrics.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { methodLabel } from '../../../src/metrics/registry.ts';
import { contentCodings, encodingLabel } from '../../../plugins/agents/body-inspection.ts';

test('methodLabel keeps the standard methods and folds the rest into OTHER', () => {
  const cases: Array<[string, string]> = [
    ['GET', 'GET'],
    ['HEAD', 'HEAD'],
    ['POST', 'POST'],
    ['PUT', 'PUT'],
    ['DELETE', 'DELETE'],
    ['CONNECT', 'CONNECT'],
    ['OPTIONS', 'OPTIONS'],
    ['TRACE', 'TRACE'],
    ['PATCH', 'PATCH'],
    ['PROPFIND', 'OTHER'],
    ['get', 'OTHER'],
    ['X'.repeat(200), 'OTHER'],
    ['', 'OTHER'],
  ];
  for (const [method, want] of cases) assert.equal(methodLabel(method), want, method);
});

test('encodingLabel names a known coding, otherwise other or multiple', () => {
  const cases: Array<[string, string]> = [
    ['gzip', 'gzip'],
    ['x-gzip', 'x-gzip'],
    ['deflate', 'deflate'],
    ['br', 'br'],
    ['GZIP', 'gzip'],
    ['x-made-up', 'other'],
    ['gzip, br', 'multiple'],
    ['gzip, gzip, gzip, gzip', 'multiple'],
    ['identity, gzip', 'gzip'],
  ];
  for (const [header, want] of cases) assert.equal(encodingLabel(contentCodings(header)), want, header);
});
