// Whole-message inspection, the pure core (src/websocket/messages.ts with the parser's per-message
// limits, src/websocket/frames.ts): which units the agents are asked about for a sequence of
// frames (fin/opcode), control frames interleaved in a fragmented message, protocol errors,
// the message byte limit and the fragment cap, in both modes; split at every byte too. And the
// route keys (websocket-inspect-messages, websocket-max-fragments, websocket-max-message-bytes):
// the limits they give the parser, values, errors, warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, FrameParser, FrameProtocolError, Opcode, encodeFrame, opcodeName, type Frame } from '../../../src/websocket/frames.ts';
import { MessageAssembler, WS_MAX_FRAME_BYTES, WS_MAX_MESSAGE_BYTES_LIMIT, frameUnit, messageInspection, type InspectUnit, type MessageInspection } from '../../../src/websocket/messages.ts';
import { loadConfigText } from '../../../src/config/load.ts';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.ts';
import { configDiagnostics } from '../../helpers/config-diagnostics.ts';

const { Text: T, Binary: B, Continuation: C, Ping: PING, Pong: PONG, Close: CLOSE } = Opcode;

/** [opcode, fin, payload] of one frame on the wire */
type Step = [number, boolean, string];
/** [opcode name, fin, payload, frames in the unit] */
type Unit = [string, boolean, string, number];
/** the route keys the limits come from (messageInspection, as the session takes them) */
interface Limits {
  whole?: boolean;
  maxMessageBytes?: number;
  maxFragments?: number;
}
type Outcome = { units: Unit[]; error?: [number, FrameProtocolError['kind']] };

const wire = (steps: Step[]) => steps.map(([opcode, fin, payload]) => encodeFrame({ opcode, fin, payload, mask: true }));

/** What the session does: parser (the route's limits, as the session sets them) -> assembler or one unit per frame. */
function run(steps: Step[], l: Limits = {}, chunkBytes = 0): Outcome & { raw: InspectUnit[] } {
  const m = messageInspection({ 'websocket-inspect-messages': l.whole, 'websocket-max-message-bytes': l.maxMessageBytes, 'websocket-max-fragments': l.maxFragments });
  const parser = new FrameParser({ maxFrameBytes: m.maxFrameBytes, requireMask: true, maxFragments: m.maxFragments, maxMessageBytes: m.maxMessageBytes });
  const assembler = m.wholeMessages ? new MessageAssembler() : undefined;
  const bytes = Buffer.concat(wire(steps));
  const chunks: Buffer[] = [];
  if (chunkBytes === 0) chunks.push(bytes);
  else for (let i = 0; i < bytes.length; i += chunkBytes) chunks.push(bytes.subarray(i, i + chunkBytes));
  const raw: InspectUnit[] = [];
  const units: Unit[] = [];
  try {
    for (const c of chunks) {
      for (const f of parser.push(c)) {
        const u = assembler ? assembler.push(f) : frameUnit(f);
        if (!u) continue;
        raw.push(u);
        units.push([opcodeName(u.opcode)!, u.fin, u.payload.toString(), u.frames.length]);
      }
    }
  } catch (err) {
    assert.ok(err instanceof FrameProtocolError, String(err));
    return { units, raw, error: [err.closeCode, err.kind] };
  }
  return { units, raw };
}

const CASES: { name: string; steps: Step[]; limits?: Limits; want: Outcome }[] = [
  { name: 'one unfragmented text frame', steps: [[T, true, 'hi']], want: { units: [['text', true, 'hi', 1]] } },
  {
    name: 'three fragments: one unit, whole payload, fin true',
    steps: [
      [T, false, 'x; DROP '],
      [C, false, 'TAB'],
      [C, true, 'LE users'],
    ],
    want: { units: [['text', true, 'x; DROP TABLE users', 3]] },
  },
  {
    name: 'ping, pong interleaved: out at once, ahead of the message they sit in',
    steps: [
      [B, false, 'ab'],
      [PING, true, 'p'],
      [C, false, 'c'],
      [PONG, true, 'q'],
      [C, true, 'd'],
    ],
    want: {
      units: [
        ['ping', true, 'p', 1],
        ['pong', true, 'q', 1],
        ['binary', true, 'abcd', 3],
      ],
    },
  },
  {
    name: 'a close in the middle of a message: out at once, the fragments stay held',
    steps: [
      [T, false, 'half'],
      [CLOSE, true, '\u0003\u00e8'],
    ],
    want: { units: [['close', true, '\u0003\u00e8', 1]] },
  },
  {
    name: 'messages back to back, then an unfragmented one',
    steps: [
      [T, false, 'a'],
      [C, true, 'b'],
      [B, false, 'c'],
      [C, true, 'd'],
      [T, true, 'e'],
    ],
    want: {
      units: [
        ['text', true, 'ab', 2],
        ['binary', true, 'cd', 2],
        ['text', true, 'e', 1],
      ],
    },
  },
  {
    name: 'empty fragments',
    steps: [
      [T, false, ''],
      [C, true, ''],
    ],
    want: { units: [['text', true, '', 2]] },
  },
  { name: 'continuation without a start: 1002', steps: [[C, true, 'x']], want: { units: [], error: [CloseCode.ProtocolError, 'protocol'] } },
  {
    name: 'a new data frame before fin: 1002',
    steps: [
      [T, false, 'a'],
      [T, true, 'b'],
    ],
    want: { units: [], error: [CloseCode.ProtocolError, 'protocol'] },
  },
  {
    name: 'message of exactly the byte limit passes',
    steps: [
      [T, false, '123456'],
      [C, true, '7890'],
    ],
    limits: { maxMessageBytes: 10 },
    want: { units: [['text', true, '1234567890', 2]] },
  },
  {
    name: 'message one byte over the limit (each fragment under it): 1009 too_big',
    steps: [
      [T, false, '123456'],
      [C, true, '78901'],
    ],
    limits: { maxMessageBytes: 10 },
    want: { units: [], error: [CloseCode.TooBig, 'too_big'] },
  },
  { name: 'one frame over the limit: 1009 too_big', steps: [[B, true, '12345678901']], limits: { maxMessageBytes: 10 }, want: { units: [], error: [CloseCode.TooBig, 'too_big'] } },
  {
    name: 'frame by frame: no message limit (each frame is under the 1 MiB frame limit)',
    steps: [
      [T, false, '123456'],
      [C, true, '78901'],
    ],
    limits: { maxMessageBytes: 10, whole: false },
    want: {
      units: [
        ['text', false, '123456', 1],
        ['continuation', true, '78901', 1],
      ],
    },
  },
  {
    name: 'fragments up to the cap pass; control frames do not count',
    steps: [
      [T, false, 'a'],
      [PING, true, ''],
      [PING, true, ''],
      [C, false, 'b'],
      [PING, true, ''],
      [C, true, 'c'],
    ],
    limits: { maxFragments: 3 },
    want: {
      units: [
        ['ping', true, '', 1],
        ['ping', true, '', 1],
        ['ping', true, '', 1],
        ['text', true, 'abc', 3],
      ],
    },
  },
  {
    name: 'one fragment over the cap: 1009 too_many_fragments, nothing asked',
    steps: [
      [T, false, 'a'],
      [C, false, 'b'],
      [C, false, 'c'],
      [C, true, 'd'],
    ],
    limits: { maxFragments: 3 },
    want: { units: [], error: [CloseCode.TooBig, 'too_many_fragments'] },
  },
  {
    name: 'frame by frame: the cap holds too (each fragment would be one agent call)',
    steps: [
      [T, false, 'a'],
      [C, false, 'b'],
      [C, true, 'c'],
    ],
    limits: { maxFragments: 2, whole: false },
    want: {
      units: [
        ['text', false, 'a', 1],
        ['continuation', false, 'b', 1],
      ],
      error: [CloseCode.TooBig, 'too_many_fragments'],
    },
  },
  {
    name: 'the cap counts per message: many short messages pass',
    steps: [
      [T, false, 'a'],
      [C, true, 'b'],
      [T, false, 'c'],
      [C, true, 'd'],
      [T, true, 'e'],
    ],
    limits: { maxFragments: 2 },
    want: {
      units: [
        ['text', true, 'ab', 2],
        ['text', true, 'cd', 2],
        ['text', true, 'e', 1],
      ],
    },
  },
];

for (const c of CASES) {
  test(`units: ${c.name}`, () => {
    // byte by byte: every unit before an error comes out
    const split = run(c.steps, c.limits, 1);
    assert.deepEqual({ units: split.units, ...(split.error ? { error: split.error } : {}) }, c.want, 'split at every byte');
    // in one chunk: the same, but a chunk that ends in an error yields nothing of it (the session closes anyway)
    const got = run(c.steps, c.limits);
    assert.deepEqual(got.error, c.want.error);
    assert.deepEqual(got.units, c.want.error ? c.want.units.slice(0, got.units.length) : c.want.units);
  });
}

test('a reassembled unit keeps its frames exactly as received (mask keys, boundaries): forwarding them is byte for byte', () => {
  const steps: Step[] = [
    [T, false, 'x; DROP '],
    [PING, true, 'p'],
    [C, true, 'TABLE users'],
  ];
  const frames = wire(steps);
  const parser = new FrameParser({ maxFrameBytes: 1 << 20, requireMask: true, maxMessageBytes: 1 << 20 });
  const a = new MessageAssembler();
  const units = parser
    .push(Buffer.concat(frames))
    .map((f) => a.push(f))
    .filter((u) => u !== undefined);
  assert.equal(units.length, 2);
  assert.ok(units[0]!.frames[0]!.raw.equals(frames[1]!), 'the ping first, unchanged');
  assert.ok(Buffer.concat(units[1]!.frames.map((f) => f.raw)).equals(Buffer.concat([frames[0]!, frames[2]!])), 'the fragments unchanged, in order');
});

test('the limits are checked on the header: an oversized fragment is refused before its payload arrives', () => {
  const parser = new FrameParser({ maxFrameBytes: 100, requireMask: true, maxMessageBytes: 100, maxFragments: 2 });
  parser.push(encodeFrame({ opcode: T, fin: false, payload: Buffer.alloc(60), mask: true }));
  const big = encodeFrame({ opcode: C, fin: true, payload: Buffer.alloc(60), mask: true });
  assert.throws(() => parser.push(big.subarray(0, 6)), (e: FrameProtocolError) => e.kind === 'too_big' && e.closeCode === 1009);
  const capped = new FrameParser({ maxFrameBytes: 100, requireMask: true, maxFragments: 1 });
  capped.push(encodeFrame({ opcode: T, fin: false, payload: 'a', mask: true }));
  assert.throws(() => capped.push(encodeFrame({ opcode: C, fin: true, payload: 'b', mask: true }).subarray(0, 6)), (e: FrameProtocolError) => e.kind === 'too_many_fragments');
});

test('the assembler checks the sequence itself (input the parser did not check) and reports what it holds', () => {
  const frame = (opcode: number, fin: boolean, payload: string): Frame => ({ opcode, fin, rsv: 0, masked: false, payload: Buffer.from(payload), raw: Buffer.alloc(0) });
  const a = new MessageAssembler();
  assert.throws(() => a.push(frame(C, true, 'x')), (e: FrameProtocolError) => e.closeCode === CloseCode.ProtocolError && /without a message/.test(e.message));
  assert.equal(a.push(frame(T, false, 'abc')), undefined);
  assert.equal(a.push(frame(C, false, 'de')), undefined);
  assert.deepEqual([a.heldFrames, a.heldBytes], [2, 5]);
  assert.throws(() => a.push(frame(B, true, 'x')), (e: FrameProtocolError) => e.closeCode === CloseCode.ProtocolError && /while a fragmented message is open/.test(e.message));
  const b = new MessageAssembler();
  b.push(frame(T, false, 'a'));
  assert.equal(b.push(frame(PING, true, ''))?.opcode, PING);
  const u = b.push(frame(C, true, 'b'))!;
  assert.deepEqual([u.opcode, u.fin, u.payload.toString(), u.frames.length, b.heldFrames, b.heldBytes], [T, true, 'ab', 2, 0, 0]);
});

const withRoute = (keys: string) => `listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "r" {
    matches { path-prefix "/" }
    upstream "u"
    ${keys}
  }
}
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;

/** Errors as `sentinel test` prints them (file:line:column), for a config named ws.kdl. */
function printedErrors(text: string): string[] {
  try {
    loadConfigText(text, { name: 'ws.kdl' });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  }
}

test('messageInspection: the parser limits the route keys give, with their defaults', () => {
  const MiB = 1 << 20;
  const cases: Array<[string, Parameters<typeof messageInspection>[0], MessageInspection]> = [
    ['defaults', {}, { wholeMessages: true, maxFrameBytes: MiB, maxMessageBytes: MiB, maxFragments: 1024, maxMessagesPerSecond: 100 }],
    ['a smaller message limit: frames are bounded by it too', { 'websocket-max-message-bytes': 4096 }, { wholeMessages: true, maxFrameBytes: 4096, maxMessageBytes: 4096, maxFragments: 1024, maxMessagesPerSecond: 100 }],
    // an unfragmented message is one frame: a raised message limit must take it whole, as browsers send it
    ['the upper bound: one frame may carry the whole message', { 'websocket-max-message-bytes': WS_MAX_MESSAGE_BYTES_LIMIT }, { wholeMessages: true, maxFrameBytes: 4 * MiB, maxMessageBytes: 4 * MiB, maxFragments: 1024, maxMessagesPerSecond: 100 }],
    ['frame by frame: the key does not apply, frames keep 1 MiB', { 'websocket-inspect-messages': false, 'websocket-max-message-bytes': 4096, 'websocket-max-fragments': 8 }, { wholeMessages: false, maxFrameBytes: WS_MAX_FRAME_BYTES, maxMessageBytes: undefined, maxFragments: 8, maxMessagesPerSecond: 100 }],
    ['a message rate, or none', { 'websocket-max-messages-per-second': 0 }, { wholeMessages: true, maxFrameBytes: MiB, maxMessageBytes: MiB, maxFragments: 1024, maxMessagesPerSecond: 0 }],
  ];
  for (const [name, keys, want] of cases) assert.deepEqual(messageInspection(keys), want, name);
});

test('route keys: values, errors with file:line, warnings without websocket-inspection', () => {
  const pick = (keys: string) => loadConfigText(withRoute(keys)).routesById.get('r')!.raw;
  const raw = pick('websocket #true; websocket-inspection #true; websocket-inspect-messages #false; websocket-max-fragments 16');
  assert.deepEqual([raw['websocket-inspect-messages'], raw['websocket-max-fragments']], [false, 16]);
  assert.deepEqual([pick('websocket #true')['websocket-inspect-messages'], pick('websocket #true')['websocket-max-fragments']], [undefined, undefined], 'unset: the defaults (whole messages, 1024) apply at the proxy');
  const key = 'routes > route "r" >';
  const cases: Array<[string, string, RegExp]> = [
    ['zero fragments', 'websocket-max-fragments 0', new RegExp(`^error: ws\\.kdl:6:5: ${key} websocket-max-fragments: must be >= 1, got 0$`)],
    ['a fraction', 'websocket-max-fragments 1.5', new RegExp(`^error: ws\\.kdl:6:5: ${key} websocket-max-fragments: expected an integer, got number 1.5$`)],
    ['an empty message limit', 'websocket-max-message-bytes 0', new RegExp(`^error: ws\\.kdl:6:5: ${key} websocket-max-message-bytes: must be >= 1, got 0$`)],
    ['a message limit over 4 MiB', 'websocket-max-message-bytes 4194305', new RegExp(`^error: ws\\.kdl:6:5: ${key} websocket-max-message-bytes: must be <= 4194304, got 4194305$`)],
    ['a size string', 'websocket-max-message-bytes "64KiB"', new RegExp(`^error: ws\\.kdl:6:5: ${key} websocket-max-message-bytes: expected an integer, got string "64KiB"$`)],
    ['a string', 'websocket-inspect-messages "yes"', new RegExp(`^error: ws\\.kdl:6:5: ${key} websocket-inspect-messages: expected a boolean \\(#true or #false\\), got string "yes"$`)],
  ];
  for (const [name, k, want] of cases) {
    const errors = printedErrors(withRoute(`${k}\n    websocket #true\n    websocket-inspection #true`));
    assert.equal(errors.length, 1, `${name}: ${errors.join(' | ')}`);
    assert.match(errors[0]!, want, name);
  }
  assert.deepEqual(configDiagnostics(withRoute('websocket #true; websocket-inspect-messages #true; websocket-max-fragments 8; websocket-max-message-bytes 4096')).warnings, [
    `${key} websocket-inspect-messages: has no effect without websocket-inspection #true (frames are relayed raw)`,
    `${key} websocket-max-fragments: has no effect without websocket-inspection #true (frames are relayed raw)`,
    `${key} websocket-max-message-bytes: has no effect without websocket-inspection #true (frames are relayed raw)`,
  ]);
  assert.deepEqual(configDiagnostics(withRoute('websocket #true; websocket-inspection #true; websocket-inspect-messages #false; websocket-max-message-bytes 4096')).warnings, [
    `${key} websocket-max-message-bytes: has no effect with websocket-inspect-messages #false (each frame is limited to 1048576 bytes)`,
  ]);
  assert.deepEqual(configDiagnostics(withRoute('websocket #true; websocket-inspection #true; websocket-max-fragments 8; websocket-max-message-bytes 4096')).warnings, []);
  assert.equal(pick('websocket #true; websocket-inspection #true; websocket-max-message-bytes 4096')['websocket-max-message-bytes'], 4096);
});
