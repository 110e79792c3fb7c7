// Bounded config fuzzing (issue #17 item 18c): every golden case, the shipped configs and the
// fixtures, mutated many times with a fixed seed, plus configs generated from the schema's
// vocabulary. The loader must accept a config or reject it with a ConfigError whose errors are
// located (a KDL path or a file:line); any other exception is a bug. Deterministic: the same
// seed gives the same inputs, so a failure names the case to replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigText } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/config/diagnostics.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import { seededRng } from '../../../plugins/balancing/common.ts'; // mulberry32, fixed seeds so failures reproduce

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SEED = 0x5e17;
const MUTANTS_PER_FILE = 60;
const GENERATED = 1500;


function kdlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...kdlFiles(p));
    else if (name.endsWith('.kdl')) out.push(p);
  }
  return out;
}

const corpus = [...kdlFiles(join(root, 'test/conformance/kdl')), ...kdlFiles(join(root, 'config')), ...kdlFiles(join(root, 'test/fixtures'))];

// Characters with a meaning in KDL (no '*': a mutated include must never glob the filesystem).
const ALPHABET = ['{', '}', '"', ';', '=', '#', '/', '\\', '(', ')', '-', '0', '9', '.', 'e', 'x', ' ', '\n', '\t', 'r', '\u0000', 'é', '\u202e', '\ufeff'];
const NUMBERS = ['0', '-1', '1', '0.5', '1e309', '-1e309', '99999999999999999999', '#nan', '#inf', '#-inf', '0x7fffffff', '1_000', '3.', '.5'];
const STRINGS = ['""', '"x"', `"${'a'.repeat(5000)}"`, '"\\u{0}"', '"../../etc/passwd"', '"(a+)+$"', '"[unclosed"', '"0.0.0.0:0"', '"127.0.0.1:99999"', '"::1"', '"http://[::1"', 'r#"raw"#', '#null'];
const WORDS = [
  'listener', 'route', 'upstream', 'filter', 'agent', 'matches', 'path-prefix', 'path-regex', 'host', 'header', 'query-param', 'method', 'target', 'address',
  'protocol', 'tls', 'cert-file', 'key-file', 'policies', 'timeout-secs', 'max-body-size', 'failure-mode', 'priority', 'filters', 'type', 'max-rps', 'burst',
  'key', 'backend', 'redis-url', 'websocket', 'websocket-inspection', 'websocket-idle-timeout-secs', 'rate-limits', 'default-rps', 'global', 'system',
  'worker-threads', 'trusted-proxies', 'limits', 'max-header-count', 'health-check', 'load-balancing', 'discovery', 'waf', 'rules', 'include', 'schema-version',
];
const TOP = ['system', 'listeners', 'routes', 'upstreams', 'filters', 'agents', 'limits', 'rate-limits', 'observability', 'waf', 'schema-version'];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** One random edit of `text`; several edits compose into a mutant. */
function mutate(text: string, r: () => number): string {
  const pos = Math.floor(r() * (text.length + 1));
  switch (Math.floor(r() * 10)) {
    case 0: // delete a short range
      return text.slice(0, pos) + text.slice(pos + 1 + Math.floor(r() * 12));
    case 1: // insert significant characters
      return text.slice(0, pos) + Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(r, ALPHABET)).join('') + text.slice(pos);
    case 2: {
      // replace a number
      const nums = [...text.matchAll(/-?\b\d+(\.\d+)?\b/g)];
      if (nums.length === 0) return text;
      const m = pick(r, nums);
      return text.slice(0, m.index) + pick(r, NUMBERS) + text.slice(m.index + m[0].length);
    }
    case 3: {
      // replace a string
      const strs = [...text.matchAll(/"(?:[^"\\\n]|\\.)*"/g)];
      if (strs.length === 0) return text;
      const m = pick(r, strs);
      return text.slice(0, m.index) + pick(r, STRINGS) + text.slice(m.index + m[0].length);
    }
    case 4: {
      // duplicate or drop a line
      const lines = text.split('\n');
      const i = Math.floor(r() * lines.length);
      if (r() < 0.5) lines.splice(i, 0, lines[i]!);
      else lines.splice(i, 1);
      return lines.join('\n');
    }
    case 5: {
      // swap two lines
      const lines = text.split('\n');
      const i = Math.floor(r() * lines.length);
      const j = Math.floor(r() * lines.length);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return lines.join('\n');
    }
    case 6: // flip a boolean or a keyword value
      return text.replace(pick(r, [/#true/, /#false/, /"closed"/, /"open"/, /"round_robin"/, /"https"/]), pick(r, ['#false', '#true', '"bogus"', '1', '#null', '"open"']));
    case 7: // insert a node from the vocabulary with a random value
      return text.slice(0, pos) + `\n${pick(r, WORDS)} ${pick(r, [...NUMBERS, ...STRINGS])}${r() < 0.3 ? ' { }' : ''}\n` + text.slice(pos);
    case 8: // truncate
      return text.slice(0, pos);
    default: // rename a node to another known key
      return text.replace(new RegExp(`\\b${pick(r, WORDS)}\\b`), pick(r, WORDS));
  }
}

/** A random document from the vocabulary: nodes with arguments, properties and children (depth <= 3). */
function generate(r: () => number, depth = 0): string {
  const count = 1 + Math.floor(r() * (depth === 0 ? 6 : 4));
  let out = '';
  for (let i = 0; i < count; i++) {
    const name = depth === 0 ? pick(r, TOP) : pick(r, WORDS);
    let node = '  '.repeat(depth) + name;
    const args = Math.floor(r() * 3);
    for (let a = 0; a < args; a++) node += ' ' + pick(r, [...NUMBERS, ...STRINGS, '#true', '#false']);
    if (r() < 0.2) node += ` ${pick(r, WORDS)}=${pick(r, [...NUMBERS, ...STRINGS])}`;
    if (depth < 3 && r() < 0.6) node += ' {\n' + generate(r, depth + 1) + '  '.repeat(depth) + '}';
    out += node + '\n';
  }
  return out;
}

interface Outcome {
  accepted: number;
  rejected: number;
}

/** Loads one input; fails the test (with the case name) on anything but accept / located rejection. */
function check(text: string, name: string, baseDir: string, outcome: Outcome): void {
  const started = process.cpuUsage();
  try {
    loadConfigText(text, { name: 'fuzz.kdl', baseDir, validators: pluginValidators });
    outcome.accepted++;
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      assert.fail(`${name}: unexpected ${(err as Error)?.constructor?.name ?? typeof err}: ${(err as Error)?.stack ?? String(err)}\n--- input ---\n${text.slice(0, 2000)}`);
    }
    const errors = err.diagnostics.filter((d) => d.severity === 'error');
    assert.ok(errors.length > 0, `${name}: ConfigError without an error diagnostic`);
    for (const d of errors) assert.ok(d.path !== '' || d.location !== undefined, `${name}: unlocated diagnostic "${d.message}"\n--- input ---\n${text.slice(0, 2000)}`);
    outcome.rejected++;
  }
  // Not a speed assertion: a single config that takes seconds to load is a hang in the making.
  // CPU time, not wall-clock time: a hang burns CPU, a loaded machine only delays (slowest case
  // ~15-18 ms of CPU, quiet or at load 25, when its wall time went from 43 to 238 ms).
  const cpu = process.cpuUsage(started);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  assert.ok(cpuMs < 5000, `${name}: loading took ${cpuMs.toFixed(0)} ms of CPU`);
}

test('mutated golden cases, shipped configs and fixtures: accepted or rejected with located errors', () => {
  assert.ok(corpus.length >= 15, `corpus of ${corpus.length} files`);
  const baseDir = mkdtempSync(join(tmpdir(), 'sentinel-fuzz-')); // includes resolve into an empty directory
  const r = seededRng(SEED);
  const outcome: Outcome = { accepted: 0, rejected: 0 };
  try {
    for (const file of corpus) {
      const original = readFileSync(file, 'utf8');
      const rel = file.slice(root.length);
      for (let i = 0; i < MUTANTS_PER_FILE; i++) {
        let text = original;
        const edits = 1 + Math.floor(r() * 4);
        for (let e = 0; e < edits; e++) text = mutate(text, r);
        check(text, `${rel} mutant ${i}`, baseDir, outcome);
      }
    }
  } finally {
    rmSync(baseDir, { recursive: true, force: true });
  }
  // both outcomes must occur, or the mutations are not exercising the loader
  assert.ok(outcome.accepted > 0 && outcome.rejected > 0, JSON.stringify(outcome));
});

test('generated configs from the schema vocabulary: accepted or rejected with located errors', () => {
  const baseDir = mkdtempSync(join(tmpdir(), 'sentinel-fuzz-'));
  const r = seededRng(SEED + 1);
  const outcome: Outcome = { accepted: 0, rejected: 0 };
  try {
    for (let i = 0; i < GENERATED; i++) check(generate(r), `generated ${i}`, baseDir, outcome);
  } finally {
    rmSync(baseDir, { recursive: true, force: true });
  }
  assert.ok(outcome.rejected > 0, JSON.stringify(outcome));
});
