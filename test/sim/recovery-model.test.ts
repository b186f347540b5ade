/**
 * The recovery decision on the cost model (bench/recovery-model.bench.ts): the world applies
 * the modelled costs, and the critical path read back from its causal history is the one
 * the protocol takes.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMING } from '../../src/ptp/engine.js';
import { criticalPath, floorOf, LAN, modelWorld, runDecision, WAN } from './recovery-model.js';
import { World } from './world.js';

describe('the recovery decision on the cost model', () => {
  it('`vts in B` after a shutdown: two appends, two hops and one VTS start in sequence, 3(n-1) messages, on LAN and WAN', () => {
    for (const n of [4, 8]) {
      const lan = runDecision('vts-in', n, 1, LAN);
      // propose (0.1) + the peer's append (1) + ack (0.1) + B started (0.2 + 1) + the commit appended (1).
      expect(lan.decisionMs).toBeCloseTo(3.4, 6);
      expect(lan.path).toEqual({ appends: 2, hops: 2, vtsRoundTrips: 1, vtsWrites: 1, timers: 0 });
      expect(lan.timerMs).toBe(0);
      expect(lan.beforeKeyMs).toBe(0);
      expect(lan.byType).toEqual({ propose: n - 1, ack: n - 1, commit: n - 1 });
      expect(lan.messages).toBe(3 * (n - 1));
      expect(lan.decisionMs / floorOf(LAN)).toBeLessThanOrEqual(3);
      expect(lan.trail).toMatch(/^hop>vtc\d+:propose@0\.1 append>vtc\d+:key \d+@1\.1 hop>vtc0:ack@1\.2 vts>vtc0:B start@2\.4 append>vtc0:commit \d+ by vtc0 done@3\.4$/);
      const wan = runDecision('vts-in', n, 1, WAN);
      expect(wan.decisionMs).toBeCloseTo(10 + 1 + 10 + 21 + 1, 6);
      expect(wan.path).toEqual(lan.path);
    }
  });

  it('the failure key: detection is a timer wait (heartbeatTimeout), the key after it a few appends and round trips', () => {
    const m = runDecision('failure', 4, 2, LAN);
    expect(m.path.timers).toBeGreaterThan(0);
    // A counts as failed only heartbeatTimeout after its last answer, seen at a heartbeat answer after a tick.
    expect(m.beforeKeyMs).toBeGreaterThan(DEFAULT_TIMING.heartbeatTimeout - DEFAULT_TIMING.tick);
    expect(m.beforeKeyMs).toBeLessThanOrEqual(DEFAULT_TIMING.heartbeatTimeout + DEFAULT_TIMING.tick + 1);
    // Excluding it: the first poll that found A gone and the one that found it gone long enough
    // (0.2 each), then propose, append, ack, A's stop answered unreachable, B recording, the commit.
    expect(m.decisionMs - m.timerMs).toBeCloseTo(0.2 + 0.2 + 0.1 + 1 + 0.1 + 0.2 + 1.2 + 1, 6);
    expect(m.path).toMatchObject({ appends: 2, hops: 2, vtsWrites: 1 });
    expect(m.byType).toEqual({ propose: 3, ack: 3, commit: 3 });
  });

  it('the failure key when the failed host is silent: the best-effort stop of A waits a heartbeat timeout, not vtsOpTimeout', () => {
    const m = runDecision('failure', 4, 2, LAN, DEFAULT_TIMING, { silentVts: true });
    // Detection (a heartbeat timeout of silence) plus the stop's own heartbeat timeout, and ticks.
    expect(m.decisionMs).toBeLessThan(2 * DEFAULT_TIMING.heartbeatTimeout + 4 * DEFAULT_TIMING.tick);
    expect(m.decisionMs).toBeLessThan(DEFAULT_TIMING.vtsOpTimeout / 10);
    expect(m.trail).toMatch(/\[timer \d+(\.\d+)?\]>vtc0:tick@[\d.]+ vts>vtc0:B record@[\d.]+ append>vtc0:commit \d+ by vtc0 done@[\d.]+$/);
  });

  it('the election by ballots: returnGrace dominates; the three talliers send their ballots to all, the others to the talliers', () => {
    const m = runDecision('election', 4, 1, LAN);
    expect(m.timerMs).toBeGreaterThanOrEqual(DEFAULT_TIMING.returnGrace);
    // At 4 VTCs that is still everyone to everyone: 3 talliers x 3 + 1 x 3.
    expect(m.byType.ballot).toBe(4 * 3);
    expect(m.path.appends).toBe(2);
    // At 32, O(n): 3 x 31 from the talliers and 29 x 3 from the others, not 32 x 31.
    const big = runDecision('election', 32, 1, LAN);
    expect(big.byType.ballot).toBe(3 * 31 + 29 * 3);
    expect(big.path.appends).toBe(2);
  });

  it('the world applies the modelled costs: a fixed hop, append latency and VTS round trip', () => {
    const w = modelWorld(3, 7, WAN);
    w.run(3000);
    const t0 = w.sched.now();
    const id = w.command({ command: 'vts-out', vts: 'A', mode: 'immediate' }, w.vtcs[1]);
    w.run(t0 + 500);
    expect(w.results.get(id)?.ok).toBe(true);
    const c = w.causal!;
    const after = c.filter((e) => e.at >= t0);
    // Every frame between VTCs arrives exactly one hop after the input that sent it.
    for (const e of after.filter((x) => x.kind === 'frame' && x.parent !== null)) expect(e.at - c[e.parent!]!.at).toBeCloseTo(10, 9);
    for (const e of after.filter((x) => x.kind === 'append')) expect(e.at - c[e.parent!]!.at).toBeCloseTo(1, 9);
    for (const e of after.filter((x) => x.kind === 'vts')) expect(e.at - c[e.parent!]!.at).toBeCloseTo(/status|unreachable|refused/.test(e.detail) ? 20 : 21, 9);
    // The command's path starts at the command itself.
    const end = after.find((e) => e.node === 'vtc1' && e.detail.startsWith('commit ') && e.detail.endsWith(' by vtc1 done'))!;
    const path = criticalPath(w, end, t0);
    expect(c[path[0]!.to.parent!]!.kind).toBe('command');
    expect(end.at - t0).toBeCloseTo(path.reduce((a, s) => a + s.ms, 0), 9);
  });

  it('a world without the options keeps no causal history and draws its delays as before', () => {
    const w = new World({ seed: 3, n: 3 });
    w.run(500);
    expect(w.causal).toBeNull();
    expect(w.sent).toEqual([]);
    expect(w.net.options).toMatchObject({ minDelay: 1, maxDelay: 10 });
  });
});
