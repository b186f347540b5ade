#!/usr/bin/env bash
# Builds the base initramfs of the hardware-in-the-loop guest from this machine's Debian
# packages: busybox-static, the kernel's virtio/SCSI modules (st, ch, sg, virtio_scsi,
# virtio_console), sg3-utils, mtx, mt-st, GNU tar, and node with the project's built addon
# and compiled dist/ (for the SG_IO agent). Per-run scripts are appended later as a second
# cpio archive, which the kernel unpacks over this one.
#
# usage: build-initramfs.sh OUT.cpio.gz KERNEL_VERSION PROJECT_ROOT
set -euo pipefail
out=$1
kver=$2
root=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r=$work/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,hil,mnt,etc,opt/ptpvts}

need() { command -v "$1" >/dev/null || { echo "build-initramfs: missing $1 (install Debian package $2)" >&2; exit 3; }; }
need busybox busybox-static
need sg_inq sg3-utils
need mtx mtx
need mt-st mt-st
need cpio cpio
[ -f "/boot/vmlinuz-$kver" ] || { echo "build-initramfs: /boot/vmlinuz-$kver missing (install linux-image-amd64)" >&2; exit 3; }
file -L "$(command -v busybox)" | grep -q 'statically linked' || { echo "build-initramfs: busybox is not static (install busybox-static)" >&2; exit 3; }

cp "$(command -v busybox)" "$r/bin/busybox"

# Executables and every shared library they need, at the same paths as on the host.
copy_with_libs() {
  local bin=$1 dest=$2
  mkdir -p "$r$(dirname "$dest")"
  cp -L "$bin" "$r$dest"
  ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | while read -r lib; do
    mkdir -p "$r$(dirname "$lib")"
    [ -e "$r$lib" ] || cp -L "$lib" "$r$lib"
  done
}
for t in sg_inq sg_vpd sg_modes sg_logs sg_raw sg_turs sg_map sg_readcap sg_rep_zones sg_requests sg_opcodes; do
  p=$(command -v "$t" || true)
  [ -n "$p" ] && copy_with_libs "$p" "/usr/bin/$t"
done
copy_with_libs "$(command -v mtx)" /usr/sbin/mtx
copy_with_libs "$(command -v mt-st)" /usr/bin/mt-st
copy_with_libs "$(command -v tar)" /usr/bin/tar
copy_with_libs "$(command -v node)" /usr/bin/node
copy_with_libs "$(command -v cmp)" /usr/bin/cmp

# Modules, in the order modprobe resolves their dependencies.
modlist=$work/modules.order
: > "$modlist"
for m in virtio_pci virtio_scsi virtio_console st ch sg; do
  modprobe --show-depends -S "$kver" "$m" | awk '$1=="insmod"{print $2}' >> "$modlist"
done
awk '!seen[$0]++' "$modlist" > "$r/modules.order"
while read -r mod; do
  mkdir -p "$r$(dirname "$mod")"
  case "$mod" in
    *.ko.xz) xz -dc "$mod" > "$r${mod%.xz}" ;;
    *.ko.zst) zstd -qdc "$mod" > "$r${mod%.zst}" ;;
    *) cp "$mod" "$r$mod" ;;
  esac
done < "$r/modules.order"
sed -i -e 's/\.ko\.xz$/.ko/' -e 's/\.ko\.zst$/.ko/' "$r/modules.order"

# The project pieces the SG_IO agent needs: compiled dist/ and the addon. No node_modules.
cp -r "$root/dist" "$r/opt/ptpvts/dist"
mkdir -p "$r/opt/ptpvts/build/Release"
cp "$root/build/Release/ptpvts.node" "$r/opt/ptpvts/build/Release/"
cp "$root/binding.gyp" "$root/package.json" "$r/opt/ptpvts/"
cp "$root/test/hil/guest/sg-agent.mjs" "$r/opt/ptpvts/sg-agent.mjs"

cat > "$r/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
ln -sf /usr/bin/mt-st /bin/mt
while read -r m; do insmod "$m" 2>/dev/null; done < /modules.order
# Wait for the SCSI scan to settle: every LUN the host attached shows up as an sg node.
want=$(sed -n 's/.*hil.luns=\([0-9]*\).*/\1/p' /proc/cmdline)
i=0
while [ "$(ls /sys/class/scsi_generic 2>/dev/null | wc -l)" -lt "${want:-0}" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
echo "@@HIL boot-ok $(ls /sys/class/scsi_generic | tr '\n' ' ')"
if [ -f /hil/run.sh ]; then sh /hil/run.sh; echo "@@HIL exit $?"; fi
echo "@@HIL done"
sync
poweroff -f
INIT
chmod +x "$r/init"

(cd "$r" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($(du -h "$out" | cut -f1))"
