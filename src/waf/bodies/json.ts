// application/json bodies -> flattened ARGS, named the way ModSecurity v3 and
// Coraza name them: "json" prefix, object keys joined with '.', array elements
// by index (json.a.b, json.list.0). Leaves only; numbers keep their source text,
// true/false as words, null as ''.
//
// A hand-written parser (not JSON.parse) because the body is a latin1 binary
// string: string contents stay bytes, \uXXXX escapes become UTF-8 bytes, and
// errors say where parsing stopped.
import type { Pair } from './urlencoded.ts';

export interface JsonResult {
  args: Pair[];
  error?: string;
}

export interface JsonOptions {
  /** nesting deeper than this is an error (ModSecurity's SecRequestBodyJsonDepthLimit) */
  maxDepth?: number;
  /**
   * Read as lenient parsers do (session 26 WAF evasion audit): Python's json (`NaN`, `Infinity`),
   * Gson's lenient reader (the default of `Gson.fromJson` and `JsonParser`: comments `//`, `/* *\/`
   * and `#`, single-quoted strings, unquoted keys and values, `=`/`=>` after a key, `;` between
   * elements, trailing commas), JSON5. For the sniff of bodies without a processor only: under
   * `application/json` such a body stays a parse error (400), as ModSecurity has it.
   */
  lenient?: boolean;
}

// Recursion depth stays far below the JS stack limit (ModSecurity's default of 10000 would not).
const DEFAULT_MAX_DEPTH = 1000;

class JsonError extends Error {}

export function parseJson(body: string, opts: JsonOptions = {}): JsonResult {
  const args: Pair[] = [];
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const lenient = opts.lenient === true;
  let i = 0;
  const n = body.length;

  const fail = (what: string): never => {
    throw new JsonError(`JSON parse error at offset ${i}: ${what}`);
  };
  const skipSpace = (): void => {
    while (i < n) {
      const c = body.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) {
        if (lenient && skipComment()) continue;
        break;
      }
      i++;
    }
  };
  /** Lenient: a `//`, `#` or `/* *\/` comment at i is skipped; whether there was one. */
  const skipComment = (): boolean => {
    const c = body[i];
    if (c === '#' || body.startsWith('//', i)) {
      const end = body.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      return true;
    }
    if (body.startsWith('/*', i)) {
      const end = body.indexOf('*/', i + 2);
      if (end < 0) fail('unterminated comment');
      i = end + 2;
      return true;
    }
    return c === '\f' || c === '\v' ? (i++, true) : false;
  };
  /** Lenient: an unquoted key or value (Gson's literal: up to whitespace or a delimiter). */
  const readLiteral = (): string => {
    const m = /^[^\s/\\;#=:,{}[\]"']+/.exec(body.slice(i, i + 65536));
    if (!m) fail('unexpected character');
    i += m![0].length;
    return m![0];
  };

  const readString = (): string => {
    // body[i] is the opening quote (lenient: `'` too)
    const quote = body.charCodeAt(i);
    i++;
    let out = '';
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = body.charCodeAt(i);
      if (c === quote) {
        i++;
        return out;
      }
      if (c < 0x20 && !lenient) fail('control character in string');
      if (c !== 0x5c) {
        // copy a run of plain bytes at once
        let j = i + 1;
        while (j < n) {
          const d = body.charCodeAt(j);
          if (d === quote || d === 0x5c || (d < 0x20 && !lenient)) break;
          j++;
        }
        out += body.slice(i, j);
        i = j;
        continue;
      }
      const e = body[i + 1];
      i += 2;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const readUnit = (): number => {
            const hex = body.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
            i += 4;
            return Number.parseInt(hex, 16);
          };
          let cp = readUnit();
          if (cp >= 0xd800 && cp < 0xdc00 && body.startsWith('\\u', i)) {
            const save = i;
            i += 2;
            const low = readUnit();
            if (low >= 0xdc00 && low < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            else i = save;
          }
          // The rest of the pipeline sees bytes: encode the code point as UTF-8.
          out += Buffer.from(String.fromCodePoint(cp), 'utf8').toString('latin1');
          break;
        }
        default:
          // lenient (JavaScript, JSON5, Gson): `\'` and any other escaped character is itself
          if (!lenient || e === undefined) fail(`bad escape \\${e ?? ''}`);
          else if (e !== '\n') out += e;
      }
    }
  };

  // JSON's number grammar, -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?, matched by hand (a regex over a
  // slice per number was a third of the parser on a JSON order). Any length: a number past a
  // window was a parse error, 400 for a benign body ModSecurity and JSON.parse read (session 25).
  const isDigit = (at: number, end: number): boolean => {
    if (at >= end) return false;
    const c = body.charCodeAt(at);
    return c >= 0x30 && c <= 0x39;
  };
  const readNumber = (): string => {
    const end = n;
    let j = i;
    if (j < end && body.charCodeAt(j) === 0x2d) j++;
    if (!isDigit(j, end)) fail('bad number');
    if (body.charCodeAt(j) === 0x30) j++;
    else while (isDigit(j, end)) j++;
    if (j < end && body.charCodeAt(j) === 0x2e && isDigit(j + 1, end)) {
      j += 2;
      while (isDigit(j, end)) j++;
    }
    if (j < end && (body.charCodeAt(j) | 0x20) === 0x65) {
      let k = j + 1;
      if (k < end && (body.charCodeAt(k) === 0x2b || body.charCodeAt(k) === 0x2d)) k++;
      if (isDigit(k, end)) {
        while (isDigit(k, end)) k++;
        j = k;
      }
    }
    const text = body.slice(i, j);
    i = j;
    return text;
  };

  const readValue = (path: string, depth: number): void => {
    skipSpace();
    if (i >= n) fail('unexpected end of input');
    const c = body[i];
    if (c === '{' || c === '[') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      const isObject = c === '{';
      const close = isObject ? '}' : ']';
      i++;
      skipSpace();
      if (body[i] === close) {
        i++;
        return;
      }
      for (let index = 0; ; index++) {
        let key = String(index);
        if (isObject) {
          skipSpace();
          if (body[i] === '"' || (lenient && body[i] === "'")) key = readString();
          else if (lenient) key = readLiteral();
          else fail('expected a string key');
          skipSpace();
          if (body[i] === ':') i++;
          else if (lenient && body[i] === '=') i += body[i + 1] === '>' ? 2 : 1;
          else fail("expected ':'");
        }
        readValue(`${path}.${key}`, depth + 1);
        skipSpace();
        if (body[i] === ',' || (lenient && body[i] === ';')) {
          i++;
          // lenient: a trailing comma before the close
          if (lenient) {
            skipSpace();
            if (body[i] === close) {
              i++;
              return;
            }
          }
          continue;
        }
        if (body[i] === close) {
          i++;
          return;
        }
        fail(`expected ',' or '${close}'`);
      }
    }
    if (c === '"' || (lenient && c === "'")) {
      args.push([path, readString()]);
      return;
    }
    // No array of words per value: true, false and null checked in place.
    if (body.startsWith('true', i)) {
      i += 4;
      args.push([path, 'true']);
      return;
    }
    if (body.startsWith('false', i)) {
      i += 5;
      args.push([path, 'false']);
      return;
    }
    if (body.startsWith('null', i)) {
      i += 4;
      args.push([path, '']);
      return;
    }
    args.push([path, lenient ? readLiteral() : readNumber()]);
  };

  try {
    // A UTF-8 byte order mark is tolerated.
    if (body.startsWith('\xef\xbb\xbf')) i = 3;
    readValue('json', 0);
    skipSpace();
    if (i < n) fail('trailing data after the JSON value');
    return { args };
  } catch (e) {
    if (!(e instanceof JsonError)) throw e;
    // Keep what was parsed before the error: rules still inspect it.
    return { args, error: e.message };
  }
}
