# Runs inside the HIL guest (busybox sh). Exercises the attached library with the real
# Linux tools and prints one `@@HIL check NAME ok|fail DETAIL` marker per check.
# Expects: one medium changer and at least one tape drive; slot addresses are read from
# `mtx status`, so any element layout works.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
ok() { echo "@@HIL check $1 ok $2"; }
fail() { echo "@@HIL check $1 fail $(echo "$2" | tr '\n' '|' | cut -c1-400)"; }
check() { # NAME COMMAND... : ok when the command exits 0
  name=$1; shift
  if out=$("$@" 2>&1); then ok "$name" ""; else fail "$name" "rc=$? $out"; fi
  echo "$out" | sed "s/^/[$name] /" | head -40
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
check sg_modes_tape sg_modes --all "$TAPE_SG"
check sg_modes_changer sg_modes --page=0x1d "$CH_SG"
check sg_logs_tape sg_logs --list "$TAPE_SG"
check sg_logs_changer sg_logs --list "$CH_SG"
check sg_raw_read_block_limits sg_raw -r 6 "$TAPE_SG" 05 00 00 00 00 00
check sg_turs_changer sg_turs "$CH_SG"

# --- mtx: status, load, unload, transfer
status=$(mtx -f "$CH_SG" status 2>&1); echo "$status" | sed 's/^/[mtx-status] /'
echo "$status" | grep -q 'Storage Changer' && ok mtx_status "" || fail mtx_status "$status"
full=$(echo "$status" | sed -n 's/^ *Storage Element \([0-9]*\):Full.*/\1/p' | head -1)
empty=$(echo "$status" | sed -n 's/^ *Storage Element \([0-9]*\):Empty.*/\1/p' | head -1)
echo "@@HIL slots full=$full empty=$empty"
check mtx_transfer mtx -f "$CH_SG" transfer "$full" "$empty"
check mtx_transfer_back mtx -f "$CH_SG" transfer "$empty" "$full"
check mtx_load mtx -f "$CH_SG" load "$full" 0
after=$(mtx -f "$CH_SG" status 2>&1)
echo "$after" | grep -q 'Data Transfer Element 0:Full' && ok mtx_status_after_load "" || fail mtx_status_after_load "$after"

# --- mt-st and tar on the loaded cartridge
i=0; while ! mt-st -f "$NST" status >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
check mt_status mt-st -f "$NST" status
check mt_rewind mt-st -f "$NST" rewind
mkdir -p /tmp/src /tmp/out
i=0; while [ $i -lt 5 ]; do head -c $((20000 + i * 7777)) /opt/ptpvts/build/Release/ptpvts.node > /tmp/src/file$i; i=$((i+1)); done
cp /opt/ptpvts/package.json /tmp/src/
check tar_write tar -C /tmp/src -cf "$NST" .
check mt_weof mt-st -f "$NST" weof 1
check tar_write_second tar -C /tmp/src -cf "$NST" package.json
check mt_weof_second mt-st -f "$NST" weof 1
check mt_rewind_2 mt-st -f "$NST" rewind
check tar_read tar -C /tmp/out -xf "$NST"
same=1; for f in /tmp/src/*; do cmp "$f" "/tmp/out/$(basename "$f")" || same=0; done
[ $same = 1 ] && ok tar_identical "" || fail tar_identical "extracted files differ"
check mt_rewind_3 mt-st -f "$NST" rewind
check mt_fsf mt-st -f "$NST" fsf 1
check tar_read_second tar -C /tmp/out -xf "$NST"
check mt_bsf mt-st -f "$NST" bsf 1
check mt_eod mt-st -f "$NST" eod
check mt_tell mt-st -f "$NST" tell
check mt_seek mt-st -f "$NST" seek 0
check mt_tell_after_seek sh -c "mt-st -f $NST tell | grep -q 'block 0'"
check mt_rewind_4 mt-st -f "$NST" rewind
check mtx_unload mtx -f "$CH_SG" unload "$full" 0
