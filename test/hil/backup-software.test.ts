/**
 * Real backup software in the QEMU guest, against an emulated library over iSCSI (and
 * against tgtd as a baseline): Bacula's btape `test` and `fill`, Amanda's amtapetype,
 * GNU tar multi-volume across two cartridges changed by mtx, SECURITY PROTOCOL OUT/IN
 * (tape data encryption) through sg_raw, and mtx's `eepos` moves to and from the
 * import/export element. The programs come from this machine's Debian packages
 * (bacula-sd, amanda-server, tar, mtx, sg3-utils), copied into the guest's backup layer.
 *
 * Cartridges are small so that filling one takes seconds: the library gives each its own
 * capacity (library YAML `capacity`). What tgt lacks is listed in
 * test/interop/tgt-known-gaps.ts (tgtBackupGaps); those checks are asserted to still fail.
 *
 * amtapetype first spends 60 s writing to decide whether the drive compresses, then fills
 * the cartridge twice; a cartridge small enough to fill quickly is full before the 60 s
 * are up, and amtapetype then stops. So the default run checks Amanda's tape handling with
 * `amtapetype -p` (label, three files, seeks by file number); the capacity estimate runs
 * with PTPVTS_LONG=1 (`PTPVTS_LONG=1 npm run test:hil`) on a 1.25 GiB cartridge (about 8 minutes).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { patternData } from '../../src/cli/tape-io.js';
import { tgtBackupGaps } from '../interop/tgt-known-gaps.js';
import { GuestShell } from './lib/guest-shell.js';
import { backupUnavailable, guestUnavailable, projectRoot, type IscsiLun } from './lib/guest.js';
import { startPtpvtsTarget } from './lib/targets.js';
import { startTgtd, tgtdUnavailable } from './lib/tgtd.js';

const LONG = process.env.PTPVTS_LONG === '1';
const why = guestUnavailable() ?? backupUnavailable();
const MiB = 1024 * 1024;

/** The cartridges, with the capacity each check needs. */
const CARTRIDGES = {
  /** btape test: 2 x 10000 blocks of 16 KiB and a few more. */
  btapeTest: { barcode: 'BT0001L8', capacity: 512 * MiB },
  /**
   * btape fill: reads 10000 records of 32 KiB (328 MB) back after the fill, so more than
   * that must fit before the early warning (at 95 %), and at least 1000 blocks.
   */
  btapeFill: { barcode: 'BF0001L8', capacity: 360 * MiB },
  amtapetype: { barcode: 'AM0001L8', capacity: 16 * MiB },
  /**
   * amtapetype's capacity estimate (PTPVTS_LONG): more than its 60 s of random writing must
   * fit (6.7 MB/s measured in the guest, so up to about 20 MB/s leaves room).
   */
  amtapetypeLong: { barcode: 'AL0001L8', capacity: 1280 * MiB },
  tar1: { barcode: 'TM0001L8', capacity: 4 * MiB },
  tar2: { barcode: 'TM0002L8', capacity: 4 * MiB },
  encryption: { barcode: 'EN0001L8', capacity: 16 * MiB },
  eepos: { barcode: 'EE0001L8', capacity: 16 * MiB },
} as const;
const cartridges = Object.values(CARTRIDGES).filter((c) => LONG || c !== CARTRIDGES.amtapetypeLong);

const LIBRARY_YAML = `
name: hilbk
personality: PTPVTS-LIB
timeScale: 0
mediaDir: ./media
storageSlots: 10
importExportSlots: 1
drives:
  count: 1
  personality: LTO8
  serials: ["HILBKP0001"]
cartridges:
${cartridges.map((c, i) => `  - barcode: ${c.barcode}\n    capacity: ${c.capacity}\n    location: slot ${i + 1}\n`).join('')}`;

/** The data encryption key and U-KAD the SECURITY PROTOCOL OUT check sets. */
const KEY = Buffer.from('HIL data encryption key, 32 byte', 'latin1');
const UKAD = Buffer.from('HILKAD01', 'latin1');

/**
 * SECURITY PROTOCOL OUT, tape data encryption (20h), set data encryption page 0010h
 * (SSC-4 8.5.3.2): scope all I_T nexus, encrypt and decrypt, algorithm index 1, a plain
 * 256-bit key, and a U-KAD descriptor; or, with no key, encryption and decryption off.
 */
function setDataEncryptionPage(key?: Buffer): Buffer {
  const kad = key ? Buffer.concat([Buffer.from([0x00, 0x00, 0x00, UKAD.length]), UKAD]) : Buffer.alloc(0);
  const b = Buffer.alloc(20 + (key?.length ?? 0) + kad.length);
  b.writeUInt16BE(0x0010, 0);
  b.writeUInt16BE(b.length - 4, 2);
  b[4] = 2 << 5; // SCOPE: all I_T nexus
  b[6] = key ? 0x02 : 0x00; // ENCRYPTION MODE: encrypt
  b[7] = key ? 0x02 : 0x00; // DECRYPTION MODE: decrypt
  b[8] = key ? 0x01 : 0x00; // ALGORITHM INDEX
  b[9] = 0x00; // KEY FORMAT: plain text
  b.writeUInt16BE(key?.length ?? 0, 18);
  if (key) key.copy(b, 20);
  kad.copy(b, 20 + (key?.length ?? 0));
  return b;
}

/**
 * The data encryption status page 0020h (SSC-4 8.5.2.7) the drive owes: I_T nexus and key
 * scope all (42h), the modes, algorithm index 1 while either mode is on, the key instance
 * counter, parameters control 001b (set by a host) with VCELB once the volume holds
 * encrypted blocks, and the U-KAD descriptor while encrypting.
 */
function expectedStatusPage(o: { keyInstance: number; vcelb: boolean; on: boolean }): number[] {
  const kad = o.on ? [0x00, 0x00, 0x00, UKAD.length, ...UKAD] : [];
  const body = [
    0x42, o.on ? 0x02 : 0x00, o.on ? 0x02 : 0x00, o.on ? 0x01 : 0x00,
    ...[24, 16, 8, 0].map((s) => (o.keyInstance >>> s) & 0xff),
    0x10 | (o.vcelb ? 0x08 : 0), 0x00, ...new Array<number>(10).fill(0),
    ...kad,
  ];
  return [0x00, 0x20, body.length >> 8, body.length & 0xff, ...body];
}

/** The bytes of a `sg_raw -r N` hex dump under `label` (lines `OFFSET  xx xx ...  ascii`). */
function hexDump(out: string, label: string): number[] {
  const part = out.split(`--- ${label}\n`)[1]?.split('\n--- ')[0] ?? '';
  const bytes: number[] = [];
  for (const line of part.split('\n')) {
    const m = /^ {1,2}[0-9a-f]+ {3,5}((?:[0-9a-f]{2} {1,2}){1,16})/u.exec(line);
    if (m) bytes.push(...m[1]!.trim().split(/ +/u).map((h) => parseInt(h, 16)));
  }
  return bytes;
}

/** What the tar multi-volume check archives: more than one 4 MiB cartridge holds, made here so its bytes are known. */
const TAR_FILES: Record<string, Uint8Array> = {
  'big.bin': patternData(5_000_000, 1),
  'f1.bin': patternData(300_000, 2),
  'f2.bin': patternData(600_001, 3),
  'small.txt': Buffer.from('a small file after the volume change\n'),
};

interface Target {
  name: string;
  /** A baseline: checks marked heavy run against it only with PTPVTS_LONG=1. */
  baseline: boolean;
  skip?: string;
  /** Checks that are known to fail on this target, with why. */
  gaps: Readonly<Record<string, string>>;
  start(): Promise<{ luns: IscsiLun[]; stop(): Promise<void> }>;
}

const tgtdWhy = tgtdUnavailable();
const targets: Target[] = [
  {
    name: 'ptpvts (emulated library)',
    baseline: false,
    gaps: {},
    start: () => startPtpvtsTarget(LIBRARY_YAML),
  },
  {
    name: 'tgtd',
    baseline: true,
    ...(tgtdWhy ? { skip: tgtdWhy } : {}),
    gaps: tgtBackupGaps,
    async start() {
      const lib = await startTgtd({ drives: 1, importExportSlots: 1, barcodes: cartridges.map((c) => c.barcode), tapeSizesMB: Object.fromEntries(cartridges.map((c) => [c.barcode, c.capacity / MiB])) });
      const lun = (n: number): IscsiLun => ({ host: lib.host, port: lib.port, iqn: lib.iqn, lun: n });
      return { luns: [lun(lib.changerLun), ...lib.driveLuns.map(lun)], stop: lib.stop };
    },
  },
];

/** `We should be in file X. I am at file Y.` lines of btape. */
const fileChecks = (out: string): Array<[number, number]> => [...out.matchAll(/We should be in file (\d+)\. I am at file (\d+)\./gu)].map((m) => [Number(m[1]), Number(m[2])]);

interface Check {
  name: string;
  title: string;
  /** Runs only with PTPVTS_LONG=1. */
  long?: boolean;
  /** Takes about a minute: against tgtd (the baseline) only with PTPVTS_LONG=1. */
  heavy?: boolean;
  /** Why it does not run against tgtd at all. */
  notOnBaseline?: string;
  /** Guest shell script (ptp-tapes.sh and backup-tools.sh sourced). */
  script: string;
  timeoutMs: number;
  /** Throws (expect) when the output shows the check failed. */
  verify(out: string, rc: number): void;
  /** Lines of the output worth keeping in the log (figures measured), when it passed. */
  keep?: RegExp;
}

const CHECKS: Check[] = [
  {
    name: 'mtx_eepos',
    title: "mtx eepos 1 transfer moves a cartridge into the import/export element, eepos 2 transfer brings it back; mtx status shows both",
    script: `ch=$(sg_of $CH_ID); settle $ch
from=$(slot_of $CH_ID ${CARTRIDGES.eepos.barcode})
ie=$(mtx -f $ch status | sed -n 's/^ *Storage Element \\([0-9]*\\) IMPORT\\/EXPORT:Empty.*/\\1/p' | head -1)
echo "slot $from, import/export element $ie"
[ -n "$from" ] && [ -n "$ie" ] || { mtx -f $ch status; exit 1; }
mtx -f $ch eepos 1 transfer $from $ie || exit 1
echo "--- after export"; mtx -f $ch status | grep -E "Storage Element ($from|$ie)[ :]"
mtx -f $ch eepos 2 transfer $ie $from || exit 1
echo "--- after import"; mtx -f $ch status | grep -E "Storage Element ($from|$ie)[ :]"`,
    timeoutMs: 60_000,
    verify(out, rc) {
      expect(rc, out).toBe(0);
      const [, exported = '', imported = ''] = out.split(/--- after (?:export|import)\n/u);
      const tag = CARTRIDGES.eepos.barcode;
      expect(exported, 'after eepos 1 transfer: the import/export element holds the cartridge, its slot is empty').toMatch(new RegExp(`IMPORT/EXPORT:Full :VolumeTag=${tag}`, 'u'));
      expect(exported).toMatch(/Storage Element \d+:Empty/u);
      expect(imported, 'after eepos 2 transfer: back in its slot, the import/export element empty').toMatch(new RegExp(`Storage Element \\d+:Full :VolumeTag=${tag}`, 'u'));
      expect(imported).toMatch(/IMPORT\/EXPORT:Empty/u);
    },
  },
  {
    name: 'sg_raw_spout_spin',
    title: 'sg_raw SECURITY PROTOCOL OUT sets data encryption (page 0010h); SECURITY PROTOCOL IN page 0020h answers the parameters byte for byte, VCELB after a block is written, all off again after a second SPOUT',
    script: `mount_volume ${CARTRIDGES.encryption.barcode} > /tmp/mount.out 2>&1 || { cat /tmp/mount.out; exit 1; }
sg=$(sg_of $TAPE_ID); nst=$(nst_of $TAPE_ID)
spin() { echo "--- $1"; sg_raw -r 36 "$sg" a2 20 00 20 00 00 00 00 00 24 00 00 2>&1; }
echo "--- spout set"; sg_raw -s $(wc -c < /hil/sde-on.bin) -i /hil/sde-on.bin "$sg" b5 20 00 10 00 00 00 00 00 $(printf %02x $(wc -c < /hil/sde-on.bin)) 00 00 2>&1 || exit 1
spin "status after set"
mt-st -f "$nst" rewind && dd if=/dev/zero of="$nst" bs=32768 count=4 2>/dev/null || exit 1
mt-st -f "$nst" rewind
spin "status after write"
echo "--- spout off"; sg_raw -s $(wc -c < /hil/sde-off.bin) -i /hil/sde-off.bin "$sg" b5 20 00 10 00 00 00 00 00 $(printf %02x $(wc -c < /hil/sde-off.bin)) 00 00 2>&1 || exit 1
spin "status after off"
echo "--- end"
unmount_volume ${CARTRIDGES.encryption.barcode} > /dev/null 2>&1`,
    timeoutMs: 90_000,
    verify(out, rc) {
      expect(rc, out).toBe(0);
      expect(hexDump(out, 'status after set'), out).toEqual(expectedStatusPage({ keyInstance: 1, vcelb: false, on: true }));
      expect(hexDump(out, 'status after write'), 'VCELB: the volume now holds encrypted blocks').toEqual(expectedStatusPage({ keyInstance: 1, vcelb: true, on: true }));
      // Off: no modes, no algorithm, no KAD; the volume still holds encrypted blocks (VCELB).
      expect(hexDump(out, 'status after off').slice(0, 24)).toEqual(expectedStatusPage({ keyInstance: 1, vcelb: true, on: false }));
    },
  },
  {
    name: 'btape_test',
    heavy: true,
    title: "Bacula's btape test: write, rewind and re-read 2 x 10000 blocks, block positioning, append after end of data, backspace and re-read, forward space files: every part succeeds",
    script: `mount_volume ${CARTRIDGES.btapeTest.barcode} > /tmp/mount.out 2>&1 || { cat /tmp/mount.out; exit 1; }
nst=$(bacula_conf 16384) || exit 1
cd /var/lib/bacula && printf 'test\\nquit\\n' | btape -c /etc/bacula/bacula-sd.conf "$nst" > /tmp/btape.out 2>&1
rc=$?
grep -v 'Orphaned buffer' /tmp/btape.out | grep -v -E 'Wrote (one record|block to device|1 EOF)'
echo "btape exited with $rc"
unmount_volume ${CARTRIDGES.btapeTest.barcode} > /dev/null 2>&1
exit $rc`,
    timeoutMs: 600_000,
    verify(out, rc) {
      expect(rc, out).toBe(0);
      expect(out.match(/^10000 blocks re-read correctly\.$/gmu), out).toHaveLength(2);
      expect(out.match(/=== Test Succeeded\. End Write, rewind, and re-read test ===/gu), 'write/re-read and block position tests').toHaveLength(2);
      for (const b of [5, 201, 10000, 10001, 10601, 20000]) expect(out).toContain(`Block ${b} re-read correctly.`);
      expect(out, 'append test: the Bacula scan finds the four files').toMatch(/Total files=4, blocks=7, bytes = 114,240/u);
      expect(out, 'write, backspace over the EOF and the last record, re-read').toContain('Block re-read correct. Test succeeded!');
      const files = fileChecks(out);
      expect(files.length, 'append and forward-space-file position checks').toBeGreaterThanOrEqual(5);
      expect(files.filter(([a, b]) => a !== b)).toEqual([]);
      expect(out).toContain('=== End Forward space files test ===');
      expect(out).not.toMatch(/FAILED|ERR=|Fatal error/u);
    },
  },
  {
    name: 'btape_fill',
    heavy: true,
    title: `Bacula's btape fill (simple): writes to end of medium (the ${CARTRIDGES.btapeFill.capacity / MiB} MiB cartridge ends at its early warning), re-reads the last block after the EOM, then finds the last block again and it matches`,
    script: `mount_volume ${CARTRIDGES.btapeFill.barcode} > /tmp/mount.out 2>&1 || { cat /tmp/mount.out; exit 1; }
nst=$(bacula_conf) || exit 1
cd /var/lib/bacula && printf 'fill\\ns\\n\\nquit\\n' | btape -c /etc/bacula/bacula-sd.conf "$nst" > /tmp/btape.out 2>&1
rc=$?
grep -v 'Orphaned buffer' /tmp/btape.out | sed -n '/Simple test/,$p'
echo "btape exited with $rc"
unmount_volume ${CARTRIDGES.btapeFill.barcode} > /dev/null 2>&1
exit $rc`,
    timeoutMs: 600_000,
    verify(out, rc) {
      expect(rc, out).toBe(0);
      const eom = /End of Volume "TestVolume1" at (\d+):(\d+) on device "LTO" \([^)]*\)\. Write of (\d+) bytes got -1\./u.exec(out);
      expect(eom, `btape saw the end of medium as a failed write (ENOSPC); output:\n${out}`).not.toBeNull();
      expect(out, 'after the EOM btape backspaces and re-reads the last block written').toContain('Re-read of last block succeeded.');
      const bytes = /End of tape \d+:\d+\. Volume Bytes=([\d,]+)\./u.exec(out);
      expect(bytes, out).not.toBeNull();
      const written = Number(bytes![1]!.replace(/,/gu, ''));
      const cap = CARTRIDGES.btapeFill.capacity;
      expect(written, `bytes written before the end of medium, of ${cap}`).toBeGreaterThan(0.9 * cap);
      expect(written).toBeLessThanOrEqual(cap);
      expect(out).toMatch(/Done filling tape at \d+:\d+\. Now beginning re-read of tape/u);
      expect(out).toMatch(/^10000 records read now at \d+:\d+$/mu);
      expect(out, 'the block read back at the recorded position is the last one written').toContain('The last block on the tape matches. Test succeeded.');
      expect(out).not.toMatch(/do_unfill failed|FAILED|Fatal error/u);
    },
    keep: /End of Volume "TestVolume1"|End of tape|10000 records read now/u,
  },
  {
    name: 'amtapetype_property',
    title: "Amanda's amtapetype -p: labels the cartridge, writes three files and finds each again by file number; Linux st needs no extra FSF after a filemark",
    script: `mount_volume ${CARTRIDGES.amtapetype.barcode} > /tmp/mount.out 2>&1 || { cat /tmp/mount.out; exit 1; }
amanda_env; nst=$(nst_of $TAPE_ID)
cd /tmp && amtapetype -p "tape:$nst" > /tmp/am.out 2> /tmp/am.err
rc=$?
echo "--- stdout"; cat /tmp/am.out
echo "--- stderr"; tr '\\r' '\\n' < /tmp/am.err | grep -v '^File [0-9]*, block' | grep -v '^ *$'
echo "amtapetype exited with $rc"
unmount_volume ${CARTRIDGES.amtapetype.barcode} > /dev/null 2>&1
exit $rc`,
    timeoutMs: 180_000,
    verify(out, rc) {
      expect(rc, out).toBe(0);
      expect(out).toContain('Checking for FSF_AFTER_FILEMARK requirement');
      const stdout = out.split('--- stdout\n')[1]?.split('--- stderr')[0] ?? '';
      expect(stdout.trim(), out).toBe('device-property "FSF_AFTER_FILEMARK" "false"');
      expect(out).not.toMatch(/seek_file|Broken|wrong label|Wrong disk|Could not/u);
    },
  },
  {
    name: 'amtapetype_estimate',
    long: true,
    notOnBaseline: 'about 8 minutes under TCG; amtapetype_property covers how Amanda handles tgt',
    title: `Amanda's amtapetype -f estimates the ${CARTRIDGES.amtapetypeLong.capacity / MiB} MiB cartridge: a tapetype whose length is within 85-100 % of it`,
    script: `mount_volume ${CARTRIDGES.amtapetypeLong.barcode} > /tmp/mount.out 2>&1 || { cat /tmp/mount.out; exit 1; }
amanda_env; nst=$(nst_of $TAPE_ID)
s=$(date +%s)
cd /tmp && amtapetype -f -t HIL-LTO "tape:$nst" > /tmp/am.out 2> /tmp/am.err
rc=$?
echo "--- stdout"; cat /tmp/am.out
echo "--- stderr"; tr '\\r' '\\n' < /tmp/am.err | grep -v '^File [0-9]*, block' | grep -v '^ *$'
echo "amtapetype exited with $rc after $(( $(date +%s) - s )) s"
unmount_volume ${CARTRIDGES.amtapetypeLong.barcode} > /dev/null 2>&1
exit $rc`,
    timeoutMs: 1_500_000,
    verify(out, rc) {
      expect(rc, out).toBe(0);
      // Its compression heuristic compares the write rates of random and patterned data;
      // in the guest making random data costs more CPU than writing it, so it may say
      // enabled either way (hence -f). The estimate itself writes random data.
      expect(out).toMatch(/^Compression: (enabled|disabled)$/mu);
      const length = /define tapetype HIL-LTO \{[\s\S]*?length (\d+) kbytes[\s\S]*?filemark (\d+) kbytes/u.exec(out);
      expect(length, out).not.toBeNull();
      const kb = Number(length![1]);
      const capKb = CARTRIDGES.amtapetypeLong.capacity / 1024;
      expect(kb, `estimated length of a ${capKb} KiB cartridge`).toBeGreaterThan(0.85 * capKb);
      expect(kb).toBeLessThanOrEqual(capKb);
      expect(Number(length![2]), 'filemark estimate (KiB)').toBeLessThan(1024);
      expect(out).toMatch(/LEOM is supported|LEOM is not supported/u);
    },
    keep: /^\s*(length|filemark|speed|comment) |^Wrote |^Compression|LEOM|amtapetype exited/u,
  },
  {
    name: 'tar_multivolume',
    title: 'GNU tar -M writes an archive larger than one cartridge across two, its --new-volume-script changing them with mtx, and reads it back byte for byte the same way',
    script: `mkdir -p /tmp/tarout
s=$(date +%s)
tar_multivolume -c /hil/tardata ${CARTRIDGES.tar1.barcode} ${CARTRIDGES.tar2.barcode} || exit 1
tar_multivolume -x /tmp/tarout ${CARTRIDGES.tar1.barcode} ${CARTRIDGES.tar2.barcode} || exit 1
echo "write and read back in $(( $(date +%s) - s )) s"
(cd /tmp/tarout && for f in *; do echo "SUM $f $(sha256sum "$f" | cut -d' ' -f1)"; done)`,
    timeoutMs: 300_000,
    keep: /^write and read back in/u,
    verify(out, rc) {
      expect(rc, out).toBe(0);
      const [t1, t2] = [CARTRIDGES.tar1.barcode, CARTRIDGES.tar2.barcode];
      expect(out.match(/^tar -\w wants volume .*$/gmu), 'one volume change while writing, one while reading').toEqual([`tar -c wants volume 2: ${t1} out, ${t2} in`, `tar -x wants volume 2: ${t1} out, ${t2} in`]);
      const sums = Object.fromEntries([...out.matchAll(/^SUM (\S+) ([0-9a-f]{64})$/gmu)].map((m) => [m[1]!, m[2]!]));
      expect(sums, out).toEqual(Object.fromEntries(Object.entries(TAR_FILES).map(([n, b]) => [n, createHash('sha256').update(b).digest('hex')])));
    },
  },
];

const checks = CHECKS.filter((c) => LONG || !c.long);

describe.skipIf(why !== undefined)(`backup software in a QEMU guest${why ? ` (skipped: ${why})` : ''}`, () => {
  it('every listed tgt gap names a check', () => {
    const names = new Set(CHECKS.map((c) => c.name));
    expect(Object.keys(tgtBackupGaps).filter((k) => !names.has(k))).toEqual([]);
  });

  for (const target of targets) {
    describe.skipIf(target.skip !== undefined)(`over iSCSI to ${target.name}${target.skip ? ` (skipped: ${target.skip})` : ''}`, () => {
      let guest: GuestShell | undefined;
      let stop: (() => Promise<void>) | undefined;
      const note = (s: string): void => console.log(`[hil-backup] ${target.name}: ${s}`);

      beforeAll(async () => {
        const started = await target.start();
        stop = started.stop;
        const files: Record<string, string | Uint8Array> = {
          'hil/ptp-tapes.sh': readFileSync(join(projectRoot, 'test', 'hil', 'guest', 'ptp-tapes.sh'), 'utf8'),
          'hil/backup-tools.sh': readFileSync(join(projectRoot, 'test', 'hil', 'guest', 'backup-tools.sh'), 'utf8'),
          'hil/sde-on.bin': setDataEncryptionPage(KEY),
          'hil/sde-off.bin': setDataEncryptionPage(),
        };
        for (const [n, b] of Object.entries(TAR_FILES)) files[`hil/tardata/${n}`] = b;
        guest = await GuestShell.boot({ luns: started.luns, files, backupLayer: true, timeoutMs: LONG ? 3_600_000 : 1_800_000, bootTimeoutMs: 300_000 });
        note(`guest up in ${(guest.bootMs / 1000).toFixed(1)} s`);
        const r = await guest.run('. /hil/ptp-tapes.sh; . /hil/backup-tools.sh; settle "$(sg_of $CH_ID)"; settle_tape $TAPE_ID; mtx -f "$(sg_of $CH_ID)" status', 60_000);
        note(r.output.trim().replace(/\n\s*/gu, ' | '));
      });

      afterAll(async () => {
        const run = await guest?.close();
        if (run) note(`guest ran ${(run.wallMs / 1000).toFixed(1)} s`);
        await stop?.();
      });

      // A check that failed half-way may have left its cartridge in the drive.
      beforeEach(async () => {
        await guest?.run('. /hil/ptp-tapes.sh; . /hil/backup-tools.sh; empty_drives $CH_ID $TAPE_ID > /dev/null 2>&1; true', 120_000).catch(() => undefined);
      });

      for (const c of checks.filter((x) => (LONG || !(x.heavy && target.baseline)) && !(x.notOnBaseline && target.baseline))) {
        const gap = target.gaps[c.name];
        it(gap === undefined ? `${c.name}: ${c.title}` : `${c.name}: ${c.title} — still fails (known: ${gap})`, async () => {
          const r = await guest!.run(`. /hil/ptp-tapes.sh\n. /hil/backup-tools.sh\n${c.script}\n`, c.timeoutMs);
          note(`${c.name}: rc ${r.rc} in ${(r.ms / 1000).toFixed(1)} s`);
          if (gap !== undefined) {
            expect(() => c.verify(r.output, r.rc), `${c.name} now passes on ${target.name}; remove it from tgtBackupGaps (${gap})`).toThrow();
            return;
          }
          c.verify(r.output, r.rc);
          const keep = c.keep;
          if (keep) for (const line of r.output.split('\n').filter((l) => keep.test(l))) note(`${c.name}: ${line.trim()}`);
        }, c.timeoutMs + 30_000);
      }
    });
  }
});
