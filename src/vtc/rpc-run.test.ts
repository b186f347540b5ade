/**
 * Frames bound to the receiver's run (src/net/frame.ts): a VTS that restarted while its
 * caller's clock is behind, or whose own clock stepped back, is reachable again after one
 * refused call, not for as long as the skew lasts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HmacSha256 } from '../ptp/mac.js';
import { systemClock, type Clock } from '../platform/clock.js';
import { RpcClient, RpcServer, vtsParticipant } from './rpc.js';

const names = ['vtc1', 'vtc2', vtsParticipant('A')];
const mac = new HmacSha256('run binding test secret 0123456789');
/** The system clock shifted by `offsetMs`. */
const shifted = (offsetMs: number): Clock => ({ ...systemClock, now: () => systemClock.now() + offsetMs });

const stops: (() => unknown)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function serve(clock: Clock): Promise<{ server: RpcServer; port: number }> {
  const server = new RpcServer(vtsParticipant('A'), { names, mac }, async (_from, m) => ({ result: { echo: m } }), { clock });
  const port = await server.listen('127.0.0.1', 0);
  stops.push(() => server.close());
  return { server, port };
}

function client(port: number, clock: Clock): RpcClient {
  const c = new RpcClient('vtc1', vtsParticipant('A'), { host: '127.0.0.1', port }, { names, mac }, 400, { clock });
  stops.push(() => c.close());
  return c;
}

describe('RPC frames bound to the server run', () => {
  it('a caller whose clock is 5 s behind a server that just started is refused once, then served', async () => {
    const { server, port } = await serve(systemClock);
    const c = client(port, shifted(-5000));
    // Sent "before" the server started by the caller's clock: refused, and the run announced.
    await expect(c.call('view')).rejects.toThrow(/did not answer/);
    expect(server.stats.frames.rejected.stale).toBe(1);
    // Every later call is bound to the run, whatever the clocks say.
    for (let i = 0; i < 3; i++) expect((await c.call('view')).result).toEqual({ echo: 'view' });
    expect(server.stats.frames.rejected.stale).toBe(1);
  });

  it('a server whose clock is 5 s behind its caller\'s start answers at once: its replies are bound to the caller\'s run', async () => {
    const { port } = await serve(shifted(-5000));
    const c = client(port, systemClock);
    expect((await c.call('view')).result).toEqual({ echo: 'view' });
  });
});
