# Sourced by the steps of test/hil/ptp-library.test.ts inside the HIL guest (busybox sh):
# the real Linux tools (mtx, mt-st, GNU tar, sg3-utils) on the virtual libraries of the
# VTCs. Devices are named by their SCSI target id in the guest, which is the order the
# host attached the LUNs in (lib/guest.ts: scsi-id = index), e.g. 0 = vtc1's changer,
# 1 = vtc1's first drive. Every function prints what it did and returns non-zero on failure.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
# Debian's static busybox runs its own applets before PATH: GNU tar by its path.
TAR=/usr/bin/tar

# The generic SCSI node of target id $1 (/dev/sgN).
sg_of() {
  for s in /sys/class/scsi_generic/sg*; do
    id=$(basename "$(readlink -f "$s/device")" | cut -d: -f3)
    [ "$id" = "$1" ] && { echo "/dev/$(basename "$s")"; return 0; }
  done
  echo "no sg device with SCSI id $1" >&2
  return 1
}

# The no-rewind tape node of target id $1 (/dev/nstN).
nst_of() {
  sg=$(sg_of "$1") || return 1
  st=$(ls "/sys/class/scsi_generic/$(basename "$sg")/device/scsi_tape" 2>/dev/null | grep -E '^st[0-9]+$' | head -1)
  [ -n "$st" ] || { echo "SCSI id $1 ($sg) is not a tape drive" >&2; return 1; }
  echo "/dev/n$st"
}

# Takes the unit attentions a new nexus or an inventory change owe a changer (TEST UNIT
# READY answers each once), so the next real command sees the device's state.
settle() {
  i=0
  while [ $i -lt 4 ]; do sg_turs "$1" >/dev/null 2>&1 && return 0; i=$((i + 1)); done
  return 0
}

# The same for the tape drive at id $1, through st: st must see the unit attention of a
# newly loaded cartridge itself, or it keeps the old cartridge's position state (a tar
# reading right after the load then fails with EIO when the last cartridge was left at its
# end of data). mt status opens without waiting for the drive to be ready.
settle_tape() {
  nst=$(nst_of "$1") || return 1
  mt-st -f "$nst" status >/dev/null 2>&1
  mt-st -f "$nst" status >/dev/null 2>&1
  return 0
}

# The storage element that holds volume $2 in the changer at id $1.
slot_of() {
  ch=$(sg_of "$1") || return 1
  settle "$ch"
  mtx -f "$ch" status | sed -n "s/^ *Storage Element \([0-9]*\):Full *:VolumeTag=$2 *\$/\1/p" | head -1
}

# load CHANGER_ID VOLSER DRIVE_INDEX: mtx load from the volume's home slot.
load() {
  ch=$(sg_of "$1") || return 1
  slot=$(slot_of "$1" "$2")
  [ -n "$slot" ] || { echo "$2 is in no storage element of $ch:"; mtx -f "$ch" status; return 1; }
  echo "mtx -f $ch load $slot $3"
  mtx -f "$ch" load "$slot" "$3"
}

# unload CHANGER_ID VOLSER DRIVE_INDEX TAPE_ID: rewind and unload through st (the commit),
# then mtx moves the cartridge back to its home slot.
unload() {
  ch=$(sg_of "$1") || return 1
  nst=$(nst_of "$4") || return 1
  home=$(cat "/tmp/home.$2" 2>/dev/null)
  echo "mt-st -f $nst offline"
  mt-st -f "$nst" offline || return 1
  settle "$ch"
  echo "mtx -f $ch unload ${home:-} $3"
  # shellcheck disable=SC2086
  mtx -f "$ch" unload $home "$3"
}

# wait_ready TAPE_ID [SECONDS]: until st reports the drive on-line (mt status: ONLINE).
wait_ready() {
  nst=$(nst_of "$1") || return 1
  n=$(( ${2:-30} * 5 ))
  i=0
  while [ $i -lt $n ]; do
    mt-st -f "$nst" status 2>/dev/null | grep -q ONLINE && return 0
    sleep 0.2
    i=$((i + 1))
  done
  echo "tape $nst not ready after ${2:-30} s:"
  mt-st -f "$nst" status 2>&1
  sg_turs -v "$(sg_of "$1")" 2>&1
  return 1
}

# write_volume CHANGER_ID DRIVE_INDEX TAPE_ID VOLSER: loads the volume, writes the two
# archives of /hil/data/VOLSER (a1, a2) with GNU tar, each followed by a filemark, and
# unloads it (the commit).
write_volume() {
  slot=$(slot_of "$1" "$4")
  echo "$slot" > "/tmp/home.$4"
  load "$1" "$4" "$2" || return 1
  wait_ready "$3" || return 1
  nst=$(nst_of "$3") || return 1
  mt-st -f "$nst" rewind || return 1
  # st writes a filemark when a file written to is closed: A1 FM A2 FM.
  $TAR -C "/hil/data/$4/a1" -cf "$nst" . || { echo "tar of a1 failed; kernel:"; dmesg | tail -n 12; return 1; }
  $TAR -C "/hil/data/$4/a2" -cf "$nst" . || { echo "tar of a2 failed; kernel:"; dmesg | tail -n 12; return 1; }
  echo "position after both archives: $(mt-st -f "$nst" tell 2>&1)"
  unload "$1" "$4" "$2" "$3"
}

# read_archives TAPE_ID VOLSER: with the volume loaded and at the beginning, reads both
# archives back into /tmp/out/VOLSER and prints `SUM archive/file sha256` for each file.
# The first tar opens the drive without O_NONBLOCK: st waits (up to two minutes) for a
# drive that answers NOT READY to become ready, as a backup job would.
read_archives() {
  nst=$(nst_of "$1") || return 1
  rm -rf "/tmp/out/$2"; mkdir -p "/tmp/out/$2/a1" "/tmp/out/$2/a2"
  $TAR -C "/tmp/out/$2/a1" -xf "$nst" || { echo "tar read of a1 failed; kernel:"; dmesg | tail -n 12; return 1; }
  mt-st -f "$nst" rewind || return 1
  mt-st -f "$nst" fsf 1 || return 1
  $TAR -C "/tmp/out/$2/a2" -xf "$nst" || { echo "tar read of a2 failed; kernel:"; dmesg | tail -n 12; return 1; }
  # Nothing after the second archive's filemark: a read there returns no data.
  mt-st -f "$nst" rewind && mt-st -f "$nst" fsf 2 || return 1
  after=$(dd if="$nst" bs=262144 count=1 2>/dev/null | wc -c)
  echo "bytes after the second filemark: $after"
  (cd "/tmp/out/$2" && find . -type f | sort | while read -r f; do echo "SUM ${f#./} $(sha256sum "$f" | cut -d' ' -f1)"; done)
}

# read_volume CHANGER_ID DRIVE_INDEX TAPE_ID VOLSER: loads the volume, reads both archives
# back (read_archives), and unloads it.
read_volume() {
  slot_of "$1" "$4" > "/tmp/home.$4"
  load "$1" "$4" "$2" || return 1
  wait_ready "$3" || return 1
  nst=$(nst_of "$3") || return 1
  mt-st -f "$nst" rewind || return 1
  read_archives "$3" "$4" || return 1
  unload "$1" "$4" "$2" "$3"
}

# in_background NAME COMMAND...: runs the command apart from this step; its output goes to
# /tmp/bg.NAME.out and its exit code to /tmp/bg.NAME.rc once it ends.
in_background() {
  name=$1; shift
  rm -f "/tmp/bg.$name.rc"
  ( "$@" > "/tmp/bg.$name.out" 2>&1; echo $? > "/tmp/bg.$name.rc" ) < /dev/null > /dev/null 2>&1 &
  echo "started $name in the background"
}

# wait_background NAME SECONDS: waits for it to end, prints its output, returns its code.
wait_background() {
  i=0
  while [ ! -s "/tmp/bg.$1.rc" ] && [ $i -lt $(( $2 * 5 )) ]; do sleep 0.2; i=$((i + 1)); done
  cat "/tmp/bg.$1.out"
  [ -s "/tmp/bg.$1.rc" ] || { echo "$1 still running after $2 s"; return 1; }
  rc=$(cat "/tmp/bg.$1.rc")
  echo "$1 exited with $rc"
  return "$rc"
}

# empty_drives CHANGER_ID TAPE_ID...: after a failed step, puts every cartridge left in a
# drive of that changer back in its slot (best effort: st's unload, then mtx unload).
empty_drives() {
  ch=$(sg_of "$1") || return 1
  shift
  settle "$ch"
  i=0
  for t in "$@"; do
    if mtx -f "$ch" status | grep -q "^Data Transfer Element $i:Full"; then
      nst=$(nst_of "$t") && timeout 60 mt-st -f "$nst" offline
      settle "$ch"
      mtx -f "$ch" unload "$(mtx -f "$ch" status | sed -n "s/^Data Transfer Element $i:Full (Storage Element \([0-9]*\) Loaded).*/\1/p")" "$i"
    fi
    i=$((i + 1))
  done
  return 0
}
