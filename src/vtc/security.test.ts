import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameCodec } from '../net/frame.js';
import { HmacSha256 } from '../ptp/mac.js';
import { LocalCluster } from '../scenario/cluster.js';
import { ControlClient } from './control-client.js';
import { OPERATOR, participants, RpcClient, vtsParticipant } from './rpc.js';

let dir: string;
let c: LocalCluster;
const enc = new TextEncoder();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-sec-'));
  c = await LocalCluster.start({ n: 4, dir, control: true });
  await c.waitFor(() => Object.values(c.statuses()).every((s) => s === 'online-both'), 8000);
});
afterAll(async () => {
  await c.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function sendRaw(port: number, frames: Uint8Array[]): Promise<void> {
  const sock = createConnection({ host: '127.0.0.1', port });
  await new Promise<void>((r, j) => {
    sock.once('connect', () => r());
    sock.once('error', j);
  });
  for (const f of frames) sock.write(f);
  await new Promise((r) => setTimeout(r, 150));
  sock.destroy();
}

/** RPC payload: u32 JSON length, JSON envelope. */
function rpcPayload(env: unknown): Uint8Array {
  const json = enc.encode(JSON.stringify(env));
  const p = new Uint8Array(4 + json.length);
  new DataView(p.buffer).setUint32(0, json.length);
  p.set(json, 4);
  return p;
}

describe('bad frames are counted and never act', () => {
  it('peer port: bad MAC, replayed, unknown VTC and oversized frames', async () => {
    const vtc1 = c.agent('vtc1');
    const names = c.names;
    const good = new FrameCodec({ vtcs: names, self: 'vtc2', mac: new HmacSha256(c.secret) }, 0);
    const forged = new FrameCodec({ vtcs: names, self: 'vtc2', mac: new HmacSha256('not the cluster secret 12345') }, 0);
    const stranger = new FrameCodec({ vtcs: [...names, 'vtc9'], self: 'vtc9', mac: new HmacSha256(c.secret) }, 0);
    const stats = vtc1.frameStats();
    const before = { ...stats.rejected };
    const propose = enc.encode(JSON.stringify({ t: 'propose', key: { seq: 1 } }));
    const genuine = good.seal('vtc1', enc.encode(JSON.stringify({ t: 'sync-req', after: 0 })), Date.now());
    await sendRaw(vtc1.listenPort, [forged.seal('vtc1', propose, Date.now()), genuine, genuine, stranger.seal('vtc1', propose, Date.now())]);
    await sendRaw(vtc1.listenPort, [new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1, 2, 3])]);
    expect(stats.rejected['bad-mac'] - before['bad-mac']).toBe(1);
    expect(stats.rejected.replayed - before.replayed).toBe(1);
    expect(stats.rejected['unknown-sender'] - before['unknown-sender']).toBe(1);
    expect(vtc1.transportStats().poisoned).toBe(1);
    expect(vtc1.engine.newestKey().seq).toBe(0);
    expect(vtc1.status().rejectedFrames).toBeGreaterThanOrEqual(3);
  });

  it('an authenticated frame carrying a forged key or ballot is refused by the engine', async () => {
    const vtc1 = c.agent('vtc1');
    const good = new FrameCodec({ vtcs: c.names, self: 'vtc3', mac: new HmacSha256(c.secret) }, 0);
    const before = vtc1.engine.stats.rejected;
    const ballot = { t: 'ballot', ballot: { ptpId: 'ptp1', election: { seq: 0, vts: 'A', round: 0 }, voter: 'vtc3', keySeq: 0, choice: 'yes', why: 'forged', mac: '00'.repeat(32) } };
    await sendRaw(vtc1.listenPort, [good.seal('vtc1', enc.encode(JSON.stringify(ballot)), Date.now())]);
    expect(vtc1.engine.stats.rejected).toBe(before + 1);
    expect(vtc1.status().lastElection).toBeNull();
    expect(Object.values(c.statuses())).toEqual(['online-both', 'online-both', 'online-both', 'online-both']);
  });

  it('control endpoint: a forged operator command is dropped, a replayed one runs once', async () => {
    const vtc2 = c.agent('vtc2');
    const names = participants(c.names);
    const forged = new FrameCodec({ vtcs: names, self: OPERATOR, mac: new HmacSha256('not the cluster secret 12345') }, 0);
    const good = new FrameCodec({ vtcs: names, self: OPERATOR, mac: new HmacSha256(c.secret) }, 0);
    const cmd = (id: number, t: number) => rpcPayload({ id, m: 'command', p: { cmd: { command: 'threshold-set', threshold: t } } });
    await sendRaw(vtc2.controlPort, [forged.seal('vtc2', cmd(1, 3), Date.now())]);
    expect(vtc2.controlStats()!.frames.rejected['bad-mac']).toBe(1);
    expect(vtc2.engine.newestKey().seq).toBe(0);
    const frame = good.seal('vtc2', cmd(2, 1), Date.now());
    await sendRaw(vtc2.controlPort, [frame]);
    await c.waitFor(() => vtc2.engine.newestKey().seq === 1, 3000);
    await sendRaw(vtc2.controlPort, [frame]);
    await new Promise((r) => setTimeout(r, 200));
    expect(vtc2.controlStats()!.frames.rejected.replayed).toBe(1);
    expect(vtc2.engine.newestKey().seq).toBe(1);
    expect(vtc2.engine.threshold()).toBe(1);
  });

  it('VTS server: only configured VTCs may operate it; the operator may only read its view', async () => {
    const port = c.vts.A.port;
    const op = new RpcClient(OPERATOR, vtsParticipant('A'), { host: '127.0.0.1', port }, { names: participants(c.names), mac: new HmacSha256(c.secret) }, 2000);
    try {
      expect(((await op.call('view')).result as { inOperation: boolean }).inOperation).toBe(true);
      await expect(op.call('set-out', { seq: 99 })).rejects.toMatchObject({ code: 'EVTC_NOT_ALLOWED' });
    } finally {
      op.close();
    }
    const forged = new RpcClient('vtc1', vtsParticipant('A'), { host: '127.0.0.1', port }, { names: participants(c.names), mac: new HmacSha256('not the cluster secret 12345') }, 300);
    try {
      await expect(forged.call('set-out', { seq: 99 })).rejects.toMatchObject({ code: 'EVTC_TIMEOUT' });
    } finally {
      forged.close();
    }
    expect(c.vts.A.serverStats()!.frames.rejected['bad-mac']).toBe(1);
    expect(c.vts.A.unit!.inOperation).toBe(true);
  });

  it('the control client reports a VTC that is not there as unreachable', async () => {
    const cc = new ControlClient(c.names, 'vtc1', { host: '127.0.0.1', port: 1 }, c.secret, 1000);
    await expect(cc.status()).rejects.toMatchObject({ code: 'EVTC_UNREACHABLE' });
    cc.close();
  });
});
