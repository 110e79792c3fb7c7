// One HTTP transaction through the rule engine: variables, phases 1-5, actions, ctl,
// interventions and the list of matched rules.
import { randomBytes } from 'node:crypto';

import { COLLECTION_COUNT, collectionSlot, Collection, makeItem, MapCollection, PositionItems, TxCollection, undefinedArray, type Item } from './collections.ts';
import { idInRanges, parseIdRanges, parseTargets, type EngineMode, type RuleSet } from './compile.ts';
import { compileMacro, expandMacro, type Macro, type MacroRef, type MacroResolver } from './macro.ts';
import { groupingEnabled, groupUnder, nextGroupStamp, type ReadGroup } from './groups.ts';
import { knownMiss, setMiss, type MissBits, type MissMemo } from './memo.ts';
import { PersistentStore } from './persistence.ts';
import { CAPTURE_KEYS, CAPTURE_SLOTS, chainCount, keyMatches, scalarSlotCount, scalarSlotOf, scalarStoreSlot, txSlotOf, type OperatorContext, type Phase, type Rule, type RuleEntry, type RuleVariable, type SetVar, type LinkSelectors } from './rule.ts';
import { processBody, type BodyProcessor } from './body.ts';
import { sniffBody } from '../bodies/sniff.ts';
import { clearList, compileOperator } from '../operators/index.ts';
import { prefilter } from '../regex/prefilter.ts';
import { parseUrlEncoded, semicolonPairs } from '../bodies/urlencoded.ts';
import { looseCookiePairs, quotedCookieValues } from '../bodies/cookie.ts';
import { currentTransaction } from '../seen-before.ts';
import { joinedArgs } from '../extra/joined.ts';

export interface Intervention {
  status: number;
  ruleId: number;
  action: 'deny' | 'redirect' | 'drop';
  url?: string;
}

export interface MatchedData {
  /** e.g. "ARGS:q" or "REQUEST_URI". */
  variable: string;
  /** Value as inspected, truncated to 256 bytes. */
  value: string;
}

export interface MatchedRule {
  id: number;
  phase: Phase;
  msg: string;
  logdata: string;
  severity?: number;
  tags: string[];
  matched: MatchedData[];
  /** Whether the rule is logged (false for nolog rules). */
  log: boolean;
  /** The rule's effective disruptive action (pass for CRS's block under its defaults). */
  disruptive: string;
}

export interface ConnectionInfo {
  clientIp: string;
  clientPort: number;
  serverIp?: string;
  serverPort: number;
}

export interface RequestLine {
  method: string;
  uri: string;
  protocol: string;
}

const MAX_MATCHED_VALUE = 256;
/** MATCHED_VARS when nothing matched yet: shared by every transaction, so never pushed to
 * (Transaction.addMatchedVar replaces an empty list). */
const NO_MATCHED_VARS: Item[] = [];
const MAX_LOGDATA = 512;

// The collections a request's set-up fills, by slot.
const C_ARGS = collectionSlot('ARGS');
const C_ARGS_NAMES = collectionSlot('ARGS_NAMES');
const C_ARGS_GET = collectionSlot('ARGS_GET');
const C_ARGS_GET_NAMES = collectionSlot('ARGS_GET_NAMES');
const C_ARGS_POST = collectionSlot('ARGS_POST');
const C_ARGS_POST_NAMES = collectionSlot('ARGS_POST_NAMES');
const C_REQUEST_HEADERS = collectionSlot('REQUEST_HEADERS');
const C_REQUEST_HEADERS_NAMES = collectionSlot('REQUEST_HEADERS_NAMES');
const C_REQUEST_COOKIES = collectionSlot('REQUEST_COOKIES');
const C_REQUEST_COOKIES_NAMES = collectionSlot('REQUEST_COOKIES_NAMES');

/** The scalars a request's set-up writes, by store slot (scalarStoreSlot). */
const SETUP = {
  REMOTE_ADDR: scalarStoreSlot('REMOTE_ADDR'),
  REMOTE_HOST: scalarStoreSlot('REMOTE_HOST'),
  REMOTE_PORT: scalarStoreSlot('REMOTE_PORT'),
  SERVER_ADDR: scalarStoreSlot('SERVER_ADDR'),
  SERVER_PORT: scalarStoreSlot('SERVER_PORT'),
  UNIQUE_ID: scalarStoreSlot('UNIQUE_ID'),
  REQUEST_METHOD: scalarStoreSlot('REQUEST_METHOD'),
  REQUEST_PROTOCOL: scalarStoreSlot('REQUEST_PROTOCOL'),
  REQUEST_LINE: scalarStoreSlot('REQUEST_LINE'),
  REQUEST_URI_RAW: scalarStoreSlot('REQUEST_URI_RAW'),
  REQUEST_URI: scalarStoreSlot('REQUEST_URI'),
  REQUEST_FILENAME: scalarStoreSlot('REQUEST_FILENAME'),
  PATH_INFO: scalarStoreSlot('PATH_INFO'),
  REQUEST_BASENAME: scalarStoreSlot('REQUEST_BASENAME'),
  QUERY_STRING: scalarStoreSlot('QUERY_STRING'),
  REQBODY_ERROR: scalarStoreSlot('REQBODY_ERROR'),
  REQBODY_PROCESSOR_ERROR: scalarStoreSlot('REQBODY_PROCESSOR_ERROR'),
  INBOUND_DATA_ERROR: scalarStoreSlot('INBOUND_DATA_ERROR'),
  OUTBOUND_DATA_ERROR: scalarStoreSlot('OUTBOUND_DATA_ERROR'),
  MULTIPART_STRICT_ERROR: scalarStoreSlot('MULTIPART_STRICT_ERROR'),
  MULTIPART_UNMATCHED_BOUNDARY: scalarStoreSlot('MULTIPART_UNMATCHED_BOUNDARY'),
  TIME_EPOCH: scalarStoreSlot('TIME_EPOCH'),
  SERVER_NAME: scalarStoreSlot('SERVER_NAME'),
} as const;


/** The set-up's scalars that start as '0' on every request (written by the template). */
const SETUP_ZEROS = [
  SETUP.REQBODY_ERROR,
  SETUP.REQBODY_PROCESSOR_ERROR,
  SETUP.INBOUND_DATA_ERROR,
  SETUP.OUTBOUND_DATA_ERROR,
  SETUP.MULTIPART_STRICT_ERROR,
  SETUP.MULTIPART_UNMATCHED_BOUNDARY,
];
const scalarTemplates: (string | undefined)[][] = [];

// What the last transaction made at each position of a request's lists (PositionItems).
const KEPT_POSITIONS = 32;
const HEADER_ITEMS = new PositionItems(KEPT_POSITIONS);
const HEADER_NAME_ITEMS = new PositionItems(KEPT_POSITIONS);
const COOKIE_ITEMS = new PositionItems(KEPT_POSITIONS);
const COOKIE_NAME_ITEMS = new PositionItems(KEPT_POSITIONS);
const ARG_GET_ITEMS = new PositionItems(KEPT_POSITIONS);
const ARG_GET_NAME_ITEMS = new PositionItems(KEPT_POSITIONS);
const ARG_POST_ITEMS = new PositionItems(KEPT_POSITIONS);
const ARG_POST_NAME_ITEMS = new PositionItems(KEPT_POSITIONS);

/** Per stored scalar slot, the one-item selection last made (see selectStored): one item a slot
 * for the process. */
const sharedSel: (Item[] | undefined)[] = [];

/** A new transaction's stored scalars (n slots): undefined but SETUP_ZEROS, a copy of a kept packed template. */
function freshScalars(n: number): (string | undefined)[] {
  let t = scalarTemplates[n];
  if (t === undefined) {
    t = undefinedArray<string>(n);
    for (const slot of SETUP_ZEROS) t[slot] = '0';
    scalarTemplates[n] = t;
  }
  return t.slice();
}

export class Transaction {
  readonly id: string;
  /** Process-unique number (the cross-request caches tell transactions apart by it). */
  private readonly serial: number;
  private mode: EngineMode;
  private requestBodyAccess: boolean;
  private responseBodyAccess: boolean;
  private forceRequestBodyVariable = false;
  private bodyProcessor: BodyProcessor | undefined;

  // variables
  /** Stored scalar values by slot (scalarStoreSlot): an array store per setScalar, not a Map
   * grown from empty every transaction (~25 writes in setRequest). */
  private readonly scalarVals = freshScalars(scalarSlotCount());
  /** Stored scalars' selected items by slot (RuleVariable.sid), kept while the value stays the
   * same (the miss memo caches its lookup on the item). */
  private readonly scalarSel = undefinedArray<Item[]>(scalarSlotCount());
  /** The collections made so far, by slot (collectionSlot(), RuleVariable.cid): every collection
   * the transaction fills is a built-in one, so no Map by name. */
  private readonly colSlots = undefinedArray<Collection>(COLLECTION_COUNT);
  private readonly tx = new TxCollection();
  /** Persistent collections opened by initcol (made on the first: most transactions open none). */
  private persistent: Map<string, MapCollection> | undefined;
  /** MATCHED_VARS: NO_MATCHED_VARS or a list of this transaction's or a fold record's, never
   * pushed to when empty (addMatchedVar). */
  private matchedVars: Item[] = NO_MATCHED_VARS;
  private matchedVarName = '';
  private matchedVar = '';
  private xmlTexts: string[] = [];
  private xmlAttrs: string[] = [];

  // request/response bodies
  private readonly reqChunks: Buffer[] = [];
  private reqBodyLength = 0;
  private reqBodyTooLarge = false;
  private readonly respChunks: Buffer[] = [];
  private respBodyLength = 0;
  private responseContentType = '';

  // runtime rule controls (ctl)
  private removedIds: [number, number][] = [];
  /** Tags removed by ctl or scoped exclusions (made on the first). */
  private removedTags: Set<string> | undefined;
  /** Per link (by linkIndex): 0, or 1 + the index in removedLists of the targets ctl removed from
   * its chain (the starter's links get the same list). */
  private removedLinks: Uint32Array | undefined;
  private readonly removedLists: RuleVariable[][] = [];
  /** removedLinks is a first removal's shared array (firstRemovalsOf): copied before a write. */
  private removedShared = false;

  /** The matched rules' records, the first `matchCount` of `matches` (what lies past it is never
   * read). Made at the length the last transaction's reached (recordsHint), so it is not grown
   * by push from empty every transaction (a CRS GET records ~86, ~45 of them nolog). */
  private readonly matches: MatchedRule[] = new Array<MatchedRule>(recordsHint);
  private matchCount = 0;
  /** How many of `matches` are logged (log: true): evaluate() is the only place that adds one. */
  private logged = 0;
  private intervention: Intervention | undefined;
  /** Highest phase already processed (phases never run twice). */
  private lastPhase = 0;
  private allowUntilPhase = 0;
  /** Per transformation, long input -> output (see longStep). */
  private longSteps: Map<(input: string) => string, Map<string, string>> | undefined;
  /** Computed scalar variables as one-item arrays, reused while the value stays the same. */
  private scalarItems: Map<string, Item[]> | undefined;
  /** transform()'s answer for links without transformations (read before the next call). */
  private readonly untransformed: string[] = [''];
  /** Set by select(): whether the selected variable is a collection (names get ":key"). */
  private selKeyed = false;
  /** Matched data of the rule being evaluated (copied when the whole chain matched). */
  private readonly collected: MatchedData[] = [];
  /** The rule set's load-time decisions (see FoldPlan), in use once phase 1 started with them. */
  private folds: (Fold | undefined)[][] | undefined;
  /** Their per-link part (FoldPlan.links), in use with them. */
  private linkPlans: (LinkPlan | undefined)[] | undefined;
  /** The fold plan's phases 3 and 4 for a transaction without a response (QuietPhase). */
  private quiet: (QuietPhase | undefined)[] | undefined;
  /** Phase 3 ran as its QuietPhase (phase 4's holds only after it). */
  private quiet3 = false;
  /** The probe is running phases 3-4 for the plan (foldAll step 4): walks without the fold's
   * table, which is being built. */
  private simulating = false;
  /** Per phase, the entries whose starter reads only response variables (skipped while the
   * transaction has no response); undefined when the load-time decisions are off. */
  private responseOnly: Uint8Array[] | undefined;
  /** processResponseHeaders ran: the response variables exist. */
  private hasResponse = false;
  /** Which group summaries (groups.ts) hold for this transaction now: new at each phase run and
   * each scalar change. */
  private stamp = nextGroupStamp();
  /** The group summaries' fresh items and their selectors (ReadGroup.freshStart/End index them;
   * made on the first summary, appended to for the transaction's life): `groupCount` of them are
   * written. Made at the size the last transaction's lists reached (groupListHint), so they are
   * not grown by push from empty every transaction (a CRS GET writes ~70: three growths and their
   * copies, ~1.5 KB of garbage). */
  private groupItems: Item[] | undefined;
  private groupVars: RuleVariable[] | undefined;
  private groupCount = 0;

  constructor(
    private readonly rules: RuleSet,
    private readonly store: PersistentStore,
    conn: ConnectionInfo,
    req: RequestLine,
    /** Flat: name, value, name, value, ... (index.ts flatHeaders). */
    headers: readonly string[],
  ) {
    this.serial = ++txSerial;
    this.id = nextUniqueId();
    this.mode = rules.settings.ruleEngine;
    this.requestBodyAccess = rules.settings.requestBodyAccess;
    this.responseBodyAccess = rules.settings.responseBodyAccess;
    this.setRequest(conn, req, headers);
  }

  // ------------------------------------------------------------------ public API

  /** Phase 1. */
  processRequestHeaders(): Intervention | undefined {
    return this.runPhase(1);
  }

  appendRequestBody(chunk: Buffer | string): Intervention | undefined {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    const limit = this.rules.settings.requestBodyLimit;
    if (this.reqBodyLength + buf.length > limit) {
      this.reqBodyTooLarge = true;
      const room = Math.max(0, limit - this.reqBodyLength);
      if (room > 0) this.reqChunks.push(buf.subarray(0, room));
      this.reqBodyLength += room;
      if (this.rules.settings.requestBodyLimitAction === 'Reject' && this.mode === 'On' && !this.intervention) {
        this.intervention = { status: 413, ruleId: 0, action: 'deny' };
      }
      return this.intervention;
    }
    this.reqChunks.push(buf);
    this.reqBodyLength += buf.length;
    return undefined;
  }

  /** Phase 2: parses the body (when access is on) and runs the request body rules. */
  processRequestBody(): Intervention | undefined {
    if (this.intervention) return this.intervention;
    this.runPhase(1);
    if (this.lastPhase >= 2) return this.intervention;
    this.parseRequestBody();
    return this.runPhase(2);
  }

  /** Phase 3. */
  processResponseHeaders(status: number, headers: [string, string][], protocol = 'HTTP/1.1'): Intervention | undefined {
    if (this.intervention) return this.intervention;
    if (this.lastPhase < 2) this.processRequestBody();
    if (this.intervention) return this.intervention;
    this.hasResponse = true;
    this.setScalar('RESPONSE_STATUS', String(status));
    this.setScalar('STATUS', String(status));
    this.setScalar('RESPONSE_PROTOCOL', protocol);
    this.setScalar('STATUS_LINE', `${protocol} ${status}`);
    const rh = this.col('RESPONSE_HEADERS');
    const rhn = this.col('RESPONSE_HEADERS_NAMES');
    for (const [k, v] of headers) {
      rh.add(k, v);
      rhn.add(k, k);
      const lk = k.toLowerCase();
      if (lk === 'content-type') {
        this.responseContentType = v;
        this.setScalar('RESPONSE_CONTENT_TYPE', v);
      } else if (lk === 'content-length') this.setScalar('RESPONSE_CONTENT_LENGTH', v);
    }
    return this.runPhase(3);
  }

  /** Whether processResponseBody will look at the body (access on and MIME type listed). */
  get inspectsResponseBody(): boolean {
    if (!this.responseBodyAccess) return false;
    const mime = this.responseContentType.split(';')[0]!.trim().toLowerCase();
    return this.rules.settings.responseBodyMimeTypes.includes(mime);
  }

  appendResponseBody(chunk: Buffer | string): void {
    if (!this.inspectsResponseBody) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    const room = this.rules.settings.responseBodyLimit - this.respBodyLength;
    if (room <= 0) return;
    const part = buf.length > room ? buf.subarray(0, room) : buf;
    this.respChunks.push(part);
    this.respBodyLength += part.length;
  }

  /** Phase 4. */
  processResponseBody(): Intervention | undefined {
    if (this.intervention) return this.intervention;
    if (this.lastPhase < 3) this.processResponseHeaders(200, []);
    if (this.intervention) return this.intervention;
    if (this.inspectsResponseBody) {
      this.setScalar('RESPONSE_BODY', Buffer.concat(this.respChunks).toString('latin1'));
    }
    return this.runPhase(4);
  }

  /** Phase 5; always runs, even after an intervention. */
  processLogging(): Intervention | undefined {
    this.runPhase(5, true);
    return this.intervention;
  }

  /** The intervention decided so far, if any. */
  get interrupted(): Intervention | undefined {
    return this.intervention;
  }

  get engineMode(): EngineMode {
    return this.mode;
  }

  /** How many logged rule matches so far (matchedRules().length without the list). */
  get loggedMatches(): number {
    return this.logged;
  }

  /** Logged matched rules in evaluation order. */
  matchedRules(): MatchedRule[] {
    // A benign CRS GET has ~45 nolog records and no logged one (the agent asks twice a request).
    if (this.logged === 0) return [];
    const out: MatchedRule[] = [];
    for (let i = 0; i < this.matchCount; i++) if (this.matches[i]!.log) out.push(this.matches[i]!);
    return out;
  }

  /** Every matched rule, nolog ones included (diagnostics; a nolog rule's record has no message,
   * data or matched values). */
  allMatchedRules(): MatchedRule[] {
    return this.matches.slice(0, this.matchCount);
  }

  /** Removes rules for this transaction only (like ctl:ruleRemoveById / ruleRemoveByTag). */
  removeRules(ids: string[], tags: string[]): void {
    for (const id of ids) this.removedIds = this.removedIds.concat(parseIdRanges(id));
    for (const t of tags) (this.removedTags ??= new Set()).add(t);
  }

  /** A TX variable, e.g. 'blocking_inbound_anomaly_score'. */
  getTx(key: string): string | undefined {
    return this.tx.first(key);
  }

  // ------------------------------------------------------------------ request setup

  /** A built-in collection (the names the transaction fills are all built-in), made if new. */
  private col(name: string): Collection {
    const slot = collectionSlot(name);
    if (slot < 0) throw new Error(`not a built-in collection: ${name}`);
    return this.colAt(slot);
  }

  /** col() by slot (the C_ constants: no lookup by name on a request's set-up). */
  private colAt(slot: number): Collection {
    return (this.colSlots[slot] ??= new Collection());
  }

  private setRequest(conn: ConnectionInfo, req: RequestLine, headers: readonly string[]): void {
    // The transaction is new: its slot arrays are fresh copies (every value and selection
    // undefined) and no group summary exists before the first phase run takes its own stamp, so
    // the set-up writes its scalars straight into the slots, not through setScalarAt's compare,
    // selection reset and stamp (25 calls a request). The constant '0's come with the template.
    const vals = this.scalarVals;
    vals[SETUP.REMOTE_ADDR] = conn.clientIp;
    vals[SETUP.REMOTE_HOST] = conn.clientIp;
    vals[SETUP.REMOTE_PORT] = String(conn.clientPort);
    vals[SETUP.SERVER_ADDR] = conn.serverIp ?? '127.0.0.1';
    vals[SETUP.SERVER_PORT] = String(conn.serverPort);
    vals[SETUP.UNIQUE_ID] = this.id;
    vals[SETUP.REQUEST_METHOD] = req.method;
    vals[SETUP.REQUEST_PROTOCOL] = req.protocol;
    vals[SETUP.REQUEST_LINE] = `${req.method} ${req.uri} ${req.protocol}`;
    vals[SETUP.REQUEST_URI_RAW] = req.uri;
    // An absolute-form target ("http://host/path") is reduced to its path for REQUEST_URI (the
    // usual origin-form target starts with '/': no regex run for it).
    let uri = req.uri;
    const abs = uri.charCodeAt(0) === 0x2f ? null : ABSOLUTE_FORM.exec(uri);
    if (abs) uri = uri.slice(abs[0].length) || '/';
    vals[SETUP.REQUEST_URI] = uri;
    const q = uri.indexOf('?');
    const path = q < 0 ? uri : uri.slice(0, q);
    const query = q < 0 ? '' : uri.slice(q + 1);
    // REQUEST_FILENAME and REQUEST_BASENAME are percent-decoded (as in ModSecurity and Coraza).
    const filename = percentDecode(path);
    vals[SETUP.REQUEST_FILENAME] = filename;
    vals[SETUP.PATH_INFO] = filename;
    vals[SETUP.REQUEST_BASENAME] = filename.slice(filename.lastIndexOf('/') + 1);
    vals[SETUP.QUERY_STRING] = query;
    vals[SETUP.TIME_EPOCH] = epochText();
    if (query !== '') {
      const args = this.splitArgs(query);
      for (let i = 0; i < args.length; i++) this.addArg('GET', args[i]![0], args[i]![1], i);
      // Rack 2.2 also splits on ';': its pairs are ARGS too (under the names it reads them by).
      if (query.indexOf(';') >= 0 && this.rules.settings.argumentSeparator === '&') {
        const more = semicolonPairs(query);
        for (let i = 0; i < more.length; i++) this.addArg('GET', more[i]![0], more[i]![1], args.length + i);
      }
    }
    const rh = this.colAt(C_REQUEST_HEADERS);
    const rhn = this.colAt(C_REQUEST_HEADERS_NAMES);
    let contentType: string | undefined;
    for (let j = 0, i = 0; j + 1 < headers.length; j += 2, i++) {
      const k = headers[j]!;
      const v = headers[j + 1]!;
      rh.addItem(HEADER_ITEMS.item(i, k, v));
      rhn.addItem(HEADER_NAME_ITEMS.item(i, k, k));
      // Only a name of one of the three lengths looked for is lower-cased (no builtin call per
      // header): a name that lower-cases to ASCII has that length (the one Unicode lower-casing
      // that grows a string, U+0130, adds a non-ASCII mark).
      const n = k.length;
      if (n !== 4 && n !== 6 && n !== 12) continue;
      const lk = k.toLowerCase();
      if (lk === 'cookie') this.parseCookies(v);
      else if (lk === 'host') vals[SETUP.SERVER_NAME] = withoutPort(v);
      else if (lk === 'content-type') contentType ??= v;
    }
    // The processor is known from the headers already in phase 1 (CRS 920400 reads it there).
    const ct = (contentType ?? '').toLowerCase();
    if (ct.startsWith('application/x-www-form-urlencoded')) this.setBodyProcessor('URLENCODED');
    else if (ct.startsWith('multipart/form-data')) this.setBodyProcessor('MULTIPART');
  }

  /** Every write of a scalar variable goes here: it drops the selection slots. */
  private setScalar(name: string, value: string): void {
    this.setScalarAt(scalarStoreSlot(name), value);
  }

  /** setScalar by store slot (SETUP: no lookup by name for a request's set-up). */
  private setScalarAt(slot: number, value: string): void {
    if (this.scalarVals[slot] === value) return;
    this.scalarVals[slot] = value;
    this.scalarSel[slot] = undefined;
    this.stamp = nextGroupStamp();
  }

  private setBodyProcessor(p: BodyProcessor): void {
    this.bodyProcessor = p;
    this.setScalar('REQBODY_PROCESSOR', p);
  }

  private splitArgs(text: string): [string, string][] {
    return splitUrlEncoded(text, this.rules.settings.argumentSeparator);
  }

  /** `pos`: the argument's position among those of its origin. */
  private addArg(origin: 'GET' | 'POST', name: string, value: string, pos: number): void {
    // One item in ARGS and ARGS_GET/POST (and one in both name lists): the miss memo caches its
    // lookup on the item, so a value is looked up once, not once per collection. Literal names:
    // a built name (`ARGS_${origin}`) is not interned and compared by content in the Map.
    const get = origin === 'GET';
    const arg = (get ? ARG_GET_ITEMS : ARG_POST_ITEMS).item(pos, name, value);
    const argName = (get ? ARG_GET_NAME_ITEMS : ARG_POST_NAME_ITEMS).item(pos, name, name);
    this.colAt(C_ARGS).addItem(arg);
    this.colAt(C_ARGS_NAMES).addItem(argName);
    this.colAt(get ? C_ARGS_GET : C_ARGS_POST).addItem(arg);
    this.colAt(get ? C_ARGS_GET_NAMES : C_ARGS_POST_NAMES).addItem(argName);
  }

  private parseCookies(header: string): void {
    const c = this.colAt(C_REQUEST_COOKIES);
    const cn = this.colAt(C_REQUEST_COOKIES_NAMES);
    // header.split(';') with each piece's leading blanks dropped, read in place (no array of
    // pieces); `eq` is the first '=' at or after the piece (-1: none left, -2: not looked for
    // yet), looked for again only once passed, as in parseUrlEncoded.
    const n = header.length;
    // quoted values as Python's cookie readers take them (across ';', escapes decoded): items more
    if (header.indexOf('"') >= 0) for (const [name, value] of quotedCookieValues(header)) c.add(name, value);
    // pairs ASP.NET Core and Python's SimpleCookie read apart from a ';' split (`,`, blanks)
    for (const [name, value] of looseCookiePairs(header)) {
      c.add(name, value);
      cn.add(name, name);
    }
    let start = 0;
    let eq = -2;
    let pos = 0;
    for (;;) {
      let end = header.indexOf(';', start);
      if (end < 0) end = n;
      let s = start;
      while (s < end && (header.charCodeAt(s) === 0x20 || header.charCodeAt(s) === 0x09)) s++;
      if (s < end) {
        if (eq !== -1 && eq < s) eq = header.indexOf('=', s);
        const name = eq >= 0 && eq < end ? header.slice(s, eq) : header.slice(s, end);
        const value = eq >= 0 && eq < end ? header.slice(eq + 1, end) : '';
        c.addItem(COOKIE_ITEMS.item(pos, name, value));
        cn.addItem(COOKIE_NAME_ITEMS.item(pos, name, name));
        pos++;
      }
      if (end === n) return;
      start = end + 1;
    }
  }

  private parseRequestBody(): void {
    // No chunk (every GET): no Buffer.concat of nothing and its empty buffer's text.
    const chunks = this.reqChunks;
    const body = chunks.length === 0 ? '' : (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('latin1');
    this.setScalar('REQUEST_BODY_LENGTH', String(body.length));
    if (!this.requestBodyAccess) return;
    const proc = this.bodyProcessor;
    if (this.reqBodyTooLarge) this.setScalar('INBOUND_DATA_ERROR', '1');
    // As in Coraza, the URL-encoded and JSON processors expose the raw body too.
    if (!proc || proc === 'URLENCODED' || proc === 'JSON' || this.forceRequestBodyVariable) this.setScalar('REQUEST_BODY', body);
    if (body.length === 0) return;
    if (!proc) {
      this.sniffBody(body);
      return;
    }
    const result = processBody(proc, body, this.col('REQUEST_HEADERS').first('content-type') ?? '', this.rules.settings.argumentSeparator);
    for (let i = 0; i < result.args.length; i++) this.addArg('POST', result.args[i]![0], result.args[i]![1], i);
    if (result.error !== undefined) {
      this.setScalar('REQBODY_ERROR', '1');
      this.setScalar('REQBODY_PROCESSOR_ERROR', '1');
      this.setScalar('REQBODY_ERROR_MSG', result.error);
      this.setScalar('REQBODY_PROCESSOR_ERROR_MSG', result.error);
    }
    this.xmlTexts = result.xmlTexts ?? [];
    this.xmlAttrs = result.xmlAttrs ?? [];
    if (result.multipart) {
      const m = result.multipart;
      const files = this.col('FILES');
      const names = this.col('FILES_NAMES');
      const sizes = this.col('FILES_SIZES');
      let combined = 0;
      for (const f of m.files) {
        files.add(f.name, f.filename);
        names.add(f.name, f.name);
        sizes.add(f.name, String(f.size));
        combined += f.size;
        this.col('MULTIPART_FILENAME').add(f.name, f.filename);
      }
      this.setScalar('FILES_COMBINED_SIZE', String(combined));
      for (const [part, line] of m.partHeaders) this.col('MULTIPART_PART_HEADERS').add(part, line);
      for (const name of m.partNames) this.col('MULTIPART_NAME').add(name, name);
      for (const [flag, value] of Object.entries(m.flags)) this.setScalar(flag, value);
    }
  }

  /**
   * A body no processor was chosen for, as the applications that ignore its type read it
   * (bodies/sniff.ts: JSON, JSON Lines, XML, a text form): its values become ARGS / XML:/* as a
   * processor's would; REQBODY_PROCESSOR stays empty and nothing is an error.
   */
  private sniffBody(body: string): void {
    const s = sniffBody(body, this.rules.settings.argumentSeparator, this.col('REQUEST_HEADERS').first('content-type') ?? '');
    for (let i = 0; i < s.args.length; i++) this.addArg('POST', s.args[i]![0], s.args[i]![1], i);
    if (s.xml) {
      this.xmlTexts = s.xml.texts;
      this.xmlAttrs = s.xml.attrs;
    }
  }

  // ------------------------------------------------------------------ variables

  private scalar(name: string): string | undefined {
    // The names computed here are rule.ts's COMPUTED_SCALARS (keep them in step): the others are
    // read from `scalars`, and only setScalar writes it.
    switch (name) {
      case 'MATCHED_VAR':
        return this.matchedVar;
      case 'MATCHED_VAR_NAME':
        return this.matchedVarName;
      case 'ARGS_COMBINED_SIZE': {
        let n = 0;
        for (const it of this.col('ARGS').items) n += it.key.length + it.value.length;
        return String(n);
      }
      case 'REQUEST_BODY_LENGTH':
        return this.stored(name) ?? '0';
      case 'FULL_REQUEST_LENGTH':
        return String((this.stored('REQUEST_LINE')?.length ?? 0) + this.reqBodyLength);
      case 'TIME':
      case 'TIME_EPOCH':
        return String(Math.floor(Date.now() / 1000));
      case 'DURATION':
        return '0';
      case 'HIGHEST_SEVERITY': {
        let h = 255;
        for (let i = 0; i < this.matchCount; i++) {
          const m = this.matches[i]!;
          if (m.severity !== undefined && m.severity < h) h = m.severity;
        }
        return String(h);
      }
      default:
        return this.stored(name);
    }
  }

  private stored(name: string): string | undefined {
    const slot = scalarSlotOf(name);
    return slot < 0 ? undefined : this.scalarVals[slot];
  }

  private keyed(name: string): KeyedItems | undefined {
    switch (name) {
      case 'TX':
        return this.tx;
      case 'MATCHED_VARS':
        // A snapshot: a rule over MATCHED_VARS appends to it while iterating.
        return wrap(this.matchedVars.slice());
      case 'MATCHED_VARS_NAMES':
        return wrap(this.matchedVars.map((m) => makeItem(m.key, m.key)));
      case 'XML':
        return undefined;
      case 'IP':
      case 'GLOBAL':
      case 'SESSION':
      case 'USER':
      case 'RESOURCE':
        return this.persistent?.get(name) ?? EMPTY;
      case 'ENV':
        return wrap(Object.entries(process.env).map(([key, value]) => ({ key, value: value ?? '' })));
      case 'ARGS_JOINED':
        // The `hpp` extra rule set's: a repeated name's values joined as applications join them.
        return joinedItems(this.colSlots[C_ARGS_GET], this.colSlots[C_ARGS_POST]);
      default:
      {
        const slot = collectionSlot(name);
        return slot < 0 ? undefined : (this.colSlots[slot] ?? EMPTY);
      }
    }
  }

  /** Items a variable selector yields, before exclusions (read-only: arrays may be shared);
   * sets selKeyed (false for scalars). */
  private select(v: RuleVariable): Item[] {
    if (v.scalar) return v.sid >= 0 ? this.selectStored(v.sid) : this.selectScalar(v.name);
    if (v.txs >= 0) {
      this.selKeyed = true;
      return this.tx.getSlot(v.txs);
    }
    if (v.name === 'XML') {
      this.selKeyed = true;
      // Most requests have no XML body, and CRS names XML:/* beside ARGS in ~190 selectors a GET
      // walks: nothing to look at, no key test, no empty array made.
      if (this.xmlTexts.length === 0 && this.xmlAttrs.length === 0) return NO_ITEMS;
      const key = v.key ?? '/*';
      const vals = key.includes('@') ? this.xmlAttrs : this.xmlTexts;
      return vals.map((value) => makeItem(key, value));
    }
    const col: KeyedItems | undefined = v.cid >= 0 ? (this.colSlots[v.cid] ?? EMPTY) : this.keyed(v.name);
    if (!col) return this.selectScalar(v.name);
    this.selKeyed = true;
    if (v.lkey !== undefined) return col.get(v.lkey);
    if (v.keyRegex) return col.matching !== undefined ? col.matching(v) : keysMatching(col.items, v);
    return col.items;
  }

  /** selectScalar for a stored scalar, through its slot. */
  private selectStored(sid: number): Item[] {
    this.selKeyed = false;
    const one = this.scalarSel[sid];
    if (one !== undefined) return one;
    const value = this.scalarVals[sid];
    let made: Item[];
    if (value === undefined) made = NO_ITEMS;
    else {
      // The last transaction's item when the value is the same text (REQUEST_METHOD,
      // REQUEST_FILENAME, SERVER_NAME, the zeros ... of a repeated request): no new item, and its
      // miss memo entry and transformation stages come with it (items never change, and both are
      // right for the value whichever transaction reads them).
      const last = sharedSel[sid];
      if (last !== undefined && last[0]!.value === value) made = last;
      else sharedSel[sid] = made = [makeItem('', value)];
    }
    this.scalarSel[sid] = made;
    return made;
  }

  private selectScalar(name: string): Item[] {
    this.selKeyed = false;
    const value = this.scalar(name);
    if (value === undefined) return NO_ITEMS;
    const items = (this.scalarItems ??= new Map());
    const cached = items.get(name);
    if (cached !== undefined && cached[0]!.value === value) return cached;
    const one = [makeItem('', value)];
    items.set(name, one);
    return one;
  }

  // No closures in the rule loop's functions: a closure that captures a loop or parameter
  // variable makes V8 allocate a context for every call (or iteration), used or not.
  private withoutExcluded(items: Item[], vname: string, excl: RuleVariable[]): Item[] {
    const kept: Item[] = [];
    for (let i = 0; i < items.length; i++) if (!this.isExcluded(vname, items[i]!.key, excl)) kept.push(items[i]!);
    return kept;
  }

  private isExcluded(vname: string, key: string, excl: RuleVariable[]): boolean {
    for (const e of excl) {
      if (e.name !== vname) continue;
      if (e.lkey !== undefined) {
        if (e.keyExact ? key === e.key : key.toLowerCase() === e.lkey) return true;
      } else if (e.keyRegex) {
        if (keyMatches(e, key)) return true;
      } else return true;
    }
    return false;
  }

  // ------------------------------------------------------------------ macros

  private resolveRef(ref: MacroRef): string | undefined {
    const { name, key } = ref;
    if (key === undefined) {
      if (name === 'MATCHED_VAR') return this.matchedVar;
      if (name === 'MATCHED_VAR_NAME') return this.matchedVarName;
      return this.scalar(name);
    }
    if (name === 'RULE') return undefined; // handled by the rule-aware resolver
    const col = this.keyed(name);
    if (!col) return undefined;
    return col.get(ref.lkey ?? key.toLowerCase())[0]?.value;
  }

  private expandFor(macro: Macro, rule: Rule): string {
    if (macro.constant) return macro.source;
    // One resolver per transaction reading the rule from a field (a closure per call over `rule`
    // was an allocation per setvar and message); saved and restored for the nested RULE.msg case.
    const outer = this.macroRule;
    this.macroRule = rule;
    Transaction.expanding = this;
    const text = expandMacro(macro, Transaction.RULE_REF);
    this.macroRule = outer;
    return text;
  }

  private macroRule: Rule | undefined;

  private ruleRef(ref: MacroRef): string | undefined {
    const rule = this.macroRule!;
    if (ref.name === 'RULE' && ref.key !== undefined) {
      const starter = this.rules.byId.get(rule.chainStarterId) ?? rule;
      switch (ref.lkey ?? ref.key.toLowerCase()) {
        case 'id':
          return String(starter.id);
        case 'msg':
          return starter.msg ? this.expandFor(starter.msg, rule) : '';
        case 'severity':
          return starter.severity === undefined ? '' : String(starter.severity);
        case 'phase':
          return String(starter.phase);
        case 'ver':
          return starter.ver ?? '';
        case 'logdata':
          return starter.logdata ? this.expandFor(starter.logdata, rule) : '';
        default:
          return undefined;
      }
    }
    return this.resolveRef(ref);
  }

  private expandText(text: string): string {
    if (!text.includes('%{')) return text;
    Transaction.expanding = this;
    return expandMacro(operatorMacro(text), Transaction.RESOLVE_REF);
  }

  // The macro resolvers are shared, not closures made per transaction (three a transaction, and
  // under tsx's keepNames each also cost an Object.defineProperty, ~23 k instructions a GET):
  // they read the transaction being expanded, set right before each expansion (the engine is
  // synchronous; a nested expansion is of the same transaction).
  private static expanding: Transaction;
  private static readonly RESOLVE_REF: MacroResolver = (ref) => Transaction.expanding.resolveRef(ref);
  private static readonly RULE_REF: MacroResolver = (ref) => Transaction.expanding.ruleRef(ref);
  private static readonly EXPAND_TEXT = function (this: OpContext, text: string): string {
    return this.tx.expandText(text);
  };

  /** One operator context per transaction (operators never re-enter the engine). */
  private readonly opCtx: OpContext = { capture: false, captures: [], expand: Transaction.EXPAND_TEXT, tx: this };

  // ------------------------------------------------------------------ evaluation

  private runPhase(phase: Phase, force = false): Intervention | undefined {
    if (this.lastPhase >= phase) return this.intervention;
    // Earlier phases that were never called run first, so rules see a consistent order.
    // After an intervention they are skipped; only logging (phase 5) still runs.
    for (let p = this.lastPhase + 1; p < phase && !this.intervention; p++) {
      if (p === 2) this.parseRequestBody();
      this.runPhaseRules(p as Phase);
    }
    this.lastPhase = phase;
    if (this.intervention && !force) return this.intervention;
    this.runPhaseRules(phase);
    return this.intervention;
  }

  private runPhaseRules(phase: Phase): void {
    let runs: (Run | undefined)[] | undefined;
    this.lastPhase = Math.max(this.lastPhase, phase);
    if (this.mode === 'Off') return;
    if (this.allowUntilPhase >= phase && phase !== 5) return;
    currentTransaction.serial = this.serial;
    // The group summaries (groups.ts) of an earlier phase run hold no more.
    this.stamp = nextGroupStamp();
    // The fold holds only for a transaction whose phase 1 runs every rule of its set-up prefix
    // (scoped exclusions remove rules before phase 1): decided here, once.
    if (phase === 1 && foldingEnabled && this.removedIds.length === 0 && this.removedTags === undefined) {
      const plan = foldPlanOf(this.rules);
      this.folds = plan.phases;
      this.linkPlans = plan.links;
      this.quiet = plan.quiet;
      runs = plan.runs;
    }
    if (phase === 1 && foldingEnabled) this.responseOnly = responseOnlyOf(this.rules);
    const folds = this.folds !== undefined ? this.folds[phase] : undefined;
    // Without a response (a request-side agent, or phases 3-4 run by processLogging) a rule whose
    // starter reads only response variables selects no item, so it cannot match: skipped as a miss.
    const noResponse = this.responseOnly !== undefined && !this.hasResponse;
    if (noResponse && (phase === 3 || phase === 4) && this.quiet !== undefined) {
      const q = this.quiet[phase];
      if (q !== undefined && (phase === 3 || this.quiet3) && this.quietHolds(q)) {
        this.replayQuiet(q);
        if (phase === 3) this.quiet3 = true;
        return;
      }
    }
    const entries = this.rules.phases[phase]!;
    const n = entries.length;
    const jumps = skipTargetsOf(this.rules)[phase]!;
    const skips = skipCountTargetsOf(this.rules)[phase]!;
    // The walk visits only entries that can do something (walkOf): markers, decided misses and
    // response-only rules are stepped over without being read (~530 of ~790 entries a CRS GET).
    // Its table depends on the ctl target removals, which a rule may change: re-read after each.
    let links = this.removedLinks;
    let next = this.walkOf(phase, folds !== undefined, noResponse);
    const batches = batchingEnabled && groupingEnabled ? batchesOf(this.rules)[phase]! : undefined;
    for (let i = next[0]!; i < n; ) {
      if (runs !== undefined) {
        const run = runs[i];
        if (run !== undefined) {
          i = next[this.replayRun(run)]!;
          continue;
        }
      }
      if (batches !== undefined) {
        const end = batches[i]!;
        if (end !== 0) {
          // The batch's rules that miss are stepped over; the first that may not (if any) is
          // evaluated below as any rule is, and the walk goes on from it as usual.
          const at = this.walkBatch(entries, i, end);
          if (at === end) {
            i = next[end]!;
            continue;
          }
          i = at;
        }
      }
      const rule = (entries[i] as RuleEntryOf<'rule'>).rule;
      if (this.isRemoved(rule)) {
        i = next[i + 1]!;
        continue;
      }
      const f = folds !== undefined ? folds[i] : undefined;
      let hit: boolean;
      // A decided rule runs as decided unless a ctl removed some of its targets.
      if (f !== undefined && (links === undefined || links[rule.linkIndex] === 0)) {
        hit = f.hit;
        if (hit) this.replay(f, rule);
      } else {
        hit = this.evaluate(rule);
        if (this.removedLinks !== links) {
          links = this.removedLinks;
          next = this.walkOf(phase, folds !== undefined, noResponse);
        }
      }
      if (!hit) {
        i = next[i + 1]!;
        continue;
      }
      if (this.intervention && phase !== 5) return;
      if (this.allowUntilPhase >= phase && phase !== 5) return;
      // skipAfter lands on its marker (or rule) and goes on after it; skip N steps over N rules.
      if (rule.skipAfter !== undefined) i = next[jumps[i]! + 1]!;
      else i = next[rule.skip > 0 ? skips[i]! : i + 1]!;
    }
  }

  /** Walks the batch entries[i, end) (see batchesOf) while each rule provably misses, with what a
   * miss leaves (MATCHED_VARS reset, the group's summary, the memo's miss bits, the items' stages
   * and the prefilter's answers): returns `end`, or the index of the first rule not removed that
   * needs evaluate() (a value that may match: a prefilter answer other than 0, or the operator's
   * own yes; a link whose bit the summary lacks; an XML body). No action runs in here, so the removal state and the summaries' stamp stay as they
   * were for the whole loop. */
  private walkBatch(entries: RuleEntry[], i: number, end: number): number {
    const memo = this.rules.misses;
    const removals = this.removedIds.length !== 0 || this.removedTags !== undefined;
    const flags = this.removedLinks;
    const xml = this.xmlTexts.length !== 0 || this.xmlAttrs.length !== 0;
    const stamp = this.stamp;
    for (; i < end; i++) {
      const e = entries[i]!;
      if (e.kind !== 'rule') continue;
      const rule = e.rule;
      if (removals && this.isRemoved(rule)) continue;
      // What evaluate() does first, hit or miss.
      if (this.matchedVars.length !== 0) this.matchedVars = NO_MATCHED_VARS;
      let g = rule.group!;
      if (xml && g.xml) return i;
      const linkIndex = rule.linkIndex;
      const k = flags !== undefined ? flags[linkIndex]! : 0;
      if (k !== 0) g = groupUnder(g, this.removedLists[k - 1]!);
      // matchGrouped's summary, made on the group's first use in this phase run.
      if (g.stamp !== stamp) {
        g.stamp = stamp;
        g.uses = 0;
      }
      if (g.uses++ === 0) this.summarise(g, memo);
      if (!knownMiss(g.all, linkIndex)) return i;
      const op = rule.operator!;
      const pf = op.negated || rule.multiMatch ? -1 : op.compiled.prefilter;
      const fresh = this.groupItems!;
      const stop = g.freshEnd;
      for (let j = g.freshStart; j < stop; j++) {
        const item = fresh[j]!;
        const entry = memo.of(item);
        if (entry !== undefined && knownMiss(entry.bits, linkIndex)) continue;
        const stages = this.transform(rule, item);
        // A value that may match goes to evaluate(), which asks again (the items marked below
        // are misses it skips): a miss here is exactly matchGrouped's.
        if (pf >= 0 ? prefilter.answer(pf, stages[stages.length - 1]!) !== 0 : this.mayMatch(rule, op, stages)) return i;
        if (entry !== undefined) setMiss(entry, linkIndex);
      }
    }
    return end;
  }

  /** Whether matchValue would match these stages, without its actions: the operator on the last
   * stage, or on every distinct stage with multiMatch (operators read nothing but the value and
   * their constant parameter; captures are cleared before each call and read only on a hit). */
  private mayMatch(link: Rule, op: NonNullable<Rule['operator']>, stages: Stages): boolean {
    const ctx = this.opCtx;
    ctx.capture = link.capture;
    const last = stages.length - 1;
    for (let s = link.multiMatch ? 0 : last; s <= last; s++) {
      const input = stages[s]!;
      if (link.multiMatch && s > 0 && stages.indexOf(input) < s) continue;
      clearList(ctx.captures);
      if (op.compiled.evaluate(input, ctx) !== op.negated) return true;
    }
    return false;
  }

  /** The rule walk's table for this transaction's state: next[j] is the first entry at or after
   * j that may run (see walkTablesOf). Shared per rule set; a transaction whose target removals
   * are its own (not a shared first removal) steps over no decided miss. */
  private walkOf(phase: Phase, folded: boolean, noResponse: boolean): Int32Array {
    const links = this.removedLinks;
    const key = !folded || this.simulating ? NO_FOLD : links === undefined ? NO_REMOVALS : this.removedShared ? links : NO_FOLD;
    return walkTableOf(this.rules, key, phase, noResponse);
  }

  private isRemoved(rule: Rule): boolean {
    if (this.removedIds.length && idInRanges(rule.id, this.removedIds)) return true;
    const tags = this.removedTags;
    if (tags !== undefined) for (const t of rule.tags) if (tags.has(t)) return true;
    return false;
  }

  /** Evaluates a rule with its chain; on a full match runs its actions and returns true. */
  private evaluate(rule: Rule): boolean {
    if (this.matchedVars.length !== 0) this.matchedVars = NO_MATCHED_VARS;
    // A nolog rule's record carries no matched values: none are collected for it.
    const collected = rule.log === false ? undefined : this.collected;
    // clearList keeps the list's room (length 0 frees it) and makes no runtime call when empty.
    if (collected !== undefined) clearList(collected);
    // Each link's non-disruptive actions run as soon as it matches (once per matched value),
    // before the next link is evaluated: CRS chains read TX values their starter just set.
    for (let link: Rule | undefined = rule; link; link = link.chained) {
      if (!this.matchLink(link, collected)) return false;
    }
    if (rule.log === false) {
      // Nothing reads a nolog match's message, data or matched values (matchedRules() leaves it
      // out; HIGHEST_SEVERITY reads the severity): one shared record per rule, not one per match.
      this.record(nologRecord(rule));
      this.disrupt(rule);
      return true;
    }
    this.logged++;
    this.record({
      id: rule.id,
      phase: rule.phase,
      msg: rule.msg ? this.expandFor(rule.msg, rule) : '',
      logdata: rule.logdata ? truncate(this.expandFor(rule.logdata, rule), MAX_LOGDATA) : '',
      severity: rule.severity,
      tags: rule.tags,
      matched: this.collected.slice(),
      log: true,
      disruptive: rule.effectiveDisruptive,
    });
    this.disrupt(rule);
    return true;
  }

  /** What evaluate() does for a rule the fold decided matches (a nolog rule): its TX values,
   * MATCHED_VAR(S), its record and its disruptive action. */
  private replay(f: Fold, rule: Rule): void {
    this.putSets(f.sets);
    if (f.matchedVars !== undefined) {
      this.matchedVar = f.matchedVar;
      this.matchedVarName = f.matchedVarName;
      this.matchedVars = f.matchedVars; // replaced, never pushed to: evaluate() starts a new list
    } else if (this.matchedVars.length !== 0) this.matchedVars = NO_MATCHED_VARS;
    this.record(nologRecord(rule));
    this.disrupt(rule);
  }

  /** Appends a matched rule's record (a store at the list's length grows it as a push would). */
  private record(m: MatchedRule): void {
    const n = this.matchCount;
    this.matches[n] = m;
    this.matchCount = n + 1;
    recordsHint = n < RECORDS_CAP ? n + 1 : RECORDS_CAP;
  }

  /** A recording's TX values, in order. */
  private putSets(sets: readonly FoldSet[]): void {
    const tx = this.tx;
    for (let k = 0; k < sets.length; k++) {
      const set = sets[k]!;
      if (set.slot >= 0) tx.putSlot(set.slot, set.one);
      else tx.putItems(set.lkey, set.one);
    }
  }

  /** What a recorded stretch of hits (a Run, a QuietPhase) leaves but MATCHED_VARS, whose recording
   * the two read differently: TX values, records, MATCHED_VAR(_NAME) when a hit set it. */
  private replayHits(h: Run | QuietPhase): void {
    this.putSets(h.sets);
    const records = h.records;
    for (let k = 0; k < records.length; k++) this.record(records[k]!);
    if (h.touched) {
      this.matchedVar = h.matchedVar;
      this.matchedVarName = h.matchedVarName;
    }
  }

  /** replay() of each rule of a run in turn, at once; where the walk goes on. */
  private replayRun(run: Run): number {
    this.replayHits(run);
    // Replaced, never pushed to: evaluate() starts a new list when this one is not empty.
    if (run.matchedVars !== undefined) this.matchedVars = run.matchedVars;
    else if (this.matchedVars.length !== 0) this.matchedVars = NO_MATCHED_VARS;
    return run.end;
  }

  /** Whether a QuietPhase holds for this transaction: no rule removed and no target removed from
   * its links by a ctl (the fold's own conditions hold: it is in use). */
  private quietHolds(q: QuietPhase): boolean {
    if (this.removedIds.length !== 0 || this.removedTags !== undefined) return false;
    const flags = this.removedLinks;
    if (flags === undefined) return true;
    // A shared first removal's flags never change (a later removal copies them first), so its
    // answer is kept on the phase for that array (CRS 941010's on nearly every GET: 86 flags).
    const shared = this.removedShared;
    if (shared && q.heldFor === flags) return q.holds;
    let holds = true;
    for (let k = 0; k < q.links.length; k++) {
      if (flags[q.links[k]!] !== 0) {
        holds = false;
        break;
      }
    }
    if (shared) {
      q.heldFor = flags;
      q.holds = holds;
    }
    return holds;
  }

  /** What the walk of a QuietPhase's phase leaves, at once. */
  private replayQuiet(q: QuietPhase): void {
    this.replayHits(q);
    // A shared list is never pushed to: evaluate() starts a new one when it is not empty, and
    // addMatchedVar replaces an empty one.
    if (q.matchedVars !== undefined) this.matchedVars = q.matchedVars;
  }

  // ------------------------------------------------------------------ the fold (load time)

  /** Builds the rule set's fold plan on a probe transaction (see FoldPlan). */
  static buildFoldPlan(rules: RuleSet): FoldPlan {
    const savedId = idCounter;
    const savedSerial = currentTransaction.serial;
    try {
      const probe = new Transaction(rules, new PersistentStore(0), { clientIp: '0.0.0.0', clientPort: 0, serverPort: 0 }, { method: 'GET', uri: '/', protocol: 'HTTP/1.1' }, []);
      currentTransaction.serial = probe.serial;
      return probe.foldAll();
    } finally {
      idCounter = savedId; // the probe takes no UNIQUE_ID from the real transactions' sequence
      currentTransaction.serial = savedSerial;
    }
  }

  private foldAll(): FoldPlan {
    const rules = this.rules;
    const phases: (Fold | undefined)[][] = rules.phases.map((entries) => new Array<Fold | undefined>(entries.length).fill(undefined));
    const links = new Array<LinkPlan | undefined>(linksByStarter(rules).links).fill(undefined);
    // 1. The set-up prefix of phase 1, run here on the probe: while every rule is either decided
    // from TX alone (TX starts empty, so all of it is known) or cannot change what a later rule
    // reads (no TX write, no skip, no disruptive action, no rule removal).
    const entries = rules.phases[1]!;
    const markers = rules.markers[1]!;
    const executed = new Set<Rule>();
    // Runs of decided rules, from a hit to the next rule not decided (see Run).
    const runs = new Array<Run | undefined>(entries.length).fill(undefined);
    let run: Run | undefined;
    let i = 0;
    for (; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.kind === 'marker') continue;
      const rule = e.rule;
      const f = this.foldRule(rule, ANY_KEY, true);
      if (f !== undefined) {
        phases[1]![i] = f;
        executed.add(rule);
        if (f.hit) {
          if (run === undefined) runs[i] = run = { end: 0, sets: [], records: [], touched: false, matchedVar: '', matchedVarName: '', matchedVars: undefined };
          // What replay() leaves.
          run.sets.push(...f.sets);
          run.records.push(nologRecord(rule));
          if (f.matchedVars !== undefined) {
            run.touched = true;
            run.matchedVar = f.matchedVar;
            run.matchedVarName = f.matchedVarName;
            run.matchedVars = f.matchedVars;
          } else run.matchedVars = undefined;
        }
        if (f.hit && rule.skipAfter !== undefined) i = skipAfterIndex(entries, markers, rule.skipAfter);
        continue;
      }
      if (run !== undefined) run.end = i;
      run = undefined;
      if (!cannotAffectOthers(rule)) break;
    }
    if (run !== undefined) run.end = i;
    // 2. TX keys nothing outside the prefix writes keep the prefix's values for the rest of the
    // transaction: the rules that read only those are decided once for every phase.
    const writes = txWritesOutside(rules, executed);
    const stable = (lkey: string): boolean => !writes.any && !writes.keys.has(lkey) && !writes.prefixes.some((p) => lkey.startsWith(p)) && !(writes.capture && /^\d$/.test(lkey));
    const known = new Map(this.tx.rawEntries());
    for (let p = 1; p <= 5; p++) {
      const list = rules.phases[p]!;
      for (let j = p === 1 ? i : 0; j < list.length; j++) {
        const e = list[j]!;
        if (e.kind === 'marker') continue;
        this.tx.resetTo(known);
        const f = this.foldRule(e.rule, stable, false);
        if (f !== undefined) phases[p]![j] = f;
        else for (let l: Rule | undefined = e.rule; l; l = l.chained) links[l.linkIndex] = this.planLink(l, stable, known);
      }
    }
    this.tx.resetTo(known);
    const quiet = this.quietPhases(executed, phases, links, known);
    return { phases, links, runs, quiet };
  }

  /** 4. Phases 3 and 4 of a transaction that has no response (see QuietPhase): the rules the walk
   * can reach there (not response-only) are checked to read only TX keys that nothing outside
   * them, the set-up prefix and the response-only rules writes, and to have no effect replay
   * cannot reproduce; then the walk itself runs on the probe, and what it left is recorded. */
  private quietPhases(executed: Set<Rule>, phases: (Fold | undefined)[][], links: (LinkPlan | undefined)[], known: Map<string, Item[]>): (QuietPhase | undefined)[] {
    const rules = this.rules;
    const responseOnly = responseOnlyOf(rules);
    const inside = new Set<Rule>(executed);
    const reached: Rule[][] = [[], [], [], [], [], []];
    rules.phases.forEach((entries, p) =>
      entries.forEach((e, i) => {
        if (e.kind !== 'rule') return;
        if (responseOnly[p]![i] === 1) inside.add(e.rule);
        else if (p === 3 || p === 4) {
          inside.add(e.rule);
          reached[p]!.push(e.rule);
        }
      }),
    );
    const writes = txWritesOutside(rules, inside);
    const stable = (lkey: string): boolean => !writes.any && !writes.keys.has(lkey) && !writes.prefixes.some((p) => lkey.startsWith(p)) && !(writes.capture && /^\d$/.test(lkey));
    const out: (QuietPhase | undefined)[] = [];
    if (![...reached[3]!, ...reached[4]!].every((r) => quietRule(r, stable))) return out;
    const mode = this.mode;
    this.tx.resetTo(known);
    this.folds = phases;
    this.linkPlans = links;
    this.responseOnly = responseOnly;
    this.hasResponse = false;
    this.simulating = true;
    // Not empty, so the walk replaces it before it pushes (evaluate() starts a new list then).
    const noVars: Item[] = [makeItem('', '')];
    try {
      for (const p of [3, 4] as const) {
        const before = new Map(this.tx.rawEntries());
        const records = this.matchCount;
        this.matchedVar = this.matchedVarName = UNSET;
        this.matchedVars = noVars;
        this.runPhaseRules(p);
        const added = this.matches.slice(records, this.matchCount);
        let deleted = false;
        for (const k of before.keys()) if (this.tx.get(k).length === 0) deleted = true;
        if (deleted || this.intervention !== undefined || this.allowUntilPhase !== 0 || this.mode !== mode || added.some((m) => m.log !== false)) break;
        const sets: FoldSet[] = [];
        for (const [lkey, one] of this.tx.rawEntries()) if (before.get(lkey) !== one) sets.push({ lkey, slot: txSlotOf(lkey), one });
        const touched = this.matchedVar !== UNSET;
        const linkIndexes: number[] = [];
        for (const r of reached[p]!) for (let l: Rule | undefined = r; l; l = l.chained) linkIndexes.push(l.linkIndex);
        out[p] = {
          sets,
          records: added,
          links: linkIndexes,
          touched,
          matchedVar: touched ? this.matchedVar : '',
          matchedVarName: touched ? this.matchedVarName : '',
          matchedVars: this.matchedVars === noVars ? undefined : this.matchedVars,
          heldFor: undefined,
          holds: false,
        };
      }
    } finally {
      this.simulating = false;
      this.folds = undefined;
      this.linkPlans = undefined;
      this.responseOnly = undefined;
      this.lastPhase = 0;
      this.matchCount = 0;
      this.matchedVar = this.matchedVarName = '';
      this.matchedVars = [];
      this.intervention = undefined;
      this.allowUntilPhase = 0;
      this.mode = mode;
      this.tx.resetTo(known);
    }
    // Phase 4's record starts from phase 3's: without phase 3's it is not used (see runPhaseRules).
    return out[3] === undefined ? [] : out;
  }

  /** 3. A link of a rule not decided whole (see LinkPlan), on the probe's TX after the prefix. */
  private planLink(link: Rule, stable: (lkey: string) => boolean, known: Map<string, Item[]>): LinkPlan | undefined {
    const op = link.operator;
    if (op === undefined || link.capture) return undefined;
    this.tx.resetTo(known);
    if (readsOnlyTx(link, stable) && link.variables.every((v) => !v.exclude)) {
      // The link's own evaluation with its actions left out: what it matches is what it records.
      const { setvars, ctls, initcols } = link;
      link.setvars = [];
      link.ctls = [];
      link.initcols = [];
      this.matchedVars = [];
      try {
        this.matchLink(link, undefined);
        return { hits: this.matchedVars, operator: undefined };
      } finally {
        link.setvars = setvars;
        link.ctls = ctls;
        link.initcols = initcols;
        this.matchedVars = [];
      }
    }
    if (link.pure || !RESOLVABLE.has(op.name.toLowerCase()) || !paramReadsOnlyTx(op.param, stable)) return undefined;
    const param = this.expandText(op.param);
    if (param.includes('%{')) return undefined;
    return { hits: undefined, operator: { name: op.name, param, negated: op.negated, compiled: compileOperator(op.name, param) } };
  }

  /** Decides a rule on the probe from TX keys `known` accepts: a miss (the starter link matches
   * nothing, so no action runs), a hit whose only effects replay() reproduces, or undefined.
   * A hit's TX writes are kept on the probe (the prefix builds up TX); anything else is undone. */
  private foldRule(rule: Rule, known: (lkey: string) => boolean, prefix: boolean): Fold | undefined {
    if (!readsOnlyTx(rule, known)) return undefined;
    const before = new Map(this.tx.rawEntries());
    const records = this.matchCount;
    const logged = this.logged;
    const mv = this.matchedVar;
    const mvn = this.matchedVarName;
    this.matchedVar = this.matchedVarName = UNSET;
    const hit = this.evaluate(rule);
    const touched = this.matchedVar !== UNSET;
    let fold: Fold | undefined;
    // With an operator, a starter link that matched set MATCHED_VAR (a SecAction runs its actions
    // without): nothing matched means no action ran.
    if (!hit && !touched && rule.operator !== undefined) fold = MISS;
    else if (hit && hitFoldable(rule, known, prefix)) {
      const sets: FoldSet[] = [];
      let deleted = false;
      for (const k of before.keys()) if (this.tx.get(k).length === 0) deleted = true;
      for (const [lkey, one] of this.tx.rawEntries()) if (before.get(lkey) !== one) sets.push({ lkey, slot: txSlotOf(lkey), one });
      if (!deleted && (prefix || sets.length === 0)) {
        fold = touched
          ? { hit: true, sets, matchedVar: this.matchedVar, matchedVarName: this.matchedVarName, matchedVars: this.matchedVars }
          : { hit: true, sets, matchedVar: '', matchedVarName: '', matchedVars: undefined };
      }
    }
    if (fold === undefined || !fold.hit || !touched) {
      this.matchedVar = mv;
      this.matchedVarName = mvn;
    }
    this.matchedVars = [];
    if (fold === undefined) this.tx.resetTo(before);
    // Whatever a rule not folded did to the probe is undone (a decided hit has no ctl or initcol).
    this.matchCount = records;
    this.logged = logged;
    this.intervention = undefined;
    this.allowUntilPhase = 0;
    this.mode = this.rules.settings.ruleEngine;
    this.removedIds = [];
    this.removedTags = undefined;
    this.removedLists.length = 0;
    this.removedLinks = undefined;
    this.persistent = undefined;
    return fold;
  }

  /** Runs one link's operator over its variables; records matches. */
  private matchLink(link: Rule, collected: MatchedData[] | undefined): boolean {
    const op = link.operator;
    if (!op) {
      this.runActions(link);
      return true;
    }
    // ctl:ruleRemoveTarget* exclusions of the link (tags were resolved to links when the ctl ran):
    // a flag per link, 0 or 1 + the index of its list. Written here, not called: as a method it
    // fell out of matchLink's inlining budget (+9 k instructions a GET, session 21).
    const flags = this.removedLinks;
    const k = flags !== undefined ? flags[link.linkIndex]! : 0;
    // The fold's decision for this link (a link reading stable TX, an operator resolved), unless
    // a ctl removed some of its targets.
    const plan = this.linkPlans !== undefined && k === 0 ? this.linkPlans[link.linkIndex] : undefined;
    if (plan !== undefined && plan.hits !== undefined) return this.replayLink(link, plan.hits, collected);
    const noXml = this.xmlTexts.length === 0 && this.xmlAttrs.length === 0;
    const g = link.group;
    if (g !== undefined && (noXml || !g.xml) && groupingEnabled) {
      const grouped = this.matchGrouped(link, k === 0 ? g : groupUnder(g, this.removedLists[k - 1]!), collected);
      if (grouped !== undefined) return grouped;
    }
    const sel = linkSelectors(link);
    const excl = sel.excl;
    const rtExcl = k === 0 ? NONE : this.removedLists[k - 1]!;
    let matched = false;
    this.opCtx.capture = link.capture;
    const resolved = plan !== undefined ? plan.operator : undefined;
    const memo = link.pure || resolved !== undefined ? this.rules.misses : undefined;
    const operator = resolved ?? op;
    const linkIndex = link.linkIndex;
    // Indexed loops: the arrays here differ in shape (shared, filtered, fresh), and a for-of over
    // them allocated an iterator and a result object per step in optimised code.
    const vars = noXml ? sel.noXml : sel.all;
    const excluded = noXml ? sel.noXmlExcluded : sel.allExcluded;
    for (let vi = 0; vi < vars.length; vi++) {
      const v = vars[vi]!;
      let items: Item[];
      let keyed: boolean;
      const col = memo !== undefined && v.whole ? this.colSlots[v.cid] : undefined;
      if (col !== undefined) {
        // A whole collection: when every known value misses this link, only new values are left.
        const split = (col.missSplit ??= memo!.split(col.items));
        items = knownMiss(split.all, linkIndex) ? split.fresh : col.items;
        keyed = true;
      } else {
        items = this.select(v);
        keyed = this.selKeyed;
      }
      // Whether an exclusion names the variable: the link's own decided once (excluded[vi]), the
      // transaction's ctl removals looked up (a name loop per visit was ~15 k instructions a GET).
      if (items.length && (excluded[vi] === 1 || (rtExcl.length !== 0 && excludesVariable(rtExcl, v.name)))) {
        items = this.withoutExcluded(items, v.name, rtExcl.length === 0 ? excl : excl.length === 0 ? rtExcl : [...excl, ...rtExcl]);
      }
      if (v.count) {
        items = countItems(v, items.length);
        keyed = v.key !== undefined;
      }
      for (let ii = 0; ii < items.length; ii++) {
        const item = items[ii]!;
        const entry = memo?.of(item);
        if (entry !== undefined && knownMiss(entry.bits, linkIndex)) continue;
        if (this.matchValue(link, operator, v, keyed, item, collected)) matched = true;
        else if (entry !== undefined) setMiss(entry, linkIndex);
      }
    }
    return matched;
  }

  /** Adds a match to MATCHED_VARS. An empty list is replaced by a list of one, not pushed to:
   * it may be NO_MATCHED_VARS or a fold record's, and `[]` and a push made room for 17 (~180
   * bytes) where most rules match one value. With evaluate() resetting to the shared empty list
   * (no `[]` per rule: 32 resets and 12-17 first matches a CRS GET) ~2.3 KB less garbage a GET. */
  private addMatchedVar(item: Item): void {
    const mv = this.matchedVars;
    if (mv.length === 0) this.matchedVars = [item];
    else mv.push(item);
  }

  /** What matchLink does for a link decided at load (LinkPlan.hits): each match's MATCHED_VAR(S),
   * matched data and the link's actions, in order. */
  private replayLink(link: Rule, hits: readonly Item[], collected: MatchedData[] | undefined): boolean {
    for (let i = 0; i < hits.length; i++) {
      const h = hits[i]!;
      this.matchedVar = h.value;
      this.matchedVarName = h.key;
      this.addMatchedVar(h);
      collected?.push({ variable: h.key, value: truncate(h.value, MAX_MATCHED_VALUE) });
      this.runActions(link);
    }
    return hits.length !== 0;
  }

  /** A grouped link (groups.ts) whose bit the group's summary has: only the summary's fresh items
   * are evaluated, each still checked against its own bits. undefined: take the selector walk. */
  private matchGrouped(link: Rule, g: ReadGroup, collected: MatchedData[] | undefined): boolean | undefined {
    const memo = this.rules.misses;
    if (g.stamp !== this.stamp) {
      g.stamp = this.stamp;
      g.uses = 0;
    }
    if (g.uses++ === 0) this.summarise(g, memo);
    const linkIndex = link.linkIndex;
    if (!knownMiss(g.all, linkIndex)) return undefined;
    const op = link.operator!;
    this.opCtx.capture = link.capture;
    const fresh = this.groupItems!;
    const vars = this.groupVars!;
    const end = g.freshEnd;
    // A constant @rx pattern asks the prefilter first (operators/index.ts) and misses on its 0:
    // asked here on the last stage, a miss skips matchValue and the operator's call (nothing else
    // happens on a miss). Not for a negated operator (0 is its hit) or multiMatch (every stage).
    const pf = op.negated || link.multiMatch ? -1 : op.compiled.prefilter;
    let matched = false;
    for (let i = g.freshStart; i < end; i++) {
      const item = fresh[i]!;
      const entry = memo.of(item);
      if (entry !== undefined && knownMiss(entry.bits, linkIndex)) continue;
      if (pf >= 0) {
        const stages = this.transform(link, item);
        if (prefilter.answer(pf, stages[stages.length - 1]!) === 0) {
          if (entry !== undefined) setMiss(entry, linkIndex);
          continue;
        }
      }
      const v = vars[i]!;
      if (this.matchValue(link, op, v, !v.scalar, item, collected)) matched = true;
      else if (entry !== undefined) setMiss(entry, linkIndex);
    }
    return matched;
  }

  /** Fills a group's summary for this transaction's current items (see groups.ts). */
  private summarise(g: ReadGroup, memo: MissMemo): void {
    // The bitsets to AND: the same objects as last time (a collection's kept AND, a well-known
    // value's entry) give the same AND or a subset of it (bits are only set), so the last AND is
    // kept and only taken again after REFRESH summaries, to pick up the bits learnt since.
    const parts = g.parts;
    let same = g.age < GROUP_REFRESH;
    let np = 0;
    // The fresh items go to the transaction's own lists (young objects into young arrays: no
    // write barrier's slow path, as writing them into the group's long-lived arrays took).
    let fresh = this.groupItems;
    let freshVars = this.groupVars;
    if (fresh === undefined || freshVars === undefined) {
      // Holey arrays of the hint's length: written by index below `groupCount`, never read past
      // it (a store at the length grows them as a push would).
      fresh = this.groupItems = new Array<Item>(groupListHint);
      freshVars = this.groupVars = new Array<RuleVariable>(groupListHint);
    }
    let count = this.groupCount;
    g.freshStart = count;
    const vars = g.vars;
    for (let vi = 0; vi < vars.length; vi++) {
      const v = vars[vi]!;
      let items: Item[];
      if (v.whole) {
        const col = this.colSlots[v.cid];
        if (col === undefined || col.items.length === 0) continue;
        // The collection's split, shared with the selector walk: every item outside its fresh
        // list is a known miss for the links whose bit its `all` has.
        const split = (col.missSplit ??= memo.split(col.items));
        if (np >= g.partCount || parts[np] !== split.all) {
          same = false;
          if (np < parts.length) parts[np] = split.all;
          else parts.push(split.all);
        }
        np++;
        items = split.fresh;
      } else {
        items = this.select(v);
        if (items.length === 0) continue;
        // A single item (a header, a scalar) well known to the memo is ANDed in; one it knows
        // little about (a new value: the links before have just set their own bits) stays fresh.
        if (items.length === 1) {
          const e = memo.of(items[0]!);
          if (e !== undefined && e.known >= GROUP_KNOWN) {
            if (np >= g.partCount || parts[np] !== e.bits) {
              same = false;
              if (np < parts.length) parts[np] = e.bits;
              else parts.push(e.bits);
            }
            np++;
            continue;
          }
        }
      }
      if (items.length !== 0 && g.excluded[vi] === 1) items = this.withoutExcluded(items, v.name, g.excl);
      for (let i = 0; i < items.length; i++) {
        fresh[count] = items[i]!;
        freshVars[count] = v;
        count++;
      }
    }
    g.freshEnd = count;
    this.groupCount = count;
    // The next transaction's lists are made this long (capped: one request with many arguments
    // does not make every later one allocate for it).
    groupListHint = count < GROUP_LIST_CAP ? count : GROUP_LIST_CAP;
    if (same && np === g.partCount) {
      g.age++;
      return;
    }
    g.partCount = np;
    g.age = 0;
    const all = g.all;
    // Loops, not TypedArray#fill (a runtime call).
    for (let w = 0; w < all.length; w++) all[w] = 0xffffffff;
    for (let p = 0; p < np; p++) andInto(all, parts[p]!);
  }

  /** Runs a link's operator on one item's value (its stages, with multiMatch); on a match records
   * MATCHED_VAR(S) and the matched data and runs the link's actions. Whether it matched. */
  private matchValue(link: Rule, op: NonNullable<Rule['operator']>, v: RuleVariable, keyed: boolean, item: Item, collected: MatchedData[] | undefined): boolean {
    const ctx = this.opCtx;
    const stages = this.transform(link, item);
    // Without multiMatch only the last stage is inspected; with it, every distinct stage.
    const last = stages.length - 1;
    let hitValue = false;
    for (let s = link.multiMatch ? 0 : last; s <= last; s++) {
      const input = stages[s]!;
      if (link.multiMatch && s > 0 && stages.indexOf(input) < s) continue;
      clearList(ctx.captures);
      const hit = op.compiled.evaluate(input, ctx) !== op.negated;
      if (!hit) continue;
      hitValue = true;
      if (link.capture && ctx.captures.length) {
        for (let i = 0; i < ctx.captures.length && i < 10; i++) this.tx.setSlot(CAPTURE_SLOTS[i]!, CAPTURE_KEYS[i]!, ctx.captures[i] ?? '');
      }
      // MATCHED_VAR(S) hold the transformed value (chains such as CRS 944120 rely on it).
      this.matchedVar = input;
      const name = keyed ? `${v.name}:${item.key}` : v.name;
      this.matchedVarName = name;
      this.addMatchedVar(makeItem(name, input));
      collected?.push({ variable: name, value: truncate(input, MAX_MATCHED_VALUE) });
      this.runActions(link);
      if (!link.multiMatch) break;
    }
    return hitValue;
  }

  /** Transformation pipeline, cached on the item by chain id: the value, then the result of each
   * transformation (read-only, shared). An array slot per chain, not a Map per chain keyed by the
   * value: every repeated (chain, value) of a benign GET was the same item again (48 of 86). */
  private transform(link: Rule, item: Item): Stages {
    const ts = link.transformations;
    const value = item.value;
    if (ts.length === 0) {
      this.untransformed[0] = value;
      return this.untransformed;
    }
    const tId = link.tId;
    const kept = item.stages;
    if (kept !== undefined) {
      const stages = keptStages(kept, tId);
      if (stages === UNCHANGED) {
        this.untransformed[0] = value;
        return this.untransformed;
      }
      if (stages !== undefined) return stages;
    }
    // Made at the first step that changes the value, sized up front (not a literal grown by push:
    // with `[value]` + push, 7 of 9 in-process gateways promoted ~8 KiB a GET, docs/waf.md,
    // "eighteenth session"). A chain that changes nothing (24 of 32 computed a CRS GET) makes no
    // array: its stages are all the value, which matchValue reads as the value alone (the last
    // stage is the value; with multiMatch every later stage repeats the first).
    let fresh: string[] | undefined;
    let cur = value;
    for (let i = 0; i < ts.length; i++) {
      const fn = ts[i]!.fn;
      const out = cur.length < LONG_STEP ? fn(cur) : this.longStep(fn, cur);
      if (fresh === undefined) {
        if (out === value) continue;
        fresh = new Array<string>(ts.length + 1);
        for (let k = 0; k <= i; k++) fresh[k] = value;
      }
      fresh[i + 1] = out;
      cur = out;
    }
    if (fresh === undefined) {
      keepStages(item, kept, tId, UNCHANGED);
      this.untransformed[0] = value;
      return this.untransformed;
    }
    keepStages(item, kept, tId, fresh);
    return fresh;
  }

  /** One transformation of a long value (a request body), once per transaction whatever the
   * chain: chains differ but share steps (t:lowercase of the 2 KiB JSON body ran in two chains,
   * and each copy was hashed, compared and scanned by the prefilter again). */
  private longStep(fn: (input: string) => string, input: string): string {
    const steps = (this.longSteps ??= new Map());
    let byInput = steps.get(fn);
    if (byInput === undefined) {
      byInput = new Map();
      steps.set(fn, byInput);
    }
    let out = byInput.get(input);
    if (out === undefined) {
      out = fn(input);
      byInput.set(input, out);
    }
    return out;
  }

  private runActions(link: Rule): void {
    for (const ic of link.initcols) {
      const key = this.expandFor(ic.key, link);
      (this.persistent ??= new Map()).set(ic.collection, this.store.open(ic.collection, key));
    }
    for (const sv of link.setvars) {
      if (sv.slot >= 0) {
        this.setTxSlot(sv, link);
        continue;
      }
      const target = sv.collection === 'TX' ? this.tx : this.persistent?.get(sv.collection);
      if (!target) continue;
      const key = this.expandFor(sv.key, link);
      // Compiled keys come lower-cased and interned: no lower-casing per setvar, and the TX
      // lookups with rule keys (interned too) compare by pointer.
      const lkey = sv.lkey ?? key.toLowerCase();
      if (sv.op === 'delete') {
        target.delete(lkey);
        continue;
      }
      const value = this.expandFor(sv.value, link);
      if (sv.op === 'set') {
        target.setLower(lkey, key, value);
        continue;
      }
      const cur = Number.parseInt(target.get(lkey)[0]?.value ?? '0', 10) || 0;
      const delta = Number.parseInt(value, 10) || 0;
      target.setLower(lkey, key, String(sv.op === 'add' ? cur + delta : cur - delta));
    }
    for (const c of link.ctls) this.applyCtl(c.kind, c.value, link);
  }

  /** A TX setvar with a literal key (a slot): what runActions does, by slot. */
  private setTxSlot(sv: SetVar, link: Rule): void {
    const tx = this.tx;
    if (sv.op === 'delete') {
      tx.delete(sv.lkey!);
      return;
    }
    const key = sv.key.source;
    const value = this.expandFor(sv.value, link);
    if (sv.op === 'set') {
      tx.setSlot(sv.slot, key, value);
      return;
    }
    const cur = Number.parseInt(tx.getSlot(sv.slot)[0]?.value ?? '0', 10) || 0;
    const delta = Number.parseInt(value, 10) || 0;
    tx.setSlot(sv.slot, key, String(sv.op === 'add' ? cur + delta : cur - delta));
  }

  private applyCtl(kind: string, value: string, link: Rule): void {
    const on = value.toLowerCase() === 'on';
    switch (kind) {
      case 'ruleEngine': {
        const v = value.toLowerCase();
        this.mode = v === 'on' ? 'On' : v === 'off' ? 'Off' : 'DetectionOnly';
        return;
      }
      case 'ruleRemoveById':
        this.removedIds = this.removedIds.concat(parseIdRanges(value));
        return;
      case 'ruleRemoveByTag':
        (this.removedTags ??= new Set()).add(value);
        return;
      case 'ruleRemoveTargetById':
      case 'ruleRemoveTargetByTag': {
        if (this.removedLinks !== undefined || this.removedLists.length !== 0) {
          this.removeTargetsByCtl(kind, value, link);
          return;
        }
        // A transaction's first target removal always has the same outcome (CRS 941010 runs one
        // on every request: a typed array over every link, 33 chains' links flagged): computed
        // once per rule set and ctl text, shared read-only until a later removal copies it.
        const byText = firstRemovalsOf(this.rules)[kind === 'ruleRemoveTargetByTag' ? 1 : 0];
        let first = byText.get(value);
        if (first === undefined) {
          this.removeTargetsByCtl(kind, value, link);
          first = { flags: this.removedLinks, lists: this.removedLists.slice() };
          byText.set(value, first);
        } else {
          this.removedLinks = first.flags;
          for (let i = 0; i < first.lists.length; i++) this.removedLists.push(first.lists[i]!);
        }
        this.removedShared = first.flags !== undefined;
        return;
      }
      case 'requestBodyProcessor':
        this.setBodyProcessor(value.toUpperCase() as BodyProcessor);
        return;
      case 'requestBodyAccess':
        this.requestBodyAccess = on;
        return;
      case 'responseBodyAccess':
        this.responseBodyAccess = on;
        return;
      case 'forceRequestBodyVariable':
        this.forceRequestBodyVariable = on;
        return;
      default:
        return; // audit/debug log controls have no effect here
    }
  }

  private removeTargetsByCtl(kind: string, value: string, link: Rule): void {
    const semi = value.indexOf(';');
    if (semi < 0) return;
    const vars = ctlTargets(value.slice(semi + 1), link);
    const what = value.slice(0, semi);
    if (kind === 'ruleRemoveTargetByTag') this.removeTargets(linksWithTag(this.rules, what), vars);
    else {
      const { byStarter } = linksByStarter(this.rules);
      for (const [lo, hi] of parseIdRanges(what)) {
        for (let id = lo; id <= hi && id - lo < 100000; id++) {
          const links = byStarter.get(id);
          if (links !== undefined) this.removeTargets(links, vars);
        }
      }
    }
  }

  /** Adds runtime exclusions to the links of some chains (`vars` is shared and read-only): one
   * list per link index, no Map per starter id (CRS 941010 removes a target from 33 chains on
   * every request). A link that already had some gets the concatenation, as its chain's other
   * links do (they were always flagged together). */
  private removeTargets(links: readonly number[], vars: RuleVariable[]): void {
    let flags = this.removedLinks;
    if (flags === undefined) flags = new Uint32Array(linksByStarter(this.rules).links);
    else if (this.removedShared) flags = flags.slice();
    this.removedLinks = flags;
    this.removedShared = false;
    const lists = this.removedLists;
    lists.push(vars);
    const fresh = lists.length;
    let from = 0;
    let merged = 0;
    for (let i = 0; i < links.length; i++) {
      const l = links[i]!;
      const had = flags[l]!;
      if (had === 0 || had === fresh) flags[l] = fresh;
      else {
        if (had !== from) {
          lists.push([...lists[had - 1]!, ...vars]);
          from = had;
          merged = lists.length;
        }
        flags[l] = merged;
      }
    }
  }

  private disrupt(rule: Rule): void {
    const d = rule.effectiveDisruptive;
    if (d === 'allow') {
      const scope = rule.allowScope ?? '';
      this.allowUntilPhase = scope === 'phase' ? rule.phase : scope === 'request' ? 2 : 4;
      return;
    }
    if (this.mode !== 'On' || this.intervention) return;
    if (d === 'deny') this.intervention = { status: rule.effectiveStatus, ruleId: rule.id, action: 'deny' };
    else if (d === 'drop') this.intervention = { status: rule.effectiveStatus, ruleId: rule.id, action: 'drop' };
    else if (d === 'redirect') {
      this.intervention = {
        status: rule.status && rule.status >= 300 && rule.status < 400 ? rule.status : 302,
        ruleId: rule.id,
        action: 'redirect',
        url: rule.redirectUrl ? this.expandFor(rule.redirectUrl, rule) : '',
      };
    }
  }
}


const NONE: RuleVariable[] = [];

/** How many known misses a single item's entry needs to be ANDed into a group's summary rather
 * than kept fresh (a value new to this transaction has the bits of the few links that saw it). */
const GROUP_KNOWN = 64;
/** After this many summaries with the same bitsets, a group's AND is taken again. */
const GROUP_REFRESH = 32;
/** The length a transaction's group lists are made at: what the last summary left them at, at
 * most GROUP_LIST_CAP (only a size: transactions open at once each have their own lists). */
let groupListHint = 0;
const GROUP_LIST_CAP = 512;
/** The length a transaction's records are made at: how many the last record left, at most
 * RECORDS_CAP (only a size, as groupListHint). */
let recordsHint = 0;
const RECORDS_CAP = 512;

function andInto(all: Uint32Array, bits: MissBits): void {
  for (let k = 0; k < all.length; k++) all[k]! &= bits[k]!;
}

/** The operator context with the transaction its `expand` reads. */
interface OpContext extends OperatorContext {
  readonly tx: Transaction;
}

// ------------------------------------------------------------------ the fold (load time)
//
// Configuration the rule set fixes at load: CRS's set-up (crs-setup SecActions, the 901 defaults
// `&TX:x "@eq 0" ... setvar:tx.x=...`) writes TX values no other rule writes, and ~110 rules per
// request read only those (the paranoia-level gates `TX:DETECTION_PARANOIA_LEVEL "@lt N" ...
// skipAfter`, enforcement switches, the reporting levels). A probe transaction runs the phase-1
// prefix up to the first rule that could change what a later rule reads, then decides, in every
// phase, each rule that reads only TX keys written nowhere else. At run time a decided miss is
// skipped and a decided hit replays its effects (TX values set, MATCHED_VAR(S), the nolog record,
// the disruptive action); the loop's skipAfter/skip handling is unchanged.
//
// Why it is exact: the prefix's rules run on the same TX every transaction (TX starts empty; the
// rules between them that are not decided write no TX, capture nothing, skip nothing, disrupt
// nothing and remove no rule or target), and replay reproduces the state evaluate() leaves (the
// miss memo, transformation and prefilter caches are caches). After the prefix, keys written only
// by the prefix's rules (or by no rule) keep their values; a write's key with a macro threatens
// every key starting with its literal prefix (every key when it has none), a capture the keys
// 0-9. A transaction with rules removed before phase 1 (scoped exclusions) does not use the
// fold; a rule removed later (ctl) is skipped before the fold is read; a link whose targets a
// ctl removed is evaluated.

interface FoldSet {
  lkey: string;
  /** The key's TX slot (txSlotOf), or -1. */
  slot: number;
  one: Item[];
}

/** A rule decided at load: `hit` false = it never matches (no action runs). */
interface Fold {
  hit: boolean;
  /** TX values the rule sets, in order (the prefix's set-up rules only). */
  sets: FoldSet[];
  matchedVar: string;
  matchedVarName: string;
  /** undefined: the rule has no operator and leaves MATCHED_VAR as it was. */
  matchedVars: Item[] | undefined;
}

/** A link of a rule not decided whole, decided from TX keys that keep the prefix's values
 * (foldAll step 3): `hits`, when it reads only those, the matches it makes (MATCHED_VARS items:
 * the name and the matched value, in order), replayed with its actions (CRS: the anomaly-score
 * additions `TX:BLOCKING_PARANOIA_LEVEL "@ge 1" ... setvar:tx.blocking_inbound_anomaly_score=+...`
 * and 920250's `TX:CRS_VALIDATE_UTF8_ENCODING "@eq 1"` starter, 9 links a GET); else `operator`,
 * its operator compiled with the parameter's macros expanded, when they read only those keys
 * (`REQUEST_METHOD "!@within %{tx.allowed_methods}"`, the anomaly thresholds: 7 links a GET).
 * With a constant parameter the link is pure for these transactions and uses the miss memo
 * (transactions without the fold evaluate the macro and never read or write its bits). */
interface LinkPlan {
  hits: readonly Item[] | undefined;
  operator: NonNullable<Rule['operator']> | undefined;
}

/** Operators whose macro parameter is expanded per evaluation and then used as a constant one
 * (withParam in operators/index.ts): the expansion can be done once. */
const RESOLVABLE: ReadonlySet<string> = new Set(['streq', 'strmatch', 'contains', 'containsword', 'beginswith', 'endswith', 'within', 'eq', 'ge', 'gt', 'le', 'lt']);

/** Decided rules of phase 1's set-up prefix in a row, from a hit to the next rule not decided
 * (`end`, an entry index), replayed at once rather than rule by rule (CRS PL1: 40 rules, 44 TX
 * values a request). Its hits are set-up rules (pass, no skip, no ctl: hitFoldable), nothing in
 * the prefix removes a rule or target, and when the fold is used none was removed before phase 1
 * and no intervention or allow is in force, so the walk, arriving at the first hit, would replay
 * each in turn (following its skipAfter jumps, stepping over its misses) and arrive at `end`. */
interface Run {
  end: number;
  /** Every hit's TX values in order. */
  sets: FoldSet[];
  /** Every hit's record in order. */
  records: Readonly<MatchedRule>[];
  /** MATCHED_VAR(S) after the last hit: `touched`, a hit set MATCHED_VAR; matchedVars undefined,
   * the last hit left the list empty (a new one: a shared empty list would be pushed to). */
  touched: boolean;
  matchedVar: string;
  matchedVarName: string;
  matchedVars: Item[] | undefined;
}

/** What the rule walk of phase 3 or 4 leaves in a transaction that has no response (a
 * request-side agent: processLogging runs them), recorded on the probe (foldAll step 4) and
 * replayed at once. Exact when the fold is in use and no rule or target of the phase was removed
 * (quietHolds): the rules the walk can reach there (response-only starters select nothing without
 * a response, and are stepped over) read only TX keys that keep the probe's values in every such
 * transaction (written by no rule outside these, the set-up prefix and the response-only rules,
 * which never match without a response: phases 1-2 run before a response is set), have no ctl,
 * capture or initcol and set only TX from TX and the rule's own values (quietRule); on the probe
 * their hits were nolog, disrupted nothing and deleted no TX value. CRS PL1: 959's score sums and
 * thresholds and the paranoia gates of 950-956, 16 replays and 8 evaluations a request before. */
/** Counts up to this many keep their selection on the variable (countItems). */
const COUNTS_KEPT = 16;

/** A count's one-item selection (`&ARGS`, `&REQUEST_HEADERS:Host`). The item's value is a function
 * of the count alone and its key is the variable's, and items never change: small counts keep
 * theirs on the variable for every transaction, and its miss memo entry and transformation
 * stages come with it (a CRS GET's ~10 counts each made an item and looked "0" up in the memo). */
function countItems(v: RuleVariable, n: number): Item[] {
  if (n >= COUNTS_KEPT) return [makeItem(v.key ?? '', String(n))];
  const kept = (v.counted ??= []);
  return (kept[n] ??= [makeItem(v.key ?? '', String(n))]);
}

interface QuietPhase {
  /** TX values written, in order (their final values). */
  sets: FoldSet[];
  /** The nolog records of the hits, in order. */
  records: Readonly<MatchedRule>[];
  /** Every link of the rules the walk can reach: none may have targets removed by a ctl. */
  links: number[];
  /** MATCHED_VAR(_NAME) set by a hit (else left as they were). */
  touched: boolean;
  matchedVar: string;
  matchedVarName: string;
  /** MATCHED_VARS as the walk left it; undefined: not replaced. */
  matchedVars: Item[] | undefined;
  /** quietHolds' last answer for a shared (never written) removal flags array, and that array. */
  heldFor: Uint32Array | undefined;
  holds: boolean;
}

/** A rule a QuietPhase may walk: every link reads only TX keys `known` accepts, has no ctl,
 * initcol or capture, and sets only TX under literal keys from literal text, TX values `known`
 * accepts and the rule's own values (not MATCHED_VAR: a rule without an operator would read
 * the one an earlier phase left). */
function quietRule(rule: Rule, known: (lkey: string) => boolean): boolean {
  for (let link: Rule | undefined = rule; link; link = link.chained) {
    if (!readsOnlyTx(link, known)) return false;
    if (link.ctls.length !== 0 || link.initcols.length !== 0 || link.capture) return false;
    for (const sv of link.setvars) {
      if (sv.collection !== 'TX' || sv.op === 'delete' || sv.lkey === undefined) return false;
      for (const part of sv.value.parts) {
        if (typeof part === 'string' || part.name === 'RULE') continue;
        if (part.name !== 'TX' || part.lkey === undefined || !known(part.lkey)) return false;
      }
    }
  }
  return true;
}

/** Per phase (index 1-5), per entry of the phase's list: the rule's decision, if any; per link
 * (linkIndex): its own (LinkPlan), if any; the decided start of phase 1. */
export interface FoldPlan {
  phases: (Fold | undefined)[][];
  links: (LinkPlan | undefined)[];
  /** Phase 1's runs, at the entry index of their first hit. */
  runs: (Run | undefined)[];
  /** Phases 3 and 4 without a response, when they can be recorded (QuietPhase). */
  quiet: (QuietPhase | undefined)[];
}

const MISS: Fold = { hit: false, sets: [], matchedVar: '', matchedVarName: '', matchedVars: undefined };
/** MATCHED_VAR before the probe evaluates a rule (no rule can produce this string from TX). */
const UNSET = '\u0000fold-unset\u0000';
const ANY_KEY = (): boolean => true;

let foldingEnabled = true;

/** Turns the load-time fold on or off for transactions whose phase 1 starts afterwards (tests and
 * benches compare both; on by default). */
export function setFolding(on: boolean): void {
  foldingEnabled = on;
}

/** A value built from a rule set once and kept while the rule set lives: the plans and indexes
 * every transaction of the rule set shares read-only. */
function perRuleSet<T>(build: (rules: RuleSet) => T): (rules: RuleSet) => T {
  const built = new WeakMap<RuleSet, T>();
  return (rules) => {
    let value = built.get(rules);
    if (value === undefined) {
      value = build(rules);
      built.set(rules, value);
    }
    return value;
  };
}

const foldPlanOf = perRuleSet((rules) => Transaction.buildFoldPlan(rules));

/** The variables only processResponseHeaders / processResponseBody fill (absent before). */
const RESPONSE_VARIABLES: ReadonlySet<string> = new Set([
  'RESPONSE_STATUS', 'STATUS', 'RESPONSE_PROTOCOL', 'STATUS_LINE', 'RESPONSE_HEADERS', 'RESPONSE_HEADERS_NAMES',
  'RESPONSE_CONTENT_TYPE', 'RESPONSE_CONTENT_LENGTH', 'RESPONSE_BODY',
]);

/** A starter with an operator whose variables are all response variables (no count: `&VAR` of an
 * absent collection is the item "0"; exclusions select nothing): with no response it selects no
 * item, so the operator never runs (negated or not) and no action runs. */
export function readsOnlyResponse(rule: Rule): boolean {
  if (rule.operator === undefined) return false;
  let any = false;
  for (const v of rule.variables) {
    if (v.exclude) continue;
    if (v.count || !RESPONSE_VARIABLES.has(v.name)) return false;
    any = true;
  }
  return any;
}

/** The outcome of a transaction's first ctl:ruleRemoveTarget* with a given text (see applyCtl). */
interface FirstRemoval {
  flags: Uint32Array | undefined;
  lists: RuleVariable[][];
}
/** Per rule set: by text, for ruleRemoveTargetById [0] and ruleRemoveTargetByTag [1]. */
const firstRemovalsOf = perRuleSet((): [Map<string, FirstRemoval>, Map<string, FirstRemoval>] => [new Map(), new Map()]);

/** Per phase, one slot per entry: `at(rule, phase)` for a rule entry, 0 for a marker (never read). */
function entryPlan<A extends Uint8Array | Int32Array>(rules: RuleSet, make: (n: number) => A, at: (rule: Rule, phase: number) => number): A[] {
  return rules.phases.map((entries, p) => {
    const plan = make(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.kind === 'rule') plan[i] = at(e.rule, p);
    }
    return plan;
  });
}

/** Per phase, per entry with skipAfter: where the jump lands (skipAfterIndex, a Map lookup by
 * the marker's name, ~15 times a GET, computed once per rule set); -1 for other rules. */
const skipTargetsOf = perRuleSet((rules) =>
  entryPlan(rules, (n) => new Int32Array(n), (rule, p) => (rule.skipAfter !== undefined ? skipAfterIndex(rules.phases[p]!, rules.markers[p]!, rule.skipAfter) : -1)),
);

let batchingEnabled = true;

/** Turns the batched walk (batchesOf) on or off (tests and benches compare both; on by default). */
export function setBatching(on: boolean): void {
  batchingEnabled = on;
}

/** A rule the batched walk may step over when it misses: its starter is a grouped link (pure,
 * reading built-in collections and stored scalars: never decided by the fold, no LinkPlan) and
 * it is not response-only (the walk steps over those without reading them, and a batch would
 * reset MATCHED_VARS for one). Its chain and actions do not matter: a starter that misses ends
 * the rule with no action run. */
export function batchable(rule: Rule): boolean {
  return rule.group !== undefined && rule.operator !== undefined && !readsOnlyResponse(rule);
}

/** Per phase, per entry: for a batchable rule, the end (exclusive) of its stretch of consecutive
 * batchable rules (markers between them do not end it), else 0. A walk arriving anywhere in a
 * stretch (a skipAfter landing inside one) walks the rest of it as a batch (walkBatch). CRS PL1:
 * 212 of phase 2's 325 entries in 36 stretches, 66 of phase 1's 208. */
export const batchesOf = perRuleSet((rules) =>
  rules.phases.map((entries) => {
    const out = new Int32Array(entries.length);
    let end = 0;
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (e.kind === 'marker') continue;
      if (!batchable(e.rule)) {
        end = 0;
        continue;
      }
      if (end === 0) end = i + 1;
      out[i] = end;
    }
    return out;
  }),
);

/** Per phase, 1 for the starters that read only response variables (readsOnlyResponse). */
const responseOnlyOf = perRuleSet((rules) => entryPlan(rules, (n) => new Uint8Array(n), (rule) => (readsOnlyResponse(rule) ? 1 : 0)));

/** Per phase, per entry with `skip N`: the index after the N rule entries it steps over (markers
 * are not counted), where the walk goes on after it matched. */
const skipCountTargetsOf = perRuleSet((rules) =>
  rules.phases.map((entries) => {
    const out = new Int32Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.kind !== 'rule' || e.rule.skip <= 0) continue;
      let left = e.rule.skip;
      let j = i + 1;
      for (; j < entries.length && left > 0; j++) if (entries[j]!.kind === 'rule') left--;
      out[i] = j;
    }
    return out;
  }),
);

type RuleEntryOf<K extends RuleEntry['kind']> = Extract<RuleEntry, { kind: K }>;

/** Walk table keys besides a shared first removal's flags: the fold not in use (or target
 * removals of the transaction's own), and the fold with no target removed. */
const NO_FOLD = {};
const NO_REMOVALS = {};

/** Per rule set, by key (NO_FOLD, NO_REMOVALS or a shared first removal's flags), by phase * 2 +
 * noResponse: the rule walk's tables. */
const walkTablesOf = perRuleSet(() => new Map<object, (Int32Array | undefined)[]>());

/** next[j] = the first entry at or after j that may run, for a walk that steps over markers,
 * response-only starters (noResponse) and, unless `key` is NO_FOLD, the decided misses whose
 * starter link has no target removed in `key`'s flags. next[n] and next[n + 1] are n (a
 * skipAfter landing on the last entry or past the end). Stepping over fewer entries is always
 * right: the walk still checks every entry it reads. */
function walkTableOf(rules: RuleSet, key: object, phase: Phase, noResponse: boolean): Int32Array {
  const byKey = walkTablesOf(rules);
  let tables = byKey.get(key);
  if (tables === undefined) {
    tables = [];
    byKey.set(key, tables);
  }
  const at = phase * 2 + (noResponse ? 1 : 0);
  let next = tables[at];
  if (next !== undefined) return next;
  const entries = rules.phases[phase]!;
  const n = entries.length;
  next = new Int32Array(n + 2);
  next[n] = next[n + 1] = n;
  const plan = key === NO_FOLD ? undefined : foldPlanOf(rules).phases[phase]!;
  const links = key instanceof Uint32Array ? key : undefined;
  const responseOnly = noResponse ? responseOnlyOf(rules)[phase]! : undefined;
  for (let i = n - 1; i >= 0; i--) {
    const e = entries[i]!;
    let runs = e.kind === 'rule' && (responseOnly === undefined || responseOnly[i] === 0);
    if (runs && plan !== undefined) {
      const f = plan[i];
      if (f !== undefined && !f.hit && (links === undefined || links[(e as RuleEntryOf<'rule'>).rule.linkIndex] === 0)) runs = false;
    }
    next[i] = runs ? i : next[i + 1]!;
  }
  tables[at] = next;
  return next;
}

function nologRecord(rule: Rule): Readonly<MatchedRule> {
  return (rule.nologMatch ??= Object.freeze({ id: rule.id, phase: rule.phase, msg: '', logdata: '', severity: rule.severity, tags: rule.tags, matched: [], log: false, disruptive: rule.effectiveDisruptive }));
}

/** The rule's starter link reads only TX values under literal keys `known` accepts (an operator
 * parameter's macros too); a SecAction reads nothing. */
function readsOnlyTx(link: Rule, known: (lkey: string) => boolean): boolean {
  for (const v of link.variables) {
    if (v.exclude) continue;
    if (v.name !== 'TX' || v.lkey === undefined || v.keyRegex !== undefined || !known(v.lkey)) return false;
  }
  const op = link.operator;
  if (op === undefined) return link.variables.length === 0;
  return paramReadsOnlyTx(op.param, known);
}

/** An operator parameter's macros read only TX values under literal keys `known` accepts. */
function paramReadsOnlyTx(param: string, known: (lkey: string) => boolean): boolean {
  if (!param.includes('%{')) return true;
  for (const part of compileMacro(param).parts) {
    if (typeof part === 'string') continue;
    if (part.name !== 'TX' || part.lkey === undefined || !known(part.lkey)) return false;
  }
  return true;
}

/** A decided hit's effects are ones replay() reproduces: every link decided from `known` TX, no
 * ctl, initcol or capture, a nolog record, no redirect (its URL is a macro); set-up rules of the
 * prefix may set TX (their values' macros read known TX, the rule or its matched value) but not
 * disrupt or skip; elsewhere no setvar at all. */
function hitFoldable(rule: Rule, known: (lkey: string) => boolean, prefix: boolean): boolean {
  if (rule.log !== false || rule.effectiveDisruptive === 'redirect') return false;
  if (prefix && (rule.effectiveDisruptive !== 'pass' || rule.skip !== 0)) return false;
  for (let link: Rule | undefined = rule; link; link = link.chained) {
    if (!readsOnlyTx(link, known)) return false;
    if (link.ctls.length !== 0 || link.initcols.length !== 0 || link.capture) return false;
    if (!prefix && link.setvars.length !== 0) return false;
    for (const sv of link.setvars) {
      if (sv.collection !== 'TX' || sv.op === 'delete' || sv.lkey === undefined) return false;
      for (const part of sv.value.parts) {
        if (typeof part === 'string') continue;
        if (part.name === 'RULE' || part.name === 'MATCHED_VAR' || part.name === 'MATCHED_VAR_NAME') continue;
        if (part.name !== 'TX' || part.lkey === undefined || !known(part.lkey)) return false;
      }
    }
  }
  return true;
}

/** ctl kinds that change neither TX nor which rules run nor what they see. */
const HARMLESS_CTLS = new Set(['requestBodyProcessor', 'requestBodyAccess', 'forceRequestBodyVariable', 'responseBodyAccess', 'auditEngine', 'auditLogParts', 'debugLogLevel']);

/** A rule of the prefix that is not decided may run between decided ones when it cannot change
 * what they read or whether they run. */
function cannotAffectOthers(rule: Rule): boolean {
  if (rule.effectiveDisruptive !== 'pass' || rule.skip !== 0 || rule.skipAfter !== undefined) return false;
  for (let link: Rule | undefined = rule; link; link = link.chained) {
    if (link.setvars.length !== 0 || link.initcols.length !== 0 || link.capture) return false;
    for (const c of link.ctls) if (!HARMLESS_CTLS.has(c.kind)) return false;
  }
  return true;
}

/** The TX keys the rules not in `executed` may write: literal keys, literal prefixes of macro
 * keys (`any` when a key starts with a macro), and whether any captures (keys 0-9). */
function txWritesOutside(rules: RuleSet, executed: Set<Rule>): { keys: Set<string>; prefixes: string[]; any: boolean; capture: boolean } {
  const out = { keys: new Set<string>(), prefixes: [] as string[], any: false, capture: false };
  for (const entries of rules.phases) {
    for (const e of entries) {
      if (e.kind !== 'rule' || executed.has(e.rule)) continue;
      for (let link: Rule | undefined = e.rule; link; link = link.chained) {
        if (link.capture) out.capture = true;
        for (const sv of link.setvars) {
          if (sv.collection !== 'TX') continue;
          if (sv.lkey !== undefined) out.keys.add(sv.lkey);
          else {
            const first = sv.key.parts[0];
            if (typeof first === 'string' && first !== '') out.prefixes.push(first.toLowerCase());
            else out.any = true;
          }
        }
      }
    }
  }
  return out;
}
/** From this length on a transformation's result is shared by every chain of the transaction
 * (longStep): below it, a Map lookup costs about what most transformations cost. */
const LONG_STEP = 256;
const NO_ITEMS: Item[] = [];
/** A value, then its transformation stages in order. */
type Stages = readonly string[];

/** Kept for a chain that changed nothing of an item's value (transform gives the value alone). */
const UNCHANGED: Stages = [];

/** An item's stages for a chain id (Item.stages): up to PAIRS_KEPT chains' as a flat list of
 * (id, stages) pairs, more chains' in an array by chain id (longer than any pair list, so the
 * forms stay apart). Most items see one chain (7 of 10 a CRS GET), three a GET see 2-3: pairs, not
 * an array with a slot for every chain (42 with the CRS, ~390 bytes an item). */
function keptStages(kept: (number | Stages | undefined)[], tId: number): Stages | undefined {
  const n = kept.length;
  if (n > PAIRS_KEPT * 2) return kept[tId] as Stages | undefined;
  for (let i = 0; i < n; i += 2) if (kept[i] === tId) return kept[i + 1] as Stages;
  return undefined;
}

/** Chains an item keeps as (id, stages) pairs before the array by chain id: 3 read fewest bytes a
 * CRS GET (27.9 k; 2: 28.1 k, 4: 28.0 k, 8: 28.6 k, as each added pair copies the list). */
const PAIRS_KEPT = 3;

/** Adds a chain's stages to an item's (keptStages's forms; `kept`: item.stages, without tId). */
function keepStages(item: Item, kept: (number | Stages | undefined)[] | undefined, tId: number, stages: Stages): void {
  if (kept === undefined) {
    item.stages = [tId, stages];
    return;
  }
  const n = kept.length;
  if (n > PAIRS_KEPT * 2) {
    kept[tId] = stages;
    return;
  }
  // A new list one pair longer, sized exactly (a push would make room for ~17 more).
  const pairs = n < PAIRS_KEPT * 2;
  const next = new Array<number | Stages | undefined>(pairs ? n + 2 : Math.max(chainCount(), PAIRS_KEPT * 2 + 1));
  if (pairs) {
    for (let i = 0; i < n; i++) next[i] = kept[i];
    next[n] = tId;
    next[n + 1] = stages;
  } else {
    for (let i = 0; i < n; i += 2) next[kept[i] as number] = kept[i + 1];
    next[tId] = stages;
  }
  item.stages = next;
}

// Operator parameters with macros (`@within %{tx.allowed_methods}`), compiled once per process.
const operatorMacros = new Map<string, Macro>();
function operatorMacro(text: string): Macro {
  let m = operatorMacros.get(text);
  if (!m) {
    if (operatorMacros.size >= 1000) operatorMacros.clear();
    m = compileMacro(text);
    operatorMacros.set(text, m);
  }
  return m;
}

// The targets of ctl:ruleRemoveTarget* (text after ';'), parsed once per process: CRS 941010
// runs one on every request. Read-only, shared by the transactions.
const ctlTargetCache = new Map<string, RuleVariable[]>();
function ctlTargets(text: string, link: Rule): RuleVariable[] {
  let vars = ctlTargetCache.get(text);
  if (!vars) {
    if (ctlTargetCache.size >= 1000) ctlTargetCache.clear();
    vars = parseTargets(text, link);
    for (const v of vars) v.exclude = true; // fresh objects: set in place, keeping their hidden class
    ctlTargetCache.set(text, vars);
  }
  return vars;
}

// The links of the chain starters carrying a tag (ctl:ruleRemoveTargetByTag), per rule set.
const tagIndex = perRuleSet(() => new Map<string, number[]>());
function linksWithTag(rules: RuleSet, tag: string): number[] {
  const byTag = tagIndex(rules);
  let links = byTag.get(tag);
  if (!links) {
    links = [];
    const { byStarter } = linksByStarter(rules);
    for (const r of rules.byId.values()) if (r.tags.includes(tag)) links.push(...(byStarter.get(r.id) ?? []));
    byTag.set(tag, links);
  }
  return links;
}

// The links of each chain starter id, and how many links the rule set has, per rule set
// (the runtime exclusions' flags).
const linksByStarter = perRuleSet((rules) => {
  const byStarter = new Map<number, number[]>();
  let links = 0;
  for (const entries of Object.values(rules.phases)) {
    for (const e of entries) {
      if (e.kind !== 'rule') continue;
      for (let l: Rule | undefined = e.rule; l; l = l.chained) {
        let list = byStarter.get(l.chainStarterId);
        if (!list) byStarter.set(l.chainStarterId, (list = []));
        list.push(l.linkIndex);
        if (l.linkIndex >= links) links = l.linkIndex + 1;
      }
    }
  }
  return { byStarter, links };
});

// UNIQUE_ID: a random per-process prefix and a counter (one randomBytes call per transaction
// showed up in profiles; uniqueness is what the variable promises, not unpredictability).
const ID_PREFIX = randomBytes(8).toString('hex');
let idCounter = 0;
let txSerial = 0;
let epochSecond = -1;
let epochSecondText = '';
/** The current Unix time in seconds as text (made once a second, not once a transaction). */
function epochText(): string {
  const now = Math.floor(Date.now() / 1000);
  if (now !== epochSecond) {
    epochSecond = now;
    epochSecondText = String(now);
  }
  return epochSecondText;
}

function nextUniqueId(): string {
  idCounter = (idCounter + 1) % 0x1000000000000;
  return ID_PREFIX + idCounter.toString(16).padStart(12, '0');
}

/** The link's selectors split for the rule loop, computed once per link. */
function linkSelectors(rule: Rule): LinkSelectors {
  let sel = rule.sel;
  if (sel === undefined) {
    const all = rule.variables.filter((v) => !v.exclude);
    const excl = rule.variables.filter((v) => v.exclude);
    const noXml = all.filter((v) => v.name !== 'XML' || v.count);
    const flags = (vars: RuleVariable[]): Uint8Array => Uint8Array.from(vars, (v) => (excludesVariable(excl, v.name) ? 1 : 0));
    sel = { excl, all, noXml, allExcluded: flags(all), noXmlExcluded: flags(noXml) };
    rule.sel = sel;
  }
  return sel;
}

function keysMatching(items: Item[], v: RuleVariable): Item[] {
  const out: Item[] = [];
  for (let i = 0; i < items.length; i++) if (keyMatches(v, items[i]!.key)) out.push(items[i]!);
  return out;
}

/** Index of the rule with this id in a phase's entries (skipAfter naming a rule, not a marker). */
/** Where a skipAfter lands: its marker, else the rule with that id, else past the phase's end. */
function skipAfterIndex(entries: RuleEntry[], markers: ReadonlyMap<string, number>, target: string): number {
  const at = markers.get(target);
  if (at !== undefined) return at;
  const i = ruleIndex(entries, target);
  return i < 0 ? entries.length : i;
}

function ruleIndex(entries: RuleEntry[], id: string): number {
  for (let i = 0; i < entries.length; i++) {
    const x = entries[i]!;
    if (x.kind === 'rule' && String(x.rule.id) === id) return i;
  }
  return -1;
}

function excludesVariable(excl: RuleVariable[], name: string): boolean {
  for (const e of excl) if (e.name === name) return true;
  return false;
}

/** What select() reads from a keyed variable; `matching` (MapCollection's) selects by a key regex
 * without building `items` first. */
interface KeyedItems {
  items: Item[];
  get(lkey: string): Item[];
  matching?: (v: RuleVariable) => Item[];
}

function wrap(items: Item[]): KeyedItems {
  return { items, get: (lkey) => items.filter((i) => i.key.toLowerCase() === lkey), matching: undefined };
}

/** A collection with nothing in it (absent cookies, files, persistent collections not opened). */
const EMPTY = wrap(NO_ITEMS);

/** ARGS_JOINED (the `hpp` extra rule set), out of `keyed` so that its size stays what it was. */
function joinedItems(get: Collection | undefined, post: Collection | undefined): KeyedItems {
  const joined = joinedArgs([get?.items ?? NO_ITEMS, post?.items ?? NO_ITEMS]);
  return joined.length === 0 ? EMPTY : wrap(joined.map((j) => makeItem(j.key, j.value)));
}

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n) : s;
}

/** Splits `a=1&b=2` into decoded pairs (the query string and urlencoded bodies). */
export function splitUrlEncoded(text: string, sep: string): [string, string][] {
  return parseUrlEncoded(text, sep);
}

const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/** `host.replace(/:\d+$/, '')` without the regex: a trailing `:` and ASCII digits dropped. */
export function withoutPort(host: string): string {
  let i = host.length;
  while (i > 0) {
    const c = host.charCodeAt(i - 1);
    if (c < 0x30 || c > 0x39) break;
    i--;
  }
  return i < host.length && i > 0 && host.charCodeAt(i - 1) === 0x3a ? host.slice(0, i - 1) : host;
}


/** %XX -> byte; malformed escapes are kept as written. '+' is not a space in paths. */
export function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  return s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}
