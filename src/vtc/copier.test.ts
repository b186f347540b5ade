import { describe, expect, it } from 'vitest';
import { copyVolume } from './copier.js';
import { CopyError } from './errors.js';
import type { VtsClient } from './vts-client.js';

/** A source VTS exporting two chunks, and a destination whose calls are scripted; every call is recorded. */
function pair(closeFails: boolean): { from: VtsClient; to: VtsClient; calls: string[] } {
  const calls: string[] = [];
  let reads = 0;
  const from = {
    name: 'B',
    exportOpen: async () => (calls.push('export-open'), { xid: 7, token: { generation: 3 }, sha256: 'ab', bytes: 6 }),
    exportRead: async () => (calls.push('export-read'), reads++ < 2 ? new Uint8Array(3) : null),
    exportRelease: async () => void calls.push('export-release'),
  } as unknown as VtsClient;
  const to = {
    name: 'A',
    copyOpen: async () => (calls.push('copy-open'), 11),
    copyWrite: async () => void calls.push('copy-write'),
    copyClose: async () => {
      calls.push('copy-close');
      if (closeFails) throw Object.assign(new Error('vts-A cannot be reached: connect ETIMEDOUT'), { code: 'EVTC_UNREACHABLE' });
      return { generation: 3, consistent: true };
    },
    copyAbort: async () => void calls.push('copy-abort'),
  } as unknown as VtsClient;
  return { from, to, calls };
}

describe('copyVolume', () => {
  it('streams every chunk and closes: no abort, nothing left held', async () => {
    const { from, to, calls } = pair(false);
    expect(await copyVolume('V00002', from, to)).toBe(3);
    // Each chunk's next read is sent before the chunk is written (read-ahead).
    expect(calls).toEqual(['export-open', 'copy-open', 'export-read', 'export-read', 'copy-write', 'export-read', 'copy-write', 'copy-close']);
  });

  it('reads the next chunk while the destination writes this one, writes the chunks in order, and after a failed write releases the source only once the read ahead ended', async () => {
    const events: string[] = [];
    const chunks = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)];
    let reads = 0;
    const from = {
      name: 'B',
      exportOpen: async () => ({ xid: 7, token: { generation: 3 }, sha256: 'ab', bytes: 3 }),
      exportRead: () => {
        const n = reads++;
        events.push(`read ${n} sent`);
        return new Promise<Uint8Array | null>((resolve) =>
          setTimeout(() => {
            events.push(`read ${n} done`);
            resolve(chunks[n] ?? null);
          }, 5),
        );
      },
      exportRelease: async () => void events.push('release'),
    } as unknown as VtsClient;
    const written: number[] = [];
    const mkTo = (failAt: number) =>
      ({
        name: 'A',
        copyOpen: async () => 11,
        copyWrite: (_cid: number, data: Uint8Array) => {
          events.push(`write ${data[0]} sent`);
          return new Promise<void>((resolve, reject) =>
            setTimeout(() => {
              events.push(`write ${data[0]} done`);
              if (data[0] === failAt) reject(new Error('disk full'));
              else {
                written.push(data[0] ?? -1);
                resolve();
              }
            }, 20),
          );
        },
        copyClose: async () => ({ generation: 3, consistent: true }),
        copyAbort: async () => void events.push('abort'),
      }) as unknown as VtsClient;
    expect(await copyVolume('V00002', from, mkTo(-1))).toBe(3);
    expect(written).toEqual([1, 2, 3]);
    // Chunk 2's read ran while chunk 1 was being written.
    expect(events.indexOf('read 1 done')).toBeLessThan(events.indexOf('write 1 done'));
    expect(events.indexOf('read 1 sent')).toBeLessThan(events.indexOf('write 1 sent'));
    // The last write fails with the end-of-stream read still on its way, which is slower.
    events.length = 0;
    reads = 2;
    const slowFrom = {
      ...from,
      exportRead: () => {
        const n = reads++;
        events.push(`read ${n} sent`);
        return new Promise<Uint8Array | null>((resolve) => setTimeout(() => (events.push(`read ${n} done`), resolve(chunks[n] ?? null)), n === 3 ? 60 : 5));
      },
      exportRelease: async () => void events.push('release'),
    } as unknown as VtsClient;
    await expect(copyVolume('V00002', slowFrom, mkTo(3))).rejects.toBeInstanceOf(CopyError);
    expect(events.indexOf('read 3 done')).toBeGreaterThan(events.indexOf('write 3 done'));
    expect(events.indexOf('release')).toBeGreaterThan(events.indexOf('read 3 done'));
    expect(events).toContain('abort');
  });

  // A close that failed may never have reached the destination (seed 147 of the production
  // simulation): without an abort its stream held the volume busy there until the idle bound.
  it('a failed close is followed by an abort on the destination and a release on the source', async () => {
    const { from, to, calls } = pair(true);
    await expect(copyVolume('V00002', from, to)).rejects.toBeInstanceOf(CopyError);
    expect(calls.slice(-2).sort()).toEqual(['copy-abort', 'export-release']);
    expect(calls.indexOf('copy-abort')).toBeGreaterThan(calls.indexOf('copy-close'));
  });
});
