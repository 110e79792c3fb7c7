import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSchedstatNs, parseStatCpuTicks, parseVmRssKiB, startResourceSampler, treeCpuNs } from '../../../bench/lib/procfs.ts';

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
