/**
 * Shared pieces of the parameter-data parsers (the Data-In answers of INQUIRY, MODE
 * SENSE, READ ELEMENT STATUS...). Parsers accept data cut short by the allocation length
 * wherever the standard lets a device do that, and throw {@link ScsiParseError} only when
 * the bytes cannot be the answer asked for (a header too short, a page code that differs).
 */

/** Parameter data that cannot be decoded as the format asked for. */
export class ScsiParseError extends Error {
  override readonly name = 'ScsiParseError';
  readonly code = 'EPARSE';
  /** What was being parsed, e.g. `READ POSITION long form`. */
  readonly what: string;

  constructor(what: string, message: string, options?: { cause?: unknown }) {
    super(`${what}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.what = what;
  }
}

/** Throws unless `b` holds at least `n` bytes. */
export function needBytes(b: Uint8Array, n: number, what: string): void {
  if (b.length < n) throw new ScsiParseError(what, `${b.length} bytes, need at least ${n}`);
}

/** Bit test that reads as a sentence at the call site. */
export function bit(b: Uint8Array, off: number, n: number): boolean {
  return (((b[off] ?? 0) >> n) & 1) === 1;
}

/** A byte that may lie past a truncated end reads as zero, as a short transfer would leave it. */
export function u8(b: Uint8Array, off: number): number {
  return b[off] ?? 0;
}

/** Bytes `[from, to)` clipped to what arrived. */
export function slice(b: Uint8Array, from: number, to: number): Uint8Array {
  return b.subarray(Math.min(from, b.length), Math.min(Math.max(from, to), b.length));
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** UTF-8 text field (MAM TEXT format, SCSI name strings), NUL-terminated or padded. */
export function getUtf8(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return utf8.decode(nul >= 0 ? b.subarray(0, nul) : b).replace(/\s+$/u, '');
}
