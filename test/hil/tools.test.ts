/**
 * Linux's own st, ch and sg drivers and the standard tools (sg3-utils, mtx, mt-st, tar)
 * inside a QEMU guest, against iSCSI targets: tgtd as a reference peer, and ptpvts's own
 * target serving an emulated library. Every check is a marker printed by
 * guest/tools-check.sh; what tgt lacks is listed in test/interop/tgt-known-gaps.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tgtKnownGaps } from '../interop/tgt-known-gaps.js';
import { guestUnavailable, projectRoot, runGuest, type GuestRun } from './lib/guest.js';
import { hilTargets } from './lib/targets.js';

const script = readFileSync(join(projectRoot, 'test', 'hil', 'guest', 'tools-check.sh'), 'utf8');
const why = guestUnavailable();

const expectedChecks = [...script.matchAll(/^check (\S+) /gmu)].map((m) => m[1]!).concat(['mtx_status', 'mtx_status_after_load', 'tar_identical']);

describe.skipIf(why !== undefined)(`real Linux tools in a QEMU guest${why ? ` (skipped: ${why})` : ''}`, () => {
  describe.each(hilTargets())('over iSCSI to $name', (target) => {
    let run: GuestRun;
    let stop: (() => Promise<void>) | undefined;
    const results = new Map<string, { ok: boolean; detail: string }>();

    beforeAll(async () => {
      const started = await target.start();
      stop = started.stop;
      run = await runGuest({ script, luns: started.luns, timeoutMs: 600_000 });
      for (const [name, rest] of run.markers) {
        if (name !== 'check') continue;
        const [check, verdict, ...detail] = rest.split(' ');
        results.set(check!, { ok: verdict === 'ok', detail: detail.join(' ') });
      }
    });
    afterAll(async () => {
      await stop?.();
    });

    it('boots, finds a changer and a tape drive, and runs to the end', () => {
      expect(run.markers.some(([n]) => n === 'boot-ok'), run.output).toBe(true);
      expect(run.markers.find(([n]) => n === 'devices')?.[1] ?? '', run.output).toMatch(/changer=\/dev\/sg\d+ sch=\/dev\/sch\d+ tape=\/dev\/sg\d+ nst=\/dev\/nst\d+/u);
      expect(run.markers.some(([n]) => n === 'done'), run.output).toBe(true);
    });

    it.each(expectedChecks)('%s', (check) => {
      const r = results.get(check);
      expect(r, `no result for ${check}; console:\n${run.output.slice(-4000)}`).toBeDefined();
      const gap = target.knownGaps ? tgtKnownGaps[check] : undefined;
      if (gap) {
        // A known gap of the peer: recorded, and flagged if it starts working.
        expect(r!.ok, `${check} now passes on ${target.name}; remove it from tgt-known-gaps.ts`).toBe(false);
        return;
      }
      expect(r!.ok, `${check} failed on ${target.name}: ${r!.detail}`).toBe(true);
    });
  });
});
