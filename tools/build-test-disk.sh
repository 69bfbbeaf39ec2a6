#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds a bootable disk image of the test guest (tools/build-test-guest.sh's kernel and initrd): an unpartitioned FAT
# image ("superfloppy") made with mkfs.vfat, SYSLINUX installed into its boot sector with the mtools-based `syslinux`
# (no mount, no loop device), and the kernel, initrd and syslinux.cfg copied in with mcopy. SeaBIOS runs the boot
# sector; the kernel gets console=tty0 console=ttyS0, so the marker is on the serial console (the last console= is
# /dev/console) and boot messages also show on the screen. A raw image: what virt-manager's "Import existing disk
# image" boots from a volume.
# Output: <guest dir>/disk.img (default <repo>/.cache/test-guest). Idempotent: the stamp holds this script's digest and
# the kernel's and initrd's, so it is rebuilt when either changes. Debian packages: syslinux, syslinux-common, mtools,
# dosfstools. Prints one line saying what it did.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${VIRTGATE_GUEST_DIR:-$repo/.cache/test-guest}"
img="$dir/disk.img"
size_mib=32

for t in mkfs.vfat:dosfstools syslinux:syslinux mcopy:mtools flock:util-linux sha256sum:coreutils; do
  command -v "${t%%:*}" >/dev/null || { echo "build-test-disk: ${t%%:*} not found (Debian package ${t#*:})" >&2; exit 2; }
done
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || [ -d /usr/lib/syslinux/modules/bios ] \
  || { echo "build-test-disk: the SYSLINUX modules are missing (Debian package syslinux-common)" >&2; exit 2; }
for f in vmlinuz initrd.img; do
  [ -f "$dir/$f" ] || { echo "build-test-disk: $dir/$f missing: run tools/build-test-guest.sh first" >&2; exit 2; }
done

exec 9>"$img.lock"
flock 9

digest="$(cat "$0" "$dir/vmlinuz" "$dir/initrd.img" | sha256sum | cut -d' ' -f1)"
if [ -f "$img" ] && [ -f "$img.stamp" ] && [ "$(cat "$img.stamp")" = "$digest" ]; then
  echo "build-test-disk: up to date: $img"
  exit 0
fi

start=$(date +%s.%N)
tmp="$(mktemp "$img.tmp.XXXXXX")"
work="$(mktemp -d "$img.work.XXXXXX")"
trap 'rm -rf "$tmp" "$work"' EXIT
cat >"$work/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT guest
PROMPT 0
TIMEOUT 0
LABEL guest
  KERNEL vmlinuz
  APPEND initrd=initrd.img console=tty0 console=ttyS0
EOF
rm -f "$tmp"
# -C: create the image file; -n/-i: fixed label and volume id (the image does not vary with the day it was built).
mkfs.vfat -C -n VGGUEST -i 56474754 "$tmp" $((size_mib * 1024)) >/dev/null
syslinux --install "$tmp"
MTOOLS_SKIP_CHECK=1 mcopy -o -i "$tmp" "$dir/vmlinuz" "$dir/initrd.img" "$work/syslinux.cfg" ::/
chmod 0644 "$tmp"
mv -f "$tmp" "$img"
printf '%s\n' "$digest" >"$img.stamp"
echo "build-test-disk: built $img (${size_mib} MiB FAT, SYSLINUX) in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
