#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the download-free test guest from Debian packages only (see docs/qemu.md):
#   - the kernel of the versioned package `linux-image-amd64` depends on, fetched with `apt-get download` and unpacked
#     with dpkg-deb (never installed);
#   - a busybox-static initramfs whose /init loads the virtio modules, runs acpid (power button -> poweroff -f),
#     prints a marker line on the serial console, then keeps a shell on it.
# Output: <repo>/.cache/test-guest/{vmlinuz,initrd.img,marker,stamp}. Idempotent: the stamp holds this script's
# digest and the kernel version, so an unchanged script reuses the guest. A lock makes parallel callers (jest workers)
# build it once; the others wait and reuse it. Prints one line saying what it did.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${VIRTGATE_GUEST_DIR:-$repo/.cache/test-guest}"
marker='VIRTGATE-GUEST-READY'
# insmod does no dependency resolution: this order loads each module after what it needs.
modules='button evdev virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_balloon
virtio_blk virtio_console virtio-rng failover net_failover virtio_net'

for t in apt-cache apt-get dpkg-deb flock sha256sum gzip; do
  command -v "$t" >/dev/null || { echo "build-test-guest: $t not found (Debian: apt, dpkg, util-linux, coreutils, gzip)" >&2; exit 2; }
done
busybox=/bin/busybox
# grep -q would exit at the first match and, under pipefail, busybox's SIGPIPE would fail the check now and then.
[ -x "$busybox" ] && "$busybox" --list | grep -x acpid >/dev/null && [ -z "$(ldd "$busybox" 2>/dev/null | grep '=>' || true)" ] \
  || { echo "build-test-guest: a static $busybox with acpid is needed (Debian package busybox-static)" >&2; exit 2; }

mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9

self_digest="$(sha256sum "$0" | cut -d' ' -f1)"
if [ -f "$out/stamp" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] && [ -f "$out/marker" ] \
  && [ "$(head -n1 "$out/stamp")" = "$self_digest" ]; then
  echo "build-test-guest: up to date in $out ($(sed -n 2p "$out/stamp"))"
  exit 0
fi

start=$(date +%s.%N)
pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | sed -n 1p)"
[ -n "$pkg" ] || { echo "build-test-guest: apt-cache depends linux-image-amd64 names no versioned kernel (run apt-get update)" >&2; exit 2; }

work="$(mktemp -d "$out.tmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
# -o APT::Sandbox::User=root: the download goes to this root-owned temp dir, which _apt could not write.
apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null
deb="$(ls ./*.deb)"
mkdir fs
dpkg-deb --fsys-tarfile "$deb" | tar -x -C fs ./boot ./lib/modules
rm -f "$deb"
kver="$(ls fs/lib/modules)"
[ -f "fs/boot/vmlinuz-$kver" ] || { echo "build-test-guest: $pkg has no boot/vmlinuz-$kver" >&2; exit 2; }

root="$work/initramfs"
mkdir -p "$root"/{bin,sbin,etc/acpi/PWRF,proc,sys,dev,tmp,lib/modules,root}
cp "$busybox" "$root/bin/busybox"
for m in $modules; do
  f="$(find "fs/lib/modules/$kver" -name "$m.ko" | sed -n 1p)"
  [ -n "$f" ] || { echo "build-test-guest: module $m.ko not in $pkg" >&2; exit 2; }
  cp "$f" "$root/lib/modules/"
done

cat >"$root/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/busybox sh
/bin/busybox poweroff -f
EOF

cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node: take the console from devtmpfs.
exec 0</dev/console 1>/dev/console 2>&1
for m in $(echo $modules); do insmod /lib/modules/\$m.ko || echo "virtgate-guest: insmod \$m failed"; done
# Default log/pid paths are under /var, which does not exist: acpid would exit at once.
acpid -c /etc/acpi -l /dev/null -p /tmp/acpid.pid || echo "virtgate-guest: acpid failed"
# acpid returns before its daemon opens /dev/input/event*, and writes its pid file only after: the marker promises a
# power button press is heard, so wait (at most 10 s) for the pid file and check the device is open.
i=0
while [ \$i -lt 100 ] && ! ls -l /proc/\$(cat /tmp/acpid.pid 2>/dev/null)/fd 2>/dev/null | grep -q /dev/input/event; do
  sleep 0.1; i=\$((i + 1))
done
[ \$i -lt 100 ] || echo "virtgate-guest: acpid has no input device open"
# Hot-plugged vCPUs arrive offline and there is no udev: bring them online (setvcpus --live).
( while :; do
    for f in /sys/devices/system/cpu/cpu[1-9]*/online; do
      [ -f "\$f" ] && read v <"\$f" && [ "\$v" = 0 ] && echo 1 >"\$f"
    done
    sleep 1
  done ) &
# A shell on tty1, the VGA console, for keys typed with send-key: a new session whose open of /dev/tty1 makes it
# the controlling tty (cttyhack would pick the serial console named in /sys/class/tty/console/active).
( while :; do setsid sh -c 'exec sh </dev/tty1 >/dev/tty1 2>&1'; sleep 1; done ) &
echo '$marker'
while :; do setsid cttyhack sh; sleep 1; done
EOF
chmod 0755 "$root/init" "$root/etc/acpi/PWRF/00000080"

(cd "$root" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -9n >"$work/initrd.img"

rm -rf "$out" "$out.new"
mkdir "$out.new"
mv "fs/boot/vmlinuz-$kver" "$out.new/vmlinuz"
mv "$work/initrd.img" "$out.new/initrd.img"
printf '%s\n' "$marker" >"$out.new/marker"
printf '%s\n%s\n' "$self_digest" "$pkg" >"$out.new/stamp"
mv "$out.new" "$out"
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "build-test-guest: built $out from $pkg (kernel $kver, initrd $(stat -c %s "$out/initrd.img") bytes) in ${secs}s"
