/**
 * The serial robot console's line protocol (docs/serial-robot-protocol.md): framing,
 * checksums, tags, error codes, and parsing of requests and replies. Pure: both the
 * client here and the emulated console in firmware-sim use it, so they cannot drift.
 */

/** Longest line either side accepts, in bytes, checksum included, terminator excluded. */
export const MAX_LINE_LENGTH = 128;

/** Tag of a reply that answers no particular request (garbage, unparseable tag). */
export const UNTAGGED = '0';

/** Highest tag; tags are decimal 1..MAX_TAG and wrap. */
export const MAX_TAG = 99_999_999;

/** Failure codes of `ERR` replies. The number travels on the wire, the name beside it. */
export const RobotErrorCode = {
  SYNTAX: 10,
  UNKNOWN_COMMAND: 11,
  LINE_TOO_LONG: 12,
  CHECKSUM: 13,
  INVALID_ADDRESS: 20,
  SOURCE_EMPTY: 21,
  DESTINATION_FULL: 22,
  INCOMPATIBLE_MEDIUM: 23,
  DOOR_LOCKED: 30,
  DOOR_OPEN: 31,
  ROBOT_JAM: 40,
  BUSY: 41,
  NOT_READY: 42,
  REMOVAL_PREVENTED: 43,
  INTERNAL: 50,
} as const;
export type RobotErrorName = keyof typeof RobotErrorCode;

const nameByCode = new Map<number, RobotErrorName>(Object.entries(RobotErrorCode).map(([k, v]) => [v, k as RobotErrorName]));

export function robotErrorName(code: number): RobotErrorName | undefined {
  return nameByCode.get(code);
}

/** Verbs of the protocol. */
export const RobotVerb = {
  PING: 'PING',
  STATUS: 'STATUS',
  INV: 'INV',
  MOVE: 'MOVE',
  EXCH: 'EXCH',
  DOOR: 'DOOR',
} as const;
export type RobotVerb = (typeof RobotVerb)[keyof typeof RobotVerb];

const verbArity: Record<RobotVerb, number> = { PING: 0, STATUS: 0, INV: 0, MOVE: 2, EXCH: 3, DOOR: 1 };

/** XOR of the bytes, as two upper-case hex digits (the NMEA convention). */
export function checksum(text: string): string {
  let x = 0;
  for (let i = 0; i < text.length; i++) x ^= text.charCodeAt(i) & 0xff;
  return x.toString(16).toUpperCase().padStart(2, '0');
}

/** Appends `*HH`. */
export function withChecksum(body: string): string {
  return `${body}*${checksum(body)}`;
}

/**
 * Splits off and checks a trailing `*HH`. `required` lines without one are refused.
 * Returns the body, or an error text.
 */
export function stripChecksum(line: string, required: boolean): { body: string } | { error: string } {
  const m = /^(.*)\*([0-9A-Fa-f]{2})$/su.exec(line);
  if (!m) return required ? { error: 'missing checksum' } : { body: line };
  const body = m[1] as string;
  if (checksum(body) !== (m[2] as string).toUpperCase()) return { error: `checksum ${m[2]} does not match ${checksum(body)}` };
  return { body };
}

function printable(s: string): boolean {
  return /^[\x20-\x7e\t]*$/u.test(s);
}

/** A well-formed tag, or undefined. */
export function parseTag(token: string | undefined): string | undefined {
  if (token === undefined || !/^[0-9]{1,8}$/u.test(token)) return undefined;
  const n = Number(token);
  return n >= 1 && n <= MAX_TAG ? String(n) : undefined;
}

/** An element address: decimal (`4096`) or hex (`0x1000`), 0..65535. */
export function parseAddress(token: string): number | undefined {
  let n: number;
  if (/^[0-9]{1,5}$/u.test(token)) n = Number(token);
  else if (/^0x[0-9a-f]{1,4}$/iu.test(token)) n = parseInt(token.slice(2), 16);
  else return undefined;
  return n <= 0xffff ? n : undefined;
}

export type RobotRequest =
  | { readonly tag: string; readonly verb: 'PING' | 'STATUS' | 'INV' }
  | { readonly tag: string; readonly verb: 'MOVE'; readonly source: number; readonly destination: number }
  | { readonly tag: string; readonly verb: 'EXCH'; readonly source: number; readonly first: number; readonly second: number }
  | { readonly tag: string; readonly verb: 'DOOR'; readonly action: 'OPEN' | 'CLOSE' };

export interface RequestError {
  /** The request's tag when it could be read, else {@link UNTAGGED}. */
  readonly tag: string;
  readonly code: RobotErrorName;
  readonly text: string;
}

/**
 * Parses one request line (terminator already removed). The checksum is optional on
 * requests, so a person can type commands at a terminal; when present it must match.
 */
export function parseRequest(line: string): { request: RobotRequest } | { error: RequestError } {
  const firstToken = /^\s*(\S+)/u.exec(line)?.[1];
  const guessedTag = parseTag(firstToken) ?? UNTAGGED;
  const fail = (code: RobotErrorName, text: string, tag = guessedTag): { error: RequestError } => ({ error: { tag, code, text } });
  if (!printable(line)) return fail('SYNTAX', 'the line holds bytes that are not printable ASCII', UNTAGGED);
  const stripped = stripChecksum(line.trim(), false);
  if ('error' in stripped) return fail('CHECKSUM', stripped.error, UNTAGGED);
  const tokens = stripped.body.trim().split(/[ \t]+/u);
  const tag = parseTag(tokens[0]);
  if (tag === undefined) return fail('SYNTAX', `a request starts with a tag 1..${MAX_TAG} (got "${tokens[0] ?? ''}")`, UNTAGGED);
  const verbText = (tokens[1] ?? '').toUpperCase();
  if (verbText === '') return fail('SYNTAX', 'the tag is not followed by a command', tag);
  if (!(verbText in verbArity)) return fail('UNKNOWN_COMMAND', `unknown command "${tokens[1] ?? ''}"`, tag);
  const verb = verbText as RobotVerb;
  const args = tokens.slice(2);
  if (args.length !== verbArity[verb]) return fail('SYNTAX', `${verb} takes ${verbArity[verb]} argument(s), got ${args.length}`, tag);
  if (verb === 'DOOR') {
    const action = (args[0] ?? '').toUpperCase();
    if (action !== 'OPEN' && action !== 'CLOSE') return fail('SYNTAX', 'DOOR takes OPEN or CLOSE', tag);
    return { request: { tag, verb, action } };
  }
  const addrs: number[] = [];
  for (const a of args) {
    const n = parseAddress(a);
    if (n === undefined) return fail('SYNTAX', `"${a}" is not an element address (decimal or 0x hex, 0..65535)`, tag);
    addrs.push(n);
  }
  if (verb === 'MOVE') return { request: { tag, verb, source: addrs[0] as number, destination: addrs[1] as number } };
  if (verb === 'EXCH') return { request: { tag, verb, source: addrs[0] as number, first: addrs[1] as number, second: addrs[2] as number } };
  return { request: { tag, verb } };
}

/** Formats a request line with its checksum. */
export function formatRequest(r: RobotRequest): string {
  switch (r.verb) {
    case 'MOVE':
      return withChecksum(`${r.tag} MOVE ${r.source} ${r.destination}`);
    case 'EXCH':
      return withChecksum(`${r.tag} EXCH ${r.source} ${r.first} ${r.second}`);
    case 'DOOR':
      return withChecksum(`${r.tag} DOOR ${r.action}`);
    default:
      return withChecksum(`${r.tag} ${r.verb}`);
  }
}

export type RobotReply =
  | { readonly tag: string; readonly kind: 'ok'; readonly payload: string }
  | { readonly tag: string; readonly kind: 'data'; readonly payload: string }
  | { readonly tag: string; readonly kind: 'err'; readonly code: number; readonly name: string; readonly text: string };

export function formatOk(tag: string, payload = ''): string {
  return withChecksum(payload ? `${tag} OK ${payload}` : `${tag} OK`);
}

export function formatData(tag: string, payload: string): string {
  return withChecksum(`${tag} DATA ${payload}`);
}

/** An ERR line; the text is cut so the line stays within {@link MAX_LINE_LENGTH}. */
export function formatErr(tag: string, name: RobotErrorName, text: string): string {
  const head = `${tag} ERR ${RobotErrorCode[name]} ${name} `;
  const clean = text.replace(/[^\x20-\x7e]/gu, '?').replace(/\*/gu, '+');
  return withChecksum(head + clean.slice(0, Math.max(0, MAX_LINE_LENGTH - 3 - head.length)));
}

/**
 * Parses a reply line. Replies always carry a checksum; a line that fails it, or is not
 * shaped like a reply, yields undefined (line noise: the caller counts and drops it).
 */
export function parseReply(line: string): RobotReply | undefined {
  if (!printable(line)) return undefined;
  const s = stripChecksum(line.trim(), true);
  if ('error' in s) return undefined;
  const m = /^([0-9]{1,8}) (OK|DATA|ERR)(?: (.*))?$/u.exec(s.body);
  if (!m) return undefined;
  const tag = m[1] === UNTAGGED ? UNTAGGED : parseTag(m[1]);
  if (tag === undefined) return undefined;
  const rest = m[3] ?? '';
  if (m[2] === 'OK') return { tag, kind: 'ok', payload: rest };
  if (m[2] === 'DATA') return { tag, kind: 'data', payload: rest };
  const e = /^([0-9]{1,3}) ([A-Z_]+)(?: (.*))?$/u.exec(rest);
  if (!e) return undefined;
  return { tag, kind: 'err', code: Number(e[1]), name: e[2] as string, text: e[3] ?? '' };
}

/** One inventory line: `<address> <KIND> FULL|EMPTY [<barcode>] [SRC=<address>] [EXCEPT] [NOACCESS]`. */
export interface InventoryLine {
  readonly address: number;
  readonly kind: 'TRANSPORT' | 'SLOT' | 'IE' | 'DRIVE';
  readonly full: boolean;
  readonly barcode?: string;
  readonly source?: number;
  readonly except: boolean;
  readonly access: boolean;
}

export function formatInventoryLine(e: InventoryLine): string {
  const parts = [String(e.address), e.kind, e.full ? 'FULL' : 'EMPTY'];
  if (e.barcode) parts.push(e.barcode.replace(/[^\x21-\x7e]/gu, '_').replace(/\*/gu, '_'));
  if (e.source !== undefined) parts.push(`SRC=${e.source}`);
  if (e.except) parts.push('EXCEPT');
  if (!e.access) parts.push('NOACCESS');
  return parts.join(' ');
}

export function parseInventoryLine(payload: string): InventoryLine | undefined {
  const t = payload.trim().split(/ +/u);
  const address = parseAddress(t[0] ?? '');
  const kind = t[1];
  const state = t[2];
  if (address === undefined || (kind !== 'TRANSPORT' && kind !== 'SLOT' && kind !== 'IE' && kind !== 'DRIVE') || (state !== 'FULL' && state !== 'EMPTY')) return undefined;
  let barcode: string | undefined;
  let source: number | undefined;
  let except = false;
  let access = true;
  for (const tok of t.slice(3)) {
    if (tok.startsWith('SRC=')) source = parseAddress(tok.slice(4));
    else if (tok === 'EXCEPT') except = true;
    else if (tok === 'NOACCESS') access = false;
    else if (barcode === undefined) barcode = tok;
    else return undefined;
  }
  return { address, kind, full: state === 'FULL', except, access, ...(barcode !== undefined ? { barcode } : {}), ...(source !== undefined ? { source } : {}) };
}

/** What `STATUS` reports: `READY=YES|NO ROBOT=IDLE|BUSY DOOR=OPEN|CLOSED [WHY=<NAME>]`. */
export interface RobotStatus {
  readonly ready: boolean;
  readonly robotBusy: boolean;
  readonly doorOpen: boolean;
  /** When not ready: the error name a motion would now fail with. */
  readonly why?: RobotErrorName;
}

export function formatStatus(s: RobotStatus): string {
  return `READY=${s.ready ? 'YES' : 'NO'} ROBOT=${s.robotBusy ? 'BUSY' : 'IDLE'} DOOR=${s.doorOpen ? 'OPEN' : 'CLOSED'}${s.why ? ` WHY=${s.why}` : ''}`;
}

export function parseStatus(payload: string): RobotStatus | undefined {
  const fields = new Map(payload.trim().split(/ +/u).map((kv) => kv.split('=') as [string, string]));
  const ready = fields.get('READY');
  const robot = fields.get('ROBOT');
  const door = fields.get('DOOR');
  if (!ready || !robot || !door) return undefined;
  const why = fields.get('WHY');
  return {
    ready: ready === 'YES',
    robotBusy: robot === 'BUSY',
    doorOpen: door === 'OPEN',
    ...(why && why in RobotErrorCode ? { why: why as RobotErrorName } : {}),
  };
}

/** One event of {@link LineSplitter}. */
export type LineEvent = { readonly kind: 'line'; readonly text: string } | { readonly kind: 'overlong'; readonly head: string };

/**
 * Cuts a byte stream into lines at CR, LF or CRLF (empty lines are dropped, so any mix
 * of terminators works). A line longer than `max` is reported once as `overlong` with
 * its first bytes, and the rest up to the next terminator is thrown away, so one runaway
 * line cannot grow the buffer or swallow the line after it.
 */
export class LineSplitter {
  private buf = '';
  private discarding = false;

  constructor(private readonly max = MAX_LINE_LENGTH) {}

  push(chunk: Uint8Array | string): LineEvent[] {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
    const out: LineEvent[] = [];
    for (const ch of text) {
      if (ch === '\r' || ch === '\n') {
        if (!this.discarding && this.buf.length > 0) out.push({ kind: 'line', text: this.buf });
        this.buf = '';
        this.discarding = false;
        continue;
      }
      if (this.discarding) continue;
      this.buf += ch;
      if (this.buf.length > this.max) {
        out.push({ kind: 'overlong', head: this.buf.slice(0, 16) });
        this.buf = '';
        this.discarding = true;
      }
    }
    return out;
  }

  /** Drops a partial line (after a reconnect or a break). */
  reset(): void {
    this.buf = '';
    this.discarding = false;
  }
}
