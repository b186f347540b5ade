/**
 * Checks one power cut of the cartridge campaign: every cartridge file the cut left is
 * opened with the production recovery code (the writable open a drive does on load) and
 * the media check, and compared with the script's model between the last op the writer
 * had finished before the cut (`acked`) and the op it was doing after it (`end`).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Cartridge, checkCartridge, MediaReadError } from '../../../firmware-sim/media/index.js';
import { cartFile, decodeBlock, FORMAT1_MARK_ATTRIBUTE, format1Mam, HOST_ATTRIBUTE, type Format1Content, type Script } from './script.js';

export interface Violation {
  readonly check: string;
  readonly detail: string;
}

interface Recovered {
  objects: string[];
  attribute: number;
  /** Format version and cartridge memory as the cut left them (before the writable open converts). */
  version: number;
  mam: Map<number, { format: number; value: Uint8Array }>;
  /** Cartridge memory after the writable open. */
  mamAfter: Map<number, { format: number; value: Uint8Array }>;
}

const mamText = (m: ReadonlyMap<number, { format: number; value: Uint8Array }>): string =>
  [...m]
    .sort((a, b) => a[0] - b[0])
    .map(([id, a]) => `${id.toString(16)}/${a.format}=${Buffer.from(a.value).toString('hex')}`)
    .join(' ');

/** Opens a cartridge the way a drive does after a power cut, reads every object back, and reports what it found. */
function recover(path: string, out: Violation[]): Recovered | undefined {
  const name = path.slice(path.lastIndexOf('/') + 1);
  let report;
  try {
    report = checkCartridge(path);
  } catch (e) {
    out.push({ check: 'media-check', detail: `${name}: ${(e as Error).message}` });
    return undefined;
  }
  if (report.headerError) {
    out.push({ check: 'opens', detail: `${name}: ${report.headerError}` });
    return undefined;
  }
  if (report.damaged.length > 0) out.push({ check: 'mid-tape-damage', detail: `${name}: media check finds ${report.damaged.length} damaged record(s), first at object ${report.damaged[0]?.objectNumber} (${report.damaged[0]?.reason})` });
  let version: number;
  let mam: Recovered['mam'];
  try {
    const ro = Cartridge.open(path, { readOnly: true });
    version = ro.header.version;
    mam = ro.readAttributes();
    ro.close();
  } catch (e) {
    out.push({ check: 'opens', detail: `${name} (read-only): ${(e as Error).name}: ${(e as Error).message}` });
    return undefined;
  }
  let c: Cartridge;
  try {
    c = Cartridge.open(path);
  } catch (e) {
    out.push({ check: 'opens', detail: `${name}: ${(e as Error).name}: ${(e as Error).message}` });
    return undefined;
  }
  try {
    const objects: string[] = [];
    for (let i = 0; i < c.objectCount; i++) {
      const o = c.object(i);
      if (o?.kind === 'filemark') {
        objects.push('f');
        continue;
      }
      try {
        const b = c.readBlock(i);
        const d = decodeBlock(b);
        if (!d.ok) {
          out.push({ check: 'content', detail: `${name}: object ${i} passed its CRC but is not block ${d.uid}'s content` });
          objects.push('?');
        } else objects.push(`b${d.uid}:${b.length}`);
      } catch (e) {
        if (!(e instanceof MediaReadError)) throw e;
        out.push({ check: 'medium-error', detail: `${name}: object ${i} reads as MEDIUM ERROR (${e.message})` });
        objects.push('?');
      }
    }
    const mamAfter = c.readAttributes();
    const v = mamAfter.get(HOST_ATTRIBUTE)?.value;
    const attribute = v && v.length === 8 ? new DataView(v.buffer, v.byteOffset, 8).getUint32(4) : 0;
    return { objects, attribute, version, mam, mamAfter };
  } finally {
    c.close();
  }
}

const same = (model: string, got: string): boolean => (got === 'f' ? model.startsWith('f') : model === got);

function isPrefix(got: readonly string[], state: readonly string[]): boolean {
  if (got.length > state.length) return false;
  for (let i = 0; i < got.length; i++) if (!same(state[i] ?? '', got[i] ?? '')) return false;
  return true;
}

/** Per cartridge: the states it may be in, with how much of what was acknowledged each still requires. */
interface Candidates {
  /** What the last finished op left durable; undefined when the cartridge was not yet created then. */
  required: string[] | undefined;
  states: { state: string[]; need: number }[];
  attributes: Set<number>;
  trunc: number;
  /** Inserted in format 1: what it held then. */
  format1?: Format1Content;
}

/**
 * A cartridge inserted in format 1 is, after any cut, either still a whole version 1 file
 * (exactly its records and cartridge memory: the conversion's slot rewrites keep the
 * image) or a version 2 file; never a version 1 header over what only the converted
 * cartridge wrote, which is what a header rewrite not yet durable leaves.
 */
function checkFormat1(file: string, id: number, f: Format1Content, r: Recovered, out: Violation[]): void {
  const want = format1Mam(id, f)[1]?.attrs ?? new Map();
  if (r.version === 1) {
    if (mamText(r.mam) !== mamText(want)) out.push({ check: 'format1-mix', detail: `${file}: still format version 1, but its cartridge memory is not the one it came with (${mamText(r.mam)}; came with ${mamText(want)})` });
    if (r.objects.length !== f.tape.length || !r.objects.every((o, i) => same(f.tape[i] ?? '', o))) out.push({ check: 'format1-mix', detail: `${file}: still format version 1, but holds ${r.objects.length} objects, not the ${f.tape.length} it came with` });
  } else if (mamText(new Map([...r.mamAfter].filter(([k]) => k === FORMAT1_MARK_ATTRIBUTE))) !== mamText(new Map([...want].filter(([k]) => k === FORMAT1_MARK_ATTRIBUTE)))) {
    out.push({ check: 'format1-mam-lost', detail: `${file}: converted to version ${r.version}, but the cartridge memory it came with is gone (${mamText(r.mamAfter)})` });
  }
}

/**
 * `acked` is the script after the last op the writer had finished when the cut was
 * taken (undefined: not even the first cartridge was loaded), `fresh` the script before
 * any op (to walk from when `acked` is undefined), `end` the op the writer was doing
 * just after the cut.
 */
export function checkCut(dest: string, acked: Script | undefined, fresh: Script, end: number): Violation[] {
  const out: Violation[] = [];
  const walk = (acked ?? fresh).clone();
  const cands = new Map<number, Candidates>();
  const note = (id: number): void => {
    const m = walk.carts.get(id);
    if (!m) return;
    let c = cands.get(id);
    if (!c) {
      const a = acked?.carts.get(id);
      c = { required: a ? [...a.durable] : undefined, states: [], attributes: new Set(a ? [a.attribute] : [m.format1?.attribute ?? 0]), trunc: Number.POSITIVE_INFINITY, ...(m.format1 ? { format1: m.format1 } : {}) };
      cands.set(id, c);
    }
    // A format 1 cartridge is whole from the moment its name exists (written, then renamed).
    c.states.push({ state: [...m.tape], need: Math.min(c.required?.length ?? c.format1?.tape.length ?? 0, c.trunc) });
  };
  for (const id of walk.carts.keys()) note(id);
  while (walk.index < end) {
    const before = walk.current;
    const op = walk.step();
    if (op.k === 'erase' || op.k === 'overwrite') {
      const c = cands.get(walk.current);
      if (c) c.trunc = Math.min(c.trunc, op.at);
    }
    if (op.k === 'attribute') cands.get(walk.current)?.attributes.add(op.value);
    if (op.k === 'rotate') note(before);
    note(walk.current);
  }
  // Deleted cartridges may come back (an unlink the directory never made durable): not checked.
  const retired = (f: string): boolean => Number(/^cart-(\d+)\.cart$/u.exec(f)?.[1] ?? -1) <= walk.retiredUpTo;
  const files = new Set(readdirSync(dest).filter((f) => f.endsWith('.cart') && !retired(f)));
  for (const [id, c] of cands) {
    const file = cartFile(id);
    if (retired(file)) continue;
    if (!files.delete(file)) {
      if (c.required) out.push({ check: 'cartridge-lost', detail: `${file} was created and loaded before the cut but is gone` });
      continue;
    }
    const r = recover(join(dest, file), out);
    if (!r) continue;
    if (c.format1) checkFormat1(file, id, c.format1, r, out);
    const matching = c.states.filter((s) => isPrefix(r.objects, s.state));
    if (matching.length === 0) {
      const lcp = (s: readonly string[]) => {
        let i = 0;
        while (i < r.objects.length && i < s.length && same(s[i] ?? '', r.objects[i] ?? '')) i++;
        return i;
      };
      const best = Math.max(...c.states.map((s) => lcp(s.state)));
      out.push({ check: 'never-written', detail: `${file}: the ${r.objects.length} objects read back are no state the tape was in (they agree with one for ${best}; object ${best} is ${r.objects[best]})` });
    } else if (!matching.some((s) => r.objects.length >= s.need)) {
      const need = Math.min(...matching.map((s) => s.need));
      out.push({ check: 'acknowledged-lost', detail: `${file}: ${r.objects.length} objects read back, ${need} were acknowledged (filemark or sync point) before the cut` });
    }
    if (!c.attributes.has(r.attribute)) out.push({ check: 'attribute', detail: `${file}: host attribute reads ${r.attribute}, acknowledged or in flight were ${[...c.attributes].join(', ')}` });
  }
  for (const f of files) out.push({ check: 'never-written', detail: `${f} was never created` });
  return out;
}
