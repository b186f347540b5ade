#!/usr/bin/env bash
# Builds one layer of the hardware-in-the-loop guest's initramfs from this machine's Debian
# packages. The kernel unpacks concatenated cpio archives in order, so a boot uses the
# base layer, optionally the agent layer, then a small per-run archive with the script.
#
#   base:  busybox-static, the kernel's virtio/SCSI modules (virtio_scsi, virtio_console,
#          st, ch, sg), sg3-utils, mtx, mt-st, GNU tar, and /init.
#   agent: node, the project's built addon and the compiled SG_IO agent (large: only the
#          SG_IO suite boots with it).
#   backup: Bacula's btape (bacula-sd) and Amanda's amtapetype (amanda-server) with perl
#          and exactly the perl modules amtapetype loads (only the backup-software suite
#          boots with it).
#
# usage: build-initramfs.sh base   OUT.cpio.gz KERNEL_VERSION
#        build-initramfs.sh agent  OUT.cpio    AGENT_DIR     (AGENT_DIR: dist/, build/, package files)
#        build-initramfs.sh backup OUT.cpio
set -euo pipefail
layer=$1
out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r=$work/root
mkdir -p "$r"

need() { command -v "$1" >/dev/null || { echo "build-initramfs: missing $1 (install Debian package $2)" >&2; exit 3; }; }

# An executable and every shared library it needs, at the same paths as on the host.
copy_with_libs() {
  local bin=$1 dest=$2
  mkdir -p "$r$(dirname "$dest")"
  cp -L "$bin" "$r$dest"
  ldd "$bin" 2>/dev/null | { grep -oE '/[^ ]+\.so[^ ]*' || true; } | while read -r lib; do
    mkdir -p "$r$(dirname "$lib")"
    [ -e "$r$lib" ] || cp -L "$lib" "$r$lib"
  done
}

pack() { # DIR OUT [gzip]
  if [ "${3:-}" = gzip ]; then
    (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | gzip -1 > "$2.tmp"
  else
    # Uncompressed: the guest copies it instead of inflating it, which is much faster under
    # software emulation for a layer this size.
    (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) > "$2.tmp"
  fi
  mv "$2.tmp" "$2"
  echo "built $2 ($(du -h "$2" | cut -f1))"
}

case "$layer" in
base)
  kver=$3
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,hil,mnt,etc}
  need busybox busybox-static
  need sg_inq sg3-utils
  need mtx mtx
  need mt-st mt-st
  need cpio cpio
  need tar tar
  [ -f "/boot/vmlinuz-$kver" ] || { echo "build-initramfs: /boot/vmlinuz-$kver missing (install linux-image-amd64)" >&2; exit 3; }
  if ldd "$(command -v busybox)" >/dev/null 2>&1; then echo "build-initramfs: busybox is not static (install busybox-static)" >&2; exit 3; fi
  cp "$(command -v busybox)" "$r/bin/busybox"

  for t in sg_inq sg_vpd sg_modes sg_logs sg_raw sg_turs sg_map sg_readcap sg_requests sg_opcodes sg_reset; do
    p=$(command -v "$t" || true)
    if [ -n "$p" ]; then copy_with_libs "$p" "/usr/bin/$t"; fi
  done
  copy_with_libs "$(command -v mtx)" /usr/sbin/mtx
  copy_with_libs "$(command -v mt-st)" /usr/bin/mt-st
  copy_with_libs "$(command -v tar)" /usr/bin/tar

  # Modules, in the order modprobe resolves their dependencies (built-ins print no insmod).
  modlist=$work/modules.order
  : > "$modlist"
  for m in virtio_pci virtio_scsi virtio_console st ch sg; do
    modprobe --show-depends -S "$kver" "$m" | awk '$1=="insmod"{print $2}' >> "$modlist"
  done
  awk '!seen[$0]++' "$modlist" > "$work/order"
  : > "$r/modules.order"
  while read -r mod; do
    dest=${mod%.xz}; dest=${dest%.zst}
    mkdir -p "$r$(dirname "$dest")"
    case "$mod" in
      *.ko.xz) xz -dc "$mod" > "$r$dest" ;;
      *.ko.zst) zstd -qdc "$mod" > "$r$dest" ;;
      *) cp "$mod" "$r$dest" ;;
    esac
    echo "$dest" >> "$r/modules.order"
  done < "$work/order"

  cat > "$r/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "@@HIL kernel-up $(cut -d' ' -f1 /proc/uptime)"
while read -r m; do insmod "$m" 2>/dev/null; done < /modules.order
# Wait for the SCSI scan to settle: every LUN the host attached shows up as an sg node.
want=$(sed -n 's/.*hil.luns=\([0-9]*\).*/\1/p' /proc/cmdline)
i=0
while [ "$(ls /sys/class/scsi_generic 2>/dev/null | wc -l)" -lt "${want:-0}" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
echo "@@HIL boot-ok $(cut -d' ' -f1 /proc/uptime) $(ls /sys/class/scsi_generic | tr '\n' ' ')"
if [ -f /hil/run.sh ]; then sh /hil/run.sh; echo "@@HIL exit $?"; fi
echo "@@HIL done"
sync
poweroff -f
INIT
  chmod +x "$r/init"
  pack "$r" "$out" gzip
  ;;
agent)
  src=$3
  need node nodejs
  mkdir -p "$r/opt/ptpvts"
  copy_with_libs "$(command -v node)" /usr/bin/node
  cp -r "$src/." "$r/opt/ptpvts/"
  pack "$r" "$out"
  ;;
backup)
  need btape bacula-sd
  need amtapetype amanda-server
  need perl perl
  perl -MEncode::Locale -e 1 2>/dev/null || { echo "build-initramfs: perl module Encode::Locale missing (install Debian package libencode-locale-perl)" >&2; exit 3; }
  mkdir -p "$r"/{etc/bacula,var/lib/bacula,var/log/amanda/server,etc/amanda,tmp}
  copy_with_libs "$(command -v btape)" /usr/sbin/btape
  copy_with_libs "$(command -v perl)" /usr/bin/perl
  cp "$(command -v amtapetype)" "$r/usr/sbin/amtapetype"
  # Amanda's perl modules and their XS parts (which pull in libamdevice, libamxfer, glib).
  amperl=/usr/lib/x86_64-linux-gnu/amanda/perl
  mkdir -p "$r$amperl"
  cp -r "$amperl/." "$r$amperl/"
  find "$amperl" -name '*.so' | while read -r so; do copy_with_libs "$so" "$so"; done
  # perl's own essentials, then every other module amtapetype loads (found by running it
  # with an @INC hook that logs each file asked for; the list is fixed here so building
  # runs nothing of Amanda's). Modules it only tries (JSON::XS, Log::Agent) may be absent.
  cp -r /usr/lib/x86_64-linux-gnu/perl-base "$r/usr/lib/x86_64-linux-gnu/"
  find /usr/lib/x86_64-linux-gnu/perl-base -name '*.so' | while read -r so; do copy_with_libs "$so" "$so"; done
  for m in Carp.pm Config.pm Data/Dumper.pm DynaLoader.pm Encode.pm Encode/Alias.pm Encode/Config.pm \
    Encode/ConfigLocal.pm Encode/Encoding.pm Encode/Locale.pm Encode/MIME/Name.pm Exporter.pm Exporter/Heavy.pm \
    Fcntl.pm File/Basename.pm Getopt/Long.pm I18N/Langinfo.pm JSON.pm JSON/PP.pm JSON/PP/Boolean.pm \
    List/Util.pm Math/BigInt.pm Math/BigInt/Calc.pm Math/BigInt/Lib.pm POSIX.pm Scalar/Util.pm Storable.pm \
    Tie/Hash.pm XSLoader.pm base.pm bytes.pm constant.pm integer.pm lib.pm mro.pm overload.pm overloading.pm \
    parent.pm strict.pm utf8.pm vars.pm warnings.pm warnings/register.pm; do
    for d in $(perl -e 'print join " ", grep { m{^/usr/(lib|share)/} } @INC'); do
      [ -f "$d/$m" ] || continue
      mkdir -p "$r$d/$(dirname "$m")"; cp "$d/$m" "$r$d/$m"
      so=$d/auto/${m%.pm}/$(basename "${m%.pm}").so
      [ -f "$so" ] && copy_with_libs "$so" "$so"
      break
    done
  done
  pack "$r" "$out"
  ;;
*)
  echo "usage: build-initramfs.sh base|agent|backup OUT ..." >&2
  exit 2
  ;;
esac
