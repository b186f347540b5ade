/**
 * A CDB fuzzer for any emulated logical unit: random bytes, and mutations of the unit's
 * own commands (opcodes from its dispatch table, so the handlers are reached rather than
 * stopped at the opcode check). Every answer must be well formed: a SAM status, sense
 * that decodes whenever the status is CHECK CONDITION, no more data than allowed, and no
 * handler bug recorded by the unit.
 */
import { decodeSense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { encodeSense } from '../../src/scsi/sense.js';
import type { EmulatedUnit } from '../../firmware-sim/engine/unit.js';

/** A small, fast, seedable generator (mulberry32), so a failing run can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzReport {
  readonly commands: number;
  readonly byStatus: Record<string, number>;
  /** Commands that reached a handler (passed opcode, length and reserved-bit checks). */
  readonly reachedHandlers: number;
  readonly problems: string[];
}

const STATUSES = new Set<number>(Object.values(ScsiStatus));

export interface FuzzOptions {
  readonly seed: number;
  readonly commands: number;
  /** Largest Data-Out buffer to build (bounds memory and time for WRITE-like commands). */
  readonly maxDataOut?: number;
  /** Opcodes never sent (e.g. commands that would wait for a timing model on purpose). */
  readonly skipOpcodes?: readonly number[];
  /** Stops early once this many milliseconds have passed (the CI bound). */
  readonly budgetMs?: number;
  /**
   * Adjusts each generated CDB in place before it is sent, e.g. to bound a count field
   * that the unit works through one object at a time (millions of filemarks per command
   * would spend the whole budget on a handful of commands).
   */
  readonly shape?: (cdb: Uint8Array) => void;
}

/** Throws random and mutated CDBs at `unit`; returns what happened. Never throws itself. */
export async function fuzzUnit(unit: EmulatedUnit<unknown>, o: FuzzOptions): Promise<FuzzReport> {
  const r = rng(o.seed);
  const specs = unit.table.all().filter((s) => !(o.skipOpcodes ?? []).includes(s.opcode));
  const byStatus: Record<string, number> = {};
  const problems: string[] = [];
  const maxOut = o.maxDataOut ?? 4096;
  const started = Date.now();
  let reached = 0;
  let done = 0;
  const bugsBefore = unit.bugs.length;
  const byte = (): number => Math.floor(r() * 256);
  for (; done < o.commands; done++) {
    if (o.budgetMs !== undefined && (done & 1023) === 0 && Date.now() - started > o.budgetMs) break;
    let cdb: Uint8Array;
    const pick = r();
    if (pick < 0.15 || specs.length === 0) {
      cdb = Uint8Array.from({ length: 6 + Math.floor(r() * 11) }, byte);
    } else {
      const spec = specs[Math.floor(r() * specs.length)]!;
      cdb = new Uint8Array(spec.usage.length);
      cdb[0] = spec.opcode;
      if (spec.serviceAction !== undefined) cdb[1] = spec.serviceAction;
      if (pick < 0.55) {
        // Only defined bits set: reaches the handler's own validation.
        for (let i = 1; i < cdb.length; i++) cdb[i] = (cdb[i] ?? 0) | (byte() & (spec.usage[i] ?? 0));
        if (spec.serviceAction !== undefined) cdb[1] = ((cdb[1] ?? 0) & 0xe0) | spec.serviceAction;
        // Keep transfer lengths mostly small so fuzzing stays fast.
        if (r() < 0.8) for (let i = Math.max(2, cdb.length - 5); i < cdb.length - 1; i++) if (r() < 0.7) cdb[i] = 0;
      } else {
        for (let i = 1; i < cdb.length; i++) cdb[i] = byte();
        if (r() < 0.3) cdb[cdb.length - 1 - Math.floor(r() * 2)] = 0;
      }
      if (r() < 0.05) cdb = cdb.subarray(0, Math.max(1, Math.floor(r() * cdb.length)));
    }
    o.shape?.(cdb);
    const dataOutLength = r() < 0.5 ? Math.floor(r() * Math.min(maxOut, 512)) : Math.floor(r() * maxOut);
    const dataOut = r() < 0.4 ? Uint8Array.from({ length: dataOutLength }, byte) : undefined;
    const dataInLength = Math.floor(r() * 70_000);
    const spec = unit.table.lookup(cdb);
    const checksPassed = spec !== undefined && spec !== 'bad-service-action' && cdb.length >= spec.usage.length && spec.usage.every((u, i) => i === 0 || ((cdb[i] ?? 0) & ~u & 0xff) === 0);
    if (checksPassed) reached++;
    let res;
    try {
      res = await unit.execute({ initiator: `fuzz-${Math.floor(r() * 3)}`, cdb, ...(dataOut ? { dataOut } : {}), dataInLength, signal: new AbortController().signal });
    } catch (e) {
      problems.push(`cdb ${Buffer.from(cdb).toString('hex')}: execute rejected: ${String(e)}`);
      continue;
    }
    byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
    if (!STATUSES.has(res.status)) problems.push(`cdb ${Buffer.from(cdb).toString('hex')}: status 0x${res.status.toString(16)} is not a SAM status`);
    if ((res.data?.length ?? 0) > dataInLength) problems.push(`cdb ${Buffer.from(cdb).toString('hex')}: ${res.data?.length} bytes of data for ${dataInLength} allowed`);
    if (res.status === ScsiStatus.CHECK_CONDITION) {
      if (!res.sense) problems.push(`cdb ${Buffer.from(cdb).toString('hex')}: CHECK CONDITION without sense`);
      else {
        for (const fmt of ['fixed', 'descriptor'] as const) {
          const back = decodeSense(encodeSense(res.sense, fmt));
          if (back.key !== res.sense.key || back.asc !== res.sense.asc || back.ascq !== res.sense.ascq) problems.push(`cdb ${Buffer.from(cdb).toString('hex')}: sense does not survive ${fmt} encoding`);
        }
        if (res.sense.key === 0x05 && checksPassed === false && res.sense.fieldPointer === undefined) {
          problems.push(`cdb ${Buffer.from(cdb).toString('hex')}: ILLEGAL REQUEST without a field pointer`);
        }
      }
    }
    if (problems.length > 20) break;
  }
  for (const bug of unit.bugs.slice(bugsBefore)) problems.push(`handler bug in ${bug.command} (cdb ${bug.cdb}): ${String(bug.error)}`);
  return { commands: done, byStatus, reachedHandlers: reached, problems };
}
