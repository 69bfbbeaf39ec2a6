// SPDX-License-Identifier: Apache-2.0
// The test driver's host objects, as libvirt 9.0's test:///default has them (helper side): interfaces with define/
// undefine/start/destroy and the change transaction, vHBA node devices created and destroyed as test_driver.c mocks
// them, and the constant host facts (sysinfo, CPU stats and map, CPU models, free pages). Records are durable typed
// JSON (never XML), re-validated through the IPC codecs when loaded.
import { createHash } from 'node:crypto';
import {
  VG_ERR_ACCESS_DENIED,
  VG_ERR_DOMAIN_ARG,
  VG_ERR_DOMAIN_INTERNAL,
  VG_ERR_IFACE_STATE,
  VG_ERR_NOT_SUPPORTED,
  VG_ERR_NO_INTERFACE,
  VG_ERR_NO_NODE_DEVICE,
} from '../../common/errors';
import { XdrReader, XdrWriter } from '../../common/xdr';
import {
  type CpuStat,
  type IfaceDef,
  type IfaceSummary,
  type NodeDevDef,
  type ScsiHostCap,
  type Sysinfo,
  type VhbaRequest,
  ifaceDefCodec,
  nodeDevDefCodec,
  nodeDevEventUuid,
  uuidFromString,
} from '../../ipc/objects/host-objects';
import type { Codec } from '../../ipc/shared';
import { driverError } from './driver';
import { type HostFactsDriver, type HostObjectsContext, type InterfaceDriver, NodeDeviceEvent, type NodeDeviceDriver } from './host-objects-driver';

// Record keys are hex (the context's rule); names are hashed, so any valid name maps to one key.
const keyOf = (name: string): string => createHash('sha256').update(name).digest('hex');

// A typed value through its codec: what the helper stores and loads is exactly what the IPC would accept.
function roundTrip<T>(codec: Codec<T>, v: T): T {
  const w = new XdrWriter(256);
  codec.encode(w, v);
  const r = new XdrReader(w.finish(), 0);
  const out = codec.decode(r);
  r.ensureConsumed('record');
  return out;
}

// A seed record the disk refuses (full at first start) is served from memory, with a warning: the helper still starts.
function seed(ctx: HostObjectsContext, durable: () => void, inMemory: () => void): void {
  try {
    durable();
  } catch (e) {
    ctx.warn(`first start: a seed host object cannot be saved (${(e as Error).message}); served from memory`);
    inMemory();
  }
}

const denied = () => driverError(VG_ERR_ACCESS_DENIED, '');
const noIface = (name: string) => driverError(VG_ERR_NO_INTERFACE, `: no interface with matching name '${name}'`);

// ---------- interfaces ----------

// defaultConnXML's one interface, as virInterfaceDefParseXML keeps it (active after the test driver's load).
export const TEST_IFACES: readonly IfaceDef[] = [
  {
    type: 'ethernet',
    name: 'eth1',
    startmode: 'onboot',
    mtu: 1492,
    protos: [{ family: 'ipv4', autoconf: false, dhcp: false, peerdns: -1, ips: [{ address: '192.168.0.5', prefix: 24 }], gateway: '192.168.0.1' }],
    linkSpeed: 0,
    linkState: '',
    mac: 'aa:bb:cc:dd:ee:ff',
    stp: -1,
    delay: null,
    bond: null,
    vlanTag: null,
    vlanDev: null,
    members: [],
  },
];

interface IfaceObj {
  def: IfaceDef;
  active: boolean;
  seq: number; // insertion order, kept across restarts
}

const IFACE_RECORD = 'iface';

export class TestInterfaces implements InterfaceDriver {
  readonly #ctx: HostObjectsContext;
  #objs = new Map<string, IfaceObj>();
  #backup: Map<string, IfaceObj> | null = null; // the change transaction's snapshot (memory only, as in libvirt)
  #seq = 0;

  constructor(ctx: HostObjectsContext) {
    this.#ctx = ctx;
    if (ctx.firstStart) {
      for (const def of TEST_IFACES) {
        const o = { def, active: true, seq: this.#seq++ };
        seed(
          ctx,
          () => this.#put(o),
          () => this.#objs.set(def.name, o),
        );
      }
      return;
    }
    const loaded: IfaceObj[] = [];
    for (const [key, json] of ctx.records.load(IFACE_RECORD)) {
      try {
        const j = JSON.parse(json) as { def: IfaceDef; active: boolean; seq: number };
        const def = roundTrip(ifaceDefCodec, j.def);
        if (keyOf(def.name) !== key || typeof j.active !== 'boolean' || !Number.isSafeInteger(j.seq)) throw new Error('inconsistent record');
        loaded.push({ def, active: j.active, seq: j.seq });
      } catch (e) {
        ctx.warn(`ignoring interface record ${key}: ${(e as Error).message}`);
      }
    }
    for (const o of loaded.sort((a, b) => a.seq - b.seq)) this.#objs.set(o.def.name, o);
    this.#seq = loaded.reduce((m, o) => Math.max(m, o.seq + 1), 0);
  }

  // Durable first (put throws before anything changes), then memory.
  #put(o: IfaceObj): void {
    this.#ctx.records.put(IFACE_RECORD, keyOf(o.def.name), JSON.stringify({ def: o.def, active: o.active, seq: o.seq }));
    this.#objs.set(o.def.name, o);
  }

  #find(name: string, tenant: string): IfaceObj {
    const o = this.#objs.get(name);
    if (!o || tenant !== '') throw noIface(name); // host objects: a tenant's request finds nothing to change
    return o;
  }

  list(): IfaceSummary[] {
    return [...this.#objs.values()].map((o) => ({ name: o.def.name, mac: o.def.mac ?? '', active: o.active }));
  }

  get(name: string): { def: IfaceDef; active: boolean } {
    const o = this.#objs.get(name);
    if (!o) throw noIface(name);
    return { def: o.def, active: o.active };
  }

  // virInterfaceObjListAssignDef: a known name gets the new definition and keeps its state; a new one is inactive.
  define(def: IfaceDef, tenant: string): IfaceSummary {
    if (tenant !== '') throw denied();
    const old = this.#objs.get(def.name);
    const o: IfaceObj = { def, active: old?.active ?? false, seq: old?.seq ?? this.#seq };
    this.#put(o);
    if (!old) this.#seq++;
    return { name: def.name, mac: def.mac ?? '', active: o.active };
  }

  undefine(name: string, tenant: string): void {
    this.#find(name, tenant);
    this.#ctx.records.put(IFACE_RECORD, keyOf(name), null);
    this.#objs.delete(name);
  }

  start(name: string, tenant: string): void {
    const o = this.#find(name, tenant);
    if (o.active) throw driverError(VG_ERR_IFACE_STATE, '');
    this.#put({ ...o, active: true });
  }

  stop(name: string, tenant: string): void {
    const o = this.#find(name, tenant);
    if (!o.active) throw driverError(VG_ERR_IFACE_STATE, '');
    this.#put({ ...o, active: false });
  }

  begin(tenant: string): void {
    if (tenant !== '') throw denied();
    if (this.#backup) throw driverError(VG_ERR_IFACE_STATE, ': there is another transaction running.');
    this.#backup = new Map(this.#objs);
  }

  commit(tenant: string): void {
    if (tenant !== '') throw denied();
    if (!this.#backup) throw driverError(VG_ERR_IFACE_STATE, ': no transaction running, nothing to be committed.');
    this.#backup = null;
  }

  // The snapshot comes back as libvirt's clone makes it: every interface inactive.
  rollback(tenant: string): void {
    if (tenant !== '') throw denied();
    const backup = this.#backup;
    if (!backup) throw driverError(VG_ERR_IFACE_STATE, ': no transaction running, nothing to rollback.');
    for (const name of this.#objs.keys()) if (!backup.has(name)) this.#ctx.records.put(IFACE_RECORD, keyOf(name), null);
    const next = new Map<string, IfaceObj>();
    for (const [name, o] of backup) {
      const r = { ...o, active: false };
      this.#ctx.records.put(IFACE_RECORD, keyOf(name), JSON.stringify({ def: r.def, active: false, seq: r.seq }));
      next.set(name, r);
    }
    this.#objs = next;
    this.#backup = null;
  }
}

// ---------- node devices ----------

const fcHost = (host: number, uniqueId: number, wwnn: string, wwpn: string, fabricWwn: string, vports: boolean): ScsiHostCap => ({
  type: 'scsi_host',
  host,
  uniqueId,
  fc: { wwnn, wwpn, fabricWwn },
  vports: vports ? { max: 0, inUse: 0 } : null, // libvirt parses vport_ops as a flag only: the counts read back as 0
});

// defaultConnXML's devices, in the order libvirt 9.0's hash table lists them.
export const TEST_NODE_DEVICES: readonly NodeDevDef[] = [
  { name: 'scsi_host1', parent: 'computer', caps: [fcHost(1, 0, '2000000012341234', '1000000012341234', '2000000043214321', true)] },
  {
    name: 'computer',
    parent: null,
    caps: [
      {
        type: 'system',
        product: null,
        hardware: { vendor: 'Libvirt', version: 'Test driver', serial: '123456', uuid: uuidFromString('11111111-2222-3333-4444-555555555555')! },
        firmware: { vendor: 'Libvirt', version: 'Test Driver', releaseDate: '01/22/2007' },
      },
    ],
  },
  { name: 'scsi_host2', parent: 'computer', caps: [fcHost(2, 1, '2000000056785678', '1000000056785678', '2000000087658765', true)] },
  { name: 'scsi_host11', parent: 'scsi_host1', caps: [fcHost(11, 10, '2000000034563456', '1000000034563456', '2000000043214321', false)] },
];

const VHBA_TEMPLATE = 'scsi_host11'; // testNodeDeviceMockCreateVport copies this device...
const VHBA_NAME = 'scsi_host12'; // ...under this name
const NODEDEV_RECORD = 'nodedev';

const fcOf = (d: NodeDevDef): ScsiHostCap | undefined => d.caps.find((c): c is ScsiHostCap => c.type === 'scsi_host' && c.fc !== null);
const vportOf = (d: NodeDevDef): ScsiHostCap | undefined => d.caps.find((c): c is ScsiHostCap => c.type === 'scsi_host' && c.vports !== null);

type NodeDevJson = { name: string; parent: string | null; caps: unknown[]; seq: number };

function toJson(d: NodeDevDef, seq: number): NodeDevJson {
  return {
    name: d.name,
    parent: d.parent,
    caps: d.caps.map((c) => (c.type === 'system' ? { ...c, hardware: { ...c.hardware, uuid: c.hardware.uuid.toString('hex') } } : c)),
    seq,
  };
}

function fromJson(j: NodeDevJson): NodeDevDef {
  const caps = (j.caps as { type: string; hardware?: { uuid: unknown } }[]).map((c) => {
    if (c.type !== 'system') return c;
    const hex = c.hardware?.uuid;
    if (typeof hex !== 'string' || !/^[0-9a-f]{32}$/.test(hex)) throw new Error('bad system uuid');
    return { ...c, hardware: { ...c.hardware, uuid: Buffer.from(hex, 'hex') } };
  });
  return roundTrip(nodeDevDefCodec, { name: j.name, parent: j.parent, caps } as NodeDevDef);
}

export class TestNodeDevices implements NodeDeviceDriver {
  readonly #ctx: HostObjectsContext;
  readonly #devs = new Map<string, { def: NodeDevDef; seq: number }>();
  #seq = 0;

  constructor(ctx: HostObjectsContext) {
    this.#ctx = ctx;
    if (ctx.firstStart) {
      for (const def of TEST_NODE_DEVICES)
        seed(
          ctx,
          () => this.#put(def),
          () => this.#devs.set(def.name, { def, seq: this.#seq++ }),
        );
      return;
    }
    const loaded: { def: NodeDevDef; seq: number }[] = [];
    for (const [key, json] of ctx.records.load(NODEDEV_RECORD)) {
      try {
        const j = JSON.parse(json) as NodeDevJson;
        const def = fromJson(j);
        if (keyOf(def.name) !== key || !Number.isSafeInteger(j.seq)) throw new Error('inconsistent record');
        loaded.push({ def, seq: j.seq });
      } catch (e) {
        ctx.warn(`ignoring node device record ${key}: ${(e as Error).message}`);
      }
    }
    for (const o of loaded.sort((a, b) => a.seq - b.seq)) this.#devs.set(o.def.name, o);
    this.#seq = loaded.reduce((m, o) => Math.max(m, o.seq + 1), 0);
  }

  #put(def: NodeDevDef): void {
    const seq = this.#devs.get(def.name)?.seq ?? this.#seq;
    this.#ctx.records.put(NODEDEV_RECORD, keyOf(def.name), JSON.stringify(toJson(def, seq)));
    this.#devs.set(def.name, { def, seq });
    if (seq === this.#seq) this.#seq++;
  }

  list(): NodeDevDef[] {
    return [...this.#devs.values()].map((o) => o.def);
  }

  get(name: string): NodeDevDef {
    const o = this.#devs.get(name);
    if (!o) throw driverError(VG_ERR_NO_NODE_DEVICE, `: no node device with matching name '${name}'`);
    return o.def;
  }

  // virNodeDeviceObjListGetParentHost: the parent must exist and be vport capable.
  #checkParent(req: VhbaRequest): void {
    const fail = (m: string) => driverError(VG_ERR_DOMAIN_INTERNAL, m);
    const all = this.list();
    let parent: NodeDevDef | undefined;
    if (req.parent !== null) parent = this.#devs.get(req.parent)?.def;
    else if (req.parentWwnn !== null && req.parentWwpn !== null) {
      parent = all.find((d) => {
        const fc = fcOf(d)?.fc;
        return fc && fc.wwnn.toLowerCase() === req.parentWwnn!.toLowerCase() && fc.wwpn.toLowerCase() === req.parentWwpn!.toLowerCase();
      });
    } else if (req.parentFabricWwn !== null) parent = all.find((d) => fcOf(d)?.fc?.fabricWwn?.toLowerCase() === req.parentFabricWwn!.toLowerCase());
    else {
      parent = all.find((d) => vportOf(d) !== undefined);
      if (!parent) throw fail('Could not find any vport capable device');
    }
    if (!parent) throw fail("Could not find parent device for 'new device'");
    if (!vportOf(parent)) throw fail(`Parent device ${parent.name} is not capable of vport operations`);
  }

  // testNodeDeviceCreateXML + testNodeDeviceMockCreateVport: a copy of scsi_host11 named scsi_host12 with the new
  // port's WWNs (host and unique_id stay the template's: the mock only changes the fc_host fields).
  create(req: VhbaRequest, tenant: string): { name: string } {
    if (tenant !== '') throw denied();
    this.#checkParent(req);
    const template = this.#devs.get(VHBA_TEMPLATE)?.def;
    if (!template) throw driverError(VG_ERR_DOMAIN_INTERNAL, `no vHBA template device '${VHBA_TEMPLATE}'`);
    const caps = template.caps.map((c) => (c.type === 'scsi_host' && c.fc ? { ...c, fc: { ...c.fc, wwnn: req.wwnn, wwpn: req.wwpn } } : c));
    this.#put({ name: VHBA_NAME, parent: template.parent, caps });
    this.#ctx.emit({ type: 'nodedev', name: VHBA_NAME, uuid: nodeDevEventUuid(VHBA_NAME), tenant: '', event: NodeDeviceEvent.CREATED, detail: 0 });
    return { name: VHBA_NAME };
  }

  // testNodeDeviceDestroy. libvirt 9.0 answers success for a device without fc_host while reporting "Device is not a
  // fibre channel HBA" (ret starts at 0); we answer that error, so a client never believes a no-op removed something.
  destroy(name: string, tenant: string): void {
    const def = this.get(name);
    if (tenant !== '') throw driverError(VG_ERR_NO_NODE_DEVICE, `: no node device with matching name '${name}'`);
    if (!fcOf(def)) throw driverError(VG_ERR_DOMAIN_INTERNAL, 'Device is not a fibre channel HBA');
    if (def.parent === null || !this.#devs.has(def.parent))
      throw driverError(VG_ERR_DOMAIN_INTERNAL, `cannot find parent '${def.parent ?? '(null)'}' definition`);
    this.#ctx.records.put(NODEDEV_RECORD, keyOf(name), null);
    this.#devs.delete(name);
    this.#ctx.emit({ type: 'nodedev', name, uuid: nodeDevEventUuid(name), tenant: '', event: NodeDeviceEvent.DELETED, detail: 0 });
  }
}

// ---------- host facts ----------

// virArchFromString's names (libvirt 9.0 virarch.c; 'none' is not one of them).
const ARCHES = new Set(
  'alpha armv6l armv7l armv7b aarch64 cris i686 ia64 lm32 m68k microblaze microblazeel mips mipsel mips64 mips64el openrisc parisc parisc64 ppc ppcle ppc64 ppc64le ppcemb riscv32 riscv64 s390 s390x sh4 sh4eb sparc sparc64 unicore32 x86_64 xtensa xtensaeb'.split(
    ' ',
  ),
);
// virCPUGetModels: the CPU drivers' model lists (cpu_map/*.xml); arm and s390 accept any model and list none.
const X86_MODELS =
  '486 pentium pentium2 pentium3 pentiumpro coreduo n270 core2duo qemu32 kvm32 cpu64-rhel5 cpu64-rhel6 qemu64 kvm64 Conroe Penryn Nehalem Nehalem-IBRS Westmere Westmere-IBRS SandyBridge SandyBridge-IBRS IvyBridge IvyBridge-IBRS Haswell-noTSX Haswell-noTSX-IBRS Haswell Haswell-IBRS Broadwell-noTSX Broadwell-noTSX-IBRS Broadwell Broadwell-IBRS Skylake-Client Skylake-Client-IBRS Skylake-Client-noTSX-IBRS Skylake-Server Skylake-Server-IBRS Skylake-Server-noTSX-IBRS Cascadelake-Server Cascadelake-Server-noTSX Icelake-Client Icelake-Client-noTSX Icelake-Server Icelake-Server-noTSX Cooperlake Snowridge athlon phenom Opteron_G1 Opteron_G2 Opteron_G3 Opteron_G4 Opteron_G5 EPYC EPYC-IBPB EPYC-Rome EPYC-Milan Dhyana'.split(
    ' ',
  );
const PPC64_MODELS = ['POWER6', 'POWER7', 'POWER8', 'POWER9', 'POWER10', 'POWERPC_e5500', 'POWERPC_e6500'];
const CPU_MODELS: Record<string, readonly string[]> = {
  i686: X86_MODELS,
  x86_64: X86_MODELS,
  ppc64: PPC64_MODELS,
  ppc64le: PPC64_MODELS,
  armv6l: [],
  armv7l: [],
  armv7b: [],
  aarch64: [],
  s390: [],
  s390x: [],
};

export class TestHostFacts implements HostFactsDriver {
  // testConnectGetSysinfo's fixed document.
  sysinfo(): Sysinfo {
    return {
      type: 'smbios',
      sections: [
        {
          name: 'bios',
          entries: [
            { name: 'vendor', value: 'LENOVO' },
            { name: 'version', value: 'G4ETA1WW (2.61 )' },
            { name: 'date', value: '05/07/2014' },
            { name: 'release', value: '2.61' },
          ],
        },
      ],
    };
  }

  // testNodeGetCPUStats: the same four figures for every CPU (cpuNum is not checked).
  cpuStats(): CpuStat[] {
    return [
      { field: 'user', value: 9797400000n },
      { field: 'kernel', value: 34678723400000n },
      { field: 'idle', value: 87264900000n },
      { field: 'iowait', value: 763600000n },
    ];
  }

  // testNodeGetCPUMap: 8 CPUs, 3 online (0, 2, 4).
  cpuMap(): { cpus: number; online: number; map: Buffer } {
    return { cpus: 8, online: 3, map: Buffer.from([0x15]) };
  }

  cpuModels(arch: string): string[] {
    if (!ARCHES.has(arch)) throw driverError(VG_ERR_DOMAIN_ARG, `cannot find architecture ${arch}`);
    const models = CPU_MODELS[arch];
    if (!models) throw driverError(VG_ERR_NOT_SUPPORTED, `'${arch}' architecture is not supported by CPU driver`);
    return [...models];
  }

  // testNodeGetFreePages: int x = 6, then x = 2x + 7 per (cell, page size), whatever the sizes and cells asked; the C
  // int wraps and widens to unsigned long long, and so does ours.
  freePages(pages: number[], _startCell: number, cellCount: number): bigint[] {
    const out: bigint[] = [];
    let x = 6;
    for (let i = 0; i < cellCount; i++) {
      for (let j = 0; j < pages.length; j++) {
        x = (x * 2 + 7) | 0;
        out.push(BigInt.asUintN(64, BigInt(x)));
      }
    }
    return out;
  }
}
