import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { ephemeralRange, freePort, pickRange } from '../../helpers/ports.ts';

describe('test and bench ports', () => {
  it('reads ip_local_port_range, with Linux default for what it cannot read', () => {
    const cases: [string, [number, number]][] = [
      ['32768\t60999\n', [32768, 60999]],
      ['  1024 65000', [1024, 65000]],
      ['', [32768, 60999]],
      ['60999 32768', [32768, 60999]],
      ['abc', [32768, 60999]],
    ];
    for (const [text, want] of cases) assert.deepEqual(ephemeralRange(text), want, JSON.stringify(text));
  });

  it('picks below the ephemeral range when there is room, else above it, else refuses', () => {
    assert.deepEqual(pickRange([32768, 60999]), [10000, 32767]);
    assert.deepEqual(pickRange([15000, 40000]), [40001, 65535]);
    assert.throws(() => pickRange([1024, 65000]), /no room/);
  });

  it('hands out distinct ports outside the ephemeral range that a server can listen on', async () => {
    const [lo, hi] = ephemeralRange();
    const ports = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      assert.ok(port < lo || port > hi, `${port} is inside the ephemeral range ${lo}-${hi}`);
      assert.ok(!ports.has(port), `${port} handed out twice`);
      ports.add(port);
    }
    const port = [...ports][0]!;
    const srv = createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  });
});
