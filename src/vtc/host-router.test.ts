import { describe, expect, it } from 'vitest';
import type { VtcEngine } from '../ptp/engine.js';
import type { VtsName } from '../ptp/types.js';
import type { CopyQueue } from './copier.js';
import { RemoteError } from './errors.js';
import { HostRouter } from './host-router.js';
import type { RemoteView, VtsClient } from './vts-client.js';

/**
 * A router over two scripted VTS: both on-line with V00001 at generation 2. `closeFails`
 * and `abandonFails` make those calls fail (the VTS unreachable); every abandon is recorded.
 */
function world(): { router: HostRouter; boots: Record<VtsName, string>; abandons: string[]; fail: { close: boolean; abandon: boolean; mount: null | 'timeout' | 'refused' } } {
  const boots: Record<VtsName, string> = { A: 'boot-a1', B: 'boot-b1' };
  const abandons: string[] = [];
  const fail: { close: boolean; abandon: boolean; mount: null | 'timeout' | 'refused' } = { close: false, abandon: false, mount: null };
  const unreachable = (): Error => Object.assign(new Error('cannot be reached'), { code: 'EVTC_UNREACHABLE' });
  const client = (x: VtsName): VtsClient =>
    ({
      name: x,
      view: async () => ({ name: x, inOperation: true, bootId: boots[x] }),
      tokens: async () => [{ volser: 'V00001', generation: 2, consistent: true, dataGeneration: 2 }],
      mount: async () => {
        if (fail.mount === 'timeout') throw Object.assign(new Error('no answer within 400 ms'), { code: 'EVTC_TIMEOUT' });
        if (fail.mount === 'refused') throw new RemoteError('EVOLINUSE', 'VolumeInUseError', 'volume V00001 is mounted');
        return 7;
      },
      abandonTag: async (tag: string) => {
        if (fail.abandon) throw unreachable();
        abandons.push(`${x}:${tag}`);
        return {};
      },
      close: async () => {
        if (fail.close) throw unreachable();
        return { generation: 2, consistent: true };
      },
      abandon: async (h: number) => {
        if (fail.abandon) throw unreachable();
        abandons.push(`${x}:${h}`);
        return {};
      },
    }) as unknown as VtsClient;
  const engine = {
    writeContext: () => ({ status: { kind: 'online-both' }, epoch: 0, epochMac: '', boots: { ...boots }, minSeqs: { A: 0, B: 0 } }),
  } as unknown as VtcEngine;
  const router = new HostRouter({
    self: 'vtc1',
    options: { preferredVts: 'B' },
    engine,
    clients: { A: client('A'), B: client('B') },
    copies: {} as CopyQueue,
    timing: { heartbeatTimeout: 100 } as never,
    view: (x) => ({ name: x, inOperation: true, bootId: boots[x] }) as unknown as RemoteView,
    stopped: () => false,
  });
  return { router, boots, abandons, fail };
}

describe('host router: VTS mounts it could not end', () => {
  // A read whose close could not reach the VTS left its mount there for as long as this
  // VTC's run kept calling (the VTS frees only the mounts of a gone VTC): the volume stayed
  // busy on that VTS and every copy of it failed (production simulation seed 444).
  it('abandons again a mount whose close failed, until the VTS answers', async () => {
    const { router, abandons, fail } = world();
    const h = await router.mount('V00001', { writable: false });
    expect(h.vts).toBe('B');
    fail.close = true;
    fail.abandon = true;
    await expect(router.close(h)).rejects.toThrow(/cannot be reached/u);
    expect(router.orphans).toBe(1);
    await router.sweepOrphans();
    expect(router.orphans).toBe(1);
    fail.abandon = false;
    await router.sweepOrphans();
    expect(abandons).toEqual(['B:7']);
    expect(router.orphans).toBe(0);
  });

  it('forgets, without calling, a mount of a VTS that restarted since (its handle numbers start again)', async () => {
    const { router, boots, abandons, fail } = world();
    const h = await router.mount('V00001', { writable: false });
    fail.abandon = true;
    await router.abandon(h);
    expect(router.orphans).toBe(1);
    boots.B = 'boot-b2';
    fail.abandon = false;
    await router.sweepOrphans();
    expect(router.orphans).toBe(0);
    expect(abandons).toEqual([]);
  });

  it('abandons by its tag a mount whose call got no answer; a mount the VTS refused leaves nothing', async () => {
    const { router, abandons, fail } = world();
    fail.mount = 'refused';
    await expect(router.mount('V00001', { writable: false })).rejects.toThrow(/mounted/u);
    expect(router.orphans).toBe(0);
    fail.mount = 'timeout';
    await expect(router.mount('V00001', { writable: false })).rejects.toThrow(/no answer/u);
    expect(router.orphans).toBe(1);
    await router.sweepOrphans();
    expect(abandons).toEqual(['B:vtc1-2']);
    expect(router.orphans).toBe(0);
  });
});
