import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSchedstatNs, parseStatCpuTicks, parseVmRssKiB, readyThreadGroups, splitThreadCpu, startResourceSampler, threadCpuNs, treeCpuNs, type ThreadGroup } from '../../../bench/lib/procfs.ts';

test('parseVmRssKiB', () => {
  assert.equal(parseVmRssKiB('Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   51234 kB\nRssAnon:\t 1 kB\n'), 51234);
  assert.equal(parseVmRssKiB('Name:\tzombie\nState:\tZ (zombie)\n'), null);
});

test('parseStatCpuTicks counts fields after the command name, which may hold spaces and parens', () => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const stat = '4242 (my (odd) proc) S 1 4242 4242 0 -1 4194304 100 0 0 0 1234 56 0 0 20 0 1 0 777 1000000 200 18446744073709551615';
  assert.equal(parseStatCpuTicks(stat), 1234 + 56);
  assert.throws(() => parseStatCpuTicks('1 (x) S'), /unreadable/);
});

test('startResourceSampler reads this very process from /proc', async () => {
  const s = startResourceSampler(process.pid, 20);
  const junk: number[][] = [];
  const until = Date.now() + 120;
  while (Date.now() < until) junk.push(new Array(1000).fill(1)); // some CPU and memory to see
  await new Promise((r) => setTimeout(r, 50));
  const u = s.stop();
  assert.ok(junk.length > 0);
  assert.ok(u.rssMaxKiB > 1024, `rss ${u.rssMaxKiB} KiB`);
  assert.ok(u.rssSamples >= 2);
  assert.ok(u.cpuPct >= 0 && Number.isFinite(u.cpuPct));
  assert.ok(Number.isFinite(u.rssSlopeKiBps));
});

test('parseSchedstatNs reads the run time of a thread', () => {
  assert.equal(parseSchedstatNs('6195889 20073295 4\n'), 6195889);
  assert.throws(() => parseSchedstatNs('x'), /unreadable/);
  assert.ok(treeCpuNs(process.pid) > 0);
});

test('readyThreadGroups: main by tid, v8 = the first five threads created after it, the rest other', () => {
  const cases: { name: string; tids: number[]; want: [number, string][] }[] = [
    {
      name: 'a gateway: platform, one small thread, libuv pool (listed out of order)',
      tids: [107, 100, 103, 101, 102, 105, 104, 106, 108],
      want: [[100, 'main'], [101, 'v8'], [102, 'v8'], [103, 'v8'], [104, 'v8'], [105, 'v8'], [106, 'other'], [107, 'other'], [108, 'other']],
    },
    { name: 'other processes took ids in between', tids: [100, 130, 131, 150, 151, 152, 190], want: [[100, 'main'], [130, 'v8'], [131, 'v8'], [150, 'v8'], [151, 'v8'], [152, 'v8'], [190, 'other']] },
    { name: 'main alone', tids: [100], want: [[100, 'main']] },
  ];
  for (const c of cases) assert.deepEqual([...readyThreadGroups(100, c.tids)].sort((a, b) => a[0] - b[0]), c.want, c.name);
  assert.deepEqual([...readyThreadGroups(100, [100, 101, 102, 103], 2)].sort((a, b) => a[0] - b[0]), [[100, 'main'], [101, 'v8'], [102, 'v8'], [103, 'other']], 'platform size');
});

test('splitThreadCpu: main by tid, ready groups, late threads from zero, gone ones counted', () => {
  const pid = 100;
  const ready = new Map<number, ThreadGroup>([[100, 'main'], [101, 'v8'], [102, 'v8'], [103, 'other']]);
  const cases: { name: string; before: [number, number][]; after: [number, number][]; ns: [number, number, number, number]; threads: [number, number, number, number]; gone: number }[] = [
    { name: 'nothing moved', before: [[100, 5], [101, 7]], after: [[100, 5], [101, 7]], ns: [0, 0, 0, 0], threads: [1, 1, 0, 0], gone: 0 },
    { name: 'main, v8 and other', before: [[100, 1000], [101, 10], [102, 20], [103, 1]], after: [[100, 1600], [101, 40], [102, 25], [103, 3]], ns: [600, 35, 2, 0], threads: [1, 2, 1, 0], gone: 0 },
    { name: 'a thread started after ready counts in full, and one started in the span from zero', before: [[100, 0], [200, 50]], after: [[100, 10], [200, 80], [201, 7]], ns: [10, 0, 0, 37], threads: [1, 0, 0, 2], gone: 0 },
    { name: 'a ready thread first seen after the before sample counts from zero', before: [[100, 0]], after: [[100, 0], [103, 9]], ns: [0, 0, 9, 0], threads: [1, 0, 1, 0], gone: 0 },
    { name: 'a thread that exited is counted as gone, its time lost', before: [[100, 0], [101, 5], [200, 3]], after: [[100, 4]], ns: [4, 0, 0, 0], threads: [1, 0, 0, 0], gone: 2 },
  ];
  for (const c of cases) {
    const s = splitThreadCpu(pid, ready, new Map(c.before), new Map(c.after));
    assert.deepEqual([s.ns.main, s.ns.v8, s.ns.other, s.ns.late], c.ns, c.name);
    assert.deepEqual([s.threads.main, s.threads.v8, s.threads.other, s.threads.late], c.threads, c.name);
    assert.equal(s.gone, c.gone, c.name);
  }
});

test('threadCpuNs reads this process: the main thread is there', () => {
  const m = threadCpuNs(process.pid);
  assert.ok((m.get(process.pid) ?? 0) > 0);
  assert.equal(threadCpuNs(2 ** 30).size, 0);
});
