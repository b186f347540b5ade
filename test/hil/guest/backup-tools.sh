# Sourced (after ptp-tapes.sh) by the steps of test/hil/backup-software.test.ts inside the
# HIL guest: real backup software on the emulated library. SCSI id 0 is the changer, id 1
# the tape drive (lib/guest.ts attaches the LUNs in that order).
CH_ID=0
TAPE_ID=1

# mount_volume VOLSER: loads the cartridge from its slot into drive 0 and waits until st
# reports the drive on-line.
mount_volume() {
  slot_of "$CH_ID" "$1" > "/tmp/home.$1"
  load "$CH_ID" "$1" 0 || return 1
  settle_tape "$TAPE_ID"
  wait_ready "$TAPE_ID" 60
}

# unmount_volume VOLSER: rewinds and unloads through st, then mtx puts it back in its slot.
unmount_volume() {
  unload "$CH_ID" "$1" 0 "$TAPE_ID"
}

# bacula_conf [MAX_BLOCK_SIZE]: a bacula-sd.conf with one Device resource for the drive
# (Linux st, variable block size, as Bacula's manual sets up an LTO drive); prints the
# tape node. Without MAX_BLOCK_SIZE Bacula's default (64512 bytes) applies. btape's
# `test` writes 2 x 10000 blocks: with 16 KiB blocks that is 326 MB instead of 1.3 GB.
bacula_conf() {
  nst=$(nst_of "$TAPE_ID") || return 1
  mkdir -p /var/lib/bacula /etc/bacula
  cat > /etc/bacula/bacula-sd.conf <<CONF
Storage {
  Name = hil-sd
  WorkingDirectory = /var/lib/bacula
  Pid Directory = /var/lib/bacula
}
Director {
  Name = hil-dir
  Password = "hil"
}
Device {
  Name = LTO
  Media Type = LTO-8
  Archive Device = $nst
  Device Type = Tape
  AutomaticMount = yes
  AlwaysOpen = yes
  RemovableMedia = yes
  RandomAccess = no
${1:+  Maximum Block Size = $1}
}
CONF
  echo "$nst"
}

# amanda_env: what Amanda insists on before it runs (its user and private directories).
amanda_env() {
  grep -q '^backup:' /etc/passwd 2>/dev/null || {
    echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
    echo 'backup:x:34:34:backup:/var/backups:/bin/sh' >> /etc/passwd
    printf 'root:x:0:\nbackup:x:34:\ntape:x:26:backup\n' > /etc/group
  }
  mkdir -p /tmp/amanda /var/log/amanda/server /etc/amanda
  chown -R 34:34 /tmp/amanda /var/log/amanda
}

# tar_next_volume: GNU tar's --new-volume-script. tar has closed the drive and wants
# volume $TAR_VOLUME: the cartridge in the drive goes back to its slot (rewind and unload
# through st, mtx unload) and the next one of /tmp/tarvol.list (one barcode a line, in
# volume order) is loaded. Each change is logged to /tmp/tarvol.log.
tar_next_volume() {
  cur=$(cat /tmp/tarvol.loaded)
  next=$(sed -n "${TAR_VOLUME}p" /tmp/tarvol.list)
  echo "tar $TAR_SUBCOMMAND wants volume $TAR_VOLUME: $cur out, ${next:-none} in" >> /tmp/tarvol.log
  [ -n "$next" ] || return 1
  unmount_volume "$cur" >> /tmp/tarvol.log 2>&1 || return 1
  mount_volume "$next" >> /tmp/tarvol.log 2>&1 || return 1
  echo "$next" > /tmp/tarvol.loaded
}

# tar_multivolume SUBCOMMAND DIR BARCODE...: loads the first cartridge and runs GNU tar
# -M (-c from DIR, or -x into DIR) across the cartridges, changing them with mtx.
tar_multivolume() {
  sub=$1; dir=$2; shift 2
  printf '%s\n' "$@" > /tmp/tarvol.list
  : > /tmp/tarvol.log
  mount_volume "$1" >> /tmp/tarvol.log 2>&1 || { cat /tmp/tarvol.log; return 1; }
  echo "$1" > /tmp/tarvol.loaded
  nst=$(nst_of "$TAPE_ID") || return 1
  $TAR -M -F '. /hil/ptp-tapes.sh; . /hil/backup-tools.sh; tar_next_volume' "$sub" -f "$nst" -C "$dir" $( [ "$sub" = -c ] && echo . )
  rc=$?
  echo "tar $sub exited with $rc"
  grep '^tar ' /tmp/tarvol.log
  unmount_volume "$(cat /tmp/tarvol.loaded)" > /dev/null 2>&1
  return $rc
}
