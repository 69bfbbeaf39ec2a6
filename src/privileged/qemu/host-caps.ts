// SPDX-License-Identifier: Apache-2.0
// What this host's QEMU really offers, as libvirt's capabilities and domain capabilities XML (helper side). The facts
// come from a probe QEMU (`-machine none -S -nodefaults`, run by the driver through the launcher) over QMP; QEMU is
// untrusted, so every answer is shape-checked and bounded. KVM is advertised only where /dev/kvm really runs guests.
import fs from 'node:fs';
import path from 'node:path';
import { VG_ERR_ARG_INVALID, VG_ERR_CONFIG_UNSUPPORTED, VG_ERR_INTERNAL } from '../../common/errors';
import type { DomainCapsQuery } from '../../ipc/objects/host-objects';
import { DriverError, driverError } from '../drivers/driver';

export interface QemuMachine {
  name: string;
  alias: string | null;
  isDefault: boolean;
  maxCpus: number;
}

export interface QemuProbe {
  emulator: string;
  version: string; // "7.2.22"
  machines: QemuMachine[];
  kvm: { usable: boolean; reason: string };
  cpuModels: string[];
}

export type QmpExec = (cmd: string, args?: object) => Promise<unknown>;

// The domain subset the QEMU driver accepts (the list; src/privileged/drivers/qemu/config.ts refuses the rest).
// Domain capabilities advertise exactly this, so a client that follows them never builds a refused definition.
export const DRIVER_SUPPORT = {
  machines: ['q35', 'pc'], // by alias; their canonical names are accepted too
  defaultMachine: 'q35', // what a definition without <type machine=...> gets
  maxVcpus: 255, // q35/pc without an IOMMU (x2apic) in QEMU 7.2
  diskDevice: ['disk', 'cdrom'],
  diskBus: ['virtio', 'sata'],
  graphicsType: ['vnc'],
  videoModel: ['vga', 'cirrus', 'virtio', 'none'],
  rngModel: ['virtio'],
  rngBackend: ['random', 'builtin'], // both become QEMU's rng-builtin: no host device is handed to QEMU
} as const;

const MACHINES_MAX = 1024;
const CPU_MODELS_MAX = 1024;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

const bad = (what: string, why: string): DriverError => driverError(VG_ERR_INTERNAL, `QEMU probe: ${what}: ${why}`);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(what, `not an integer in [${min}, ${max}]`);
  return v;
}

function name(v: unknown, what: string): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) throw bad(what, 'not a plain name');
  return v;
}

function list(v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw bad(what, 'not a list');
  if (v.length > max) throw bad(what, `more than ${max} entries`);
  return v;
}

// /dev/kvm present and backed by a KVM that runs stock guests. kvm_pvm (software nested virtualisation, no svm/vmx)
// has /dev/kvm but cannot: `-cpu host`/`max` abort (MSR 0x10a) and a Debian kernel hangs with kvm64 (qemu-notes.md).
export function kvmUsable(root = '/'): { usable: boolean; reason: string } {
  const dev = path.join(root, 'dev/kvm');
  let st: fs.Stats;
  try {
    st = fs.statSync(dev);
  } catch {
    return { usable: false, reason: `${dev} is missing: no KVM on this host, guests run under TCG` };
  }
  if (!st.isCharacterDevice()) return { usable: false, reason: `${dev} is not a character device` };
  if (fs.existsSync(path.join(root, 'sys/module/kvm_pvm'))) {
    return { usable: false, reason: `${dev} is backed by kvm_pvm (software nested virtualisation): it does not boot stock guests, guests run under TCG` };
  }
  for (const m of ['kvm_intel', 'kvm_amd']) {
    if (fs.existsSync(path.join(root, 'sys/module', m))) return { usable: true, reason: `${dev} backed by ${m}` };
  }
  return { usable: false, reason: `${dev} exists but neither kvm_intel nor kvm_amd is loaded` };
}

// Probes the QEMU behind `exec` (its QMP, capabilities negotiated). `kvmHost` is the host-side check (tests pass one).
export async function probeQemu(exec: QmpExec, emulator: string, kvmHost = kvmUsable()): Promise<QemuProbe> {
  const ver = await exec('query-version');
  if (!isObj(ver) || !isObj(ver.qemu)) throw bad('query-version', 'no qemu version object');
  const q = ver.qemu;
  const version = `${int(q.major, 'qemu.major', 0, 999)}.${int(q.minor, 'qemu.minor', 0, 999)}.${int(q.micro, 'qemu.micro', 0, 999)}`;

  const machines: QemuMachine[] = list(await exec('query-machines'), 'query-machines', MACHINES_MAX).map((m, i) => {
    if (!isObj(m)) throw bad(`query-machines[${i}]`, 'not an object');
    if (m['is-default'] !== undefined && typeof m['is-default'] !== 'boolean') throw bad(`query-machines[${i}].is-default`, 'not a boolean');
    return {
      name: name(m.name, `query-machines[${i}].name`),
      alias: m.alias === undefined ? null : name(m.alias, `query-machines[${i}].alias`),
      isDefault: m['is-default'] === true,
      maxCpus: int(m['cpu-max'], `query-machines[${i}].cpu-max`, 1, 65536),
    };
  });
  if (machines.filter((m) => m.isDefault).length > 1) throw bad('query-machines', 'more than one default machine');

  const cpuModels = list(await exec('query-cpu-definitions'), 'query-cpu-definitions', CPU_MODELS_MAX).map((c, i) => {
    if (!isObj(c)) throw bad(`query-cpu-definitions[${i}]`, 'not an object');
    return name(c.name, `query-cpu-definitions[${i}].name`);
  });

  const kvm = await exec('query-kvm');
  if (!isObj(kvm) || typeof kvm.present !== 'boolean' || typeof kvm.enabled !== 'boolean') throw bad('query-kvm', 'not {enabled, present}');
  const usable = kvmHost.usable && kvm.present;
  const reason = kvmHost.usable && !kvm.present ? `${emulator} was built without KVM support` : kvmHost.reason;
  return { emulator, version, machines, kvm: { usable, reason }, cpuModels };
}

// CONNECT_GET_VERSION's number for the probed QEMU, as libvirt computes it: major * 1,000,000 + minor * 1,000 + micro.
export function qemuVersionNumber(p: QemuProbe): bigint {
  const [major, minor, micro] = p.version.split('.').map((x) => BigInt(x));
  return major * 1_000_000n + minor * 1_000n + micro;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

// The machines the driver accepts: each supported alias and the versioned machine it stands for.
function offeredMachines(p: QemuProbe): { alias: QemuMachine; canonical: string }[] {
  return DRIVER_SUPPORT.machines.flatMap((a) => {
    const m = p.machines.find((x) => x.alias === a);
    return m ? [{ alias: m, canonical: m.name }] : [];
  });
}

const maxVcpus = (m: QemuMachine): number => Math.min(m.maxCpus, DRIVER_SUPPORT.maxVcpus);

export interface HostFacts {
  uuid: string;
  cpus: number;
  memKiB: bigint;
  arch: 'x86_64';
  // <secmodel> entries (libvirt lists one per security driver); default: none.
  secmodels?: { model: string; doi: string; baselabels?: { type: string; label: string }[] }[];
}

// virConnectGetCapabilities for a QEMU host, in libvirt 9.0's layout (2-space indent, blank lines between sections).
export function qemuCapabilitiesXml(p: QemuProbe, host: HostFacts): string {
  const o: string[] = ['<capabilities>', '', '  <host>', `    <uuid>${esc(host.uuid)}</uuid>`, '    <cpu>', `      <arch>${host.arch}</arch>`];
  o.push(`      <topology sockets='1' dies='1' cores='${host.cpus}' threads='1'/>`, "      <pages unit='KiB' size='4'/>", '    </cpu>');
  o.push('    <power_management/>', "    <iommu support='no'/>", '    <topology>', "      <cells num='1'>", "        <cell id='0'>");
  o.push(`          <memory unit='KiB'>${host.memKiB}</memory>`, `          <cpus num='${host.cpus}'>`);
  for (let i = 0; i < host.cpus; i++) o.push(`            <cpu id='${i}' socket_id='0' die_id='0' core_id='${i}' siblings='${i}'/>`);
  o.push('          </cpus>', '        </cell>', '      </cells>', '    </topology>');
  for (const s of host.secmodels ?? [{ model: 'none', doi: '0' }]) {
    o.push('    <secmodel>', `      <model>${esc(s.model)}</model>`, `      <doi>${esc(s.doi)}</doi>`);
    for (const b of s.baselabels ?? []) o.push(`      <baselabel type='${esc(b.type)}'>${esc(b.label)}</baselabel>`);
    o.push('    </secmodel>');
  }
  o.push('  </host>', '', '  <guest>', '    <os_type>hvm</os_type>', `    <arch name='${host.arch}'>`, '      <wordsize>64</wordsize>');
  o.push(`      <emulator>${esc(p.emulator)}</emulator>`);
  for (const { alias, canonical } of offeredMachines(p)) {
    o.push(`      <machine maxCpus='${maxVcpus(alias)}'>${esc(canonical)}</machine>`);
    o.push(`      <machine canonical='${esc(canonical)}' maxCpus='${maxVcpus(alias)}'>${esc(alias.alias!)}</machine>`);
  }
  o.push("      <domain type='qemu'/>");
  if (p.kvm.usable) o.push("      <domain type='kvm'/>");
  // <deviceboot/>: per-device <boot order>; no <cpuselection/> (the driver picks the CPU), no disk snapshots.
  o.push('    </arch>', '    <features>', "      <acpi default='on' toggle='yes'/>", "      <apic default='on' toggle='no'/>", '      <deviceboot/>');
  o.push('    </features>', '  </guest>', '', '</capabilities>', '');
  return o.join('\n');
}

export type { DomainCapsQuery };

// virConnectGetDomainCapabilities: the defaults and refusals of libvirt's QEMU driver (same messages), for the one
// emulator and the machines this driver runs.
export function domainCapabilitiesXml(p: QemuProbe, q: DomainCapsQuery): string {
  if (q.arch !== null && q.arch !== 'x86_64') {
    if (q.emulatorbin !== null && q.emulatorbin === p.emulator)
      throw driverError(VG_ERR_ARG_INVALID, `Emulator '${q.emulatorbin}' does not support arch '${q.arch}'`);
    throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `unable to find any emulator to serve '${q.arch}' architecture`);
  }
  if (q.emulatorbin !== null && q.emulatorbin !== p.emulator) {
    throw driverError(VG_ERR_CONFIG_UNSUPPORTED, `emulator '${q.emulatorbin}' (this host runs only ${p.emulator})`);
  }
  const virttype = q.virttype ?? (p.kvm.usable ? 'kvm' : 'qemu');
  if (virttype !== 'qemu' && virttype !== 'kvm') throw driverError(VG_ERR_ARG_INVALID, `unknown virttype: ${virttype}`);
  if (virttype === 'kvm' && !p.kvm.usable) {
    throw driverError(VG_ERR_ARG_INVALID, `the accel 'kvm' is not supported by '${p.emulator}' on this host (${p.kvm.reason})`);
  }
  const offered = offeredMachines(p);
  const want = q.machine ?? DRIVER_SUPPORT.defaultMachine;
  const hit = offered.find((m) => m.alias.alias === want || m.canonical === want);
  if (!hit) throw driverError(VG_ERR_ARG_INVALID, `the machine '${want}' is not supported by emulator '${p.emulator}'`);

  const e = (ind: string, n: string, vals: readonly string[]): string[] =>
    vals.length === 0 ? [`${ind}<enum name='${n}'/>`] : [`${ind}<enum name='${n}'>`, ...vals.map((v) => `${ind}  <value>${v}</value>`), `${ind}</enum>`];
  const no = (ind: string, tag: string): string => `${ind}<${tag} supported='no'/>`;
  const d = DRIVER_SUPPORT;
  const o: string[] = ['<domainCapabilities>', `  <path>${esc(p.emulator)}</path>`, `  <domain>${virttype}</domain>`];
  o.push(`  <machine>${esc(hit.canonical)}</machine>`, '  <arch>x86_64</arch>', `  <vcpu max='${maxVcpus(hit.alias)}'/>`, no('  ', 'iothreads'));
  // Direct kernel boot only: no firmware selection, no <loader>.
  o.push("  <os supported='yes'>", ...e('    ', 'firmware', []), no('    ', 'loader'), '  </os>');
  // The driver chooses the guest CPU itself: none of libvirt's CPU modes is configurable.
  o.push('  <cpu>', ...['host-passthrough', 'maximum', 'host-model', 'custom'].map((m) => `    <mode name='${m}' supported='no'/>`), '  </cpu>');
  o.push(no('  ', 'memoryBacking'), '  <devices>');
  o.push(
    "    <disk supported='yes'>",
    ...e('      ', 'diskDevice', d.diskDevice),
    ...e('      ', 'bus', d.diskBus),
    ...e('      ', 'model', []),
    '    </disk>',
  );
  o.push("    <graphics supported='yes'>", ...e('      ', 'type', d.graphicsType), '    </graphics>');
  o.push("    <video supported='yes'>", ...e('      ', 'modelType', d.videoModel), '    </video>');
  o.push(no('    ', 'hostdev'));
  o.push("    <rng supported='yes'>", ...e('      ', 'model', d.rngModel), ...e('      ', 'backendModel', d.rngBackend), '    </rng>');
  for (const t of ['filesystem', 'tpm', 'redirdev', 'channel']) o.push(no('    ', t));
  o.push('  </devices>', '  <features>');
  for (const f of ['gic', 'vmcoreinfo', 'genid', 'backingStoreInput', 'backup', 'sev', 'sgx', 'hyperv']) o.push(no('    ', f));
  o.push('  </features>', '</domainCapabilities>', '');
  return o.join('\n');
}
