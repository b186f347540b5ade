import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { Sense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import type { CommandResult } from '../engine/types.js';
import { drivePersonality } from '../personalities/drives.js';
import { StreamingModel } from './streaming.js';
import { drain, expectGood, expectSense, pattern, rig, type Rig } from './test-kit.js';

const MB = 1e6;

/** A model with a personality's figures and a clock the test moves (device seconds). */
function model(personality = 'ibm-lto9-fh'): { m: StreamingModel; clock: { t: number } } {
  const t = drivePersonality(personality).timing;
  const clock = { t: 0 };
  const m = new StreamingModel({ stepsBytesPerSecond: t.speedStepsMBps.map((s) => s * MB), bufferBytes: t.bufferBytes, backhitchSeconds: t.backhitchSeconds }, () => clock.t);
  return { m, clock };
}

/**
 * A host that offers `chunk` bytes every `chunk / rate` seconds for `seconds` (as fast as it
 * can when `rate` is Infinity), waiting whatever each WRITE (or READ) waits. Returns the
 * device time it took and the waits.
 */
function host(o: { m: StreamingModel; clock: { t: number } }, kind: 'write' | 'read', rate: number, chunk: number, bytes: number): { elapsed: number; waits: number[] } {
  const start = o.clock.t;
  const waits: number[] = [];
  let next = start;
  for (let done = 0; done < bytes; done += chunk) {
    o.clock.t = Math.max(o.clock.t, next);
    const issued = o.clock.t;
    const w = kind === 'write' ? o.m.write(chunk) : o.m.read(chunk);
    waits.push(w);
    o.clock.t += w;
    next = issued + chunk / rate;
  }
  return { elapsed: o.clock.t - start, waits };
}

describe('streaming model: writing', () => {
  it('a host at the native rate streams at the top step with zero backhitches; the flush drains the buffer', () => {
    const o = model('ibm-lto9-fh');
    host(o, 'write', 408 * MB, 4 * MB, 40_000 * MB);
    const s = o.m.stats();
    expect(s.speedMBps).toBe(408);
    expect(s.backhitches).toBe(0);
    expect(s.motion).toBe('streaming');
    // The tape started when the buffer was half full (500 MB, about 1.2 s) and never stopped.
    expect(s.streamingSeconds).toBeGreaterThan(40_000 / 408 - 2);
    expect(s.stoppedSeconds).toBeLessThan(1.3);
    const fill = s.bufferFillBytes;
    expect(fill).toBeGreaterThan(400 * MB);
    // A flush of a streaming tape: the buffer at the current speed, no reposition.
    expect(o.m.flush()).toBeCloseTo(fill / (408 * MB), 6);
  });

  it('a host between two steps gets the step above it', () => {
    for (const [rate, step] of [
      [250, 263],
      [178, 203],
      [380, 385],
      [263, 263],
    ] as const) {
      const o = model('ibm-lto9-fh');
      host(o, 'write', rate * MB, 2 * MB, rate * 20 * MB);
      expect(o.m.stats().speedMBps, `${rate} MB/s`).toBe(step);
      expect(o.m.stats().hostMBps).toBeCloseTo(rate, 3);
      expect(o.m.stats().backhitches, `${rate} MB/s`).toBe(0);
    }
    // Half height LTO-8: 130 MB/s sits between 112 and 135.
    const hh = model('ibm-lto8-hh');
    host(hh, 'write', 130 * MB, 1 * MB, 2000 * MB);
    expect(hh.m.stats().speedMBps).toBe(135);
  });

  it('a host below the lowest step shoe-shines: backhitches grow, and a flush of a stopped tape includes the reposition', () => {
    const o = model('ibm-lto9-fh');
    const backhitch = drivePersonality('ibm-lto9-fh').timing.backhitchSeconds;
    const { waits } = host(o, 'write', 100 * MB, 4 * MB, 30_000 * MB);
    const s = o.m.stats();
    expect(s.speedMBps).toBe(177);
    // Each cycle: the buffer fills to half (500 MB at 100 MB/s, 5 s), a backhitch (3 s, 300
    // MB more arrive), then it drains at 177 - 100 MB/s net until empty (10.4 s): 18.4 s a
    // cycle, about 15 in 300 s, the tape still 8 s of each.
    expect(s.backhitches).toBeGreaterThanOrEqual(14);
    expect(s.backhitches).toBeLessThanOrEqual(16);
    expect(s.stoppedSeconds / (s.stoppedSeconds + s.streamingSeconds)).toBeCloseTo(8 / 18.4, 1);
    // The host never waited: the buffer never filled.
    expect(waits.every((w) => w === 0)).toBe(true);
    // Let the buffer run dry, then write a little and flush: the tape must reposition first.
    o.clock.t += 60;
    expect(o.m.stats().motion).toBe('stopped');
    const before = o.m.stats().backhitches;
    expect(o.m.write(10 * MB)).toBe(0);
    const speed = o.m.stats().speedMBps * MB;
    expect(o.m.flush()).toBeCloseTo(backhitch + (10 * MB) / speed, 6);
    expect(o.m.stats().backhitches).toBe(before + 1);
  });

  it('a host held back by a full buffer during a backhitch keeps its step: waiting on the tape does not count as slowness', () => {
    const o = model('ibm-lto9-fh');
    // 250 MB/s against 263: the buffer drains slowly, the tape stops after about 40 s and
    // backhitches; meanwhile the host fills the buffer and waits for room.
    const { waits } = host(o, 'write', 250 * MB, 4 * MB, 250 * 120 * MB);
    const s = o.m.stats();
    expect(s.backhitches).toBeGreaterThanOrEqual(1);
    expect(waits.some((w) => w > 0)).toBe(true);
    expect(s.speedMBps).toBe(263);
    expect(s.hostMBps).toBeCloseTo(250, 0);
  });

  it('a full buffer back-pressures a fast host to the top step rate', () => {
    const o = model('ibm-lto7-fh');
    const { elapsed, waits } = host(o, 'write', Infinity, 8 * MB, 10_000 * MB);
    const s = o.m.stats();
    expect(s.speedMBps).toBe(306);
    expect(s.backhitches).toBe(0);
    // The first gigabyte goes to the buffer at once; the rest at the tape's speed.
    expect(waits.slice(0, 100).every((w) => w === 0)).toBe(true);
    expect(waits.slice(200).every((w) => w > 0)).toBe(true);
    expect((10_000 - 1000) / elapsed).toBeCloseTo(306, 0);
    expect(s.bufferFillBytes).toBeGreaterThan(990 * MB);
  });

  it('unbuffered (BUFFERED MODE 0): every WRITE waits for its data to reach tape', () => {
    const o = model('ibm-lto7-hh');
    const backhitch = drivePersonality('ibm-lto7-hh').timing.backhitchSeconds;
    // From a positioned tape: the data at the native rate.
    const first = o.m.write(4 * MB, false);
    expect(first).toBeCloseTo((4 * MB) / (306 * MB), 9);
    o.clock.t += first;
    // The buffer ran dry as the WRITE ended, so the tape stopped: the next one repositions.
    for (let i = 0; i < 5; i++) {
      const w = o.m.write(4 * MB, false);
      expect(w).toBeGreaterThanOrEqual(backhitch + (4 * MB) / (306 * MB));
      o.clock.t += w;
    }
    expect(o.m.stats().bufferFillBytes).toBe(0);
    expect(o.m.stats().backhitches).toBe(5);
    // Buffered, the same WRITE does not wait.
    expect(o.m.write(4 * MB)).toBe(0);
  });

  it('a tape move after positioning starts without a backhitch; the host rate window forgets an idle host', () => {
    const o = model('ibm-lto9-fh');
    host(o, 'write', 100 * MB, 4 * MB, 400 * MB);
    o.clock.t += o.m.flush();
    o.m.positioned();
    const w = o.m.write(600 * MB);
    expect(w).toBe(0);
    expect(o.m.stats().motion).toBe('streaming');
    expect(o.m.stats().backhitches).toBe(0);
  });
});

describe('streaming model: reading', () => {
  it('reads ahead: a host at the native rate waits only for the first bytes and never backhitches', () => {
    const o = model('ibm-lto8-fh');
    o.m.positioned();
    const { waits } = host(o, 'read', 365 * MB, 4 * MB, 20_000 * MB);
    expect(waits[0]).toBeCloseTo((4 * MB) / (365 * MB), 9);
    expect(o.m.stats().speedMBps).toBe(365);
    expect(o.m.stats().backhitches).toBe(0);
  });

  it('a slow reader fills the buffer, the tape stops and backhitches to read on; a fast one is held to the top step', () => {
    const slow = model('ibm-lto8-fh');
    host(slow, 'read', 50 * MB, 4 * MB, 6000 * MB);
    expect(slow.m.stats().speedMBps).toBe(112);
    expect(slow.m.stats().backhitches).toBeGreaterThanOrEqual(3);
    const fast = model('ibm-lto8-fh');
    const { elapsed } = host(fast, 'read', Infinity, 8 * MB, 10_000 * MB);
    expect(10_000 / elapsed).toBeCloseTo(365, 0);
  });

  it('a READ after writing waits for the buffer to reach tape, then repositions', () => {
    const o = model('ibm-lto9-hh');
    const backhitch = drivePersonality('ibm-lto9-hh').timing.backhitchSeconds;
    expect(o.m.write(100 * MB)).toBe(0);
    const speed = o.m.stats().speedMBps * MB;
    const w = o.m.read(1 * MB);
    // Drain 100 MB (the tape was stopped below the start threshold, but at its place: no
    // backhitch), then the read repositions and reads.
    expect(w).toBeCloseTo((100 * MB) / speed + backhitch + (1 * MB) / o.m.stats().speedMBps / MB, 6);
    expect(o.m.stats().direction).toBe('read');
  });
});

describe('streaming model: figures', () => {
  it('refuses figures that cannot run', () => {
    expect(() => new StreamingModel({ stepsBytesPerSecond: [], bufferBytes: 1, backhitchSeconds: 1 }, () => 0)).toThrow(/speed steps/);
    expect(() => new StreamingModel({ stepsBytesPerSecond: [1], bufferBytes: 0, backhitchSeconds: 1 }, () => 0)).toThrow(/buffer/);
  });
});

// ---------------------------------------------------------------------- the drive

/** A drive whose streaming model reads a clock the test moves (real seconds, divided by the time scale). */
async function timedRig(personality = 'ibm-lto7-hh', extra: { compression?: boolean } = {}): Promise<{ r: Rig; real: { t: number; calls: number } }> {
  const real = { t: 0, calls: 0 };
  const r = await rig(personality, {
    clock: () => {
      real.calls++;
      return real.t;
    },
    ...extra,
  });
  return { r, real };
}

/** Runs `c` on the unit directly: the result when it completed synchronously, else undefined (and it is awaited). */
async function run(r: Rig, c: Cdb.Command): Promise<{ sync: boolean; result: CommandResult }> {
  const p = r.lu.unit.execute({ initiator: r.port.initiator, cdb: c.cdb, ...(c.dataOut ? { dataOut: c.dataOut } : {}), dataInLength: c.dataInLength ?? 0, signal: new AbortController().signal });
  // The unit answers with the result itself when the command did not wait, a promise when it did.
  const sync = !(p instanceof Promise);
  const result = await p;
  expect(result.status, 'status').toBe(ScsiStatus.GOOD);
  return { sync, result };
}

/** MODE SELECT(6) of the header alone, with `dsp` as its device-specific parameter. */
const headerOnly = (dsp: number): Cdb.Command => Cdb.modeSelect6(Uint8Array.of(0, 0, dsp, 0));

describe('the drive with its streaming model', () => {
  let r: Rig | undefined;
  afterEach(() => {
    if (r) r.lu.unit.timeScale = 0;
    r?.cleanup();
    r = undefined;
  });

  it('timeScale 0 never touches the model: READ and WRITE answer synchronously with the same results', async () => {
    const t = await timedRig();
    r = t.r;
    await r.load({ capacityBytes: 64 << 20 });
    for (let i = 0; i < 8; i++) {
      const w = await run(r, Cdb.write6(pattern(100_000, i)));
      expect(w.sync).toBe(true);
      expect(w.result.status).toBe(ScsiStatus.GOOD);
    }
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
    expectGood(await r.port.execute(Cdb.rewind()));
    for (let i = 0; i < 8; i++) {
      const rd = await run(r, Cdb.read6({ length: 100_000 }));
      expect(rd.sync).toBe(true);
      expect(Buffer.from(rd.result.data ?? []).equals(Buffer.from(pattern(100_000, i)))).toBe(true);
    }
    expectGood(await r.port.execute(Cdb.locate10(3)));
    expectGood(await r.port.execute(Cdb.space6(0, 2)));
    expect(t.real.calls).toBe(0);
    expect(r.lu.drive.streamingStats()).toBeUndefined();
  });

  it('buffered WRITEs land in the buffer (as stored, after compression) and answer at once; WRITE FILEMARKS drains it', async () => {
    const t = await timedRig('ibm-lto7-hh', { compression: true });
    r = t.r;
    await r.load({ capacityBytes: 64 << 20 });
    r.lu.unit.timeScale = 1e-6;
    const w = await run(r, Cdb.write6(new Uint8Array(1 << 20)));
    expect(w.sync).toBe(true);
    const stored = r.lu.drive.counters.bytesWritten;
    expect(stored).toBeLessThan(100_000);
    expect(r.lu.drive.streamingStats()?.bufferFillBytes).toBe(stored);
    expect((await run(r, Cdb.write6(pattern(1 << 20, 1)))).sync).toBe(true);
    expect(r.lu.drive.streamingStats()?.bufferFillBytes).toBe(r.lu.drive.counters.bytesWritten);
    // WRITE FILEMARKS with IMMED 0 waits until the buffer is on tape.
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
    t.real.t += 10e-6; // 10 device seconds later
    expect(r.lu.drive.streamingStats()).toMatchObject({ bufferFillBytes: 0, motion: 'stopped', backhitches: 0 });
    // With IMMED the filemark stays in the buffer with the data before it.
    expect((await run(r, Cdb.write6(randomBytes(1 << 20)))).sync).toBe(true);
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1, { immediate: true })));
    expect(r.lu.drive.streamingStats()?.bufferFillBytes).toBeGreaterThanOrEqual(1 << 20);
  });

  it('a host that syncs after every small write shoe-shines: one backhitch per WRITE FILEMARKS after the first', async () => {
    const t = await timedRig();
    r = t.r;
    await r.load({ capacityBytes: 64 << 20 });
    r.lu.unit.timeScale = 1e-6;
    for (let i = 0; i < 5; i++) {
      expectGood(await r.port.execute(Cdb.write6(pattern(1 << 20, i))));
      expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
      t.real.t += 10e-6; // 10 device seconds: the flush (and any backhitch) is over
    }
    const s = r.lu.drive.streamingStats();
    expect(s?.backhitches).toBe(4);
    expect(s?.stoppedSeconds).toBeGreaterThanOrEqual(4 * drivePersonality('ibm-lto7-hh').timing.backhitchSeconds);
    // A REWIND leaves the tape at its place: the next write starts without one.
    expectGood(await r.port.execute(Cdb.rewind()));
    expectGood(await r.port.execute(Cdb.write6(pattern(1 << 20, 9))));
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
    expect(r.lu.drive.streamingStats()?.backhitches).toBe(4);
  });

  it('BUFFERED MODE 0 (MODE SELECT header) makes each WRITE wait for its data to reach tape; 2 is refused', async () => {
    const t = await timedRig();
    r = t.r;
    await r.load({ capacityBytes: 64 << 20 });
    expectGood(await r.port.execute(headerOnly(0x00)));
    await drain(r.port);
    const sensed = await r.port.execute(Cdb.modeSense6({ page: 0x00 }));
    expect((sensed.data[2]! >> 4) & 0x07).toBe(0);
    r.lu.unit.timeScale = 1e-6;
    for (let i = 0; i < 3; i++) {
      const w = await run(r, Cdb.write6(pattern(1 << 20, i)));
      expect(w.sync, `WRITE ${i}`).toBe(false);
      expect(w.result.status).toBe(ScsiStatus.GOOD);
      // Its wait covered the data: once the clock passes it, nothing is left in the buffer.
      t.real.t += 10e-6;
      expect(r.lu.drive.streamingStats()?.bufferFillBytes).toBe(0);
    }
    expect(r.lu.drive.streamingStats()?.backhitches).toBe(2);
    const bad = await r.port.execute(headerOnly(0x20));
    expect(expectSense(bad, Sense.INVALID_FIELD_IN_PARAMETER_LIST).fieldPointer).toEqual({ inCdb: false, byte: 2, bit: 6 });
    expectGood(await r.port.execute(headerOnly(0x10)));
    await drain(r.port);
    expect((await run(r, Cdb.write6(pattern(1 << 20, 7)))).sync).toBe(true);
  });

  it('the device clock is real time divided by the time scale', async () => {
    // LTO-9 with a 16 MB buffer, so that a few writes start the tape.
    const p = drivePersonality('ibm-lto9-fh');
    const real = { t: 0 };
    r = await rig({ ...p, timing: { ...p.timing, bufferBytes: 16e6 } }, { clock: () => real.t });
    await r.load({ capacityBytes: 1 << 26, mediaType: 'LTO9', barcode: 'A00001L9' });
    r.lu.unit.timeScale = 0.01;
    // 12 MB in the buffer: the tape starts (above half of it) at the top step.
    for (let i = 0; i < 3; i++) expect((await run(r, Cdb.write6(pattern(4_000_000, i)))).sync).toBe(true);
    const s0 = r.lu.drive.streamingStats();
    expect(s0).toMatchObject({ motion: 'streaming', speedMBps: 408, bufferFillBytes: 12e6 });
    // 0.1 ms real at scale 0.01 is 10 ms of device time: 4.08 MB drained.
    real.t += 0.0001;
    expect(s0!.bufferFillBytes - r.lu.drive.streamingStats()!.bufferFillBytes).toBeCloseTo(4.08e6, -1);
  });
});
