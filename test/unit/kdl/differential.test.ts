// Differential test: our KDL parser against kdljs (kept as a dev dependency for this oracle only).
// 1. every .kdl file in the repository and every ```kdl block in the docs parses to the same nodes
//    with both (or is rejected by both);
// 2. a generated corpus of random valid documents (fixed seed) parses to exactly what the generator
//    meant, and kdljs agrees, except where kdljs is wrong per the spec (listed below);
// 3. randomly mutated repository configs (about half invalid) are accepted or rejected by both alike,
//    with equal output when accepted, the known kdljs gaps aside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as kdljsParse } from 'kdljs';
import { parseDocument } from '../../../src/config/kdl/parser.ts';
import type { KdlNode, KdlValue } from '../../../src/config/kdl/types.ts';
import { seededRng } from '../../../plugins/balancing/common.ts'; // mulberry32, fixed seeds so failures reproduce

const root = fileURLToPath(new URL('../../../', import.meta.url));

type Plain = Omit<KdlNode, 'position' | 'children'> & { children: Plain[] };

function strip(nodes: KdlNode[]): Plain[] {
  return nodes.map(({ position: _p, children, ...rest }) => ({ ...rest, children: strip(children) }));
}

function ours(text: string): Plain[] | Error {
  try {
    return strip(parseDocument(text));
  } catch (e) {
    return e as Error;
  }
}

function theirs(text: string): Plain[] | Error {
  const r = kdljsParse(text);
  if (r.errors.length > 0 || !r.output) return new Error(r.errors[0]?.message ?? 'kdljs: no output');
  return r.output as Plain[];
}

function compare(label: string, text: string): void {
  const a = ours(text);
  const b = theirs(text);
  if (a instanceof Error || b instanceof Error) {
    assert.equal(a instanceof Error, b instanceof Error, `${label}: ours ${a instanceof Error ? `rejects (${a.message})` : 'accepts'}, kdljs ${b instanceof Error ? `rejects (${b.message})` : 'accepts'}`);
    return;
  }
  assert.deepEqual(a, b, label);
}

function kdlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...kdlFiles(p));
    else if (e.name.endsWith('.kdl')) out.push(p);
  }
  return out.sort();
}

test('every .kdl file in the repository: same nodes as kdljs', () => {
  const files = kdlFiles(root);
  assert.ok(files.length >= 15, `expected the repo's configs, found ${files.length}`);
  for (const f of files) compare(relative(root, f), readFileSync(f, 'utf8'));
});

test('every ```kdl block in README.md and docs/: same nodes as kdljs', () => {
  const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  let blocks = 0;
  for (const d of docs) {
    const md = readFileSync(join(root, d), 'utf8');
    for (const m of md.matchAll(/```kdl\n([\s\S]*?)```/g)) {
      blocks++;
      compare(`${d} block ${blocks}`, m[1]!);
    }
  }
  assert.ok(blocks > 0, 'no ```kdl blocks found in the docs');
});

// ---- generated corpus ----


// Constructs kdljs 0.3.0 gets wrong per the KDL 2.0 spec. The generator still produces them (our parser
// must get them right), but marks the document so the kdljs comparison is skipped for it:
//  - no-space-brace: `a{b}` / `a 1{ }` / `/-{ x }{ y }`: the grammar allows node-space* (zero) before a
//    children block; kdljs demands whitespace.
//  - no-space-slashdash: `n/-1 2`: `(node-space | slashdash) node-prop-or-arg` needs no space before
//    `/-`; kdljs demands whitespace.
//  - astral-escape: `"\u{1F600}"`: kdljs decodes with String.fromCharCode, which truncates code points
//    above U+FFFF.
type Gap = 'no-space-brace' | 'no-space-slashdash' | 'astral-escape';

class Gen {
  gaps = new Set<Gap>();
  /** Whether this document may use constructs kdljs gets wrong (then only our parser is checked). */
  allowGaps = false;
  constructor(private readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  // strings: [source text, value]
  ident(): [string, string] {
    const first = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_~!$%&*?@^|<>,:éü中λ';
    const rest = first + '0123456789-+.';
    for (;;) {
      let w = this.chance(0.1) ? this.pick(['-', '+', '.', '--', '-.']) : '';
      w += this.pick([...first]);
      const n = this.int(8);
      for (let i = 0; i < n; i++) w += this.pick([...rest]);
      if (!['true', 'false', 'null', 'inf', 'nan'].includes(w)) return [w, w];
    }
  }
  quoted(): [string, string] {
    let src = '"';
    let val = '';
    const n = this.int(10);
    for (let i = 0; i < n; i++) {
      const k = this.int(12);
      if (k === 0) {
        const [e, v] = this.pick([['\\n', '\n'], ['\\t', '\t'], ['\\\\', '\\'], ['\\"', '"'], ['\\b', '\b'], ['\\f', '\f'], ['\\s', ' '], ['\\r', '\r']] as const);
        src += e;
        val += v;
      } else if (k === 1) {
        const cp = this.pick([0x41, 0xe9, 0x3bb, 0x4e2d, 0x7, 0x2028, 0xfeff, 0x1f600, 0x10ffff]);
        if (cp > 0xffff && !this.allowGaps) continue;
        if (cp > 0xffff) this.gaps.add('astral-escape');
        src += `\\u{${cp.toString(16)}}`;
        val += String.fromCodePoint(cp);
      } else if (k === 2) {
        // a whitespace escape eats all the whitespace after it, so end it with a letter
        src += this.pick(['\\   ', '\\\n   ', '\\\t']) + 'w';
        val += 'w';
      } else {
        const c = this.pick([...'abc XYZ 019 {}()[];=#/-é中😀\t\'']);
        src += c;
        val += c;
      }
    }
    return [src + '"', val];
  }
  raw(): [string, string] {
    const hashes = '#'.repeat(1 + this.int(2));
    let val = '';
    const n = this.int(10);
    for (let i = 0; i < n; i++) val += this.pick([...'ab \\n"{}/*é']);
    // the body may not contain the closing sequence, nor start with "" (that would open a multi-line string)
    if (val.includes('"' + hashes) || val.startsWith('""') || val.endsWith('"')) val = val.replace(/"/g, "'");
    return [`${hashes}"${val}"${hashes}`, val];
  }
  multiline(): [string, string] {
    const raw = this.chance(0.3);
    const indent = this.pick(['', '  ', '    ', '\t']);
    const lines: string[] = [];
    const vals: string[] = [];
    const n = 1 + this.int(4);
    for (let i = 0; i < n; i++) {
      if (this.chance(0.2)) {
        lines.push(this.pick(['', ' ', indent]));
        vals.push('');
        continue;
      }
      const extra = this.pick(['', '', ' ', '  ']);
      let text = this.pick(['foo', 'a "quoted" word', 'x = 1', 'émoji 😀', 'tail ""']);
      let value = text;
      if (!raw && this.chance(0.3)) {
        text += '\\t!';
        value += '\t!';
      }
      if (raw && this.chance(0.3)) {
        text += ' \\n';
        value += ' \\n';
      }
      lines.push(indent + extra + text);
      vals.push(extra + value);
    }
    const hashes = raw ? '#' : '';
    return [`${hashes}"""\n${lines.join('\n')}\n${indent}"""${hashes}`, vals.join('\n')];
  }
  string(): [string, string] {
    const k = this.int(10);
    if (k < 5) return this.ident();
    if (k < 8) return this.quoted();
    if (k < 9) return this.raw();
    return this.multiline();
  }
  number(): [string, number] {
    const k = this.int(6);
    const sign = this.pick(['', '', '-', '+']);
    const mul = sign === '-' ? -1 : 1;
    if (k === 0) {
      const n = this.int(1 << 20);
      return [`${sign}0x${n.toString(16)}`, mul * n];
    }
    if (k === 1) {
      const n = this.int(4096);
      return [`${sign}0o${n.toString(8)}`, mul * n];
    }
    if (k === 2) {
      const n = this.int(256);
      return [`${sign}0b${n.toString(2)}`, mul * n];
    }
    const n = this.int(1_000_000);
    let digits = String(n);
    if (this.chance(0.3) && digits.length > 1) digits = digits[0] + '_' + digits.slice(1);
    if (k === 3) return [sign + digits, mul * n];
    const frac = String(this.int(1000));
    const exp = this.chance(0.5) ? `${this.pick(['e', 'E'])}${this.pick(['', '-', '+'])}${this.int(20)}` : '';
    return [`${sign}${digits}.${frac}${exp}`, Number(`${sign === '-' ? '-' : ''}${n}.${frac}${exp.replace('E', 'e')}`)];
  }
  value(): [string, KdlValue] {
    const k = this.int(10);
    if (k < 4) return this.string();
    if (k < 7) return this.number();
    return this.pick([['#true', true], ['#false', false], ['#null', null], ['#inf', Infinity], ['#-inf', -Infinity], ['#nan', NaN]] as const);
  }
  space(): string {
    return this.pick([' ', ' ', ' ', '\t', '  ', ' /* c */ ', ' /* a /* nested */ b */ ', ' \\\n   ', ' \\ // cont\n  ', '\u3000']);
  }
  typeAnn(): [string, string | undefined] {
    if (!this.chance(0.15)) return ['', undefined];
    const [t, v] = this.chance(0.7) ? this.ident() : this.quoted();
    return [`(${t})`, v];
  }
  node(depth: number): [string, Plain] {
    const [tt, tag] = this.typeAnn();
    const [ns, name] = this.string();
    const node: Plain = { name, values: [], properties: {}, children: [], tags: { name: tag, values: [], properties: {} } };
    let src = tt + ns;
    const keys: Array<[string, string]> = [];
    const entries = this.int(6);
    for (let i = 0; i < entries; i++) {
      if (this.chance(0.1)) {
        const before = this.allowGaps && this.chance(0.2) ? '' : this.space();
        if (before === '') this.gaps.add('no-space-slashdash');
        src += `${before}/-${this.pick(['', ' ', '\n  '])}${this.value()[0]}`;
        continue;
      }
      const [vt, vtag] = this.typeAnn();
      const [vs, v] = this.value();
      if (this.chance(0.35)) {
        // sometimes repeat an earlier key: the last one wins
        const [ks, k] = keys.length > 0 && this.chance(0.2) ? keys[0]! : this.string();
        keys.push([ks, k]);
        src += `${this.space()}${ks}${this.pick(['=', '=', ' = '])}${vt}${vs}`;
        node.properties[k] = v;
        node.tags.properties[k] = vtag;
      } else {
        src += `${this.space()}${vt}${vs}`;
        node.values.push(v);
        node.tags.values.push(vtag);
      }
    }
    if (this.chance(0.1)) src += ' /-{ dropped 1 }';
    if (depth < 3 && this.chance(0.3)) {
      const [cs, kids] = this.nodes(depth + 1, this.chance(0.3));
      const before = this.allowGaps ? this.pick([' ', '']) : ' ';
      if (before === '') this.gaps.add('no-space-brace');
      src += `${before}{${cs}}`;
      node.children = kids;
      if (this.chance(0.1)) src += ' /-{ also dropped }';
    }
    return [src, node];
  }
  nodes(depth: number, inline: boolean): [string, Plain[]] {
    const out: Plain[] = [];
    let src = inline ? ' ' : '\n';
    const n = this.int(inline ? 3 : 5);
    for (let i = 0; i < n; i++) {
      if (this.chance(0.1)) src += this.pick(['// a comment\n', '/* block */ ', '\n']);
      if (this.chance(0.08)) src += `/-${this.node(depth)[0]}${inline ? '; ' : '\n'}`;
      const [s, node] = this.node(depth);
      out.push(node);
      src += s + (inline ? this.pick(['; ', ';']) : this.pick(['\n', ';\n', ' // trailing\n', '\r\n', '; ']));
    }
    return [src, out];
  }
}

const GENERATED = 3000;

test(`${GENERATED} generated documents: ours gives what the generator meant, and kdljs agrees`, (t) => {
  const g = new Gen(seededRng(0x5eed));
  let nodes = 0;
  const skipped = new Map<Gap, number>();
  for (let i = 0; i < GENERATED; i++) {
    g.gaps.clear();
    g.allowGaps = i % 4 === 3;
    const [src, expected] = g.nodes(0, false);
    nodes += expected.length;
    const a = ours(src);
    if (a instanceof Error) assert.fail(`doc ${i}: ours rejects a valid document: ${a.message}\n${src}`);
    assert.deepEqual(a, expected, `doc ${i}: ours differs from the generator\n${src}`);
    if (g.gaps.size > 0) {
      for (const gap of g.gaps) skipped.set(gap, (skipped.get(gap) ?? 0) + 1);
      continue;
    }
    const b = theirs(src);
    if (b instanceof Error) assert.fail(`doc ${i}: kdljs rejects: ${b.message}\n${src}`);
    assert.deepEqual(b, expected, `doc ${i}: kdljs differs\n${src}`);
  }
  assert.ok(nodes > GENERATED, 'generator produced almost no nodes');
  const compared = GENERATED - [...skipped.values()].reduce((a, b) => a + b, 0);
  t.diagnostic(`${GENERATED} documents, ${nodes} top-level nodes; kdljs compared on ${compared}; skipped for known kdljs gaps: ${JSON.stringify([...skipped])}`);
  assert.ok(compared > GENERATED / 2, `kdljs compared on only ${compared} documents (known gaps: ${JSON.stringify([...skipped])})`);
});

// The spec's answer where kdljs 0.3.0 is wrong (kdljs's behaviour in the comment).
const kdljsGaps: Array<[string, string, unknown]> = [
  // kdljs: syntax error (wants whitespace before '{')
  ['children block right after the name', 'a{b}', [{ name: 'a', children: ['b'] }]],
  // kdljs: syntax error (wants whitespace before '/-')
  ['slashdash right after the name', 'n/-1 2', [{ name: 'n', values: [2] }]],
  // kdljs: "\uFFFF" (String.fromCharCode truncates)
  ['astral unicode escape', 'n "\\u{1F600}"', [{ name: 'n', values: ['\u{1F600}'] }]],
  // kdljs: properties {} (the assignment sets the prototype instead)
  ['__proto__ property', 'n __proto__=1', [{ name: 'n', props: [['__proto__', 1]] }]],
  // kdljs: accepted (its block-comment token allows any code point)
  ['disallowed code point inside /* */', 'n /* \u0001 */ 1', 'error'],
];

for (const [what, text, want] of kdljsGaps) {
  test(`known kdljs gap, spec answer: ${what}`, () => {
    if (want === 'error') {
      assert.throws(() => parseDocument(text));
      return;
    }
    const got = parseDocument(text).map((n) => ({
      name: n.name,
      ...(n.values.length ? { values: n.values } : {}),
      ...(Object.keys(n.properties).length ? { props: Object.entries(n.properties) } : {}),
      ...(n.children.length ? { children: n.children.map((c) => c.name) } : {}),
    }));
    assert.deepEqual(got, want);
  });
}

const MUTATED = 1200;

test(`${MUTATED} mutated repository configs (mostly invalid): both parsers accept or reject alike`, (t) => {
  const bases = kdlFiles(root)
    .map((f) => readFileSync(f, 'utf8'))
    .filter((s) => ours(s) instanceof Array);
  const g = new Gen(seededRng(0xbad));
  const inserts = ['{', '}', '"', '#', '(', ')', ';', '=', '/', '\\', '-', '\n', ' ', '*', '/-', '//', '/*', '"""', '#"', '1', 'x', '.', 'true'];
  let rejected = 0;
  let gaps = 0;
  for (let i = 0; i < MUTATED; i++) {
    let text = bases[i % bases.length]!;
    const edits = 1 + g.int(2);
    for (let j = 0; j < edits; j++) {
      const p = g.int(text.length);
      text = g.chance(0.4) ? text.slice(0, p) + text.slice(p + 1 + g.int(3)) : text.slice(0, p) + g.pick(inserts) + text.slice(p);
    }
    const a = ours(text);
    const b = theirs(text);
    if (a instanceof Error && b instanceof Error) {
      rejected++;
      continue;
    }
    if (a instanceof Error) assert.fail(`mutant ${i}: kdljs accepts but ours rejects (${a.message})\n${text}`);
    if (b instanceof Error) {
      // must be one of the known gaps: with whitespace put before every '{' and '/-', kdljs must accept it
      // (values are not compared: the spacing also lands inside strings)
      const spaced = text.replace(/(?<=[^\s/])\/-/g, ' /-').replace(/(?<=\S)\{/g, ' {');
      const c = theirs(spaced);
      assert.ok(!(c instanceof Error), `mutant ${i}: ours accepts, kdljs rejects, and not for a known gap (${b.message})\n${text}`);
      gaps++;
      continue;
    }
    assert.deepEqual(a, b, `mutant ${i}: both accept but differ\n${text}`);
  }
  t.diagnostic(`${MUTATED} mutants: ${rejected} rejected by both, ${gaps} accepted only by ours (known kdljs gaps), ${MUTATED - rejected - gaps} accepted by both with equal output`);
  assert.ok(rejected > MUTATED / 4, `only ${rejected} mutants were invalid; the mutator is too gentle`);
});
