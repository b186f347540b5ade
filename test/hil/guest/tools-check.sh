# Runs inside the HIL guest (busybox sh). Exercises the attached library with the real
# Linux tools and prints one `@@HIL check NAME ok|fail DETAIL` marker per check.
# Expects: one medium changer and at least one tape drive; slot addresses are read from
# `mtx status`, so any element layout works.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
ok() { echo "@@HIL check $1 ok $2"; }
fail() { echo "@@HIL check $1 fail $(echo "$2" | tr '\n' '|' | cut -c1-600)"; }
check() { # NAME COMMAND... : ok when the command exits 0
  name=$1; shift
  if out=$("$@" 2>&1); then ok "$name" ""; else fail "$name" "rc=$? $out"; fi
  echo "$out" | sed "s/^/[$name] /" | head -40
}
# Debian's static busybox runs its own applets before looking at PATH, so GNU tar (which
# writes 10240-byte records, as a tape user expects) must be named by its path.
TAR=/usr/bin/tar
verdict() { # NAME STATUS DETAIL : ok when STATUS is 0
  if [ "$2" = 0 ]; then ok "$1" ""; else fail "$1" "$3"; fi
}

CH_SG=""; TAPE_SG=""; NST=""; SCH=""
for s in /sys/class/scsi_generic/sg*; do
  n=$(basename "$s"); t=$(cat "$s/device/type")
  if [ "$t" = 8 ] && [ -z "$CH_SG" ]; then CH_SG=/dev/$n; SCH=/dev/$(ls "$s/device/scsi_changer" 2>/dev/null | head -1); fi
  if [ "$t" = 1 ] && [ -z "$TAPE_SG" ]; then TAPE_SG=/dev/$n; NST=/dev/n$(ls "$s/device/scsi_tape" 2>/dev/null | grep -E '^st[0-9]+$' | head -1); fi
done
echo "@@HIL devices changer=$CH_SG sch=$SCH tape=$TAPE_SG nst=$NST"
[ -n "$CH_SG" ] && [ -n "$TAPE_SG" ] || { fail devices "changer or tape missing"; exit 1; }

# The first command other than INQUIRY after attach gets the power-on unit attention of
# this I_T nexus (SPC-4 5.14); real tools expect to see it once. Consume it here.
sg_turs "$TAPE_SG" >/dev/null 2>&1; sg_turs "$CH_SG" >/dev/null 2>&1

# --- sg3-utils against both device types
check sg_inq_tape sg_inq "$TAPE_SG"
check sg_inq_changer sg_inq "$CH_SG"
check sg_vpd_supported sg_vpd --page=0 "$TAPE_SG"
check sg_vpd_serial sg_vpd --page=0x80 "$TAPE_SG"
check sg_vpd_devid sg_vpd --page=0x83 "$TAPE_SG"
check sg_vpd_changer_devid sg_vpd --page=0x83 "$CH_SG"
check sg_modes_tape sg_modes --all "$TAPE_SG"
check sg_modes_changer sg_modes --page=0x1d "$CH_SG"
check sg_logs_tape sg_logs --list "$TAPE_SG"
check sg_logs_changer sg_logs --list "$CH_SG"
check sg_raw_read_block_limits sg_raw -r 6 "$TAPE_SG" 05 00 00 00 00 00
check sg_turs_changer sg_turs "$CH_SG"

# --- mtx: status, transfer, load (unload is at the end)
status=$(mtx -f "$CH_SG" status 2>&1); echo "$status" | sed 's/^/[mtx-status] /'
echo "$status" | grep -q 'Storage Changer' && echo "$status" | grep -q 'Storage Element [0-9]*:Full' ; verdict mtx_status $? "$status"
full=$(echo "$status" | sed -n 's/^ *Storage Element \([0-9]*\):Full.*/\1/p' | head -1)
empty=$(echo "$status" | sed -n 's/^ *Storage Element \([0-9]*\):Empty.*/\1/p' | head -1)
echo "@@HIL slots full=$full empty=$empty"
check mtx_transfer mtx -f "$CH_SG" transfer "$full" "$empty"
moved=$(mtx -f "$CH_SG" status 2>&1)
echo "$moved" | grep -qE "^ *Storage Element $empty:Full" && echo "$moved" | grep -qE "^ *Storage Element $full:Empty"; verdict mtx_status_after_transfer $? "$moved"
check mtx_transfer_back mtx -f "$CH_SG" transfer "$empty" "$full"
check mtx_load mtx -f "$CH_SG" load "$full" 0
after=$(mtx -f "$CH_SG" status 2>&1)
echo "$after" | grep -q 'Data Transfer Element 0:Full'; verdict mtx_status_after_load $? "$after"

# --- mt-st and tar on the loaded cartridge
i=0; while ! mt-st -f "$NST" status >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
check mt_status mt-st -f "$NST" status
# st learns density, block size and write protection from MODE SENSE(6) page 0 (12 bytes:
# header and block descriptor) when the device is opened.
dens=$(mt-st -f "$NST" status 2>&1 | sed -n 's/.*Density code \(0x[0-9a-fA-F]*\).*/\1/p')
[ -n "$dens" ] && [ "$dens" != 0x0 ]; verdict mt_status_density $? "mt-st status reports density code '$dens'"
check mt_rewind mt-st -f "$NST" rewind
mkdir -p /tmp/src /tmp/out /tmp/out2
i=0; while [ $i -lt 5 ]; do head -c $((20000 + i * 7777)) /dev/urandom > /tmp/src/file$i; i=$((i+1)); done
head -c 300000 /dev/urandom > /tmp/src/big
echo "a small text file" > /tmp/src/small.txt
# st writes a filemark when a file written to closes; WEOF adds one more after the last
# archive: A1 FM A2 FM FM.
check tar_write $TAR -C /tmp/src -cf "$NST" .
check tar_write_second $TAR -C /tmp/src -cf "$NST" small.txt
check mt_weof mt-st -f "$NST" weof 1
check mt_rewind_2 mt-st -f "$NST" rewind
# A variable-block READ with a larger buffer returns exactly one of tar's 10240-byte records.
rec=$(dd if="$NST" bs=262144 count=1 2>/dev/null | wc -c); [ "$rec" = 10240 ]; verdict tape_record_size $? "first record read as $rec bytes"
check mt_rewind_2b mt-st -f "$NST" rewind
check tar_read $TAR -C /tmp/out -xf "$NST"
same=0; for f in /tmp/src/*; do cmp "$f" "/tmp/out/$(basename "$f")" || same=1; done
verdict tar_identical $same "extracted files differ: $(ls -l /tmp/out | tr '\n' '|')"
check mt_rewind_3 mt-st -f "$NST" rewind
check mt_fsf mt-st -f "$NST" fsf 1
second=$(mt-st -f "$NST" tell 2>/dev/null | sed -n 's/^At block \([0-9]*\)\./\1/p')
check tar_read_second $TAR -C /tmp/out2 -xf "$NST"
cmp /tmp/src/small.txt /tmp/out2/small.txt; verdict tar_second_identical $? "second archive differs or is missing: $(ls -l /tmp/out2 | tr '\n' '|')"
# st leaves the tape where tar stopped reading (inside the second archive): BSF 1 crosses
# the filemark before it and stops on its near side, one block before the archive.
check mt_bsf mt-st -f "$NST" bsf 1
pos=$(mt-st -f "$NST" tell 2>&1); [ -n "$second" ] && [ "$pos" = "At block $((second - 1))." ]; verdict mt_tell_after_bsf $? "second archive at block '$second', after BSF 1: $pos"
check mt_fsf_after_bsf mt-st -f "$NST" fsf 1
rm -rf /tmp/out2; mkdir -p /tmp/out2
$TAR -C /tmp/out2 -xf "$NST" && cmp /tmp/src/small.txt /tmp/out2/small.txt; verdict tar_read_after_bsf $? "$(ls -l /tmp/out2 | tr '\n' '|')"
check mt_eod mt-st -f "$NST" eod
check mt_tell mt-st -f "$NST" tell
check mt_seek mt-st -f "$NST" seek "${second:-1}"
pos=$(mt-st -f "$NST" tell 2>&1); [ "$pos" = "At block ${second:-1}." ]; verdict mt_tell_after_seek $? "seek ${second:-1}, then: $pos"
rm -rf /tmp/out2; mkdir -p /tmp/out2
$TAR -C /tmp/out2 -xf "$NST" && cmp /tmp/src/small.txt /tmp/out2/small.txt; verdict tar_read_after_seek $? "$(ls -l /tmp/out2 | tr '\n' '|')"
check mt_rewind_4 mt-st -f "$NST" rewind
check mt_offline mt-st -f "$NST" offline
check mtx_unload mtx -f "$CH_SG" unload "$full" 0
after=$(mtx -f "$CH_SG" status 2>&1)
echo "$after" | grep -q 'Data Transfer Element 0:Empty' && echo "$after" | grep -qE "^ *Storage Element $full:Full"; verdict mtx_status_after_unload $? "$after"
