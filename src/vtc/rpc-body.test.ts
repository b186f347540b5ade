/**
 * RpcClient.call reads a call's body only while it runs: the virtual drive hands it the iSCSI
 * target's pooled Data-Out buffer, reused once the WRITE is answered. And calls leave in the
 * order they were made, also when the connection opens between two of them.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { HmacSha256 } from '../ptp/mac.js';
import type { NetSocket, PlatformNet, SocketHandlers } from '../platform/net.js';
import { RpcClient, RpcServer, vtsParticipant } from './rpc.js';

const names = ['vtc1', vtsParticipant('A')];
const mac = new HmacSha256('rpc body test secret 0123456789');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const stops: (() => unknown)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function serve(): Promise<{ port: number; got: string[] }> {
  const got: string[] = [];
  const server = new RpcServer(vtsParticipant('A'), { names, mac }, async (_from, m, _p, body) => {
    got.push(`${m} ${sha(body)}`);
    return { result: { ok: true } };
  });
  const port = await server.listen('127.0.0.1', 0);
  stops.push(() => server.close());
  return { port, got };
}

function client(port: number, net?: PlatformNet): RpcClient {
  const c = new RpcClient('vtc1', vtsParticipant('A'), { host: '127.0.0.1', port }, { names, mac }, 2000, net === undefined ? {} : { net });
  stops.push(() => c.close());
  return c;
}

const pattern = (seed: number): Buffer => Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 13 + seed) & 0xff));

describe('RpcClient.call and its body', () => {
  it('on an open connection, a body the caller overwrites as soon as call returns arrives as it was', async () => {
    const { port, got } = await serve();
    const c = client(port);
    await c.call('hello');
    const buf = pattern(1);
    const want = sha(buf);
    const answered = c.call('write', {}, { body: buf });
    buf.fill(0);
    await answered;
    expect(got).toEqual([`hello ${sha(new Uint8Array(0))}`, `write ${want}`]);
  });

  it('while the connection is set up, a body the caller overwrites at once arrives as it was', async () => {
    const { port, got } = await serve();
    const c = client(port);
    const bufs = [pattern(2), pattern(3)];
    const want = bufs.map(sha);
    const answered = bufs.map((b) => c.call('write', {}, { body: b }));
    for (const b of bufs) b.fill(0xee);
    await Promise.all(answered);
    expect(got).toEqual(want.map((w) => `write ${w}`));
  });
});

/** A socket whose connection the test opens, and which keeps what is written to it. */
class HeldSocket implements NetSocket {
  readonly writes: Uint8Array[] = [];
  destroyed = false;
  handlers: SocketHandlers | undefined;
  write(data: Uint8Array): void {
    this.writes.push(Uint8Array.from(data));
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.handlers?.close?.();
  }
  setHandlers(h: SocketHandlers): void {
    this.handlers = h;
  }
}

describe('RpcClient.call order', () => {
  it('a call made once the connection opened, while an earlier call still waits to be sent, leaves after it', async () => {
    const sock = new HeldSocket();
    const net: PlatformNet = { listen: () => Promise.reject(new Error('not used')), connect: () => sock };
    const c = client(1, net);
    const first = c.call('write', {}, { body: Buffer.from('FIRST-BLOCK') });
    // The connection opens; the first call's send is queued behind it, not yet made.
    sock.handlers!.connect!();
    const second = c.call('write', {}, { body: Buffer.from('SECOND-BLOCK') });
    for (const p of [first, second]) p.catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    const order = sock.writes.map((w) => (Buffer.from(w).includes('FIRST-BLOCK') ? 'first' : Buffer.from(w).includes('SECOND-BLOCK') ? 'second' : '?'));
    expect(order).toEqual(['first', 'second']);
  });
});
