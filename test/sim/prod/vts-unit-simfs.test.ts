/**
 * The production VtsUnit and the JS key journal on SimFs: run a seeded workload, cut the power
 * at a seeded operation, reopen on what the disk kept, and check that every acknowledged
 * write is there. The same campaign run with one sync removed must find a lost write.
 */
import { describe, expect, it } from 'vitest';
import { KeyJournalRef } from '../../../src/hotpath/key-journal-ref.js';
import type { PlatformFs } from '../../../src/platform/fs.js';
import { SeededRandom } from '../../../src/ptp/random.js';
import { VtsUnit } from '../../../src/vts/vts-unit.js';
import { SimFs, type CutMode, type SimFsOp } from './sim-fs.js';

const CACHE = '/vts/A/cache';
const STATE = '/vts/A/state';

/** A sync removed from the production path: the call resolves and makes nothing durable. */
interface Mutation {
  readonly name: string;
  readonly call: 'sync' | 'datasync';
  readonly path: RegExp;
}

/** `fs` with the mutation's sync calls made no-ops on handles whose path matches. */
function mutated(fs: PlatformFs, m: Mutation | undefined): PlatformFs {
  if (m === undefined) return fs;
  return {
    ...fs,
    open: async (path, flags) => {
      const h = await fs.open(path, flags);
      if (!m.path.test(path)) return h;
      return {
        read: (b, o, l, p) => h.read(b, o, l, p),
        write: (b, o, l, p) => h.write(b, o, l, p),
        sync: m.call === 'sync' ? () => Promise.resolve() : () => h.sync(),
        datasync: m.call === 'datasync' ? () => Promise.resolve() : () => h.datasync(),
        stat: () => h.stat(),
        truncate: (n) => h.truncate(n),
        close: () => h.close(),
      };
    },
  };
}

/** Seeded bytes for the VTS's identities and file name nonces: a seed replays a run exactly. */
const seededBytes = (rng: SeededRandom) => (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rng.int(256)));

interface Attempt {
  readonly generation: number;
  readonly blocks: readonly Buffer[];
}

interface RunResult {
  /** Operations the file system ran (or was asked to, up to the cut). */
  readonly ops: number;
  readonly cut: boolean;
  /** Problems found after the reopen: an acknowledged write missing or wrong. */
  readonly lost: string[];
}

/**
 * One run: a VTS on a fresh SimFs writes `volumes` volumes a few generations each while keys
 * are recorded; the power is cut when the file system is about to run operation `cutAt`
 * (never when undefined); the VTS is reopened on what the disk kept and checked.
 */
async function run(seed: number, mode: CutMode, cutAt: number | undefined, mutation?: Mutation, reorder = false): Promise<RunResult> {
  const rng = new SeededRandom(seed);
  // With `reorder`, concurrent operations complete in a seeded order, each in its own turn.
  const order = new SeededRandom(seed * 31 + 7);
  const held: (() => void)[] = [];
  let draining = false;
  const drain = (): void => {
    const go = held.splice(order.int(held.length), 1)[0];
    if (go === undefined) {
      draining = false;
      return;
    }
    go();
    setImmediate(drain);
  };
  let ops = 0;
  let cut = false;
  /** Operations are counted, and the cut taken, only while the workload runs. */
  let working = true;
  let onCut: () => void = () => undefined;
  const cutHappened = new Promise<void>((r) => (onCut = r));
  const fs: SimFs = new SimFs({
    seed: seed ^ 0x5bd1e995,
    mode,
    complete: (_op: SimFsOp, go: () => void) => {
      if (working && ++ops === cutAt) {
        working = false;
        cut = true;
        held.length = 0;
        fs.powerCut();
        onCut();
        return;
      }
      if (!reorder) return queueMicrotask(go);
      held.push(go);
      if (!draining) {
        draining = true;
        setImmediate(drain);
      }
    },
  });
  const now = { t: 1_000 };
  const open = (): Promise<VtsUnit> => VtsUnit.open({ id: 'A', cacheDir: CACHE, stateDir: STATE, fs: mutated(fs.view(), mutation), now: () => now.t++, randomBytes: seededBytes(rng) });

  const acked = new Map<string, Attempt>();
  const attempts = new Map<string, Map<number, Attempt>>();
  let ackedSeq = 0;
  const workload = async (): Promise<void> => {
    const vts = await open();
    const volumes = ['V00001', 'V00002', 'V00003'];
    const writer = async (volser: string): Promise<void> => {
      for (let gen = 1; gen <= 3; gen++) {
        const blocks = Array.from({ length: 1 + rng.int(3) }, (_, i) => Buffer.alloc(1 + rng.int(5000), (gen * 16 + i) & 0xff));
        const a: Attempt = { generation: gen, blocks };
        let per = attempts.get(volser);
        if (per === undefined) attempts.set(volser, (per = new Map()));
        per.set(gen, a);
        const h = await vts.mount(volser, { scratch: true });
        for (const b of blocks) await vts.write(h, b);
        const token = await vts.close(h, { generation: gen });
        expect(token.generation).toBe(gen);
        acked.set(volser, a);
      }
    };
    const keys = async (): Promise<void> => {
      for (let seq = 1; seq <= 6; seq++) {
        await vts.recordKey(seq, `mac${seq}`);
        ackedSeq = seq;
      }
    };
    await Promise.all([...volumes.map(writer), keys()]);
  };
  await Promise.race([workload(), cutHappened]);
  working = false;
  // No cut asked for (a counting run), or the workload ended first: cut now, all is acknowledged.
  if (!cut) fs.powerCut();
  const lost: string[] = [];
  const vts = await open();
  try {
    if (vts.lastKeySeq < ackedSeq) lost.push(`last key seq ${vts.lastKeySeq} after key ${ackedSeq} was acknowledged`);
    for (const [volser, a] of acked) {
      const token = vts.token(volser);
      if (token === undefined || token.generation < a.generation || !token.consistent) {
        lost.push(`${volser}: token ${JSON.stringify(token)} after generation ${a.generation} was acknowledged`);
        continue;
      }
      // A close in flight at the cut may have committed a newer generation: then that one's data.
      const want = token.generation === a.generation ? a : attempts.get(volser)?.get(token.generation);
      const h = await vts.mount(volser, { writable: false });
      const got: Buffer[] = [];
      for (;;) {
        const r = await vts.read(h, 1 << 20);
        if (r.kind !== 'block') break;
        got.push(Buffer.from(r.data));
      }
      await vts.close(h);
      if (want === undefined || got.length !== want.blocks.length || got.some((b, i) => !b.equals(want.blocks[i]!))) {
        lost.push(`${volser} generation ${token.generation}: data differs from what was written (${got.length} blocks read)`);
      }
    }
  } finally {
    await vts.shutdown();
  }
  return { ops, cut, lost };
}

/** Runs `seeds` seeds, each cut at a seeded point of its own operation count; returns the problems found. */
async function campaign(seeds: number, mode: CutMode, mutation?: Mutation, reorder = false): Promise<{ problems: string[]; cuts: number }> {
  const problems: string[] = [];
  let cuts = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const full = await run(seed, mode, undefined, mutation, reorder);
    const at = 1 + new SeededRandom(seed * 7919).int(full.ops);
    const r = await run(seed, mode, at, mutation, reorder);
    if (r.cut) cuts++;
    for (const p of r.lost) problems.push(`seed ${seed} (${mode}, cut at op ${at} of ${full.ops}): ${p}`);
  }
  return { problems, cuts };
}

describe('VtsUnit (production) on SimFs: acknowledged writes survive a power cut', () => {
  it('with what was not synced dropped', async () => {
    const { problems, cuts } = await campaign(40, 'drop');
    expect(cuts).toBe(40);
    expect(problems).toEqual([]);
  });

  it('with a torn tail (a prefix of the unsynced writes kept, the next one torn)', async () => {
    const { problems } = await campaign(40, 'prefix');
    expect(problems).toEqual([]);
  });

  it('with a random subset of the unsynced pages kept', async () => {
    const { problems } = await campaign(40, 'pages');
    expect(problems).toEqual([]);
  });

  it('with concurrent operations completing in a seeded order (torn tails too)', async () => {
    const drop = await campaign(20, 'drop', undefined, true);
    const prefix = await campaign(20, 'prefix', undefined, true);
    expect([...drop.problems, ...prefix.problems]).toEqual([]);
  });

  it('a run without a cut acknowledges everything and reopens whole', async () => {
    const r = await run(3, 'drop', undefined);
    expect(r.ops).toBeGreaterThan(100);
    expect(r.lost).toEqual([]);
  });

  it('replays exactly: the same seed runs the same operations', async () => {
    expect((await run(11, 'drop', undefined)).ops).toBe((await run(11, 'drop', undefined)).ops);
    expect((await run(11, 'drop', undefined, undefined, true)).ops).toBe((await run(11, 'drop', undefined, undefined, true)).ops);
  });
});

describe('the campaign catches a sync removed from the production path', () => {
  const mutations: Mutation[] = [
    { name: 'state slot save without its fdatasync (slot-file.ts)', call: 'datasync', path: /vts-state\.bin$/ },
    { name: 'volume data committed without its fsync (volume-cache.ts commitData)', call: 'sync', path: /\.work$/ },
    { name: 'metadata and renames without the directory fsync (durable.ts syncDir)', call: 'sync', path: /\/(cache|state|meta|data)$/ },
  ];
  for (const m of mutations) {
    it(m.name, async () => {
      const { problems } = await campaign(40, 'drop', m);
      expect(problems.length, `mutation "${m.name}" went unnoticed`).toBeGreaterThan(0);
    });
  }
});

describe('the JS key journal (production) on SimFs', () => {
  async function journalRun(seed: number, mode: CutMode, dropAppendSync: boolean): Promise<string[]> {
    const rng = new SeededRandom(seed);
    let cut = false;
    const cutAt = 5 + rng.int(60);
    let n = 0;
    let onCut: () => void = () => undefined;
    const cutHappened = new Promise<void>((r) => (onCut = r));
    const fs: SimFs = new SimFs({
      seed,
      mode,
      complete: (_op, go) => {
        if (!cut && ++n >= cutAt) {
          cut = true;
          fs.powerCut();
          onCut();
          return;
        }
        queueMicrotask(go);
      },
    });
    const view = mutated(fs.view(), dropAppendSync ? { name: 'append', call: 'datasync', path: /keys\.journal$/ } : undefined);
    const acked: string[] = [];
    const work = (async () => {
      const j = await KeyJournalRef.open('/vtc/keys.journal', { createDirectory: true, fs: view });
      for (let i = 0; i < 20; i++) {
        const rec = Buffer.from(`key ${i} ${'x'.repeat(rng.int(40))}`);
        await j.append(rec);
        acked.push(rec.toString());
      }
    })();
    await Promise.race([work, cutHappened]);
    if (!cut) fs.powerCut();
    cut = true;
    // Reopen on what the disk kept; operations run in order again.
    const j = await KeyJournalRef.open('/vtc/keys.journal', { createDirectory: true, fs: fs.view() });
    const got = j.records().map((r) => Buffer.from(r).toString());
    await j.close();
    return acked.filter((a, i) => got[i] !== a).map((a) => `seed ${seed} (${mode}): acknowledged record "${a.slice(0, 8)}…" missing after the cut`);
  }

  it('keeps every acknowledged append across cuts, torn tails included', async () => {
    const problems: string[] = [];
    for (let seed = 1; seed <= 30; seed++) for (const mode of ['drop', 'prefix', 'pages'] as const) problems.push(...(await journalRun(seed, mode, false)));
    expect(problems).toEqual([]);
  });

  it('finds a lost append when the append datasync is removed', async () => {
    const problems: string[] = [];
    for (let seed = 1; seed <= 30; seed++) problems.push(...(await journalRun(seed, 'drop', true)));
    expect(problems.length).toBeGreaterThan(0);
  });
});

describe('VtsUnit status changes that cannot be made durable', () => {
  it('a failed save of vts in or vts out leaves the status and last key as they were, in memory as on disk', async () => {
    const fs = new SimFs({ seed: 5 });
    let t = 0;
    const rng = new SeededRandom(5);
    const open = (): Promise<VtsUnit> => VtsUnit.open({ id: 'A', cacheDir: CACHE, stateDir: STATE, fs: fs.view(), now: () => t++, randomBytes: seededBytes(rng) });
    const pick = (v: { inOperation: boolean; lastKeySeq: number; lastKeyMac: string }) => ({ inOperation: v.inOperation, lastKeySeq: v.lastKeySeq, lastKeyMac: v.lastKeyMac });
    let u = await open();
    await u.recordKey(3, 'k3');
    const before = { inOperation: true, lastKeySeq: 3, lastKeyMac: 'k3' };

    // The state file's write fails (a full disk): the stop is not made, here or on disk.
    const heal = fs.inject({ ops: ['write', 'datasync', 'sync'], code: 'ENOSPC', path: /vts-state/ });
    await expect(u.setOutOfOperation({ seq: 4, mac: 'k4' })).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(pick(u.view())).toEqual(before);
    heal();
    // The slot file stops after a failed save (its state on disk is unknown) until reopened.
    await expect(u.setOutOfOperation({ seq: 4, mac: 'k4' })).rejects.toThrow(/reopen the VTS/);
    expect(pick(u.view())).toEqual(before);
    await u.shutdown();
    u = await open();
    expect(pick(u.view())).toEqual(before);
    await u.setOutOfOperation({ seq: 4, mac: 'k4' });
    const out = { inOperation: false, lastKeySeq: 4, lastKeyMac: 'k4' };
    expect(pick(u.view())).toEqual(out);

    // Nor is a start: the VTS stays out, and refuses hosts, as its disk says.
    const heal2 = fs.inject({ ops: ['write', 'datasync', 'sync'], code: 'EIO', path: /vts-state/ });
    await expect(u.setInOperation({ seq: 5, mac: 'k5' })).rejects.toMatchObject({ code: 'EIO' });
    expect(pick(u.view())).toEqual(out);
    await expect(u.mount('V00001', { scratch: true })).rejects.toThrow(/out of operation/);
    heal2();
    await u.shutdown();
    expect(pick((await open()).view())).toEqual(out);
  });
});
