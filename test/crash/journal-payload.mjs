// Record i of the crash-test stream: its number first, then a pattern, and a length that
// varies so records straddle page and block boundaries differently.
export function payload(i) {
  const len = 4 + ((i * 7919) % 500);
  const r = new Uint8Array(len);
  new DataView(r.buffer).setUint32(0, i, true);
  for (let k = 4; k < len; k++) r[k] = (i + k) & 0xff;
  return r;
}
