import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryOut } from '../../src/cli/output.js';
import { logger, printStatus } from '../../src/cli/ptp-commands.js';
import { LocalCluster } from '../../src/scenario/cluster.js';
import type { AgentStatus, KeySummary } from '../../src/vtc/agent.js';

const T0 = Date.parse('2026-12-06T04:00:00.000Z');

function key(seq: number, command: string, subjects: ('A' | 'B')[], current: ('A' | 'B')[], state: string): KeySummary {
  return { seq, issuedAt: T0 + seq * 60_000, command, subjects, mode: 'normal', reason: 'command', status: { A: 'in', B: 'in' }, current, state, threshold: 2, acks: ['vtc1', 'vtc2', 'vtc3'], copiesPending: [], originVtc: 'vtc1', election: null };
}

const view = (inOperation: boolean) => ({ name: 'A' as const, inOperation, lastKeySeq: 2, behind: [], mounts: 0, refusing: false });

function status(over: Partial<AgentStatus>): AgentStatus {
  return { vtc: 'vtc1', ptp: 'online-both', keySeq: 0, threshold: 2, vts: { A: view(true), B: view(true) }, keys: [], lastElection: null, rejectedFrames: 0, rejectedMessages: 0, copyQueue: 0, ...over };
}

const printed = (s: AgentStatus): string[] => {
  const out = memoryOut();
  printStatus(out, s, 'lab', 4);
  return out.lines;
};

describe('ptpvts status for an operator', () => {
  it('after ptp shutdown: serving hosts no, each VTS not serving, key times, and ptp start as the next step', () => {
    const lines = printed(status({ ptp: 'offline', keySeq: 1, keys: [key(1, 'ptp-shutdown', ['A', 'B'], [], 'offline')] }));
    expect(lines).toContain('Serving hosts: no, the PtP system is off-line since key 1 (ptp-shutdown, 2026-12-06T04:01:00.000Z).');
    // "VTS A: in operation" alone misled while the system served nobody.
    expect(lines.find((l) => l.startsWith('VTS A:'))).toMatch(/in operation, .*, not serving hosts \(PtP offline\)\.$/);
    expect(lines.find((l) => l.startsWith('  key 1:'))).toMatch(/, issued 2026-12-06T04:01:00\.000Z\.$/);
    expect(lines.filter((l) => l.startsWith('Next step:'))).toEqual(['Next step: The PtP system was shut down by key 1: `ptpvts ptp start` puts both VTS back in operation (on-line with both, no vote).']);
  });

  it('stale VTS back alone while the current one is not answering: bring it back, the stale one stays off-line, or the audited override', () => {
    const keys = [key(1, 'vts-out', ['A'], ['B'], 'online-single(B)'), key(2, 'vts-out', ['B'], ['B'], 'offline'), key(3, 'vts-in', ['A'], ['B'], 'offline')];
    const lines = printed(status({ ptp: 'offline', keySeq: 3, keys, vts: { A: view(true), B: null } }));
    const steps = lines.filter((l) => l.startsWith('Next step:'));
    expect(steps).toHaveLength(3);
    expect(steps[0]).toMatch(/VTS B holds the newest data and is not answering: bring it back .*`ptpvts vts --id B`/);
    expect(steps[1]).toMatch(/VTS A alone stays off-line/);
    expect(steps[2]).toMatch(/audited override `ptpvts ptp override A`/);
  });

  it('on-line: serving hosts yes, no next step', () => {
    const lines = printed(status({}));
    expect(lines).toContain('Serving hosts: yes, through VTS A and B.');
    expect(lines.some((l) => l.startsWith('Next step:'))).toBe(false);
    expect(lines).toContain('VTS A: in operation, last key seq 2, 0 volume(s) behind the other VTS, 0 mount(s).');
  });
});

describe('one log level for the processes', () => {
  it('--log-level wins over PTPVTS_LOG_LEVEL, which wins over info; a bad level is refused by name', () => {
    expect(logger(undefined, {}).level).toBe('info');
    expect(logger(undefined, { PTPVTS_LOG_LEVEL: 'debug' }).level).toBe('debug');
    expect(logger('warn', { PTPVTS_LOG_LEVEL: 'debug' }).level).toBe('warn');
    expect(() => logger('loud', {})).toThrow('--log-level must be one of fatal, error, warn, info, debug, trace, silent (got "loud")');
    expect(() => logger(undefined, { PTPVTS_LOG_LEVEL: 'chatty' })).toThrow(/^PTPVTS_LOG_LEVEL must be one of .* \(got "chatty"\)$/);
  });
});

describe('VTC agents: key times and election logs', () => {
  let dir: string;
  let c: LocalCluster | null = null;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-opstatus-'));
  });
  afterEach(async () => {
    await c?.stop();
    c = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('each key carries its issue time, and a repeated election is logged once per change of outcome, not every round', async () => {
    const logs: { level: number; msg: string; vtc?: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim() !== '') logs.push(JSON.parse(l) as { level: number; msg: string; vtc?: string });
        done();
      },
    });
    c = await LocalCluster.start({ n: 4, dir, logger: pino({ level: 'info' }, sink) });
    const all = (s: string) => () => Object.values(c!.statuses()).every((x) => x === s);
    const agree = (seq: number) => () => c!.alive().every((a) => a.engine.newestKey().seq >= seq);
    expect(await c.waitFor(all('online-both'), 8000)).toBe(true);
    const before = Date.now();
    await c.agent('vtc2').command({ command: 'vts-out', vts: 'A', mode: 'normal' });
    await c.waitFor(agree(1), 3000);
    await c.agent('vtc3').command({ command: 'vts-out', vts: 'B', mode: 'normal' });
    await c.waitFor(agree(2), 3000);
    await c.agent('vtc1').command({ command: 'vts-in', vts: 'A' });
    const k = c.agent('vtc4').status().keys.at(-1)!;
    expect(k.issuedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(k.issuedAt).toBeLessThanOrEqual(Date.now());
    // electionTimeout is 500 ms in the cluster: several rounds, all refused for the same reason.
    await new Promise((r) => setTimeout(r, 3000));
    const rounds = Math.max(...c.agent('vtc4').elections().map((e) => e.id.round));
    expect(rounds).toBeGreaterThanOrEqual(3);
    for (const v of ['vtc1', 'vtc2', 'vtc3', 'vtc4']) {
      // A new key is a new situation and is said again; the rounds of one key's election are not.
      const cast = logs.filter((l) => l.vtc === v && l.msg === 'ballot cast' && l.level >= 30) as unknown as { election: { seq: number } }[];
      const seqs = new Set(cast.map((l) => l.election.seq));
      expect(cast.length, `${v} logged ${cast.length} ballots at info over ${rounds} rounds`).toBe(seqs.size);
    }
  }, 30_000);
});
