/**
 * RemoteVtsPort judges the VTS before it records a key's seq there (record, start, stop):
 * the boot the coordinator planned against, and no older image than the seq the VTS
 * confirmed recording. A seq recorded on an unjudged (maybe restored) image would let it
 * pass every later election (docs/protocol-notes.md, "Only a key that judges a VTS is recorded on it").
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { VtsOp } from '../ptp/engine.js';
import type { VtsName } from '../ptp/types.js';
import type { CopyQueue } from './copier.js';
import type { RemoteView, VtsClient } from './vts-client.js';
import { RemoteVtsPort } from './vts-port.js';

function stubVts(name: VtsName, bootId: string, lastKeySeq: number) {
  const calls: string[] = [];
  const view = (): RemoteView => ({ name, inOperation: true, lastKeySeq, behind: [], bootId, imageId: 'img', mounts: 0, refusing: false });
  const client = {
    name,
    view: () => Promise.resolve(view()),
    record: (seq: number) => (calls.push(`record ${seq}`), Promise.resolve(view())),
    setIn: (seq: number | null) => (calls.push(`setIn ${seq}`), Promise.resolve(view())),
    setOut: (seq: number) => (calls.push(`setOut ${seq}`), Promise.resolve(view())),
    refuse: (on: boolean) => (calls.push(`refuse ${on}`), Promise.resolve(view())),
    abort: () => Promise.resolve({ aborted: 0 }),
  };
  return { client: client as unknown as VtsClient, calls };
}

function portFor(bootId: string, lastKeySeq: number) {
  const a = stubVts('A', bootId, lastKeySeq);
  const b = stubVts('B', 'boot-b', 0);
  const port = new RemoteVtsPort('A', { A: a.client, B: b.client }, {} as CopyQueue, pino({ level: 'silent' }), 500);
  return { port, calls: a.calls };
}

describe('RemoteVtsPort judges the VTS before recording a seq', () => {
  it.each<[string, VtsOp]>([
    ['a record planned for another boot', { op: 'record', seq: 5, mac: 'm', bootId: 'boot-1', minSeq: 0 }],
    ['a record on an image older than the seq it confirmed', { op: 'record', seq: 5, mac: 'm', bootId: 'boot-2', minSeq: 3 }],
    ['a record by a VTC that knows no boot, on an older image', { op: 'record', seq: 5, mac: 'm', minSeq: 3 }],
    ['a start on an older image', { op: 'start', seq: 5, mac: 'm', bootId: 'boot-2', minSeq: 3 }],
    ['a stop on an older image', { op: 'stop', seq: 5, mac: 'm', mode: 'forced', expediteTimeout: 0, drainTo: null, minSeq: 3 }],
  ])('refuses %s and records nothing', async (_what, op) => {
    const { port, calls } = portFor('boot-2', 1);
    const r = await port.execute(op);
    expect(r.ok).toBe(false);
    expect(calls).toEqual([]);
  });

  it('records on the boot it judged, and starts without a seq whatever the image', async () => {
    const { port, calls } = portFor('boot-2', 3);
    expect((await port.execute({ op: 'record', seq: 5, mac: 'm', bootId: 'boot-2', minSeq: 3 })).ok).toBe(true);
    const older = portFor('boot-2', 1);
    expect((await older.port.execute({ op: 'start', seq: null })).ok).toBe(true);
    expect(calls).toEqual(['record 5']);
    expect(older.calls).toEqual(['setIn null']);
  });
});
