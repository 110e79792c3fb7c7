// SecLang transformations (t:name). Every function maps a latin1 binary string
// to a latin1 binary string; `none` is handled by the engine.
import * as decode from './decode.ts';
import * as text from './text.ts';
import { base64Text } from '../extra/decoders.ts';

export type Transformation = (input: string) => string;

const REGISTRY: Record<string, Transformation> = {
  base64Decode: decode.base64Decode,
  base64DecodeExt: decode.base64DecodeExt,
  base64Encode: decode.base64Encode,
  cmdLine: text.cmdLine,
  compressWhitespace: text.compressWhitespace,
  cssDecode: decode.cssDecode,
  escapeSeqDecode: decode.escapeSeqDecode,
  hexDecode: decode.hexDecode,
  hexEncode: decode.hexEncode,
  htmlEntityDecode: decode.htmlEntityDecode,
  jsDecode: decode.jsDecode,
  length: text.length,
  lowercase: text.lowercase,
  md5: text.md5,
  normalisePath: text.normalisePath,
  normalizePath: text.normalisePath,
  normalisePathWin: text.normalisePathWin,
  normalizePathWin: text.normalisePathWin,
  parityEven7bit: text.parityEven7bit,
  parityOdd7bit: text.parityOdd7bit,
  parityZero7bit: text.parityZero7bit,
  phpArgsNames: text.phpArgsNames,
  removeComments: text.removeComments,
  removeCommentsChar: text.removeCommentsChar,
  removeNulls: text.removeNulls,
  removeWhitespace: text.removeWhitespace,
  replaceComments: text.replaceComments,
  replaceNulls: text.replaceNulls,
  sha1: text.sha1,
  sqlHexDecode: decode.sqlHexDecode,
  trim: text.trim,
  trimLeft: text.trimLeft,
  trimRight: text.trimRight,
  uppercase: text.uppercase,
  urlDecode: decode.urlDecode,
  urlDecodeUni: decode.urlDecodeUni,
  // Sentinel extension (extra rule sets): printable text decoded from base64/base64url runs.
  sentinelBase64Text: base64Text,
  urlEncode: decode.urlEncode,
  utf8toUnicode: decode.utf8toUnicode,
};

const BY_LOWER_NAME = new Map<string, Transformation>(
  Object.entries(REGISTRY).map(([name, fn]) => [name.toLowerCase(), fn]),
);

/** Canonical names (British and American spellings of normalisePath both listed). */
export const transformationNames: readonly string[] = Object.freeze(Object.keys(REGISTRY));

/** Look a transformation up by name, case-insensitively (CRS writes both t:base64Decode and t:base64decode). */
export function getTransformation(name: string): Transformation | undefined {
  return BY_LOWER_NAME.get(name.toLowerCase());
}
