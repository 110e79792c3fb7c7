// Request body processors (URLENCODED, MULTIPART, JSON, XML): pure functions
// over latin1 binary strings, one byte per char.
export { parseUrlEncoded, type Pair } from './urlencoded.ts';
export {
  parseMultipart,
  parseBoundary,
  type MultipartFile,
  type MultipartOptions,
  type MultipartResult,
} from './multipart.ts';
export { parseJson, type JsonOptions, type JsonResult } from './json.ts';
export { parseXml, type XmlResult } from './xml.ts';
export { quotedCookieValues } from './cookie.ts';
export { sniffBody, sniffDocument, type Sniffed } from './sniff.ts';
