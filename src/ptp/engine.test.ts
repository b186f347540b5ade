import { describe, expect, it } from 'vitest';
import { VoteTallyRef } from '../hotpath/vote-tally-ref.js';
import { DEFAULT_TIMING, ENGINE_INPUTS, VtcEngine } from './engine.js';
import type { Effect, EngineInput, VtsOp } from './engine.js';
import { generateKeyring, vtcKeys } from './mac.js';
import type { VtsName } from './types.js';

const VTCS = ['vtc0', 'vtc1'];
const ring = generateKeyring(VTCS);
const engine = (): VtcEngine => new VtcEngine({ ptpId: 'ptp1', vtcs: VTCS, self: 'vtc0', timing: DEFAULT_TIMING }, { keys: vtcKeys(ring, 'vtc0'), tally: (o) => new VoteTallyRef(o) });

/** The same input through the named methods (what the agent calls). */
function byMethod(e: VtcEngine, i: EngineInput): void {
  switch (i.kind) {
    case 'restore':
      return e.restore(i.records, i.now);
    case 'tick':
      return e.tick(i.now);
    case 'receive':
      return e.receive(i.from, i.value, i.now);
    case 'appended':
      return e.appended(i.token, i.now);
    case 'vts-result':
      return e.vtsResult(i.token, i.result, i.now);
    case 'command':
      return e.command(i.commandId, i.command, i.now);
    case 'stop':
      return e.stop();
  }
}

/**
 * Drives one VTC whose peer stays silent through a forced `vts-out A`: its key goes ahead
 * after the acknowledgement timeout, stops A, records on B and commits. Journal appends are
 * durable at once; both VTS answer every operation (A out once stopped). Returns every
 * effect and the invariants broken after any input.
 */
function drive(useStep: boolean): { effects: Effect[]; broken: string[]; role: string[] } {
  const e = engine();
  const effects: Effect[] = [];
  const broken: string[] = [];
  const role: string[] = [];
  const inOp: Record<VtsName, boolean> = { A: true, B: true };
  const last: Record<VtsName, number> = { A: 0, B: 0 };
  const queue: EngineInput[] = [];
  const feed = (i: EngineInput): void => {
    if (useStep) e.step(i);
    else byMethod(e, i);
    broken.push(...e.invariants());
    role.push(e.role());
    for (const x of e.takeEffects()) {
      effects.push(x);
      const now = 'now' in i ? i.now : 0;
      if (x.kind === 'append') queue.push({ kind: 'appended', token: x.token, now });
      if (x.kind === 'vts') {
        const op: VtsOp = x.op;
        if (op.op === 'stop') inOp[x.vts] = false;
        if (op.op !== 'status' && op.seq !== null) last[x.vts] = Math.max(last[x.vts], op.seq);
        queue.push({ kind: 'vts-result', token: x.token, result: { ok: true, view: { name: x.vts, inOperation: inOp[x.vts], lastKeySeq: last[x.vts], behind: [], bootId: `boot-${x.vts}`, imageId: `image-${x.vts}` } }, now });
      }
    }
  };
  feed({ kind: 'restore', records: [], now: 0 });
  for (let now = 100; now <= 4000; now += 100) {
    while (queue.length > 0) feed(queue.shift()!);
    if (now === 600) feed({ kind: 'command', commandId: 'c1', command: { command: 'vts-out', vts: 'A', mode: 'forced' }, now });
    feed({ kind: 'tick', now });
  }
  feed({ kind: 'stop' });
  return { effects, broken, role };
}

describe('VtcEngine.step', () => {
  it('takes every input of the tagged union, and the named methods are the same call', () => {
    const viaStep = drive(true);
    const viaMethods = drive(false);
    expect(JSON.stringify(viaStep.effects)).toBe(JSON.stringify(viaMethods.effects));
    // The forced key committed: stop A, record on B, commit, answer.
    const result = viaStep.effects.find((x) => x.kind === 'result');
    expect(result?.kind === 'result' && result.result.ok).toBe(true);
    expect(viaStep.effects.filter((x) => x.kind === 'vts' && x.op.op !== 'status').map((x) => (x.kind === 'vts' ? `${x.vts} ${x.op.op}` : ''))).toEqual(['A stop', 'B record']);
    expect(viaStep.broken).toEqual([]);
    // It coordinated the key; the key is weak (one acknowledgement, T = 1), so it then holds
    // an election of B, the VTS left in.
    expect(viaStep.role).toContain('coordinator');
    expect(viaStep.role.at(-1)).toBe('voter');
    expect(new Set(ENGINE_INPUTS)).toEqual(new Set(['restore', 'tick', 'receive', 'appended', 'vts-result', 'command', 'stop']));
  });

  it('ignores the answer to an operation it never issued, and an append it never asked for', () => {
    const e = engine();
    e.step({ kind: 'restore', records: [], now: 0 });
    e.takeEffects();
    e.step({ kind: 'vts-result', token: 9999, result: { ok: false, error: 'refused' }, now: 10 });
    e.step({ kind: 'appended', token: 9998, now: 20 });
    expect(e.takeEffects()).toEqual([]);
    expect(e.invariants()).toEqual([]);
  });
});
