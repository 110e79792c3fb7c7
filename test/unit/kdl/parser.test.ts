// Table tests for the KDL 2.0 parser (src/config/kdl/parser.ts): every rule of the spec has valid inputs
// with their expected output and invalid inputs with the expected error position and message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument, KdlSyntaxError, MAX_DEPTH } from '../../../src/config/kdl/parser.ts';
import type { KdlNode, KdlValue } from '../../../src/config/kdl/types.ts';

interface N {
  name: string;
  values?: KdlValue[];
  props?: Record<string, KdlValue>;
  children?: N[];
  tag?: string;
  vtags?: Array<string | undefined>;
  ptags?: Record<string, string | undefined>;
}

/** The full kdljs-shaped node (without position) for a compact description. */
function full(n: N): Omit<KdlNode, 'position' | 'children'> & { children: unknown[] } {
  const values = n.values ?? [];
  const props = n.props ?? {};
  const ptags: Record<string, string | undefined> = {};
  for (const k of Object.keys(props)) Object.defineProperty(ptags, k, { value: n.ptags?.[k], enumerable: true, writable: true, configurable: true });
  return {
    name: n.name,
    values,
    properties: props,
    children: (n.children ?? []).map(full),
    tags: { name: n.tag, values: n.vtags ?? values.map(() => undefined), properties: ptags },
  };
}

function strip(nodes: KdlNode[]): unknown[] {
  return nodes.map(({ position: _p, children, ...rest }) => ({ ...rest, children: strip(children) }));
}

const s = (name: string, ...values: KdlValue[]): N => ({ name, values });

// [description, input, expected nodes]
const valid: Array<[string, string, N[]]> = [
  // documents and nodes
  ['empty document', '', []],
  ['only comments and blank lines', '// hi\n\n/* x */\n', []],
  ['bare node', 'node', [s('node')]],
  ['semicolon-separated nodes', 'a; b;c', [s('a'), s('b'), s('c')]],
  ['trailing semicolon then newline', 'a;\nb', [s('a'), s('b')]],
  ['CRLF newlines', 'a 1\r\nb 2\r\n', [s('a', 1), s('b', 2)]],
  ['CR, NEL, VT, FF, LS, PS are newlines', 'a\rb\u0085c\u000Bd\u000Ce\u2028f\u2029g', ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((x) => s(x))],
  ['BOM at the start', '\uFEFFnode 1', [s('node', 1)]],
  ['unicode spaces separate entries', 'n\u00A01\u30002\t3\u20094', [s('n', 1, 2, 3, 4)]],
  ['version marker is a slashdashed node', '/- kdl-version 2\nnode', [s('node')]],
  ['node ends at end of file without newline', 'a 1', [s('a', 1)]],
  // arguments and properties
  ['arguments keep order, properties in between', 'n 1 a=2 3', [{ name: 'n', values: [1, 3], props: { a: 2 } }]],
  ['property last wins', 'n a=1 a=2', [{ name: 'n', props: { a: 2 } }]],
  ['property with spaces around =', 'n a = 1', [{ name: 'n', props: { a: 1 } }]],
  ['quoted and raw property keys', 'n "a b"=1 #"c"#=2', [{ name: 'n', props: { 'a b': 1, c: 2 } }]],
  ['bare identifier values are strings', 'n foo bar=baz', [{ name: 'n', values: ['foo'], props: { bar: 'baz' } }]],
  ['__proto__ is an ordinary key', 'n __proto__=1', [{ name: 'n', props: JSON.parse('{"__proto__":1}') as Record<string, KdlValue> }]],
  // identifiers
  [
    'identifier shapes',
    'n --this .md - + -. +.x ..1 _12 a<b>,c café 😀 a.b:c',
    [s('n', '--this', '.md', '-', '+', '-.', '+.x', '..1', '_12', 'a<b>,c', 'café', '😀', 'a.b:c')],
  ],
  // children
  ['children block', 'a {\n  b 1\n  c\n}', [{ name: 'a', children: [s('b', 1), s('c')] }]],
  ['children on one line, final node without terminator', 'a { b; c 2 }', [{ name: 'a', children: [s('b'), s('c', 2)] }]],
  ['children without a space before {', 'a{b}', [{ name: 'a', children: [s('b')] }]],
  ['empty children block', 'a {}\nb { }', [s('a'), s('b')]],
  ['nested children', 'a { b { c { d } } }', [{ name: 'a', children: [{ name: 'b', children: [{ name: 'c', children: [s('d')] }] }] }]],
  ['children after arguments and properties', 'a 1 k=v { b }', [{ name: 'a', values: [1], props: { k: 'v' }, children: [s('b')] }]],
  // type annotations
  ['type on node and values', '(t)n (u8)1 k=(date)"x"', [{ name: 'n', tag: 't', values: [1], vtags: ['u8'], props: { k: 'x' }, ptags: { k: 'date' } }]],
  ['type with inner space and space after', '( t ) n ( u )  1', [{ name: 'n', tag: 't', values: [1], vtags: ['u'] }]],
  ['quoted and raw type names', '("a b")n (#"r"#)1', [{ name: 'n', tag: 'a b', values: [1], vtags: ['r'] }]],
  ['typed property last wins with its tag', 'n k=(a)1 k=2', [{ name: 'n', props: { k: 2 }, ptags: { k: undefined } }]],
  // quoted strings
  ['simple escapes', String.raw`n "\n\r\t\\\"\b\f\s"`, [s('n', '\n\r\t\\"\b\f ')]],
  ['unicode escapes (BMP and astral)', String.raw`n "\u{41}\u{e9}\u{1F600}\u{10FFFF}"`, [s('n', 'A\u00e9\u{1F600}\u{10FFFF}')]],
  ['whitespace escape on one line', String.raw`n "a\   b"`, [s('n', 'ab')]],
  ['whitespace escape across lines', 'n "a\\\n     b"', [s('n', 'ab')]],
  ['escaped whitespace keeps escapes after it', 'n "Hello\\       \\nWorld"', [s('n', 'Hello\nWorld')]],
  ['empty string', 'n ""', [s('n', '')]],
  ['literal tabs and non-ASCII kept', 'n "a\tb é"', [s('n', 'a\tb é')]],
  // raw strings
  ['raw string keeps backslashes', String.raw`n #"a\nb"#`, [s('n', 'a\\nb')]],
  ['raw string with quotes and hashes', 'n ##"a"#b"##', [s('n', 'a"#b')]],
  ['empty raw string', 'n #""#', [s('n', '')]],
  ['raw string as node name', '#"my node"# 1', [s('my node', 1)]],
  // multi-line strings
  ['multi-line dedent', 'n """\n    foo\n      bar\n    """', [s('n', 'foo\n  bar')]],
  ['multi-line shorter closing indent', 'n """\n        foo\n    base\n  """', [s('n', '      foo\n  base')]],
  ['multi-line whitespace-only lines become empty', 'n """\n    a\n\n  \t\n    b\n    """', [s('n', 'a\n\n\nb')]],
  ['multi-line empty', 'n """\n"""', [s('n', '')]],
  ['multi-line empty with indented close', 'n """\n   """', [s('n', '')]],
  ['multi-line CRLF normalised to LF', 'n """\r\n  a\r\n  b\r\n  """', [s('n', 'a\nb')]],
  ['multi-line escapes resolved after dedent', 'n """\n  \\r\\n\n  foo\n  """', [s('n', '\r\n\nfoo')]],
  ['multi-line escaped tab is not whitespace-only', 'n """\n  \\t\n  """', [s('n', '\t')]],
  ['multi-line quotes inside', 'n """\n  a "b" ""c""\n  """', [s('n', 'a "b" ""c""')]],
  ['multi-line whitespace escape (spec example)', 'n """\n  foo \\\nbar\n  baz\n  \\   """', [s('n', 'foo bar\nbaz')]],
  ['multi-line raw', 'n #"""\n  a \\n "" b\n  """#', [s('n', 'a \\n "" b')]],
  ['multi-line raw containing """', 'n #"""\n    Here\'s a """\n        x\n        """\n    done\n    """#', [s('n', 'Here\'s a """\n    x\n    """\ndone')]],
  // numbers
  ['integers with underscores', 'n 1_000 12__ 0', [s('n', 1000, 12, 0)]],
  ['signed numbers', 'n +5 -5 -0', [s('n', 5, -5, -0)]],
  ['decimals and exponents', 'n 1.5 1.5e3 1E-2 2e+2 1_0.0_1e1_0', [s('n', 1.5, 1500, 0.01, 200, 10.01e10)]],
  ['radix numbers', 'n 0xff 0xDE_ad 0o17 0b1010 -0x10 +0b1 0o7_7', [s('n', 255, 0xdead, 15, 10, -16, 1, 63)]],
  ['large integer (as a double, like kdljs)', 'n 12345678901234567890', [s('n', Number('12345678901234567890'))]],
  // keywords
  ['keywords', 'n #true #false #null #inf #-inf #nan', [s('n', true, false, null, Infinity, -Infinity, NaN)]],
  ['keyword property values', 'n a=#true b=#null', [{ name: 'n', props: { a: true, b: null } }]],
  // comments
  ['line comment after node', 'a 1 // c\nb', [s('a', 1), s('b')]],
  ['line comment directly followed by newline', 'a //\nb', [s('a'), s('b')]],
  ['block comment between entries', 'n 1 /* c */ 2', [s('n', 1, 2)]],
  ['nested block comments', 'n /* a /* b */ c */ 1', [s('n', 1)]],
  ['block comment spanning lines inside a node', 'n 1 /* x\n y */ 2', [s('n', 1, 2)]],
  ['block comment before a node', '/* c */ a', [s('a')]],
  // slashdash
  ['slashdash node', '/-a 1\nb', [s('b')]],
  ['slashdash node with children', '/- a 1 {\n  x\n}\nb', [s('b')]],
  ['slashdash followed by newline and comment', '/-\n// c\na\nb', [s('b')]],
  ['slashdash argument', 'n /-1 2', [s('n', 2)]],
  ['slashdash typed argument', 'n /-(t)1 2', [s('n', 2)]],
  ['slashdash property', 'n /-a=1 b=2', [{ name: 'n', props: { b: 2 } }]],
  ['slashdash without space before it', 'n/-1 2', [s('n', 2)]],
  ['slashdash children then real children', 'n /-{ x } { y }', [{ name: 'n', children: [s('y')] }]],
  ['slashdash children after real children', 'n { y } /-{ z }', [{ name: 'n', children: [s('y')] }]],
  ['slashdash argument across a newline', 'n /-\n  1 2', [s('n', 2)]],
  ['slashdash last node in a block', 'a { b; /-c }', [{ name: 'a', children: [s('b')] }]],
  // line continuations
  ['line continuation', 'n 1 \\\n  2', [s('n', 1, 2)]],
  ['line continuation with comment', 'n 1 \\ // why\n  2', [s('n', 1, 2)]],
  ['line continuation with block comment', 'n 1 \\ /* x */\n  2', [s('n', 1, 2)]],
  ['line continuation at end of file', 'n 1 \\', [s('n', 1)]],
  ['line continuation before children', 'n \\\n{ c }', [{ name: 'n', children: [s('c')] }]],
];

for (const [what, input, expected] of valid) {
  test(`valid: ${what}`, () => {
    assert.deepEqual(strip(parseDocument(input)), expected.map(full));
  });
}

// [description, input, line, column, message pattern]
const invalid: Array<[string, string, number, number, RegExp]> = [
  // keywords without #
  ['bare true as a value', 'n true', 1, 3, /bare true is not allowed in KDL 2\.0: write #true for the boolean, or "true" for the string/],
  ['bare false as a property value', 'n a=false', 1, 5, /bare false/],
  ['bare null', 'n\nm null', 2, 3, /write #null for the null/],
  ['bare inf / -inf / nan', 'n -inf', 1, 3, /bare -inf/],
  ['bare nan', 'n nan', 1, 3, /bare nan/],
  ['bare keyword as node name', 'true 1', 1, 1, /bare true/],
  ['unknown # keyword', 'n #yes', 1, 3, /unknown keyword #yes/],
  ['lone #', 'n # 1', 1, 3, /'#' must start a keyword/],
  // identifiers that look like numbers
  ['digit-led identifier', 'n 1abc', 1, 3, /invalid number 1abc/],
  ['leading decimal point', 'n .5', 1, 3, /needs a digit before the decimal point/],
  ['signed leading decimal point', 'n +.5', 1, 3, /needs a digit before the decimal point/],
  ['number-like node name', '1x', 1, 1, /invalid number 1x/],
  ['number as node name', '12 a', 1, 1, /a node name must be a string, not the number 12/],
  ['keyword as node name', '#true', 1, 1, /a node name must be a string/],
  // numbers
  ['trailing dot', 'n 1.', 1, 3, /invalid number 1\./],
  ['dangling exponent', 'n 1e', 1, 3, /invalid number 1e/],
  ['hex without digits', 'n 0x', 1, 3, /invalid hexadecimal number 0x/],
  ['hex with underscore first', 'n 0x_1a', 1, 3, /invalid hexadecimal number/],
  ['bad hex digit', 'n 0xG', 1, 3, /invalid hexadecimal/],
  ['bad octal digit', 'n 0o8', 1, 3, /invalid octal/],
  ['bad binary digit', 'n 0b2', 1, 3, /invalid binary/],
  ['underscore after decimal point', 'n 1._5', 1, 3, /invalid number/],
  // strings
  ['unterminated string', 'n "abc', 1, 3, /unterminated string/],
  ['literal newline in a quoted string', 'n "a\nb"', 1, 5, /cannot span lines/],
  ['unknown escape', 'n "a\\x"', 1, 5, /invalid escape \\x/],
  ['\\/ is not an escape in KDL 2', 'n "\\/"', 1, 4, /invalid escape \\\//],
  ['unicode escape without braces', 'n "\\u0041"', 1, 4, /\\u\{hex\}/],
  ['empty unicode escape', 'n "\\u{}"', 1, 4, /1 to 6 hex digits/],
  ['too long unicode escape', 'n "\\u{1234567}"', 1, 4, /1 to 6 hex digits/],
  ['surrogate unicode escape', 'n "\\u{D800}"', 1, 4, /not a Unicode scalar value/],
  ['unicode escape above max', 'n "\\u{110000}"', 1, 4, /not a Unicode scalar value/],
  ['multi-line on one line', 'n """foo"""', 1, 3, /needs a line break right after its opening """/],
  ['multi-line closing after text', 'n """\n  foo"""', 2, 1, /closing """ .* own line/],
  ['multi-line text on the opening line', 'n """stuff\n  """', 1, 3, /line break right after/],
  ['multi-line prefix mismatch', 'n """\n\ta\n  b\n \t\n\t"""', 3, 1, /does not start with the closing line's indentation/],
  ['whitespace escape pulling the close onto a text line', 'n """\n  foo\n  bar\\\n  """', 3, 1, /closing """/],
  ['unterminated multi-line', 'n """\n  abc\n', 1, 3, /unterminated multi-line string/],
  ['unterminated raw string', 'n #"abc', 1, 3, /unterminated raw string: no closing "#/],
  ['raw string with fewer closing hashes', 'n ##"abc"#', 1, 3, /no closing "##/],
  ['raw """ on one line', 'n #"""#', 1, 3, /line break right after/],
  ['literal newline in raw string', 'n #"a\nb"#', 1, 6, /raw string cannot span lines/],
  ['raw multi-line prefix mismatch', 'n #"""\n  a\n b\n  """#', 3, 1, /indentation/],
  ['# then not a quote', 'n ##x', 1, 3, /expected '"' after ##/],
  // structure
  ['unclosed children block', 'routes {\n  route "a" {\n    x 1\n  }\n', 4, 4, /expected '}' to close the children block of node "routes" opened at 1:8, but the file ended/],
  ['unclosed block found by indentation', 'system {\n  x 1\nlisteners {\n  y\n}\n', 3, 1, /expected '}' to close the children block of node "system" opened at 1:8 before this line \(it is not indented inside the block/],
  ['unclosed inner block', 'a {\n  b {\n}', 3, 2, /children block of node "a" opened at 1:3/],
  ['stray closing brace', 'a\n}', 2, 1, /unexpected '}'/],
  ['two children blocks', 'a { } { }', 1, 7, /already has a children block/],
  ['argument after children', 'a { } 1', 1, 7, /must come before its children block/],
  ['argument after slashdashed children', 'a /-{ } 1', 1, 9, /must come before its children block/],
  ['no space before an argument', 'n"a"', 1, 2, /expected whitespace before '"'/],
  ['no space between arguments', 'n "a""b"', 1, 6, /expected whitespace/],
  ['no space after keyword', 'n #true"a"', 1, 8, /expected whitespace/],
  ['empty statement', 'a;;b', 1, 3, /expected a node name, found ';'/],
  ['brackets', 'n [1]', 1, 3, /expected an argument or property, found '\['/],
  ['typed property key', 'n (t)a=1', 1, 3, /property key cannot have a type annotation/],
  ['number as property key', 'n 1=2', 1, 3, /property key must be a string, not 1/],
  ['keyword as property key', 'n #true=2', 1, 3, /property key must be a string/],
  ['missing property value', 'n a=\nb', 1, 5, /expected a value for property "a", found a line break/],
  ['slashdash on a property value', 'n a=/-1', 1, 5, /expected a value for property "a"/],
  ['double equals', 'n a=1=2', 1, 6, /unexpected '='/],
  ['empty type', 'n ()1', 1, 4, /empty type annotation/],
  ['number as type', '(1)n', 1, 2, /a type name must be a string/],
  ['unclosed type', '(t n', 1, 4, /expected '\)' to close the type annotation opened at 1:1/],
  ['missing node name after type', '(t)', 1, 4, /expected a node name, found the end of the file/],
  ['children block with no node', '{ a }', 1, 1, /expected a node name, found '\{'/],
  // comments
  ['double slashdash', '/- /- a', 1, 4, /cannot comment out another '\/-'/],
  ['slashdash at end of file', 'a\n/-', 2, 3, /must be followed by the node/],
  ['slashdash before closing brace', 'a { /- }', 1, 8, /must be followed by the node/],
  ['unterminated block comment', 'a /* x /* y */', 1, 3, /unterminated \/\* comment/],
  ['lone slash', 'n /x', 1, 3, /found '\/'/],
  ['text after line continuation', 'n 1 \\ 2', 1, 5, /line continuation '\\' must be followed by a line break/],
  // code points
  ['control character in a string', 'n "a\u0007"', 1, 5, /control character U\+0007/],
  ['control character in a comment', '// \u0001\nn', 1, 4, /control character U\+0001/],
  ['DEL', 'n \u007F', 1, 3, /U\+007F/],
  ['direction control character', 'n a\u202Eb', 1, 4, /direction control character U\+202E/],
  ['BOM after the start', 'n\uFEFF', 1, 2, /byte order mark/],
  ['lone surrogate', 'n "\uD800"', 1, 4, /unpaired surrogate U\+D800/],
];

for (const [what, input, line, column, re] of invalid) {
  test(`invalid: ${what}`, () => {
    assert.throws(
      () => parseDocument(input),
      (e: unknown) => {
        assert.ok(e instanceof KdlSyntaxError, `expected a KdlSyntaxError, got ${String(e)}`);
        assert.match(e.reason, re);
        assert.deepEqual([e.line, e.column], [line, column], `position of: ${e.message}`);
        return true;
      },
    );
  });
}

test('node positions are the start of the node (type annotation included)', () => {
  const doc = parseDocument('\uFEFFa {\n  b 1; c\n\t(t)d\n}\n/* x */ e\n"😀" f\n');
  const pos = (n: KdlNode): string => `${n.name}@${n.position.line}:${n.position.column}`;
  assert.deepEqual([...doc.map(pos), ...doc[0]!.children.map(pos), pos(doc[2]!)], ['a@1:2', 'e@5:9', '😀@6:1', 'b@2:3', 'c@2:8', 'd@3:2', '😀@6:1']);
  // columns count code points: "😀" is one
  assert.equal(parseDocument('"😀" x; y')[1]!.position.column, 8);
});

test('CRLF counts as one line for positions', () => {
  const doc = parseDocument('a\r\nb\r\n\r\nc');
  assert.deepEqual(doc.map((n) => n.position.line), [1, 2, 4]);
});

test('the error snippet shows the line and a caret under the column, tabs kept', () => {
  try {
    parseDocument('ok 1\n\tbad true\n');
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof KdlSyntaxError);
    assert.equal(e.snippet, '  2 | \tbad true\n    | \t    ^');
    assert.equal(e.message, `2:6: ${e.reason}`);
  }
});

test('an error at the end of the file points after the last non-blank line', () => {
  try {
    parseDocument('routes {\n  r 1\n\n\n');
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof KdlSyntaxError);
    assert.equal(e.snippet, '  2 |   r 1\n    |      ^');
  }
});

test(`children nested deeper than ${MAX_DEPTH} are refused, not a stack overflow`, () => {
  const ok = 'a {'.repeat(MAX_DEPTH) + '}'.repeat(MAX_DEPTH);
  assert.equal(parseDocument(ok).length, 1);
  const deep = 'a {'.repeat(MAX_DEPTH + 1) + '}'.repeat(MAX_DEPTH + 1);
  assert.throws(() => parseDocument(deep), /nested more than/);
  assert.throws(() => parseDocument('a {'.repeat(100_000)), /nested more than/);
});

test('an own __proto__ property does not change the prototype', () => {
  const [n] = parseDocument('n __proto__=#null');
  assert.equal(Object.getPrototypeOf(n!.properties), Object.prototype);
  assert.deepEqual(Object.keys(n!.properties), ['__proto__']);
});
