/**
 * The PtP system as a real backup host sees it: a PtP system of three VTCs and two VTS in
 * this process, each VTC serving its virtual library over iSCSI on 127.0.0.1, and one QEMU
 * guest whose st, ch and sg drivers attach vtc1's and vtc2's libraries (changer and two
 * drives each) through QEMU's iSCSI initiator. mtx, mt-st and GNU tar in the guest write
 * two archives through vtc1, the test takes VTS A out (each mode) and kills it, and the
 * guest reads them back through vtc2; then the claim 1 story (the stale VTS returning alone
 * stays off-line; the host sees NOT READY; data comes back once both return).
 *
 * The guest boots once and takes shell steps over a virtio-serial port
 * (lib/guest-shell.ts, guest/command-loop.sh); the steps call guest/ptp-tapes.sh. The
 * content of every archive is made here, so its checksums are known before it is written.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { patternData } from '../../src/cli/tape-io.js';
import { serveVtcLibrary, type VirtualLibrary } from '../../src/cli/virtual-library.js';
import type { Mode, ShutdownKey, VtsName } from '../../src/ptp/types.js';
import { LocalCluster } from '../../src/scenario/cluster.js';
import { VolumeCatalogue } from '../../src/vtc/host-library/catalogue.js';
import { GuestShell } from './lib/guest-shell.js';
import { guestUnavailable, projectRoot, type IscsiLun } from './lib/guest.js';

const why = guestUnavailable();
const LONG = process.env.PTPVTS_LONG === '1';
const log = pino({ level: process.env.PTPVTS_LOG_LEVEL ?? 'silent' });

// SCSI target ids in the guest: the order the LUNs are attached in (lib/guest.ts).
const VTC1 = { changer: 0, drives: [1, 2] } as const;
const VTC2 = { changer: 3, drives: [4, 5] } as const;

/**
 * The protocol's timers, relaxed from the in-process defaults: QEMU's software CPU shares
 * the machine with this process, and a late heartbeat must not pass for a lost VTS.
 */
const TIMING = { heartbeatTimeout: 3000, ackTimeout: 1500, vtsOpTimeout: 15_000, electionTimeout: 1000, pendingTimeout: 4000, returnGrace: 400 };

/**
 * One `vts out A` case: the mode, and the copy mode of the volume written just before.
 * With a deferred copy still pending, normal and expedite drain it to B before A goes out
 * (B alone is current, A can be killed); immediate and forced leave it queued, so neither
 * VTS alone is current and the PtP system stays off-line until A returns (`vts in A`).
 */
interface ModeCase {
  readonly mode: Mode;
  readonly volser: string;
  readonly copyMode: 'immediate' | 'deferred';
}
/** The default run: each mode once, with the copy mode under which B alone ends up current. */
const MODES: readonly ModeCase[] = [
  { mode: 'normal', volser: 'D00001', copyMode: 'deferred' },
  { mode: 'immediate', volser: 'V00001', copyMode: 'immediate' },
  { mode: 'expedite', volser: 'D00002', copyMode: 'deferred' },
  { mode: 'forced', volser: 'V00002', copyMode: 'immediate' },
];
/** With PTPVTS_LONG=1, every mode with the other copy mode as well. */
const LONG_MODES: readonly ModeCase[] = [
  { mode: 'normal', volser: 'V00007', copyMode: 'immediate' },
  { mode: 'immediate', volser: 'D00003', copyMode: 'deferred' },
  { mode: 'expedite', volser: 'V00008', copyMode: 'immediate' },
  { mode: 'forced', volser: 'D00004', copyMode: 'deferred' },
];
const modes = LONG ? [...MODES, ...LONG_MODES] : MODES;
const leavesCopyPending = (m: ModeCase): boolean => m.copyMode === 'deferred' && (m.mode === 'immediate' || m.mode === 'forced');

/** Read through vtc2 while VTS A is taken out under it. */
const READ_DURING_OUT = 'V00003';
/** Volumes of the claim 1 story: written before any outage, and written while B alone is current. */
const BEFORE = 'V00005';
const WHILE_B_ALONE = 'V00006';

/** Two archives per volume: a1 (three files, ~250 KB) and a2 (two files, ~50 KB); path -> content. */
function volumeData(volser: string, seed: number): Record<string, Buffer> {
  const tag = (s: string): Buffer => Buffer.from(`${volser} ${s}\n`);
  return {
    'a1/f1.bin': Buffer.concat([tag('a1/f1'), patternData(131_072, seed * 10 + 1)]),
    'a1/f2.bin': Buffer.concat([tag('a1/f2'), patternData(100_001, seed * 10 + 2)]),
    'a1/f3.txt': Buffer.from(`${volser}: the first archive's small file\n`.repeat(50)),
    'a2/g1.bin': Buffer.concat([tag('a2/g1'), patternData(48_000, seed * 10 + 3)]),
    'a2/g2.txt': Buffer.from(`${volser}: the second archive, written after a filemark\n`),
  };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(why !== undefined)(`the PtP system's virtual libraries to real tape clients in a QEMU guest${why ? ` (skipped: ${why})` : ''}`, () => {
  let dir: string;
  let cl: LocalCluster | undefined;
  let guest: GuestShell | undefined;
  const libraries = new Map<string, VirtualLibrary>();
  const stops: (() => Promise<void>)[] = [];
  const data = new Map<string, Record<string, Buffer>>();

  const all = (s: string) => (): boolean => Object.values(cl!.statuses()).every((x) => x === s) && cl!.alive().length === 3;
  const note = (s: string): void => console.log(`[hil-ptp] ${s}`);

  /** What each virtual drive holds, as the library sees it (for a failure's message). */
  const driveStates = (): string =>
    [...libraries]
      .flatMap(([name, lib]) =>
        lib.drives.map(({ drive: d }, i) => {
          const m = d.medium;
          return `${name} drive ${i}: ${d.state}${m ? ` ${m.volser} pos ${m.pos} blank ${m.blank} lost ${m.lost === null ? 'no' : 'yes'} mount ${m.handle === null ? 'none' : `${m.handle.vts}${m.handle.writable ? ' (write)' : ''}`}` : ''}; stats ${JSON.stringify(d.stats)}`;
        }),
      )
      .join('\n');

  /** A step in the guest (ptp-tapes.sh sourced); throws with its output and the console's tail when it fails. */
  async function step(what: string, script: string, timeoutMs = 180_000): Promise<string> {
    const r = await guest!.run(`. /hil/ptp-tapes.sh\n${script}\n`, timeoutMs);
    note(`${what}: rc ${r.rc} in ${(r.ms / 1000).toFixed(1)} s`);
    if (r.rc !== 0) throw new Error(`${what} failed in the guest (rc ${r.rc}):\n${r.output}\n--- drives (host side) ---\n${driveStates()}\n--- PtP status ${JSON.stringify(cl?.statuses())}\n--- console, last lines ---\n${guest!.console.slice(-3000)}`);
    return r.output;
  }

  /** `SUM path sha256` lines of a read step. */
  const sums = (out: string): Record<string, string> => Object.fromEntries([...out.matchAll(/^SUM (\S+) ([0-9a-f]{64})$/gmu)].map((m) => [m[1]!, m[2]!]));
  const expectedSums = (volser: string): Record<string, string> => Object.fromEntries(Object.entries(data.get(volser)!).map(([p, b]) => [p, sha256(b)]));

  const writeThrough = (lib: typeof VTC1 | typeof VTC2, volser: string): Promise<string> =>
    step(`write ${volser} through ${lib === VTC1 ? 'vtc1' : 'vtc2'}`, `write_volume ${lib.changer} 0 ${lib.drives[0]} ${volser}`);

  /** The guest's account of a read (read_archives): every file of both archives with its checksum, nothing after them. */
  function expectBothArchives(volser: string, out: string): void {
    expect(sums(out), `every file of both archives of ${volser} comes back with its checksum; guest said:\n${out}`).toEqual(expectedSums(volser));
    expect(out, 'nothing follows the second archive').toMatch(/^bytes after the second filemark: 0$/mu);
  }

  async function readBackThrough(lib: typeof VTC1 | typeof VTC2, volser: string): Promise<void> {
    expectBothArchives(volser, await step(`read ${volser} through ${lib === VTC1 ? 'vtc1' : 'vtc2'}`, `read_volume ${lib.changer} 0 ${lib.drives[0]} ${volser}`));
  }

  const token = (x: VtsName, volser: string) => cl!.vts[x].unit?.token(volser);

  /** Both VTS running and in operation, resync done: where each story starts. */
  async function bothOnline(): Promise<void> {
    const c = cl!;
    for (const x of ['A', 'B'] as const) if (c.vts[x].unit === null) await c.restartVts(x);
    for (const a of c.alive()) a.copies.paused = false;
    // A VTS taken out by command stays out until let in; one lost by failure comes back by itself.
    const k = c.agent('vtc1').engine.newestKey();
    for (const x of ['A', 'B'] as const) {
      if (k.status[x] === 'out' && !all('online-both')()) await c.agent('vtc3').command({ command: 'vts-in', vts: x }).catch((e: unknown) => note(`vts-in ${x}: ${String(e)}`));
    }
    expect(await c.waitFor(all('online-both'), 30_000), `PtP status ${JSON.stringify(c.statuses())}`).toBe(true);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-hil-ptp-'));
    cl = await LocalCluster.start({ n: 3, dir: join(dir, 'ptp'), timing: TIMING, copyMode: 'immediate' });
    expect(await cl.waitFor(all('online-both'), 20_000), `PtP status ${JSON.stringify(cl.statuses())}`).toBe(true);
    const catalogue = join(dir, 'catalogue.json');
    const luns: IscsiLun[] = [];
    for (const name of cl.names) {
      // What `ptpvts ptp run` does for each VTC: ten scratch volumes in a new catalogue, the library on its portal.
      const served = await serveVtcLibrary(cl.agent(name), { catalogue, listen: { host: '127.0.0.1', port: 0 }, log });
      stops.push(served.stop);
      libraries.set(name, served.library);
      const p = served.library.portal;
      if (name !== 'vtc3') for (const lun of [0, 1, 2]) luns.push({ host: p.host, port: p.port, iqn: p.iqn, lun });
    }
    const cat = new VolumeCatalogue(catalogue);
    expect((await cat.list()).filter((e) => e.category === 'scratch')).toHaveLength(10);
    // Volumes whose writes are acknowledged with their copy to the other VTS deferred.
    await cat.insert(['D00001', 'D00002', 'D00003', 'D00004'], { copyMode: 'deferred' });

    const files: Record<string, Buffer | string> = { 'hil/ptp-tapes.sh': readFileSync(join(projectRoot, 'test', 'hil', 'guest', 'ptp-tapes.sh'), 'utf8') };
    [...modes.map((m) => m.volser), READ_DURING_OUT, BEFORE, WHILE_B_ALONE].forEach((v, i) => {
      const d = volumeData(v, i + 1);
      data.set(v, d);
      for (const [p, b] of Object.entries(d)) files[`hil/data/${v}/${p}`] = b;
    });
    guest = await GuestShell.boot({ luns, files, timeoutMs: 900_000 });
    note(`guest up in ${(guest.bootMs / 1000).toFixed(1)} s`);
    const devs = await step('devices', 'for i in 0 1 2 3 4 5; do echo "id $i: $(sg_of $i) $(nst_of $i 2>/dev/null)"; done; for i in 0 3; do settle $(sg_of $i); done; for i in 1 2 4 5; do settle_tape $i; done');
    note(devs.trim().replace(/\n/gu, '; '));
  });

  afterAll(async () => {
    const run = await guest?.close();
    if (run) note(`guest ran ${(run.wallMs / 1000).toFixed(1)} s`);
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    await cl?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // A story that failed half-way may have left a cartridge in a drive: the next one starts with the drives empty.
  beforeEach(async () => {
    if (guest === undefined || ![...libraries.values()].some((l) => l.drives.some((d) => d.drive.hasMedium()))) return;
    await bothOnline();
    await step('empty the drives', `empty_drives ${VTC1.changer} ${VTC1.drives.join(' ')}; empty_drives ${VTC2.changer} ${VTC2.drives.join(' ')}`);
  });

  it('the guest sees both libraries: a changer and two tape drives each, with st and ch bound', async () => {
    const out = await step('inventory', 'for i in 0 3; do mtx -f $(sg_of $i) status | head -4; done; for i in 1 2 4 5; do nst_of $i; done');
    expect(out.match(/Storage Changer .*:2 Drives, \d+ Slots/gu), out).toHaveLength(2);
    expect(out.match(/^\/dev\/nst\d+$/gmu), out).toHaveLength(4);
  });

  for (const m of modes) {
    const title = leavesCopyPending(m)
      ? `vts out A --mode ${m.mode} with a deferred copy pending: off-line (neither VTS alone is current), the host sees NOT READY; VTS A killed and back, tar reads through vtc2 both archives written through vtc1`
      : `vts out A --mode ${m.mode}, then VTS A killed: tar reads back through vtc2 both archives written through vtc1 (${m.copyMode} copy)`;
    it(title, async () => {
      await bothOnline();
      const c = cl!;
      if (m.copyMode === 'deferred') for (const a of c.alive()) a.copies.paused = true;
      await writeThrough(VTC1, m.volser);
      // The unload acknowledged the write: A holds it; B too (immediate copy) or B is behind (deferred, copies held).
      const gen = token('A', m.volser);
      expect(gen?.consistent, `${m.volser} on A after the unload`).toBe(true);
      if (m.copyMode === 'immediate') expect(token('B', m.volser)).toEqual(gen);
      else expect(c.vts.B.unit?.view().behind, 'the deferred copy is still pending when A goes out').toContain(m.volser);

      const t0 = Date.now();
      const key: ShutdownKey = await c.agent('vtc3').command({ command: 'vts-out', vts: 'A', mode: m.mode });
      note(`vts out A --mode ${m.mode}: key ${key.seq}, current {${key.current.join(',')}}, copies pending ${JSON.stringify(key.copiesPending)}, ${Date.now() - t0} ms`);
      if (!leavesCopyPending(m)) {
        expect(key.current, 'B alone holds every acknowledged write').toEqual(['B']);
        expect(await c.waitFor(all('online-single(B)'), 15_000), JSON.stringify(c.statuses())).toBe(true);
        expect(token('B', m.volser), 'B holds the acknowledged generation').toEqual(gen);
        for (const a of c.alive()) a.copies.paused = false;
        await c.crashVts('A');
        await readBackThrough(VTC2, m.volser);
        return;
      }
      expect(key.current, 'only A held the volume: neither VTS alone is current').toEqual([]);
      expect(key.copiesPending).toContain(m.volser);
      expect(await c.waitFor(all('offline'), 15_000), JSON.stringify(c.statuses())).toBe(true);
      await c.crashVts('A');
      const off = await step(
        `NOT READY through vtc2 while only A holds ${m.volser}`,
        `slot_of ${VTC2.changer} ${m.volser} > /tmp/home.${m.volser}
load ${VTC2.changer} ${m.volser} 0 || exit 1
settle_tape ${VTC2.drives[0]}; sg_turs -v "$(sg_of ${VTC2.drives[0]})" 2>&1; echo "sg_turs rc=$?"`,
      );
      expect(off, 'the host sees the drive NOT READY, off-line').toMatch(/Logical unit not ready, offline[\s\S]*sg_turs rc=[1-9]/u);
      // A comes back and is let in: the copy it held goes to B, and the host reads on.
      for (const a of c.alive()) a.copies.paused = false;
      await c.restartVts('A');
      await c.agent('vtc3').command({ command: 'vts-in', vts: 'A' });
      expect(await c.waitFor(all('online-both'), 30_000), JSON.stringify(c.statuses())).toBe(true);
      expect(token('B', m.volser), 'the pending copy reached B').toEqual(gen);
      const out = await step(`read ${m.volser} through vtc2`, `wait_ready ${VTC2.drives[0]} && read_archives ${VTC2.drives[0]} ${m.volser} && unload ${VTC2.changer} ${m.volser} 0 ${VTC2.drives[0]}`);
      expectBothArchives(m.volser, out);
    });
  }

  it('a drive reading through vtc2 while VTS A is taken out (immediate) and killed mounts again on B: tar goes on with the second archive', async () => {
    await bothOnline();
    const c = cl!;
    await writeThrough(VTC1, READ_DURING_OUT);
    const drive = libraries.get('vtc2')!.drives[0]!.drive;
    const remounts = drive.stats.remounts;
    await step(
      `read the first archive of ${READ_DURING_OUT} through vtc2`,
      `slot_of ${VTC2.changer} ${READ_DURING_OUT} > /tmp/home.${READ_DURING_OUT}
load ${VTC2.changer} ${READ_DURING_OUT} 0 && wait_ready ${VTC2.drives[0]} || exit 1
nst=$(nst_of ${VTC2.drives[0]}); rm -rf /tmp/out/${READ_DURING_OUT}; mkdir -p /tmp/out/${READ_DURING_OUT}/a1
$TAR -C /tmp/out/${READ_DURING_OUT}/a1 -xf "$nst" && mt-st -f "$nst" tell`,
    );
    expect(drive.medium?.handle?.vts, 'the read is mounted on A (the preferred VTS)').toBe('A');
    const key = await c.agent('vtc3').command({ command: 'vts-out', vts: 'A', mode: 'immediate' });
    expect(key.current).toEqual(['B']);
    await c.crashVts('A');
    const out = await step(
      `read on: the second archive of ${READ_DURING_OUT}`,
      `nst=$(nst_of ${VTC2.drives[0]}); d=/tmp/out/${READ_DURING_OUT}
mt-st -f "$nst" fsf 1 || exit 1
mkdir -p $d/a2 && $TAR -C $d/a2 -xf "$nst" || exit 1
mt-st -f "$nst" rewind && mt-st -f "$nst" fsf 2 || exit 1
echo "bytes after the second filemark: $(dd if="$nst" bs=262144 count=1 2>/dev/null | wc -c)"
(cd $d && find . -type f | sort | while read -r f; do echo "SUM \${f#./} $(sha256sum "$f" | cut -d' ' -f1)"; done)
unload ${VTC2.changer} ${READ_DURING_OUT} 0 ${VTC2.drives[0]}`,
    );
    expectBothArchives(READ_DURING_OUT, out);
    expect(drive.stats.remounts - remounts, 'the drive mounted the volume again on B, unseen by the host').toBe(1);
  });

  it('claim 1 with a real client: the stale VTS returning alone stays off-line and the host sees NOT READY; with both back, the data written before the outage reads back', async () => {
    await bothOnline();
    const c = cl!;
    await writeThrough(VTC1, BEFORE);
    // A fails; B alone takes writes, so A's image is stale from here on.
    await c.crashVts('A');
    expect(await c.waitFor(all('online-single(B)'), 20_000), JSON.stringify(c.statuses())).toBe(true);
    expect(c.agent('vtc1').engine.newestKey().current).toEqual(['B']);
    await writeThrough(VTC1, WHILE_B_ALONE);
    expect(token('B', WHILE_B_ALONE)?.consistent).toBe(true);

    // B fails too: both VTS are down.
    await c.crashVts('B');
    expect(await c.waitFor(all('offline'), 20_000), JSON.stringify(c.statuses())).toBe(true);
    // The stale A returns alone: no VTC elects it (it is not in current).
    await c.restartVts('A');
    const hold = Date.now() + 4 * (TIMING.returnGrace + TIMING.electionTimeout) + 2000;
    const left = await c.waitFor(() => !all('offline')(), Math.max(0, hold - Date.now()));
    expect(left, `the PtP system went ${JSON.stringify(c.statuses())} with only the stale VTS back`).toBe(false);
    expect(c.agent('vtc1').engine.newestKey().current).toEqual(['B']);
    expect(token('A', WHILE_B_ALONE), 'the stale VTS never saw the write made while it was down').toBeUndefined();

    // The host, through vtc2 (whose drive last read a cartridge to its end of data): the
    // cartridge goes into the drive, which answers NOT READY (off-line): sg_turs says so and
    // mt status shows the drive not on-line. A tar started now waits in st's open.
    const offline = await step(
      'NOT READY while only the stale VTS is back',
      `slot_of ${VTC2.changer} ${WHILE_B_ALONE} > /tmp/home.${WHILE_B_ALONE}
load ${VTC2.changer} ${WHILE_B_ALONE} 0 || exit 1
sg=$(sg_of ${VTC2.drives[0]}); nst=$(nst_of ${VTC2.drives[0]})
settle_tape ${VTC2.drives[0]}
echo "--- sg_turs"; sg_turs -v "$sg" 2>&1; echo "sg_turs rc=$?"
echo "--- mt status"; mt-st -f "$nst" status 2>&1; echo "mt rc=$?"
in_background reader read_archives ${VTC2.drives[0]} ${WHILE_B_ALONE}
sleep 3
[ -s /tmp/bg.reader.rc ] && { echo "the reader ended while the PtP system was off-line:"; cat /tmp/bg.reader.out; exit 1; }
echo "the reader is waiting"`,
    );
    note(offline.trim().replace(/\n/gu, ' | '));
    expect(offline, 'sg_turs shows the drive NOT READY, logical unit off-line').toMatch(/Sense key: Not Ready\s+Additional sense: Logical unit not ready, offline/u);
    expect(offline).toMatch(/sg_turs rc=[1-9]/u);
    const mtStatus = /--- mt status\n([\s\S]*?)mt rc=/u.exec(offline)?.[1] ?? '';
    expect(mtStatus, 'mt status: the drive is not on-line').toMatch(/General status bits on/u);
    expect(mtStatus).not.toMatch(/ONLINE/u);
    expect(offline).toMatch(/the reader is waiting/u);
    expect(c.statuses(), 'still off-line after the host tried').toEqual({ vtc1: 'offline', vtc2: 'offline', vtc3: 'offline' });

    // B returns: both are back, on-line without a vote, and the waiting tar reads what was
    // written while B alone was current; the volume written before the outage reads back too.
    const back = Date.now();
    await c.restartVts('B');
    expect(await c.waitFor(() => !all('offline')(), 30_000), JSON.stringify(c.statuses())).toBe(true);
    note(`on-line again ${Date.now() - back} ms after B restarted: ${JSON.stringify(c.statuses())}`);
    const read = await step('the waiting reader', `wait_background reader 90`, 120_000);
    expectBothArchives(WHILE_B_ALONE, read);
    await step('unload', `unload ${VTC2.changer} ${WHILE_B_ALONE} 0 ${VTC2.drives[0]}`);
    expect(await c.waitFor(all('online-both'), 30_000), JSON.stringify(c.statuses())).toBe(true);
    await readBackThrough(VTC1, BEFORE);
    await readBackThrough(VTC1, WHILE_B_ALONE);
  });
});
