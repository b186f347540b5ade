/**
 * Tape partitions with Linux's st driver and mt-st inside a QEMU guest, against ptpvts's
 * iSCSI target serving an emulated library (LTO-8 drive, 64 MiB cartridges): `mt-st
 * mkpartition` (st's MODE SELECT of page 11h, then FORMAT MEDIUM because the page reports
 * POFM), `mt-st setpartition` (LOCATE with CP), data written to each partition and read
 * back, after an unload and load too, the partition st reports in `mt-st status`, and the
 * volume statistics log page (17h) as sg_logs decodes it.
 * Every check is a `@@HIL check NAME ok|fail DETAIL` marker printed by the guest script.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestUnavailable, runGuest, type GuestRun } from './lib/guest.js';
import { startPtpvtsTarget } from './lib/targets.js';

/** Runs in the guest (busybox sh), as test/hil/guest/tools-check.sh does. */
const script = String.raw`
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
ok() { echo "@@HIL check $1 ok $2"; }
fail() { echo "@@HIL check $1 fail $(echo "$2" | tr '\n' '|' | cut -c1-600)"; }
check() {
  name=$1; shift
  if out=$("$@" 2>&1); then ok "$name" ""; else fail "$name" "rc=$? $out"; fi
  echo "$out" | sed "s/^/[$name] /" | head -40
}
verdict() { if [ "$2" = 0 ]; then ok "$1" ""; else fail "$1" "$3"; fi; }

CH_SG=""; TAPE_SG=""; NST=""
for s in /sys/class/scsi_generic/sg*; do
  n=$(basename "$s"); t=$(cat "$s/device/type")
  if [ "$t" = 8 ] && [ -z "$CH_SG" ]; then CH_SG=/dev/$n; fi
  if [ "$t" = 1 ] && [ -z "$TAPE_SG" ]; then TAPE_SG=/dev/$n; NST=/dev/n$(ls "$s/device/scsi_tape" 2>/dev/null | grep -E '^st[0-9]+$' | head -1); fi
done
echo "@@HIL devices changer=$CH_SG tape=$TAPE_SG nst=$NST"
[ -n "$CH_SG" ] && [ -n "$TAPE_SG" ] || { fail devices "changer or tape missing"; exit 1; }
sg_turs "$TAPE_SG" >/dev/null 2>&1; sg_turs "$CH_SG" >/dev/null 2>&1

status=$(mtx -f "$CH_SG" status 2>&1)
full=$(echo "$status" | sed -n 's/^ *Storage Element \([0-9]*\):Full.*/\1/p' | head -1)
check mtx_load mtx -f "$CH_SG" load "$full" 0
ready() { i=0; while ! mt-st -f "$NST" status >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done; }
ready
part() { mt-st -f "$NST" status 2>&1 | sed -n 's/.*partition=\([0-9]*\).*/\1/p' | head -1; }

# st only partitions when told the drive can.
check st_can_partitions mt-st -f "$NST" stsetoptions can-partitions
check mt_rewind mt-st -f "$NST" rewind
# Partition 1 of 20 MB, partition 0 the rest.
check mt_mkpartition mt-st -f "$NST" mkpartition 20
page=$(sg_modes --page=0x11 --dbd --raw "$TAPE_SG" 2>&1 | od -An -tx1 | tr -s ' \n' ' ')
echo "[page11] $page"
# MODE SENSE(10) raw: 8-byte header, then the page: byte 3 of the page is ADDITIONAL PARTITIONS DEFINED.
apd=$(echo "$page" | awk '{print $12}')
[ "$apd" = 01 ]; verdict page11_two_partitions $? "page 11h after mkpartition: $page"

head -c 50000 /dev/urandom > /tmp/p1
head -c 30000 /dev/urandom > /tmp/p0
check mt_setpartition_1 mt-st -f "$NST" setpartition 1
p=$(part); [ "$p" = 1 ]; verdict status_partition_1 $? "mt-st status says partition '$p'"
check write_p1 dd if=/tmp/p1 of="$NST" bs=10000
check mt_setpartition_0 mt-st -f "$NST" setpartition 0
p=$(part); [ "$p" = 0 ]; verdict status_partition_0 $? "mt-st status says partition '$p'"
check write_p0 dd if=/tmp/p0 of="$NST" bs=10000
# Log page 17h: sg_logs decodes the volume statistics, with both partitions' capacity and use.
vs=$(sg_logs -p 0x17 "$TAPE_SG" 2>&1); echo "$vs" | sed 's/^/[vs] /' | head -40
echo "$vs" | grep -q "Volume statistics page" && echo "$vs" | grep -q "partition number: 1, partition record data counter" && ! echo "$vs" | grep -qi "reserved parameter\|unexpected"
verdict sg_logs_volume_statistics $? "$vs"
# st goes back to where it left a partition (its last block there): seek to its start.
check mt_setpartition_1b mt-st -f "$NST" setpartition 1
check mt_seek_p1 mt-st -f "$NST" seek 0
dd if="$NST" of=/tmp/r1 bs=10000 2>/dev/null; cmp /tmp/p1 /tmp/r1; verdict read_p1 $? "partition 1 read back $(wc -c < /tmp/r1) bytes, different"
check mt_setpartition_0b mt-st -f "$NST" setpartition 0
check mt_seek_p0 mt-st -f "$NST" seek 0
p=$(part); [ "$p" = 0 ]; verdict status_partition_0_after_seek $? "mt-st status says partition '$p'"
dd if="$NST" of=/tmp/r0 bs=10000 2>/dev/null; cmp /tmp/p0 /tmp/r0; verdict read_p0 $? "partition 0 read back $(wc -c < /tmp/r0) bytes, different"

# Unload and load: the layout and both partitions' data stay.
check mt_offline mt-st -f "$NST" offline
check mtx_unload mtx -f "$CH_SG" unload "$full" 0
check mtx_load_again mtx -f "$CH_SG" load "$full" 0
ready
check mt_setpartition_1c mt-st -f "$NST" setpartition 1
rm -f /tmp/r1; dd if="$NST" of=/tmp/r1 bs=10000 2>/dev/null; cmp /tmp/p1 /tmp/r1; verdict read_p1_after_reload $? "partition 1 read back $(wc -c < /tmp/r1) bytes after reload, different"
check mt_setpartition_0c mt-st -f "$NST" setpartition 0
check mt_seek_p0c mt-st -f "$NST" seek 0
rm -f /tmp/r0; dd if="$NST" of=/tmp/r0 bs=10000 2>/dev/null; cmp /tmp/p0 /tmp/r0; verdict read_p0_after_reload $? "partition 0 read back $(wc -c < /tmp/r0) bytes after reload, different"
# mkpartition 0: back to one partition.
check mt_mkpartition_0 mt-st -f "$NST" mkpartition 0
page=$(sg_modes --page=0x11 --dbd --raw "$TAPE_SG" 2>&1 | od -An -tx1 | tr -s ' \n' ' ')
apd=$(echo "$page" | awk '{print $12}')
[ "$apd" = 00 ]; verdict page11_one_partition $? "page 11h after mkpartition 0: $page"
check mt_offline_end mt-st -f "$NST" offline
check mtx_unload_end mtx -f "$CH_SG" unload "$full" 0
`;

const checks = [...script.matchAll(/\b(?:check|verdict) (\w+) /gu)].map((m) => m[1]!).filter((c, i, all) => all.indexOf(c) === i);

const why = guestUnavailable();

describe.skipIf(why !== undefined)(`mt-st partitions in a QEMU guest${why ? ` (skipped: ${why})` : ''}`, () => {
  let run: GuestRun | undefined;
  let stop: (() => Promise<void>) | undefined;
  const results = new Map<string, { ok: boolean; detail: string }>();

  beforeAll(async () => {
    const started = await startPtpvtsTarget();
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

  it('boots, finds the changer and the tape drive, and runs to the end', () => {
    expect(run!.markers.find(([n]) => n === 'devices')?.[1] ?? '', run!.output).toMatch(/changer=\/dev\/sg\d+ tape=\/dev\/sg\d+ nst=\/dev\/nst\d+/u);
    expect(run!.markers.some(([n]) => n === 'done'), run!.output.slice(-4000)).toBe(true);
  });

  it.each(checks)('%s', (check) => {
    const r = results.get(check);
    expect(r, `no result for ${check}; console:\n${run!.output.slice(-4000)}`).toBeDefined();
    expect(r!.ok, `${check} failed: ${r!.detail}\n${run!.output.slice(-3000)}`).toBe(true);
  });
});
