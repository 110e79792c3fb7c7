import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePerfStatCsv, shortEventName, syscallEvents } from '../../../bench/lib/perf-stat.ts';

test('parsePerfStatCsv reads value,unit,event lines and keeps "not counted" apart from "not supported"', () => {
  // as `perf stat -x , -p PID` writes it on stderr after SIGINT (a comment line first)
  const out = [
    '# started on Sat Dec  5 10:20:00 2026',
    '',
    '1534,,raw_syscalls:sys_enter,2001234567,100.00,,',
    '812,,syscalls:sys_enter_read,2001234567,100.00,,',
    '<not counted>,,syscalls:sys_enter_futex,0,100.00,,',
    '<not supported>,,cpu-migrations,0,100.00,,',
    '37,,context-switches,2001234567,100.00,,',
    '12.5,msec,task-clock,2001234567,100.00,0.006,CPUs utilized',
    'perf: some message without counts',
  ].join('\n');
  const m = parsePerfStatCsv(out);
  assert.equal(m.get('raw_syscalls:sys_enter'), 1534);
  assert.equal(m.get('syscalls:sys_enter_read'), 812);
  assert.equal(m.get('syscalls:sys_enter_futex'), 0); // the counter never ran: the process did not run
  assert.ok(Number.isNaN(m.get('cpu-migrations')));
  assert.equal(m.get('context-switches'), 37);
  assert.equal(m.get('task-clock'), 12.5);
  assert.equal(m.size, 6);
  assert.equal(parsePerfStatCsv('').size, 0);
});

test('shortEventName', () => {
  const table: [string, string][] = [
    ['raw_syscalls:sys_enter', 'all'],
    ['syscalls:sys_enter_epoll_pwait', 'epoll_pwait'],
    ['sched:sched_wakeup', 'wakeup'],
    ['probe_v8state:define', 'define'],
    ['context-switches', 'context-switches'],
  ];
  for (const [event, name] of table) assert.equal(shortEventName(event), name, event);
});

test('syscallEvents asks for every syscall first, then each named one', () => {
  assert.deepEqual(syscallEvents(['read', 'futex']), ['raw_syscalls:sys_enter', 'syscalls:sys_enter_read', 'syscalls:sys_enter_futex']);
});
