// SPDX-License-Identifier: Apache-2.0
// The test guest (tools/build-test-guest.sh): a Debian kernel + busybox initramfs that prints a marker line on the
// serial console, powers off on the ACPI power button and keeps a shell on the console. Built once into
// <repo>/.cache/test-guest/ (the script holds a file lock, so parallel jest workers build it once and reuse it).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { kvmUsable } from '../../src/privileged/qemu/host-caps';
import { type Requirement, file, missing, tool } from './skip';

export interface TestGuest {
  kernel: string;
  initrd: string;
  marker: string; // the line the guest prints on its serial console once acpid and the console shell are up
}

// A Requirement (for describeIf/testIf) that also carries the guest when it could be built.
export interface GuestRequirement extends Requirement {
  guest: TestGuest | null;
}

const repo = path.resolve(__dirname, '..', '..');
export const guestDir = path.join(repo, '.cache', 'test-guest');
export const QEMU = '/usr/bin/qemu-system-x86_64';

let cached: GuestRequirement | undefined;

function build(): GuestRequirement {
  const need = 'the test guest (tools/build-test-guest.sh: Debian packages busybox-static and a reachable Debian mirror)';
  const miss = missing([tool('apt-get', 'apt'), tool('dpkg-deb', 'dpkg'), tool('busybox', 'busybox-static')]);
  if (miss.length > 0) return { ok: false, need: `${need}: missing ${miss.join(', ')}`, guest: null };
  const r = spawnSync(path.join(repo, 'tools', 'build-test-guest.sh'), [], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-2).join('; ');
    return { ok: false, need: `${need}: ${why}`, guest: null };
  }
  // The script's one line: "built ..." or "up to date ..."; shown so a slow first test explains itself.
  if (r.stdout.includes('built ')) process.stdout.write(r.stdout);
  const guest = {
    kernel: path.join(guestDir, 'vmlinuz'),
    initrd: path.join(guestDir, 'initrd.img'),
    marker: fs.readFileSync(path.join(guestDir, 'marker'), 'utf8').trim(),
  };
  return { ok: true, need, guest };
}

// Builds the guest on first use in this process (a no-op ~0.1 s when it is up to date), or says why it cannot.
export function testGuest(): GuestRequirement {
  cached ??= build();
  return cached;
}

// The test guest as a bootable raw disk (tools/build-test-disk.sh: SYSLINUX on an unpartitioned FAT image holding the
// guest's kernel and initrd; console=tty0 console=ttyS0), for VMs that boot from a volume as virt-manager's "Import
// existing disk image" makes them. Built after the guest, on first use in this process.
export interface DiskRequirement extends Requirement {
  disk: string | null; // <repo>/.cache/test-guest/disk.img
  marker: string;
}

let cachedDisk: DiskRequirement | undefined;

export function testDisk(): DiskRequirement {
  if (cachedDisk) return cachedDisk;
  const g = testGuest();
  const need = 'the test disk (tools/build-test-disk.sh)';
  if (!g.ok || !g.guest) return (cachedDisk = { ok: false, need: g.need, disk: null, marker: '' });
  const miss = missing([
    tool('mkfs.vfat', 'dosfstools'),
    tool('syslinux', 'syslinux'),
    tool('mcopy', 'mtools'),
    file('/usr/lib/syslinux/modules/bios', 'syslinux-common'),
  ]);
  if (miss.length > 0) return (cachedDisk = { ok: false, need: `${need}: missing ${miss.join(', ')}`, disk: null, marker: '' });
  const r = spawnSync(path.join(repo, 'tools', 'build-test-disk.sh'), [], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-2).join('; ');
    return (cachedDisk = { ok: false, need: `${need}: ${why}`, disk: null, marker: '' });
  }
  if (r.stdout.includes('built ')) process.stdout.write(r.stdout);
  return (cachedDisk = { ok: true, need, disk: path.join(guestDir, 'disk.img'), marker: g.guest.marker });
}

// What a VM test needs besides the guest: the emulator.
export const qemuTool = (): Requirement => tool(QEMU, 'qemu-system-x86');

// The `type='kvm'` variants of VM tests: KVM that really runs guests (not kvm_pvm, src/privileged/qemu/host-caps.ts).
export function kvmRequirement(): Requirement {
  const k = kvmUsable();
  return { ok: k.usable, need: `KVM that runs guests (${k.reason})` };
}

// describe() for those variants. No package provides KVM, so where it is missing they skip with the reason printed,
// under CI=true too (the issue: "elsewhere they skip with the reason printed"); .ci/run says which accelerator ran.
export function describeWithKvm(name: string, fn: () => void): void {
  const r = kvmRequirement();
  if (r.ok) return describe(name, fn);
  process.stdout.write(`SKIP: ${name}: needs ${r.need}; the TCG variant runs instead\n`);
  describe.skip(name, fn);
}
