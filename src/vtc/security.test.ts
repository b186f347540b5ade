import { sign as edSign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FrameCodec, HEADER_SIZE } from '../net/frame.js';
import { canonicalBytes } from '../ptp/codec.js';
import { HmacSha256, toHex } from '../ptp/mac.js';
import { LocalCluster } from '../scenario/cluster.js';
import { ControlClient } from './control-client.js';
import { BadRequestError } from './errors.js';
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

/**
 * Waits until `check` passes (up to 10 s): on a loaded machine the receiver may take longer
 * than sendRaw's pause to read and refuse what it was sent. Checks that something did NOT
 * happen follow a settled positive one, which shows the frames were handled.
 */
const settled = (check: () => void): Promise<void> => vi.waitFor(check, { timeout: 10_000, interval: 10 });

const creds = () => ({ secret: c.secret, operatorKey: c.keyring.operator.privateKey });

/** The bytes a real ControlClient puts on the wire for one call (caught by a listener that never answers). */
async function captureOperatorFrame(to: string, call: (cc: ControlClient) => Promise<unknown>): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  const socks: Socket[] = [];
  const srv = createServer((s) => {
    socks.push(s);
    s.on('data', (d: Buffer) => chunks.push(d));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const cc = new ControlClient(c.names, to, { host: '127.0.0.1', port: (srv.address() as AddressInfo).port }, creds(), 3000);
  const pending = call(cc).catch(() => undefined);
  const whole = (): boolean => {
    const b = Buffer.concat(chunks);
    return b.length >= 4 && b.length >= 4 + b.readUInt32BE(0);
  };
  for (let i = 0; i < 100 && !whole(); i++) await new Promise((r) => setTimeout(r, 20));
  cc.close();
  await pending;
  for (const s of socks) s.destroy();
  await new Promise<void>((r) => srv.close(() => r()));
  return new Uint8Array(Buffer.concat(chunks));
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
    await settled(() => {
      expect(stats.rejected['bad-mac'] - before['bad-mac']).toBe(1);
      expect(stats.rejected.replayed - before.replayed).toBe(1);
      expect(stats.rejected['unknown-sender'] - before['unknown-sender']).toBe(1);
      expect(vtc1.transportStats().poisoned).toBe(1);
    });
    expect(vtc1.engine.newestKey().seq).toBe(0);
    expect(vtc1.status().rejectedFrames).toBeGreaterThanOrEqual(3);
  });

  it('an authenticated frame carrying a forged key or ballot is refused by the engine', async () => {
    const vtc1 = c.agent('vtc1');
    const good = new FrameCodec({ vtcs: c.names, self: 'vtc3', mac: new HmacSha256(c.secret) }, 0);
    const before = vtc1.engine.stats.rejected;
    const ballot = { t: 'ballot', ballot: { ptpId: 'ptp1', election: { seq: 0, vts: 'A', round: 0 }, voter: 'vtc3', keySeq: 0, choice: 'yes', why: 'forged', mac: '00'.repeat(32) } };
    await sendRaw(vtc1.listenPort, [good.seal('vtc1', enc.encode(JSON.stringify(ballot)), Date.now())]);
    await settled(() => expect(vtc1.engine.stats.rejected).toBe(before + 1));
    expect(vtc1.status().lastElection).toBeNull();
    expect(Object.values(c.statuses())).toEqual(['online-both', 'online-both', 'online-both', 'online-both']);
  });

  it('a ballot signed by another VTC\'s key, or with the shared cluster secret, is refused and counted', async () => {
    const vtc1 = c.agent('vtc1');
    const asVtc3 = new FrameCodec({ vtcs: c.names, self: 'vtc3', mac: new HmacSha256(c.secret) }, 0);
    const body = { ptpId: 'ptp1', election: { seq: 0, vts: 'A', round: 7 }, voter: 'vtc3', keySeq: 0, choice: 'yes', why: 'forged' };
    const bytes = canonicalBytes({ ...body, mac: undefined });
    const byVtc2 = toHex(edSign(null, bytes, c.keyring.privateKeys.get('vtc2')!));
    const bySecret = toHex(new HmacSha256(c.secret).sign(bytes));
    const rejected = (): number => vtc1.engine.stats.rejectedReasons['EPTP_BAD_SIGNATURE'] ?? 0;
    const before = rejected();
    const frames = [byVtc2, bySecret].map((mac) => asVtc3.seal('vtc1', enc.encode(JSON.stringify({ t: 'ballot', ballot: { ...body, mac } })), Date.now()));
    await sendRaw(vtc1.listenPort, frames);
    await settled(() => expect(rejected() - before).toBe(2));
    expect(vtc1.status().lastElection).toBeNull();
  });

  it('control endpoint: an operator command runs once; replayed, re-wrapped, tampered, unsigned or forged copies are refused and counted', async () => {
    const vtc2 = c.agent('vtc2');
    const names = participants(c.names);
    const stats = vtc2.controlStats()!;
    const insider = new FrameCodec({ vtcs: names, self: OPERATOR, mac: new HmacSha256(c.secret) }, 0);
    const seq0 = vtc2.engine.newestKey().seq;
    const frame = await captureOperatorFrame('vtc2', (cc) => cc.command({ command: 'threshold-set', threshold: 3 }));
    expect(frame.length).toBeGreaterThan(HEADER_SIZE + 32);
    const payload = frame.slice(HEADER_SIZE, frame.length - 32);
    await sendRaw(vtc2.controlPort, [frame]);
    await c.waitFor(() => vtc2.engine.newestKey().seq === seq0 + 1, 5000);
    expect(vtc2.engine.threshold()).toBe(3);
    // The same bytes again: the frame layer has seen (sentAt, counter).
    await sendRaw(vtc2.controlPort, [frame]);
    await settled(() => expect(stats.frames.rejected.replayed).toBe(1));
    // A holder of the cluster secret wraps the captured request in a fresh frame: the operator nonce is spent.
    await sendRaw(vtc2.controlPort, [insider.seal('vtc2', payload, Date.now())]);
    await settled(() => expect(stats.operator.replayed).toBe(1));
    // One byte changed on the wire: the frame MAC fails.
    const flipped = frame.slice();
    flipped[HEADER_SIZE + 10] = flipped[HEADER_SIZE + 10]! ^ 0x01;
    await sendRaw(vtc2.controlPort, [flipped]);
    await settled(() => expect(stats.frames.rejected['bad-mac']).toBe(1));
    // One byte changed inside the request, re-sealed with the cluster secret: the operator signature fails.
    const text = Buffer.from(payload).toString('latin1');
    const at = text.indexOf('"threshold":3') + '"threshold":'.length;
    const tampered = payload.slice();
    tampered[at] = '2'.charCodeAt(0);
    await sendRaw(vtc2.controlPort, [insider.seal('vtc2', tampered, Date.now())]);
    await settled(() => expect(stats.operator.badSignature).toBe(1));
    // No operator signature at all (the cluster secret alone), and a frame with a wrong secret.
    const cmd = (id: number) => rpcPayload({ id, m: 'command', p: { cmd: { command: 'ptp-start' } } });
    await sendRaw(vtc2.controlPort, [insider.seal('vtc2', cmd(90), Date.now())]);
    await settled(() => expect(stats.operator.unsigned).toBe(1));
    const forged = new FrameCodec({ vtcs: names, self: OPERATOR, mac: new HmacSha256('not the cluster secret 12345') }, 0);
    await sendRaw(vtc2.controlPort, [forged.seal('vtc2', cmd(91), Date.now())]);
    await settled(() => expect(stats.frames.rejected['bad-mac']).toBe(2));
    // A sender outside the participant list, and a VTC posing as the operator.
    const stranger = new FrameCodec({ vtcs: [...names, 'intruder'], self: 'intruder', mac: new HmacSha256(c.secret) }, 0);
    await sendRaw(vtc2.controlPort, [stranger.seal('vtc2', cmd(92), Date.now())]);
    await settled(() => expect(stats.frames.rejected['unknown-sender']).toBe(1));
    const asVtc1 = new RpcClient('vtc1', 'vtc2', { host: '127.0.0.1', port: vtc2.controlPort }, { names, mac: new HmacSha256(c.secret) }, 2000);
    try {
      await expect(asVtc1.call('command', { cmd: { command: 'threshold-set', threshold: 2 } })).rejects.toMatchObject({ code: 'EVTC_NOT_ALLOWED' });
    } finally {
      asVtc1.close();
    }
    expect(stats.operator.accepted).toBe(1);
    expect(vtc2.engine.newestKey().seq).toBe(seq0 + 1);
    expect(vtc2.engine.threshold()).toBe(3);
  });

  it('control endpoint: a malformed command is refused naming the field, and nothing runs', async () => {
    const vtc3 = c.agent('vtc3');
    const seq0 = vtc3.engine.newestKey().seq;
    const op = new RpcClient(OPERATOR, 'vtc3', { host: '127.0.0.1', port: vtc3.controlPort }, { names: participants(c.names), mac: new HmacSha256(c.secret), operatorPrivateKey: c.keyring.operator.privateKey }, 3000);
    const refused = async (p: Record<string, unknown>, field: RegExp, m = 'command'): Promise<void> => {
      const e = await op.call(m, p).then(
        () => null,
        (err: unknown) => err as { code: string; message: string },
      );
      expect(e?.code).toBe('EVTC_BAD_REQUEST');
      expect(e?.message).toMatch(field);
    };
    try {
      const before = vtc3.controlStats()!.badRequests;
      await refused({ cmd: { command: 'threshold-set', threshold: '2' } }, /cmd\.threshold: .*number/);
      await refused({ cmd: { command: 'threshold-set', threshold: 4 } }, /cmd\.threshold: the threshold must be below the number of VTCs \(4\)/);
      await refused({ cmd: { command: 'threshold-set', threshold: -1 } }, /cmd\.threshold: the threshold must be at least 0/);
      await refused({ cmd: { command: 'vts-out', vts: 'C', mode: 'normal' } }, /cmd\.vts: .*"A"\|"B"/);
      await refused({ cmd: { command: 'vts-out', vts: 'A', mode: 'fast' } }, /cmd\.mode: .*"normal"/);
      await refused({ cmd: { command: 'vts-out', vts: 'A', mode: 'normal', now: true } }, /cmd: .*"now"/);
      await refused({ cmd: { command: 'reboot' } }, /cmd\.command/);
      await refused({ cmd: { command: 'ptp-start' }, timeoutMs: 1e12 }, /timeoutMs/);
      await refused({ volser: 'v1;rm' }, /volser: a VOLSER is 1-6 characters/, 'write-volume');
      await refused({ cut: ['vtc1', 'vtc77'] }, /cut\.1/, 'faults');
      await refused({}, /unknown method "format-disk"/, 'format-disk');
      expect(vtc3.controlStats()!.badRequests - before).toBe(11);
    } finally {
      op.close();
    }
    expect(vtc3.engine.newestKey().seq).toBe(seq0);
    // The operator's client refuses the same before sending anything.
    const cc = new ControlClient(c.names, 'vtc3', { host: '127.0.0.1', port: 1 }, creds(), 1000);
    await expect(cc.command({ command: 'vts-out', vts: 'C', mode: 'normal' })).rejects.toThrow(BadRequestError);
    await expect(cc.command({ command: 'vts-out', vts: 'C', mode: 'normal' })).rejects.toThrow(/command: cmd\.vts/);
    cc.close();
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
    const cc = new ControlClient(c.names, 'vtc1', { host: '127.0.0.1', port: 1 }, creds(), 1000);
    await expect(cc.status()).rejects.toMatchObject({ code: 'EVTC_UNREACHABLE' });
    cc.close();
  });
});
