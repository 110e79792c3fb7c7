import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePerfReport, perfCategory } from '../../../bench/lib/perf-split.ts';

test('parsePerfReport: samples, object, kernel or user and symbol of each line; other lines skipped', () => {
  const text = [
    '# a comment',
    '      2631  [kernel.kallsyms]        [k] pvm_irq_enable',
    '       253  [JIT] tid 10149          [.] JS:*_resume /x/node_modules/undici/lib/dispatcher/client.js:589:18',
    '        40  node                     [.] v8::internal::StringTable::Data::FindEntry<v8::internal::Isolate, A>',
    '',
  ].join('\n');
  assert.deepEqual(parsePerfReport(text), [
    { samples: 2631, dso: '[kernel.kallsyms]', kernel: true, sym: 'pvm_irq_enable' },
    { samples: 253, dso: '[JIT] tid 10149', kernel: false, sym: 'JS:*_resume /x/node_modules/undici/lib/dispatcher/client.js:589:18' },
    { samples: 40, dso: 'node', kernel: false, sym: 'v8::internal::StringTable::Data::FindEntry<v8::internal::Isolate, A>' },
  ]);
});

test('perfCategory: kernel, compiler, GC, JIT code by tier and origin, builtins, libc, native', () => {
  const cases: [dso: string, kernel: boolean, sym: string, want: string][] = [
    ['[kernel.kallsyms]', true, 'tcp_sendmsg', 'kernel'],
    ['node', false, 'v8::internal::compiler::Scheduler::Run', 'TurboFan compiling'],
    ['node', false, 'v8::internal::ScavengerCollector::CollectGarbage', 'GC'],
    ['[JIT] tid 1', false, 'JS:*append file:///w/dist/plugins/tracing/otlp-proto.js:10:3', 'JS optimised: tracing'],
    ['[JIT] tid 1', false, 'JS:^record file:///w/dist/plugins/tracing/tracer.js:1:1', 'JS low tier: tracing'],
    ['[JIT] tid 1', false, 'JS:*writeH1 /w/node_modules/undici/lib/dispatcher/client-h1.js:1:1', 'JS optimised: undici'],
    ['[JIT] tid 1', false, 'JS:*attempts file:///w/dist/src/server/forwarder.js:1:1', 'JS optimised: src'],
    ['[JIT] tid 1', false, 'JS:*emit node:events:471:44', 'JS optimised: node'],
    ['[JIT] tid 1', false, 'JS:~emit node:events:471:44', 'JS low tier: other'],
    ['[JIT] tid 1', false, 'JS:wasm-function[20]-20-turbofan', 'wasm (llhttp)'],
    ['node', false, 'Builtins_LdaNamedPropertyHandler', 'interpreter'],
    ['node', false, 'Builtins_KeyedLoadIC_Megamorphic', 'builtins'],
    ['libc.so.6', false, 'epoll_pwait', 'libc'],
    ['node', false, 'uv__io_poll', 'native (node, V8, libuv)'],
  ];
  for (const [dso, kernel, sym, want] of cases) assert.equal(perfCategory({ dso, kernel, sym }), want, sym);
});
