import { createConnection } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HmacSha256 } from '../ptp/mac.js';
import { FrameCodec } from './frame.js';
import { TcpTransport } from './tcp-transport.js';
import { SecureChannel } from './transport.js';

const vtcs = ['vtc0', 'vtc1'];
const mac = new HmacSha256('cluster secret for tests 0123');
const open: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function pair(): Promise<{ a: SecureChannel; b: SecureChannel; tb: TcpTransport; portB: number }> {
  const ta = new TcpTransport([]);
  const tb = new TcpTransport([]);
  open.push(ta, tb);
  const portA = await ta.listen('127.0.0.1', 0);
  const portB = await tb.listen('127.0.0.1', 0);
  ta.setPeer({ name: 'vtc1', host: '127.0.0.1', port: portB });
  tb.setPeer({ name: 'vtc0', host: '127.0.0.1', port: portA });
  const now = (): number => Date.now();
  return { a: new SecureChannel(ta, { vtcs, self: 'vtc0', mac }, now), b: new SecureChannel(tb, { vtcs, self: 'vtc1', mac }, now), tb, portB };
}

const next = (ch: SecureChannel): Promise<{ from: string; message: unknown }> => new Promise((r) => ch.onDeliver((from, message) => r({ from, message })));

describe('TcpTransport + SecureChannel over 127.0.0.1', () => {
  it('delivers authenticated messages both ways', async () => {
    const { a, b } = await pair();
    const got = next(b);
    a.send('vtc1', { t: 'hello', hi: 1, top: 1, topMac: '' });
    expect(await got).toEqual({ from: 'vtc0', message: { t: 'hello', hi: 1, top: 1, topMac: '' } });
    const back = next(a);
    b.send('vtc0', { t: 'sync-req', after: 0 });
    expect((await back).message).toEqual({ t: 'sync-req', after: 0 });
  });

  it('counts and drops forged and replayed frames; an oversized length closes the connection', async () => {
    const { a, b, tb, portB } = await pair();
    const forged = new FrameCodec({ vtcs, self: 'vtc0', mac: new HmacSha256('wrong secret wrong secret 00') }, 0).seal('vtc1', new TextEncoder().encode('{}'), Date.now());
    const genuine = new FrameCodec({ vtcs, self: 'vtc0', mac }, 0).seal('vtc1', new TextEncoder().encode('{"t":"sync-req","after":5}'), Date.now());
    const delivered: unknown[] = [];
    b.onDeliver((_f, m) => delivered.push(m));
    const sock = createConnection({ host: '127.0.0.1', port: portB });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(forged);
    sock.write(genuine);
    sock.write(genuine);
    sock.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff]));
    await new Promise<void>((r) => sock.once('close', () => r()));
    expect(delivered).toEqual([{ t: 'sync-req', after: 5 }]);
    expect(b.stats.rejected['bad-mac']).toBe(1);
    expect(b.stats.rejected.replayed).toBe(1);
    expect(tb.stats.poisoned).toBe(1);
    void a;
  });
});
