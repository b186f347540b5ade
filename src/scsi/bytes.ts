/** Big-endian field helpers shared by every codec (SCSI fields are big-endian). */

export function getU16(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) << 8) | (b[off + 1] ?? 0);
}
export function getU24(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) << 16) | ((b[off + 1] ?? 0) << 8) | (b[off + 2] ?? 0);
}
export function getU32(b: Uint8Array, off: number): number {
  return (((b[off] ?? 0) << 24) >>> 0) + (((b[off + 1] ?? 0) << 16) | ((b[off + 2] ?? 0) << 8) | (b[off + 3] ?? 0));
}
export function getU64(b: Uint8Array, off: number): bigint {
  return (BigInt(getU32(b, off)) << 32n) | BigInt(getU32(b, off + 4));
}
/** Signed 24-bit (SPACE(6) count). */
export function getS24(b: Uint8Array, off: number): number {
  const v = getU24(b, off);
  return v & 0x800000 ? v - 0x1000000 : v;
}
export function setU16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}
export function setU24(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 16) & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = v & 0xff;
}
export function setU32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}
export function setU64(b: Uint8Array, off: number, v: bigint | number): void {
  const big = BigInt.asUintN(64, BigInt(v));
  setU32(b, off, Number(big >> 32n));
  setU32(b, off + 4, Number(big & 0xffffffffn));
}
/** Writes `s` as space-padded ASCII into a fixed-width field (INQUIRY, MAM). */
export function setAscii(b: Uint8Array, off: number, width: number, s: string): void {
  for (let i = 0; i < width; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x20;
    b[off + i] = c >= 0x20 && c < 0x7f ? c : 0x3f;
  }
}
/** Reads a fixed-width ASCII field, trimming trailing spaces and NULs. */
export function getAscii(b: Uint8Array, off: number, width: number): string {
  let s = '';
  for (let i = 0; i < width && off + i < b.length; i++) s += String.fromCharCode(b[off + i] ?? 0x20);
  return s.replace(/[\s\0]+$/u, '');
}
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
