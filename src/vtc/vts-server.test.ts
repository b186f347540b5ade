import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HmacSha256 } from '../ptp/mac.js';
import { MAX_BODY, participants } from './rpc.js';
import { VtsClient } from './vts-client.js';
import { VtsHost } from './vts-host.js';

const SECRET = 'vts-server-test-secret';
const VTCS = ['vtc1', 'vtc2'];
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

let dir: string;
let host: VtsHost;
const clients: VtsClient[] = [];

async function startHost(mountOwnerGoneMs?: number): Promise<void> {
  host = new VtsHost({ name: 'A', vtcs: VTCS, secret: SECRET, listen: { host: '127.0.0.1', port: 0 }, cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state'), ...(mountOwnerGoneMs === undefined ? {} : { mountOwnerGoneMs }) });
  await host.start();
}

/** A VTC process's connection to VTS A: `run` is that process's run id. */
function client(self: string, run?: string): VtsClient {
  const c = new VtsClient(self, 'A', { host: '127.0.0.1', port: host.port }, { names: participants(VTCS), mac: new HmacSha256(SECRET) }, 5_000, run);
  clients.push(c);
  return c;
}

async function readAll(c: VtsClient, volser: string): Promise<string> {
  const h = await c.mount(volser, { writable: false });
  const r = await c.read(h, 1 << 20);
  await c.abandon(h);
  return r.kind === 'block' ? dec(r.data) : r.kind;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-vts-server-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await host.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('mount ownership', () => {
  it('a VTC that starts again frees the mounts its killed process left, committing none of their data', async () => {
    await startHost();
    const first = client('vtc1', 'run-1');
    const h0 = await first.mount('V00001', { scratch: true });
    await first.write(h0, enc('committed'));
    await first.close(h0, {});
    const h = await first.mount('V00001', { scratch: true });
    await first.write(h, enc('torn write'));
    // Power loss of the VTC: its connection goes, nothing else happens.
    first.disconnect();

    const again = client('vtc1', 'run-2');
    // Its first heartbeat names the new run: the old mount is abandoned, the volume free again.
    expect((await again.view()).mounts).toBe(0);
    expect(await readAll(again, 'V00001')).toBe('committed');
    const h2 = await again.mount('V00001', { scratch: true });
    await again.write(h2, enc('second'));
    await again.close(h2, {});
    expect(await readAll(again, 'V00001')).toBe('second');
  });

  it('a late call of the replaced run is refused and cannot take the mounts of the new run', async () => {
    await startHost();
    const old = client('vtc1', 'run-1');
    await old.view();
    const now = client('vtc1', 'run-2');
    const h = await now.mount('V00002', { scratch: true });
    await expect(old.view()).rejects.toMatchObject({ code: 'ESTALERUN' });
    await expect(old.mount('V00003', { scratch: true })).rejects.toMatchObject({ code: 'ESTALERUN' });
    await now.write(h, enc('kept'));
    await now.close(h, {});
    expect(await readAll(now, 'V00002')).toBe('kept');
  });

  it("another VTC's restart, or the same run calling again, leaves a mount alone; handles are their owner's", async () => {
    await startHost();
    const one = client('vtc1', 'run-1');
    const h = await one.mount('V00004', { scratch: true });
    await one.write(h, enc('mine'));
    await client('vtc2', 'run-a').view();
    await client('vtc2', 'run-b').view();
    await one.view();
    await expect(client('vtc2', 'run-b').write(h, enc('theirs'))).rejects.toMatchObject({ code: 'EVTC_BAD_REQUEST' });
    await one.close(h, {});
    expect(await readAll(one, 'V00004')).toBe('mine');
  });

  it('a mount whose VTC made no call within the bound is abandoned uncommitted; a VTC still calling keeps its mount', async () => {
    await startHost(300);
    const gone = client('vtc1');
    const h = await gone.mount('V00005', { scratch: true });
    await gone.write(h, enc('never closed'));
    gone.disconnect();
    const live = client('vtc2', 'run-x');
    const hl = await live.mount('V00006', { scratch: true });
    const until = Date.now() + 1_000;
    while (Date.now() < until) {
      await live.view();
      await new Promise((r) => setTimeout(r, 50));
    }
    await expect(live.mount('V00005', { writable: false })).rejects.toMatchObject({ code: 'ENOVOLUME' });
    const hs = await live.mount('V00005', { scratch: true });
    await live.abandon(hs);
    await live.write(hl, enc('still mine'));
    await live.close(hl, {});
    expect(await readAll(live, 'V00006')).toBe('still mine');
  });
});

describe('peer copy export', () => {
  it('a volume of several MiB is exported in chunks a frame carries, every byte in order', async () => {
    await startHost();
    const c = client('vtc1');
    const data = new Uint8Array(3 * 1024 * 1024 + 12_345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const h = await c.mount('V00009', { scratch: true });
    for (let off = 0; off < data.length; off += 128 * 1024) await c.write(h, data.subarray(off, Math.min(data.length, off + 128 * 1024)));
    await c.close(h, {});
    const x = await c.exportOpen('V00009');
    const parts: Uint8Array[] = [];
    for (let chunk = await c.exportRead(x.xid); chunk !== null; chunk = await c.exportRead(x.xid)) parts.push(chunk);
    // The export is the cache file (records with their headers): all of it, as its digest says.
    const all = Buffer.concat(parts);
    expect(Math.max(...parts.map((p) => p.length))).toBeLessThanOrEqual(MAX_BODY);
    expect(all.length).toBe(x.bytes);
    expect(createHash('sha256').update(all).digest('hex')).toBe(x.sha256);
    expect(all.includes(Buffer.from(data.subarray(data.length - 4096)))).toBe(true);
  });
});
