/**
 * Linux's own st, ch and sg drivers and the standard tools (sg3-utils, mtx, mt-st, GNU tar)
 * inside a QEMU guest, against iSCSI targets: ptpvts's own target serving an emulated
 * library, and tgtd as a reference peer. Every check is a marker printed by
 * guest/tools-check.sh. What tgt lacks is listed in test/interop/tgt-known-gaps.ts, what
 * the emulator still gets wrong in emulator-known-failures.ts; those checks must fail.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tgtGuestGaps } from '../interop/tgt-known-gaps.js';
import { emulatorKnownFailures } from './emulator-known-failures.js';
import { guestUnavailable, projectRoot, runGuest, type GuestRun } from './lib/guest.js';
import { hilTargets } from './lib/targets.js';

const script = readFileSync(join(projectRoot, 'test', 'hil', 'guest', 'tools-check.sh'), 'utf8');
const why = guestUnavailable();

/** What each `verdict` check of the script means to a user. */
const verdictTitles: Readonly<Record<string, string>> = {
  mtx_status: 'mtx status lists the storage elements with cartridges in them',
  mtx_status_after_transfer: 'after mtx transfer, mtx status shows the cartridge moved to the empty slot',
  mtx_status_after_load: 'after mtx load, mtx status shows drive 0 full',
  mtx_status_after_unload: 'after mtx unload, mtx status shows drive 0 empty and the cartridge home',
  mt_status_density: "mt status reports the loaded cartridge's density code, read by st at open",
  tape_record_size: 'a variable-block read with a 256 KiB buffer returns exactly one 10240-byte tar record',
  tar_identical: 'the files tar wrote to /dev/nst0 come back byte for byte',
  tar_second_identical: 'after mt fsf 1 the second tar archive comes back byte for byte',
  mt_tell_after_bsf: 'after mt bsf 1, mt tell reports the block just before the second archive',
  tar_read_after_bsf: 'mt bsf 1 then mt fsf 1 finds the second archive again',
  mt_tell_after_seek: 'after mt seek to the second archive, mt tell reports that block',
  tar_read_after_seek: 'after mt seek, tar reads the second archive',
};

/** Every check the script reports, with its title: `check NAME COMMAND` and `verdict NAME` lines. */
const expectedChecks: Array<readonly [string, string]> = [
  ...[...script.matchAll(/^check (\S+) (.*)$/gmu)].map((m) => [m[1]!, `${m[1]}: \`${m[2]!.replace(/"\$(\w+)"|\$(\w+)/gu, '$$$1$2')}\` succeeds`] as const),
  ...[...script.matchAll(/\bverdict (\S+) /gmu)].map((m) => [m[1]!, `${m[1]}: ${verdictTitles[m[1]!] ?? 'passes'}`] as const),
];

describe.skipIf(why !== undefined)(`real Linux tools in a QEMU guest${why ? ` (skipped: ${why})` : ''}`, () => {
  it('every listed known failure names a check of the guest script', () => {
    const names = new Set(expectedChecks.map(([c]) => c));
    expect(expectedChecks.filter(([c, t]) => t.endsWith(': passes') && verdictTitles[c] === undefined)).toEqual([]);
    expect([...Object.keys(tgtGuestGaps), ...Object.keys(emulatorKnownFailures)].filter((k) => !names.has(k))).toEqual([]);
  });

  for (const target of hilTargets()) {
    describe.skipIf(target.skip !== undefined)(`over iSCSI to ${target.name}${target.skip ? ` (skipped: ${target.skip})` : ''}`, () => {
      let run: GuestRun | undefined;
      let stop: (() => Promise<void>) | undefined;
      const results = new Map<string, { ok: boolean; detail: string }>();
      const known = target.knownGaps ? tgtGuestGaps : emulatorKnownFailures;

      beforeAll(async () => {
        const started = await target.start();
        stop = started.stop;
        run = await runGuest({ script, luns: started.luns, timeoutMs: 600_000 });
        for (const [name, rest] of run.markers) {
          if (name !== 'check') continue;
          const [check, verdict, ...detail] = rest.split(' ');
          results.set(check!, { ok: verdict === 'ok', detail: detail.join(' ') });
        }
        const boot = run.markers.find(([n]) => n === 'boot-ok')?.[1].split(' ')[0];
        console.log(`[hil] ${target.name}: guest ran ${(run.wallMs / 1000).toFixed(1)} s (guest uptime at boot-ok ${boot ?? '?'} s)`);
      });
      afterAll(async () => {
        await stop?.();
      });

      it('boots, finds a changer and a tape drive, and runs to the end', () => {
        expect(run!.markers.some(([n]) => n === 'boot-ok'), run!.output).toBe(true);
        expect(run!.markers.find(([n]) => n === 'devices')?.[1] ?? '', run!.output).toMatch(/changer=\/dev\/sg\d+ sch=\/dev\/sch\d+ tape=\/dev\/sg\d+ nst=\/dev\/nst\d+/u);
        expect(run!.markers.some(([n]) => n === 'done'), run!.output).toBe(true);
      });

      it.each(expectedChecks.map(([c, title]) => [known[c] === undefined ? title : `${title} — still fails (known: ${known[c]})`, c, known[c]] as const))('%s', (_title, check, gap) => {
        const r = results.get(check);
        expect(r, `no result for ${check}; console:\n${run!.output.slice(-4000)}`).toBeDefined();
        if (gap !== undefined) {
          expect(r!.ok, `${check} now passes on ${target.name}; remove it from its known-failure list (${gap})`).toBe(false);
          return;
        }
        expect(r!.ok, `${check} failed on ${target.name}: ${r!.detail}`).toBe(true);
      });
    });
  }
});
