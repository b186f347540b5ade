/**
 * Text key=value pairs (RFC 7143 6.1), as carried by Login and Text PDUs: `key=value`
 * strings, each NUL-terminated, UTF-8. Limits keep a hostile peer from making us keep
 * arbitrary amounts of text.
 */
export class TextFormatError extends Error {
  override readonly name = 'TextFormatError';
  readonly code = 'EPROTO';
}

export interface TextLimits {
  /** Most pairs in one exchange. */
  readonly maxPairs: number;
  /** Longest key (RFC 7143: 63 bytes). */
  readonly maxKeyLength: number;
  /** Longest value (RFC 7143: 255 bytes unless a key says otherwise; CHAP values need more). */
  readonly maxValueLength: number;
  /** Most bytes in one exchange, all PDUs of it together. */
  readonly maxTotalLength: number;
}

export const DEFAULT_TEXT_LIMITS: TextLimits = { maxPairs: 128, maxKeyLength: 63, maxValueLength: 8192, maxTotalLength: 65536 };

const KEY = /^[A-Za-z0-9.\-+@_]+$/;

/** Ordered pairs; keys are unique (a repeated key is a protocol error). */
export type TextPairs = ReadonlyArray<readonly [string, string]>;

/**
 * Parses a data segment into pairs. Throws {@link TextFormatError} on bad syntax or limits.
 * `allowRepeats` is for SendTargets answers, where TargetName and TargetAddress recur.
 */
export function parseText(data: Uint8Array, limits: TextLimits = DEFAULT_TEXT_LIMITS, allowRepeats = false): Array<[string, string]> {
  if (data.length > limits.maxTotalLength) throw new TextFormatError(`text of ${data.length} bytes exceeds ${limits.maxTotalLength}`);
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  let start = 0;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  while (start < buf.length) {
    let end = buf.indexOf(0, start);
    // A sender may omit the last NUL; padding NULs after it are not pairs.
    if (end < 0) end = buf.length;
    if (end === start) {
      start++;
      continue;
    }
    const s = buf.toString('utf8', start, end);
    const eq = s.indexOf('=');
    if (eq <= 0) throw new TextFormatError(`malformed pair ${JSON.stringify(s.slice(0, 80))}`);
    const key = s.slice(0, eq);
    const value = s.slice(eq + 1);
    if (key.length > limits.maxKeyLength || !KEY.test(key)) throw new TextFormatError(`bad key ${JSON.stringify(key.slice(0, 80))}`);
    if (Buffer.byteLength(value) > limits.maxValueLength) throw new TextFormatError(`value of ${key} is longer than ${limits.maxValueLength} bytes`);
    if (!allowRepeats && seen.has(key)) throw new TextFormatError(`key ${key} repeated`);
    seen.add(key);
    out.push([key, value]);
    if (out.length > limits.maxPairs) throw new TextFormatError(`more than ${limits.maxPairs} pairs`);
    start = end + 1;
  }
  return out;
}

/** Encodes pairs, each followed by NUL. */
export function encodeText(pairs: TextPairs): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of pairs) {
    if (!KEY.test(k)) throw new TextFormatError(`bad key ${JSON.stringify(k)}`);
    if (v.includes('\0')) throw new TextFormatError(`value of ${k} contains NUL`);
    parts.push(Buffer.from(`${k}=${v}\0`, 'utf8'));
  }
  return Buffer.concat(parts);
}

/** Pairs as a map (keys are unique by construction). */
export function textMap(pairs: TextPairs): Map<string, string> {
  return new Map(pairs.map(([k, v]) => [k, v]));
}
