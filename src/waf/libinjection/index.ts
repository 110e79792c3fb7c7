// libinjection-equivalent SQLi and XSS detection (see issue #8). Inputs are latin1
// "binary" strings: each char code 0..255 stands for one byte, as in the C original.
import { SqliState } from './sqli-tokenizer.ts';
import { isSqli } from './sqli.ts';
import { isXss } from './xss.ts';

/** SQLi check (@detectSQLi). `fingerprint` is the matching token-type fingerprint, '' when not SQLi. */
// Detection is synchronous and never re-entered, so one state object is reused.
const shared = new SqliState('');

export function detectSqli(input: string): { detected: boolean; fingerprint: string } {
  const sf = shared;
  sf.setInput(input);
  const detected = isSqli(sf);
  return { detected, fingerprint: detected ? sf.fingerprint : '' };
}

/** XSS check (@detectXSS). */
export function detectXss(input: string): boolean {
  return isXss(input);
}

export {
  FLAG_QUOTE_NONE,
  FLAG_QUOTE_SINGLE,
  FLAG_QUOTE_DOUBLE,
  FLAG_SQL_ANSI,
  FLAG_SQL_MYSQL,
  SqliState,
  tokenize,
  tokenizeAll,
  lookupWord,
  type SqliToken,
} from './sqli-tokenizer.ts';
export { fold, fingerprint, isSqli, isBlacklisted, notWhitelisted, checkFingerprint, MAX_TOKENS } from './sqli.ts';
export { Html5Tokenizer, H5Start, H5Type, html5Tokens } from './html5.ts';
export { isXss, isXssInContext } from './xss.ts';
