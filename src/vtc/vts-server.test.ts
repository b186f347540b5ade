import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { nodeFs } from '../platform/fs.js';
import type { PlatformFs } from '../platform/fs.js';
import { HmacSha256 } from '../ptp/mac.js';
import { VtsUnit } from '../vts/index.js';
import { MAX_BODY, participants } from './rpc.js';
import { VtsClient } from './vts-client.js';
import { VtsHost } from './vts-host.js';
import { VtsServer } from './vts-server.js';

const SECRET = 'vts-server-test-secret';
const VTCS = ['vtc1', 'vtc2'];
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

let dir: string;
let host: VtsHost | undefined;
const clients: VtsClient[] = [];

async function startHost(mountOwnerGoneMs?: number): Promise<void> {
  host = new VtsHost({ name: 'A', vtcs: VTCS, secret: SECRET, listen: { host: '127.0.0.1', port: 0 }, cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state'), ...(mountOwnerGoneMs === undefined ? {} : { mountOwnerGoneMs }) });
  await host.start();
}

/** A VTC process's connection to VTS A: `run` is that process's run id. */
function client(self: string, run?: string): VtsClient {
  const c = new VtsClient(self, 'A', { host: '127.0.0.1', port: host!.port }, { names: participants(VTCS), mac: new HmacSha256(SECRET) }, 5_000, run);
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
  await host?.stop();
  host = undefined;
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

describe('mounts whose call got no answer', () => {
  // A VTC whose mount call timed out cannot know whether the VTS made the mount, nor its
  // handle; the mount held the volume busy for as long as the VTC kept calling (production
  // simulation seed 354: every copy of the volume to that VTS failed, resync never ended).
  it('are abandoned by the tag the VTC sent, whether the abandon comes after the mount or before it', async () => {
    await startHost();
    const c1 = client('vtc1', 'run-1');
    const c2 = client('vtc2', 'run-1');
    const h0 = await c1.mount('T00001', { scratch: true });
    await c1.write(h0, enc('kept'));
    await c1.close(h0, {});
    // Made, then its answer lost: vtc1 abandons it by tag, and the volume is free.
    await c1.mount('T00001', { writable: true, tag: 'vtc1-7' });
    await expect(c2.mount('T00001', { writable: false })).rejects.toThrow(/mounted/u);
    await c1.abandonTag('vtc1-7');
    expect(await readAll(c2, 'T00001')).toBe('kept');
    // Abandoned before it arrived (the call was slow): it is never made.
    await c1.abandonTag('vtc1-8');
    await expect(c1.mount('T00001', { writable: true, tag: 'vtc1-8' })).rejects.toThrow(/abandoned already/u);
    // Tags are the VTC's own: another VTC's tag of the same name is another mount.
    const h2 = await c2.mount('T00001', { writable: false, tag: 'vtc1-8' });
    await c2.abandon(h2);
  });

  // The abandon comes while the VTS is still making the mount (its disk is slow, or it was
  // paused with the request in hand): the mount is dropped as soon as it is made (production
  // simulation seed 289, a read mount on A whose answer was lost with the link).
  it('are dropped as soon as made when the abandon came while the VTS was making them', async () => {
    const cacheDir = join(dir, 'cache');
    let opening: (() => void) | null = null;
    let gate: Promise<void> | null = null;
    // The VTS's reads of its cache files wait at the gate while it is closed (a slow disk).
    const fs: PlatformFs = {
      ...nodeFs,
      open: async (path, flags) => {
        if (flags === 'r' && path.startsWith(cacheDir) && gate !== null) {
          opening?.();
          await gate;
        }
        return nodeFs.open(path, flags);
      },
    };
    const unit = await VtsUnit.open({ id: 'A', cacheDir, stateDir: join(dir, 'state'), fs });
    const server = new VtsServer({ unit, name: 'A', security: { names: participants(VTCS), mac: new HmacSha256(SECRET) }, logger: pino({ level: 'silent' }) });
    const port = await server.listen('127.0.0.1', 0);
    const c = new VtsClient('vtc1', 'A', { host: '127.0.0.1', port }, { names: participants(VTCS), mac: new HmacSha256(SECRET) }, 150, 'run-1');
    clients.push(c);
    let open = (): void => undefined;
    try {
      const h0 = await c.mount('T00003', { scratch: true });
      await c.write(h0, enc('kept'));
      await c.close(h0, {});
      gate = new Promise<void>((r) => (open = r));
      const reached = new Promise<void>((r) => (opening = r));
      const late = c.mount('T00003', { writable: false, tag: 'vtc1-9' });
      await reached;
      await expect(late).rejects.toMatchObject({ code: 'EVTC_TIMEOUT' });
      await c.abandonTag('vtc1-9');
      gate = null;
      open();
      const held = (): boolean => unit.volumes().some((v) => v.volser === 'T00003' && v.mounted);
      expect(held()).toBe(true);
      const until = Date.now() + 2_000;
      while (held() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(held()).toBe(false);
      expect(unit.activeMounts()).toEqual([]);
      expect(server.mountOwners()).toEqual([]);
      const h = await c.mount('T00003', { scratch: true });
      await c.write(h, enc('again'));
      expect(await c.close(h, {})).toMatchObject({ consistent: true });
    } finally {
      open();
      await server.close();
      await unit.shutdown();
    }
  });

  // A VTC's host router numbers its tags from 1 at every start, and an abandoned tag the VTS
  // never saw a mount for stays remembered: the first run of the VTC that started again to
  // reach that number had its host mount refused ("abandoned already") for a mount of a
  // process that is gone.
  it("are the run's own: a tag abandoned by an earlier run of the VTC does not refuse its new run's mount", async () => {
    await startHost();
    const old = client('vtc1', 'run-1');
    const h0 = await old.mount('T00002', { scratch: true });
    await old.write(h0, enc('kept'));
    await old.close(h0, {});
    // run-1's mount call tagged vtc1-3 never reached the VTS (the link went); its abandon did.
    await old.abandonTag('vtc1-3');
    old.disconnect();
    // vtc1 starts again, and its third mount is tagged vtc1-3 again.
    const now = client('vtc1', 'run-2');
    const h = await now.mount('T00002', { writable: false, tag: 'vtc1-3' });
    const r = await now.read(h, 1 << 20);
    expect(r.kind === 'block' ? dec(r.data) : r.kind).toBe('kept');
    await now.close(h, {});
    // Within a run, an abandoned tag still refuses its late mount.
    await now.abandonTag('vtc1-4');
    await expect(now.mount('T00002', { writable: false, tag: 'vtc1-4' })).rejects.toThrow(/abandoned already/u);
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

describe('peer copy streams', () => {
  /** Volume V00007 written once on A; its export (bytes and digest) is a valid copy of a later generation. */
  async function exported(c: VtsClient): Promise<{ bytes: Buffer; sha256: string }> {
    const h = await c.mount('V00007', { scratch: true });
    await c.write(h, enc('generation one'));
    await c.close(h, {});
    const x = await c.exportOpen('V00007');
    const parts: Uint8Array[] = [];
    for (let chunk = await c.exportRead(x.xid); chunk !== null; chunk = await c.exportRead(x.xid)) parts.push(chunk);
    await c.exportRelease(x.xid);
    return { bytes: Buffer.concat(parts), sha256: x.sha256 };
  }

  // A copier whose copy-write failed sends copy-abort; when that is lost too (the link went),
  // the stream stayed open on the destination and held the volume busy until the 30 s idle
  // bound: every later copy of it failed "mounted or being copied", and resync could not
  // finish (seed 147 of the production simulation). A VTC copies a volume to a VTS once at a
  // time, so its new copy-open of the volume supersedes its own earlier stream.
  it("a VTC's new copy of a volume supersedes its own abandoned stream of it; another VTC's stream is left alone", async () => {
    await startHost();
    const c1 = client('vtc1', 'run-1');
    const c2 = client('vtc2', 'run-1');
    const x = await exported(c1);
    const half = x.bytes.subarray(0, Math.max(1, x.bytes.length >> 1));
    const lost = await c1.copyOpen('V00007', { generation: 2 }, x.sha256);
    await c1.copyWrite(lost, half);
    // Another VTC cannot take vtc1's stream away: its copy finds the volume busy.
    const other = await c2.copyOpen('V00007', { generation: 2 }, x.sha256);
    await c2.copyWrite(other, x.bytes);
    await expect(c2.copyClose(other)).rejects.toThrow(/mounted or being copied/u);
    // vtc1 copies again: the abandoned stream goes, the new one commits.
    const cid = await c1.copyOpen('V00007', { generation: 2 }, x.sha256);
    await c1.copyWrite(cid, x.bytes);
    expect(await c1.copyClose(cid)).toMatchObject({ generation: 2, consistent: true });
    // The superseded stream is gone: a late write to it is refused, nothing of it committed.
    await expect(c1.copyWrite(lost, half)).rejects.toThrow(/unknown copy/u);
    expect(await readAll(c1, 'V00007')).toBe('generation one');
  });

  // The sender says how long a silence means it failed (three of its RPC timeouts): its
  // stream goes then, not at the server's 30 s default, and the volume is free for a copy
  // from another VTC. A bad bound is refused by name.
  it('a stream whose sender went silent for longer than the bound it gave is dropped, freeing the volume', async () => {
    await startHost();
    const c1 = new VtsClient('vtc1', 'A', { host: '127.0.0.1', port: host!.port }, { names: participants(VTCS), mac: new HmacSha256(SECRET) }, 100, 'run-1');
    clients.push(c1);
    const c2 = client('vtc2', 'run-1');
    const x = await exported(c2);
    const quiet = await c1.copyOpen('V00007', { generation: 2 }, x.sha256);
    await c1.copyWrite(quiet, x.bytes.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 500));
    const cid = await c2.copyOpen('V00007', { generation: 2 }, x.sha256);
    await c2.copyWrite(cid, x.bytes);
    expect(await c2.copyClose(cid)).toMatchObject({ generation: 2 });
    await expect(c1.copyWrite(quiet, x.bytes.subarray(10))).rejects.toThrow(/unknown copy/u);
    await expect(c2.rpc.call('copy-open', { volser: 'V00007', token: { generation: 3 }, idleMs: -5 })).rejects.toThrow(/idleMs must be a positive number/u);
  });
});
