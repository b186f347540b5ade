import { payload } from './journal-payload.mjs';

/** Record `i` of the crash-test stream followed by `pad` bytes of a pattern of `i`. */
export function padded(i: number, pad: number): Uint8Array {
  const head = payload(i);
  const r = new Uint8Array(head.length + pad);
  r.set(head);
  for (let k = head.length; k < r.length; k++) r[k] = (i * 31 + k) & 0xff;
  return r;
}
