// SPDX-License-Identifier: Apache-2.0
// Host capabilities of the QEMU driver: the probe over QMP answers recorded from this host's QEMU 7.2
// (test/fixtures/qemu/probe-7.2-tcg.json: `-machine none -S -nodefaults -accel tcg`, query-version, query-machines,
// query-cpu-definitions, query-kvm), the KVM check, and the two XML documents, validated with libvirt's own RelaxNG
// schemas (virt-xml-validate) and parsed by virt-install's library (virtinst).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Op, decodeRequest, encodeRequest } from '../../../src/ipc/program';
import { answerHostRead } from '../../../src/privileged/answers/host-objects';
import { DriverError } from '../../../src/privileged/drivers/driver';
import {
  type QemuProbe,
  DRIVER_SUPPORT,
  domainCapabilitiesXml,
  kvmUsable,
  probeQemu,
  qemuCapabilitiesXml,
  qemuVersionNumber,
} from '../../../src/privileged/qemu/host-caps';
import { file, testIf, tool } from '../../helpers/skip';

const EMU = '/usr/bin/qemu-system-x86_64';
const recorded = JSON.parse(fs.readFileSync(path.join(__dirname, '../../fixtures/qemu/probe-7.2-tcg.json'), 'utf8')) as Record<string, { return: unknown }>;
// A QMP `exec` answering from the recording (or from `override` for the malformed-answer cases).
const execOf =
  (override: Record<string, unknown> = {}) =>
  async (cmd: string): Promise<unknown> => {
    if (cmd in override) return override[cmd];
    if (!(cmd in recorded)) throw new Error(`unexpected QMP command ${cmd}`);
    return structuredClone(recorded[cmd].return);
  };
const NO_KVM = { usable: false, reason: '/dev/kvm is missing' };
const HOST = { uuid: '476545c9-294d-40dd-9f88-60a19de6d144', cpus: 2, memKiB: 9529120n, arch: 'x86_64' as const };

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-hostcaps-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('probeQemu', () => {
  test('reads version, machines, CPU models and KVM from the recorded QEMU 7.2', async () => {
    const p = await probeQemu(execOf(), EMU, NO_KVM);
    expect(p.emulator).toBe(EMU);
    expect(p.version).toBe('7.2.22');
    expect(p.machines).toContainEqual({ name: 'pc-q35-7.2', alias: 'q35', isDefault: false, maxCpus: 288 });
    expect(p.machines).toContainEqual({ name: 'pc-i440fx-7.2', alias: 'pc', isDefault: true, maxCpus: 255 });
    expect(p.machines).toHaveLength(59);
    expect(p.cpuModels).toEqual(expect.arrayContaining(['qemu64', 'max', 'EPYC']));
    expect(p.kvm).toEqual(NO_KVM);
    expect(qemuVersionNumber(p)).toBe(7002022n); // virsh version: "Running hypervisor: QEMU 7.2.22"
  });

  test('KVM is usable only when the host check and QEMU (query-kvm present) both say so', async () => {
    const host = { usable: true, reason: '/dev/kvm backed by kvm_intel' };
    expect((await probeQemu(execOf(), EMU, host)).kvm).toEqual(host);
    const noKvmQemu = await probeQemu(execOf({ 'query-kvm': { enabled: false, present: false } }), EMU, host);
    expect(noKvmQemu.kvm).toEqual({ usable: false, reason: `${EMU} was built without KVM support` });
  });

  test.each([
    ['query-version', { qemu: { major: '7', minor: 2, micro: 0 } }, /qemu.major/],
    ['query-version', 'x', /no qemu version object/],
    ['query-machines', [{ name: 'pc', 'cpu-max': 'many' }], /cpu-max/],
    ['query-machines', [{ name: "pc'/><domain type='kvm'/><x a='", 'cpu-max': 1 }], /not a plain name/],
    ['query-machines', [{ name: 'pc', alias: 7, 'cpu-max': 1 }], /alias/],
    [
      'query-machines',
      [
        { name: 'a', 'cpu-max': 1, 'is-default': true },
        { name: 'b', 'cpu-max': 1, 'is-default': true },
      ],
      /more than one default/,
    ],
    ['query-machines', Array.from({ length: 1025 }, (_, i) => ({ name: `m${i}`, 'cpu-max': 1 })), /more than 1024/],
    ['query-cpu-definitions', { name: 'qemu64' }, /not a list/],
    ['query-cpu-definitions', [{ name: 'a'.repeat(65) }], /not a plain name/],
    ['query-kvm', { enabled: 'no', present: true }, /query-kvm/],
  ])('a malformed %s answer is refused (QEMU is untrusted)', async (cmd, answer, why) => {
    const err = await probeQemu(execOf({ [cmd]: answer }), EMU, NO_KVM).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).code).toBe('VG_ERR_INTERNAL');
    expect((err as DriverError).detail).toMatch(why);
  });
});

describe('kvmUsable', () => {
  const root = (name: string, kvm: 'chardev' | 'file' | null, modules: string[]): string => {
    const r = path.join(tmp, name);
    fs.mkdirSync(path.join(r, 'dev'), { recursive: true });
    if (kvm === 'chardev') fs.symlinkSync('/dev/null', path.join(r, 'dev/kvm')); // a real character device
    if (kvm === 'file') fs.writeFileSync(path.join(r, 'dev/kvm'), '');
    for (const m of modules) fs.mkdirSync(path.join(r, 'sys/module', m), { recursive: true });
    return r;
  };

  test('this host: printed with its reason (kvm_pvm or no /dev/kvm here means TCG)', () => {
    const k = kvmUsable();
    process.stdout.write(`kvmUsable() on this host: ${JSON.stringify(k)}\n`);
    if (fs.existsSync('/sys/module/kvm_pvm') || !fs.existsSync('/dev/kvm')) expect(k.usable).toBe(false);
    expect(k.reason).toMatch(/\/dev\/kvm/);
  });

  test.each([
    ['no /dev/kvm', null, [], false, /missing/],
    ['/dev/kvm a plain file', 'file', ['kvm', 'kvm_intel'], false, /not a character device/],
    ['kvm_pvm', 'chardev', ['kvm', 'kvm_pvm'], false, /kvm_pvm/],
    ['kvm_pvm beside kvm_amd', 'chardev', ['kvm', 'kvm_amd', 'kvm_pvm'], false, /kvm_pvm/],
    ['no vendor module', 'chardev', ['kvm'], false, /neither kvm_intel nor kvm_amd/],
    ['kvm_intel', 'chardev', ['kvm', 'kvm_intel'], true, /kvm_intel/],
    ['kvm_amd', 'chardev', ['kvm', 'kvm_amd'], true, /kvm_amd/],
  ] as const)('%s', (name, kvm, modules, usable, why) => {
    const k = kvmUsable(root(name.replace(/\W/g, '_'), kvm, [...modules]));
    expect(k.usable).toBe(usable);
    expect(k.reason).toMatch(why);
  });
});

describe('capabilities XML', () => {
  let p: QemuProbe;
  beforeAll(async () => {
    p = await probeQemu(execOf(), EMU, NO_KVM);
  });

  test('offers the emulator, the driver machines with their canonical names, and qemu only without KVM', () => {
    const xml = qemuCapabilitiesXml(p, HOST);
    expect(xml).toContain(`<uuid>${HOST.uuid}</uuid>`);
    expect(xml).toContain(`<emulator>${EMU}</emulator>`);
    expect(xml).toContain("<machine canonical='pc-q35-7.2' maxCpus='255'>q35</machine>");
    expect(xml).toContain("<machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>");
    expect(xml).toContain("<memory unit='KiB'>9529120</memory>");
    // Only what the driver runs: not microvm, isapc or old versioned machines.
    expect(xml.match(/<machine /g)).toHaveLength(4);
    expect(xml).not.toMatch(/microvm|isapc|pc-q35-2/);
    expect(xml).toContain("<domain type='qemu'/>");
    expect(xml).not.toContain("<domain type='kvm'/>");
    expect(qemuCapabilitiesXml({ ...p, kvm: { usable: true, reason: '' } }, HOST)).toContain("<domain type='kvm'/>");
  });

  test('escapes what it does not control', () => {
    const xml = qemuCapabilitiesXml(p, { ...HOST, uuid: "<x>'&", secmodels: [{ model: 'selinux', doi: '0', baselabels: [{ type: 'qemu', label: 'a<b' }] }] });
    expect(xml).toContain('<uuid>&lt;x&gt;&apos;&amp;</uuid>');
    expect(xml).toContain("<baselabel type='qemu'>a&lt;b</baselabel>");
  });

  test('domain capabilities: libvirt defaults (kvm when usable, else qemu) and the machine the driver defaults to', () => {
    const none = { emulatorbin: null, arch: null, machine: null, virttype: null };
    const xml = domainCapabilitiesXml(p, none);
    expect(xml).toMatch(/<path>\/usr\/bin\/qemu-system-x86_64<\/path>\n {2}<domain>qemu<\/domain>\n {2}<machine>pc-q35-7.2<\/machine>/);
    expect(xml).toContain("<vcpu max='255'/>");
    expect(domainCapabilitiesXml({ ...p, kvm: { usable: true, reason: '' } }, none)).toContain('<domain>kvm</domain>');
    expect(domainCapabilitiesXml(p, { ...none, machine: 'pc' })).toContain('<machine>pc-i440fx-7.2</machine>');
    expect(domainCapabilitiesXml(p, { emulatorbin: EMU, arch: 'x86_64', machine: 'pc-q35-7.2', virttype: 'qemu' })).toContain('<machine>pc-q35-7.2</machine>');
    // Only the driver's subset is advertised: no hostdev, no loader, no CPU modes, the disk buses it accepts.
    expect(xml).toContain("<hostdev supported='no'/>");
    expect(xml).toContain("<loader supported='no'/>");
    expect(xml).not.toMatch(/<mode name='[a-z-]+' supported='yes'/);
    expect(xml).toContain("<enum name='bus'>\n        <value>virtio</value>\n        <value>sata</value>\n      </enum>");
    for (const v of DRIVER_SUPPORT.videoModel) expect(xml).toContain(`<value>${v}</value>`);
  });

  test.each([
    [{ machine: 'microvm' }, 'VG_ERR_ARG_INVALID', "the machine 'microvm' is not supported by emulator '/usr/bin/qemu-system-x86_64'"],
    [{ machine: 'foo' }, 'VG_ERR_ARG_INVALID', "the machine 'foo' is not supported"],
    [{ virttype: 'kvm' }, 'VG_ERR_ARG_INVALID', "the accel 'kvm' is not supported by '/usr/bin/qemu-system-x86_64' on this host (/dev/kvm is missing)"],
    [{ virttype: 'xen' }, 'VG_ERR_ARG_INVALID', 'unknown virttype: xen'],
    [{ arch: 'aarch64' }, 'VG_ERR_CONFIG_UNSUPPORTED', "unable to find any emulator to serve 'aarch64' architecture"],
    [{ arch: 'i686', emulatorbin: EMU }, 'VG_ERR_ARG_INVALID', "Emulator '/usr/bin/qemu-system-x86_64' does not support arch 'i686'"],
    [{ emulatorbin: '/usr/bin/qemu-system-i386' }, 'VG_ERR_CONFIG_UNSUPPORTED', "emulator '/usr/bin/qemu-system-i386'"],
  ])('refuses %j as libvirt does', async (q, code, detail) => {
    const p2 = await probeQemu(execOf(), EMU, NO_KVM);
    let err: unknown;
    try {
      domainCapabilitiesXml(p2, { emulatorbin: null, arch: null, machine: null, virttype: null, ...q });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).code).toBe(code);
    expect((err as DriverError).detail).toContain(detail);
  });

  const xmllint = [tool('virt-xml-validate', 'libvirt-clients'), tool('xmllint', 'libxml2-utils')];
  testIf(xmllint, "both documents validate against libvirt 9.0's RelaxNG schemas (capability.rng, domaincaps.rng)", () => {
    const caps = path.join(tmp, 'caps.xml');
    const dcaps = path.join(tmp, 'domcaps.xml');
    for (const kvm of [false, true]) {
      const pk = { ...p, kvm: { usable: kvm, reason: '' } };
      fs.writeFileSync(
        caps,
        qemuCapabilitiesXml(pk, {
          ...HOST,
          secmodels: [{ model: 'selinux', doi: '0', baselabels: [{ type: 'qemu', label: 'system_u:system_r:virtgate_qemu_t:s0' }] }],
        }),
      );
      fs.writeFileSync(dcaps, domainCapabilitiesXml(pk, { emulatorbin: null, arch: null, machine: 'pc', virttype: null }));
      execFileSync('virt-xml-validate', [caps, 'capability'], { stdio: 'pipe' });
      execFileSync('virt-xml-validate', [dcaps, 'domaincaps'], { stdio: 'pipe' });
    }
  });

  const virtinst = [file('/usr/share/virt-manager/virtinst/domcapabilities.py', 'virtinst'), file('/usr/bin/python3', 'python3')];
  testIf(virtinst, "virt-install's library reads both: the q35 guest, its emulator, the disk buses, no UEFI", () => {
    const caps = path.join(tmp, 'vi-caps.xml');
    const dcaps = path.join(tmp, 'vi-domcaps.xml');
    fs.writeFileSync(caps, qemuCapabilitiesXml(p, HOST));
    fs.writeFileSync(dcaps, domainCapabilitiesXml(p, { emulatorbin: null, arch: null, machine: null, virttype: null }));
    // test:///default only gives virtinst a connection object; the documents parsed are ours.
    const script = `
import sys, json
sys.path.insert(0, '/usr/share/virt-manager')
from virtinst import VirtinstConnection
from virtinst.capabilities import Capabilities
from virtinst.domcapabilities import DomainCapabilities
conn = VirtinstConnection('test:///default'); conn.open(None, None)
caps = Capabilities(conn, open(sys.argv[1]).read())
g = caps.guest_lookup(os_type='hvm', arch='x86_64', typ='qemu', machine='q35')
dc = DomainCapabilities(conn, parsexml=open(sys.argv[2]).read())
print(json.dumps({'arch': caps.host.cpu.arch, 'emulator': g.emulator, 'machines': g.machines, 'hvtype': g.hypervisor_type,
  'path': dc.path, 'domain': dc.domain, 'machine': dc.machine, 'uefi': dc.supports_uefi_loader(),
  'bus': dc.devices.disk.get_enum('bus').get_values(), 'video': dc.devices.video.get_enum('modelType').get_values()}))
`;
    const r = spawnSync('/usr/bin/python3', ['-c', script, caps, dcaps], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      arch: 'x86_64',
      emulator: EMU,
      machines: ['pc-q35-7.2', 'q35', 'pc-i440fx-7.2', 'pc'],
      hvtype: 'qemu',
      path: EMU,
      domain: 'qemu',
      machine: 'pc-q35-7.2',
      uefi: false,
      bus: ['virtio', 'sata'],
      video: ['vga', 'cirrus', 'virtio', 'none'],
    });
  });
});

describe('HOST_READ domainCapabilities (the helper op behind CONNECT_GET_DOMAIN_CAPABILITIES)', () => {
  const none = { emulatorbin: null, arch: null, machine: null, virttype: null };

  test('a driver with domainCapabilities answers its XML; one without answers "not supported" (test driver)', async () => {
    const p = await probeQemu(execOf(), EMU, NO_KVM);
    const qemuLike = { domainCapabilities: (q: typeof none) => domainCapabilitiesXml(p, q) };
    const ans = await answerHostRead({ driver: qemuLike }, { action: 'domainCapabilities', ...none, machine: 'pc' });
    expect(ans).toEqual({ action: 'domainCapabilities', xml: domainCapabilitiesXml(p, { ...none, machine: 'pc' }) });
    expect(() => answerHostRead({ driver: {} }, { action: 'domainCapabilities', ...none })).toThrow(
      expect.objectContaining({ code: 'VG_ERR_NOT_SUPPORTED', detail: 'virConnectGetDomainCapabilities' }),
    );
  });

  test('the request round-trips; markup, quotes, control characters and overlong names are refused by the decoder', () => {
    const body = { action: 'domainCapabilities' as const, emulatorbin: EMU, arch: 'x86_64', machine: null, virttype: 'qemu' };
    expect(decodeRequest(encodeRequest(Op.HOST_READ_REQ, 1, body)).body).toEqual(body);
    // Wrong characters pass the encoder (lengths are fine) and are refused by the helper's decoder.
    for (const bad of [{ machine: "q35'/><x" }, { arch: 'x86_64\n' }, { virttype: '' }, { emulatorbin: '/usr/bin/qemu&' }]) {
      const frame = encodeRequest(Op.HOST_READ_REQ, 1, { ...body, ...bad });
      expect(() => decodeRequest(frame)).toThrow(/helper IPC field .* invalid/);
    }
    // Overlong ones cannot even be encoded.
    for (const bad of [{ machine: 'm'.repeat(65) }, { emulatorbin: '/' + 'a'.repeat(4096) }]) {
      expect(() => encodeRequest(Op.HOST_READ_REQ, 1, { ...body, ...bad })).toThrow(/exceeds maximum/);
    }
  });
});

// libvirtd 9.0's own documents for this host's QEMU (a private libvirtd, qemu:///session: docs/qemu.md), recorded in
// test/fixtures/qemu/libvirtd-9.0-*.xml. Ours offer less, but in libvirt's layout: every element we write is one
// libvirt writes at the same place (same path, same indentation), in the same order.
describe('layout as libvirtd 9.0 writes it', () => {
  const FIX = path.join(__dirname, '../../fixtures/qemu');
  // Element paths in document order, from libvirt's 2-space indentation (one element per line).
  const paths = (xml: string): string[] => {
    const stack: string[] = [];
    const out: string[] = [];
    for (const line of xml.split('\n')) {
      const m = /^( *)<(\/?)([A-Za-z_][\w.-]*)/.exec(line);
      if (!m) continue;
      const depth = m[1].length / 2;
      expect(Number.isInteger(depth)).toBe(true);
      stack.length = depth;
      if (m[2] === '/') continue;
      stack.push(m[3]);
      const p = stack.join('/');
      if (out[out.length - 1] !== p) out.push(p);
    }
    return out;
  };
  // Each path of `ours` appears in `theirs`, and first appearances come in the same order.
  const sameLayout = (ours: string, theirs: string): void => {
    const t = paths(theirs);
    let last = -1;
    for (const p of [...new Set(paths(ours))]) {
      const i = t.indexOf(p);
      expect({ path: p, inLibvirt: i >= 0 }).toEqual({ path: p, inLibvirt: true });
      expect({ path: p, after: t[last] ?? null, ordered: i > last }).toEqual({ path: p, after: t[last] ?? null, ordered: true });
      last = i;
    }
  };

  test('capabilities', async () => {
    const p = await probeQemu(execOf(), EMU, NO_KVM);
    const theirs = fs.readFileSync(path.join(FIX, 'libvirtd-9.0-capabilities.xml'), 'utf8');
    const ours = qemuCapabilitiesXml(p, HOST);
    sameLayout(ours, theirs);
    // The blank lines between sections and the end are libvirt's too.
    expect(ours.endsWith('  </guest>\n\n</capabilities>\n')).toBe(true);
    expect(theirs.endsWith('  </guest>\n\n</capabilities>\n')).toBe(true);
    // Facts both state alike: the emulator, the canonical names of q35 and pc, the qemu domain type.
    for (const line of [
      `      <emulator>${EMU}</emulator>`,
      "      <machine canonical='pc-q35-7.2' maxCpus='288'>q35</machine>",
      "      <machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>",
      "      <domain type='qemu'/>",
    ]) {
      expect(theirs).toContain(line);
      expect(ours).toContain(line.replace("maxCpus='288'", "maxCpus='255'")); // capped at the driver's limit
    }
  });

  test('domain capabilities', async () => {
    const p = await probeQemu(execOf(), EMU, NO_KVM);
    const theirs = fs.readFileSync(path.join(FIX, 'libvirtd-9.0-domcapabilities.xml'), 'utf8');
    const ours = domainCapabilitiesXml(p, { emulatorbin: null, arch: null, machine: 'pc', virttype: null });
    sameLayout(ours, theirs);
    const head = (x: string) => x.split('\n').slice(0, 6).join('\n');
    expect(head(ours)).toBe(head(theirs)); // path, domain, machine (pc-i440fx-7.2), arch, vcpu max 255
  });
});
