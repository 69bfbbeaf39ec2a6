// SPDX-License-Identifier: Apache-2.0
// The typed domain definition both sides share, and its strict IPC codec (pure). The front end parses client XML into
// a DomainDef (src/unprivileged/xml/domain.ts) and formats XML from one; the root helper only ever decodes, checks and
// stores DomainDefs: it never parses XML text.
//
// Converting a place that still carries domain XML text over IPC (the pattern used for define/createXml/xml):
//   1. request codec: replace the `xml` string field by `def: domainDefField` (answers: `def` the same way, plus
//      whatever the formatter needs, e.g. the live id);
//   2. front-end handler: `parseDomainXml(xml)` (xml/domain.ts) before `ctx.helper.act(...)`, send `{ def }`; for an
//      answer, `formatDomainXml(def, {...})` where the XML is needed (flags such as SECURE are applied there);
//   3. helper: take the DomainDef as it is (the decoder already checked every field and the element trees), run the
//      driver's typed checks (tenant confinement: hostResourcesOf, disk sources, networks), never re-parse;
//   4. an embedded <domain> inside another document (e.g. a snapshot's): parse the outer document in the front end,
//      hand its <domain> node to `domainDefFromNode` (xml/domain.ts) and carry the result as a `def` field;
//   5. new DomainDef fields: add them to the interface, to `domainDefCodec` (encode AND decode, with range checks), to
//      the parser and the formatter; update test/unit/ipc/domain-def.test.ts's round trip.
// Parts of the XML libvirt keeps but we do not interpret travel as element trees (XmlEl): checked here for depth,
// element count, XML-name syntax, NUL and total size, so nothing the helper stores can be unbounded or unprintable.
import { VG_ERR_IPC_VALIDATION } from '../../common/errors';
import { XdrReader, XdrWriter } from '../../common/xdr';
import { type Codec, IpcLimits, checkDomainName, checkTenantName } from '../shared';

// An element kept as given: its name, attributes (in document order), own text and child elements.
export interface XmlEl {
  tag: string;
  attrs: Record<string, string>;
  text: string;
  kids: XmlEl[];
}

export const DomainDefLimits = {
  DEPTH_MAX: 16, // real domain XML is 5-6 levels deep (domain/devices/disk/source/host)
  ELEMENTS_MAX: 20000, // a 134 KB domain of 1200 disks has ~5000
  BYTES_MAX: IpcLimits.XML_MAX, // names, values and text of one definition, at most what its XML text held
  XML_NAME_MAX: 256, // one element or attribute name
  ATTRS_MAX: 64, // attributes of one element
  BOOT_MAX: 4, // VIR_DOMAIN_BOOT_LAST: libvirt reads the first four <boot> elements
  BLKIO_DEVICES_MAX: 256,
  PIN_MAX: 4096, // vcpupin entries (at most one per vCPU)
} as const;
const L = DomainDefLimits;
const IOTHREAD_ID_MAX = 999999999; // the front end's parser takes 1-9 digits, not 0

// XML 1.0 names, ASCII subset (libvirt's own vocabulary; metadata in other scripts is refused by the front end).
export const XML_NAME_RE = /^[A-Za-z_:][A-Za-z0-9_.:-]*$/;

// ---------- libvirt vocabularies the definition uses ----------

// virDomainVirtType names libvirt accepts in <domain type>.
export const VIRT_TYPES: ReadonlySet<string> = new Set('none qemu kqemu kvm xen lxc uml openvz test vmware hyperv vbox phyp parallels bhyve vz'.split(' '));
export const ARCHES: ReadonlySet<string> = new Set(
  (
    'aarch64 alpha armv6l armv7l armv7b cris i686 ia64 lm32 loongarch64 m68k microblaze microblazeel mips mipsel mips64 ' +
    'mips64el openrisc parisc parisc64 ppc ppcle ppc64 ppc64le ppcemb riscv32 riscv64 s390 s390x sh4 sh4eb sparc sparc64 ' +
    'unicore32 x86_64 xtensa xtensaeb'
  ).split(' '),
);
export const BOOT_DEVS: ReadonlySet<string> = new Set(['fd', 'hd', 'cdrom', 'network']);
export const LIFECYCLE_ACTIONS: ReadonlySet<string> = new Set(['destroy', 'restart', 'rename-restart', 'preserve', 'coredump-destroy', 'coredump-restart']);
export const CLOCK_OFFSETS: ReadonlySet<string> = new Set(['utc', 'localtime', 'timezone', 'variable', 'absolute']);
export const NUMA_MODES = ['strict', 'preferred', 'interleave', 'restrictive'] as const; // virDomainNumatuneMemMode
// Our <metadata> namespace: the tenant lives here in dumpxml output (the helper keeps it as the `tenant` field).
export const VG_TENANT_NS = 'https://virtgate.dev/xmlns/tenant/1';
export const CPUMASK_LEN = 16384; // VIR_DOMAIN_CPUMASK_LEN: highest CPU number + 1 a cpuset may name
export const PARAM_UNLIMITED_KIB = 9007199254740991n; // VIR_DOMAIN_MEMORY_PARAM_UNLIMITED: this or more means no limit

// <os> children libvirt keeps, before and after the <boot> list (virDomainDefFormatInternal's order).
export const OS_BEFORE_BOOT = 'firmware loader nvram init initarg initenv initdir inituser initgroup kernel initrd cmdline shim dtb acpi'.split(' ');
export const OS_AFTER_BOOT = ['bootmenu', 'smbios', 'bios'];
// Top-level elements kept as given, each group at its place in libvirt's output (the rest have their own fields).
export const TOP_BEFORE_VCPU = ['maxMemory'];
export const TOP_AFTER_TUNE = ['memoryBacking'];
export const TOP_AFTER_VCPU = ['vcpus', 'iothreads', 'iothreadids'];
export const TOP_BEFORE_OS = ['resource', 'sysinfo', 'bootloader', 'bootloader_args'];
export const TOP_AFTER_OS = ['idmap', 'features', 'cpu'];
export const TOP_AFTER_LIFECYCLE = ['on_lockfailure', 'pm', 'perf'];
export const TOP_AFTER_DEVICES = ['seclabel', 'keywrap', 'launchSecurity'];
export const TOP_ORDER = [
  ...TOP_BEFORE_VCPU,
  ...TOP_AFTER_TUNE,
  ...TOP_AFTER_VCPU,
  ...TOP_BEFORE_OS,
  ...TOP_AFTER_OS,
  ...TOP_AFTER_LIFECYCLE,
  ...TOP_AFTER_DEVICES,
];
// virDomainDefFormatInternal writes devices grouped by kind, in this order; other kinds are dropped by the parser.
export const DEVICE_ORDER = (
  'emulator disk controller lease filesystem interface smartcard serial parallel console channel input tpm graphics sound ' +
  'audio video hostdev redirdev redirfilter hub watchdog memballoon rng nvram panic shmem memory iommu vsock crypto'
).split(' ');

// ---------- the definition ----------

export interface DomainDef {
  type: string;
  name: string;
  uuid: string; // canonical lower-case 8-4-4-4-12
  title: string | null;
  description: string | null;
  maxMemKiB: bigint;
  curMemKiB: bigint;
  vcpusMax: number;
  vcpus: number;
  osType: string; // 'hvm' | 'xen'
  arch: string;
  machine: string | null; // <os><type machine>
  osExtra: XmlEl[]; // <os> children besides type and boot (loader, kernel, bootmenu, ...), as given
  boot: string[];
  clockOffset: string;
  clock: XmlEl | null; // <clock> as given (timers, adjustment), re-serialised with its offset
  top: XmlEl[]; // other elements libvirt keeps (features, cpu, pm, ...), as given; written in libvirt's order
  metadata: XmlEl[]; // <metadata> children of other namespaces (the tenant is the `tenant` field, never one of these)
  onPoweroff: string;
  onReboot: string;
  onCrash: string;
  devices: XmlEl[]; // kept as given (normalised by the front end's parser) and re-serialised
  disks: DiskDef[]; // typed view of the <disk> devices, in order; derived from `devices`, never sent
  nets: NetDef[]; // typed view of the <interface> devices, in order; derived, never sent
  memballoon: boolean; // a <memballoon> whose model is not 'none'; derived, never sent
  cpumask: number[] | null; // <vcpu cpuset>: sorted host CPU numbers
  vcpuPins: Map<number, number[]>; // <cputune><vcpupin vcpu cpuset>
  emulatorPin: number[] | null; // <cputune><emulatorpin cpuset>
  iothreadPins: Map<number, number[]>; // <cputune><iothreadpin iothread cpuset> (the ids live in top's <iothreadids>)
  memtune: MemTune;
  blkiotune: BlkioTune;
  numatune: { mode: number; nodeset: string } | null; // <numatune><memory>: mode index in NUMA_MODES
  tenant: string; // virtgate's record of the VM's tenant ('' = none); the helper sets it, never the client's XML
}

export interface DiskDef {
  type: string; // file | block | dir | network | volume | nvme | vhostuser
  device: string; // disk | cdrom | floppy | lun
  source: string | null; // file, dev or dir path; pool/volume; network name; null = empty (a cdrom without media)
  pool: string | null; // type='volume'
  volume: string | null;
  target: string; // <target dev>
  bus: string | null;
}

export interface NetDef {
  type: string; // network | bridge | user | ethernet | direct | ...
  mac: string | null; // lower-case aa:bb:cc:dd:ee:ff
  network: string | null; // <source network> (type='network')
  bridge: string | null; // <source bridge> (type='bridge')
  ifname: string | null; // <target dev>
  model: string | null;
}

// KiB; null = unlimited (not written)
export interface MemTune {
  hardLimit: bigint | null;
  softLimit: bigint | null;
  swapHardLimit: bigint | null;
  minGuarantee: bigint | null;
}

export interface BlkioDevice {
  path: string;
  weight: number;
  readIops: bigint;
  writeIops: bigint;
  readBytes: bigint;
  writeBytes: bigint;
}

export interface BlkioTune {
  weight: number; // 0 = unset
  devices: BlkioDevice[];
}

// ---------- element trees ----------

export const elChild = (el: XmlEl | undefined, tag: string): XmlEl | undefined => el?.kids.find((k) => k.tag === tag);

// The namespace URI an element declares for its own name: xmlns:PREFIX for a prefixed name, else xmlns.
export function nsOf(el: XmlEl): string | null {
  const i = el.tag.indexOf(':');
  const v = el.attrs[i === -1 ? 'xmlns' : `xmlns:${el.tag.slice(0, i)}`];
  return v === undefined || v === '' ? null : v;
}
export const inTenantNs = (el: XmlEl): boolean => Object.entries(el.attrs).some(([k, v]) => /^xmlns(:|$)/.test(k) && v === VG_TENANT_NS);

// Bytes and elements left for one definition; every tree and free text of it draws on the same budget.
class Budget {
  bytes: number = L.BYTES_MAX;
  elements: number = L.ELEMENTS_MAX;
  take(field: string, s: string): string {
    if (s.includes('\0')) throw VG_ERR_IPC_VALIDATION(field, 'contains NUL');
    this.bytes -= Buffer.byteLength(s);
    if (this.bytes < 0) throw VG_ERR_IPC_VALIDATION(field, `definition larger than ${L.BYTES_MAX} bytes`);
    return s;
  }
}

const xmlName = (field: string, s: string): string => {
  if (s.length > L.XML_NAME_MAX || !XML_NAME_RE.test(s)) throw VG_ERR_IPC_VALIDATION(field, 'not an XML name');
  return s;
};

// Wire: string tag; array<pair<string name, string value>> attrs; string text; array<el> kids.
function encodeEl(w: XdrWriter, el: XmlEl): void {
  w.string(el.tag, L.XML_NAME_MAX);
  const attrs = Object.entries(el.attrs);
  w.array(attrs, L.ATTRS_MAX, (w2, [k, v]) => void w2.string(k, L.XML_NAME_MAX).string(v, L.BYTES_MAX));
  w.string(el.text, L.BYTES_MAX);
  w.array(el.kids, L.ELEMENTS_MAX, encodeEl);
}

function decodeEl(r: XdrReader, b: Budget, depth: number, field: string): XmlEl {
  if (depth > L.DEPTH_MAX) throw VG_ERR_IPC_VALIDATION(field, `elements nested deeper than ${L.DEPTH_MAX} levels`);
  if (--b.elements < 0) throw VG_ERR_IPC_VALIDATION(field, `more than ${L.ELEMENTS_MAX} elements`);
  const tag = xmlName(field, b.take(field, r.string(L.XML_NAME_MAX, field)));
  const pairs = r.array(
    L.ATTRS_MAX,
    (r2) => [xmlName(field, b.take(field, r2.string(L.XML_NAME_MAX, field))), b.take(field, r2.string(L.BYTES_MAX, field))] as const,
    field,
  );
  if (new Set(pairs.map(([k]) => k)).size !== pairs.length) throw VG_ERR_IPC_VALIDATION(field, 'repeated attribute');
  const text = b.take(field, r.string(L.BYTES_MAX, field));
  const kids = r.array(L.ELEMENTS_MAX, (r2) => decodeEl(r2, b, depth + 1, field), field);
  // Object.fromEntries defines own properties: an attribute named __proto__ stays an attribute.
  return { tag, attrs: Object.fromEntries(pairs), text, kids };
}

// The same rules as the decoder, for the front end to refuse a document it could not send; returns the problem.
export function treeProblem(trees: XmlEl[], depth: number): string | null {
  let elements = 0;
  const walk = (el: XmlEl, d: number): string | null => {
    if (d > L.DEPTH_MAX) return `elements nested deeper than ${L.DEPTH_MAX} levels`;
    if (++elements > L.ELEMENTS_MAX) return `more than ${L.ELEMENTS_MAX} elements`;
    for (const n of [el.tag, ...Object.keys(el.attrs)])
      if (n.length > L.XML_NAME_MAX || !XML_NAME_RE.test(n)) return `'${n.slice(0, 64)}' is not a supported XML name`;
    if (Object.keys(el.attrs).length > L.ATTRS_MAX) return `more than ${L.ATTRS_MAX} attributes on <${el.tag}>`;
    for (const k of el.kids) {
      const p = walk(k, d + 1);
      if (p) return p;
    }
    return null;
  };
  for (const t of trees) {
    const p = walk(t, depth);
    if (p) return p;
  }
  return null;
}

// One element tree as an action field (e.g. a metadata element), with a budget of its own.
export const xmlElField = (field: string): Codec<XmlEl> => ({
  encode: (w, v) => encodeEl(w, v),
  decode: (r) => decodeEl(r, new Budget(), 1, field),
});

// ---------- bitmaps and MACs (shared by the parser, the codec and the tuning calls) ----------

// "0-3,^2,5" with spaces around tokens: sorted CPU numbers (possibly none after ^N); null when libvirt refuses it.
export function parseBitmap(text: string, size = CPUMASK_LEN): number[] | null {
  const set = new Set<number>();
  const parts = text.split(',');
  if (text.trim() === '') return null;
  if (parts.length > 1 && parts[parts.length - 1].trim() === '') parts.pop(); // libvirt accepts one trailing comma
  for (const part of parts) {
    const m = /^\s*(\^)?([0-9]+)\s*(?:-\s*([0-9]+)\s*)?$/.exec(part);
    if (!m || (m[1] && m[3] !== undefined)) return null;
    const start = Number(m[2]);
    const last = m[3] === undefined ? start : Number(m[3]);
    if (m[2].length > 10 || (m[3] ?? '').length > 10 || last < start || last >= size) return null;
    if (m[1]) set.delete(start);
    else for (let i = start; i <= last; i++) set.add(i);
  }
  return [...set].sort((a, b) => a - b);
}

// [1,2,3,5] -> "1-3,5"
export function formatBitmap(bits: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < bits.length;) {
    let j = i;
    while (j + 1 < bits.length && bits[j + 1] === bits[j] + 1) j++;
    out.push(j === i ? `${bits[i]}` : `${bits[i]}-${bits[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

const MAC_RE = /^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$/;

// virMacAddrParse: six colon-separated hex octets; formatted as two lower-case digits each.
export function parseMac(text: string): string | null {
  if (!MAC_RE.test(text)) return null;
  return text
    .split(':')
    .map((o) => o.toLowerCase().padStart(2, '0'))
    .join(':');
}

// ---------- typed views of the devices (both sides derive them from the tree; the helper never trusts a sent one) ----------

function diskOf(n: XmlEl, fail: (msg: string) => Error): DiskDef {
  const a = n.attrs;
  const sa = elChild(n, 'source')?.attrs ?? {};
  const ta = elChild(n, 'target')?.attrs ?? {};
  if (!ta.dev) throw fail('internal error: missing disk target'); // XXX: libvirt's wording differs per disk kind
  const type = a.type ?? 'file';
  const pool = type === 'volume' ? (sa.pool ?? null) : null;
  const volume = type === 'volume' ? (sa.volume ?? null) : null;
  const source = (type === 'volume' ? (pool && volume ? `${pool}/${volume}` : null) : (sa.file ?? sa.dev ?? sa.dir ?? sa.name ?? null)) || null;
  return { type, device: a.device ?? 'disk', source, pool, volume, target: ta.dev, bus: ta.bus ?? null };
}

function netOf(n: XmlEl, fail: (msg: string) => Error): NetDef {
  const sa = elChild(n, 'source')?.attrs ?? {};
  const macNode = elChild(n, 'mac');
  let mac: string | null = null;
  if (macNode) {
    const text = macNode.attrs.address ?? '';
    mac = parseMac(text);
    if (mac === null) throw fail(`internal error: unable to parse mac address '${text}'`);
  }
  const type = n.attrs.type;
  return {
    type: type ?? '',
    mac,
    network: type === 'network' ? (sa.network ?? null) : null,
    bridge: type === 'bridge' ? (sa.bridge ?? null) : null,
    ifname: elChild(n, 'target')?.attrs.dev || null,
    model: elChild(n, 'model')?.attrs.type || null,
  };
}

export function devicesOf(devices: XmlEl[], fail: (msg: string) => Error): Pick<DomainDef, 'disks' | 'nets' | 'memballoon'> {
  return {
    disks: devices.filter((d) => d.tag === 'disk').map((d) => diskOf(d, fail)),
    nets: devices.filter((d) => d.tag === 'interface').map((d) => netOf(d, fail)),
    memballoon: devices.some((d) => d.tag === 'memballoon' && d.attrs.model !== 'none'),
  };
}

// ---------- metadata elements (virDomainDefSetMetadata / virDomainObjGetMetadata), as trees ----------

export const metadataIn = (def: DomainDef, uri: string): XmlEl | null => def.metadata.find((m) => nsOf(m) === uri) ?? null;

// Replaces (or with null removes) the element of namespace `uri`; the element must declare that namespace itself.
export function withMetadata(def: DomainDef, el: XmlEl | null, uri: string): DomainDef {
  const rest = def.metadata.filter((m) => nsOf(m) !== uri);
  if (el === null) return { ...def, metadata: rest };
  if (nsOf(el) !== uri || uri === VG_TENANT_NS || inTenantNs(el)) throw VG_ERR_IPC_VALIDATION('metadata', 'element not in the given namespace');
  return { ...def, metadata: [...rest, el] };
}

// ---------- the codec ----------

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const fieldError = (field: string, why: string) => VG_ERR_IPC_VALIDATION(field, why);

function oneOfSet(set: ReadonlySet<string>, v: string, field: string): string {
  if (!set.has(v)) throw fieldError(field, 'not a known value');
  return v;
}
function u32In(r: XdrReader, lo: number, hi: number, field: string): number {
  const v = r.u32(field);
  if (v < lo || v > hi) throw fieldError(field, `outside ${lo}..${hi}`);
  return v;
}
function u64In(r: XdrReader, lo: bigint, hi: bigint, field: string): bigint {
  const v = r.u64(field);
  if (v < lo || v > hi) throw fieldError(field, `outside ${lo}..${hi}`);
  return v;
}
const writeBits = (w: XdrWriter, bits: readonly number[]) => void w.array(bits, CPUMASK_LEN, (w2, c) => void w2.u32(c));
function readBits(r: XdrReader, field: string): number[] {
  const bits = r.array(CPUMASK_LEN, (r2) => u32In(r2, 0, CPUMASK_LEN - 1, field), field);
  if (bits.length === 0) throw fieldError(field, 'names no CPU');
  for (let i = 1; i < bits.length; i++) if (bits[i] <= bits[i - 1]) throw fieldError(field, 'CPU numbers must be sorted and distinct');
  return bits;
}
const els = (b: Budget, depth: number, field: string, allowed: (el: XmlEl) => boolean) => (r: XdrReader) => {
  const el = decodeEl(r, b, depth, field);
  if (!allowed(el)) throw fieldError(field, `element <${el.tag}> not allowed here`);
  return el;
};
const optU64 = (r: XdrReader, field: string) => r.optional((r2) => u64In(r2, 0n, PARAM_UNLIMITED_KIB - 1n, field));

// Wire, in order: type, name, uuid, title?, description?, maxMem u64, curMem u64, vcpusMax, vcpus, osType, arch,
// machine?, osExtra<el>, boot<string>, clockOffset, clock?<el>, top<el>, metadata<el>, on_poweroff, on_reboot,
// on_crash, devices<el>, cpumask?<u32>, vcpuPins<u32 id, u32 cpus<>>, emulatorPin?, iothreadPins<u32 id, u32 cpus<>>,
// memtune 4 x u64?,
// blkio weight + devices, numatune?, tenant. disks/nets/memballoon are derived from devices on decode.
export const domainDefCodec: Codec<DomainDef> = {
  encode(w, d) {
    const S = L.BYTES_MAX;
    w.string(d.type, 32).string(d.name, IpcLimits.NAME_MAX).string(d.uuid, 36);
    w.optional(d.title, (w2, v) => void w2.string(v, S)).optional(d.description, (w2, v) => void w2.string(v, S));
    w.u64(d.maxMemKiB).u64(d.curMemKiB).u32(d.vcpusMax).u32(d.vcpus);
    w.string(d.osType, 8)
      .string(d.arch, 32)
      .optional(d.machine, (w2, v) => void w2.string(v, 256));
    w.array(d.osExtra, L.ELEMENTS_MAX, encodeEl);
    w.array(d.boot, L.BOOT_MAX, (w2, v) => void w2.string(v, 16));
    w.string(d.clockOffset, 16).optional(d.clock, encodeEl);
    w.array(d.top, L.ELEMENTS_MAX, encodeEl).array(d.metadata, L.ELEMENTS_MAX, encodeEl);
    w.string(d.onPoweroff, 32).string(d.onReboot, 32).string(d.onCrash, 32);
    w.array(d.devices, L.ELEMENTS_MAX, encodeEl);
    w.optional(d.cpumask, writeBits);
    const pins = [...d.vcpuPins].sort((a, b) => a[0] - b[0]);
    w.array(pins, L.PIN_MAX, (w2, [id, bits]) => (w2.u32(id), writeBits(w2, bits)));
    w.optional(d.emulatorPin, writeBits);
    const ioPins = [...d.iothreadPins].sort((a, b) => a[0] - b[0]);
    w.array(ioPins, L.PIN_MAX, (w2, [id, bits]) => (w2.u32(id), writeBits(w2, bits)));
    const m = d.memtune;
    for (const v of [m.hardLimit, m.softLimit, m.swapHardLimit, m.minGuarantee]) w.optional(v, (w2, x) => void w2.u64(x));
    w.u32(d.blkiotune.weight);
    w.array(
      d.blkiotune.devices,
      L.BLKIO_DEVICES_MAX,
      (w2, x) => void w2.string(x.path, 4096).u32(x.weight).u64(x.readIops).u64(x.writeIops).u64(x.readBytes).u64(x.writeBytes),
    );
    w.optional(d.numatune, (w2, n) => void w2.u32(n.mode).string(n.nodeset, 4096));
    w.string(d.tenant, IpcLimits.IDENTITY_MAX);
  },
  decode(r) {
    const b = new Budget();
    const S = L.BYTES_MAX;
    const type = oneOfSet(VIRT_TYPES, r.string(32, 'def.type'), 'def.type');
    const name = checkDomainName(r.string(IpcLimits.NAME_MAX, 'def.name'), 'def.name');
    const uuid = r.string(36, 'def.uuid');
    if (!UUID_RE.test(uuid)) throw fieldError('def.uuid', 'not a canonical lower-case uuid');
    const title = r.optional((r2) => b.take('def.title', r2.string(S, 'def.title')));
    if (title?.includes('\n')) throw fieldError('def.title', 'contains a newline');
    const description = r.optional((r2) => b.take('def.description', r2.string(S, 'def.description')));
    const maxMemKiB = u64In(r, 1n, IpcLimits.MEMORY_KIB_MAX, 'def.maxMem');
    const curMemKiB = u64In(r, 1n, maxMemKiB, 'def.curMem');
    const vcpusMax = u32In(r, 1, IpcLimits.VCPUS_MAX, 'def.vcpusMax');
    const vcpus = u32In(r, 1, vcpusMax, 'def.vcpus');
    const osType = r.string(8, 'def.osType');
    if (osType !== 'hvm' && osType !== 'xen') throw fieldError('def.osType', 'must be hvm or xen');
    const arch = oneOfSet(ARCHES, r.string(32, 'def.arch'), 'def.arch');
    const machine = r.optional((r2) => b.take('def.machine', r2.string(256, 'def.machine')));
    const osExtra = r.array(
      L.ELEMENTS_MAX,
      els(b, 2, 'def.osExtra', (e) => OS_BEFORE_BOOT.includes(e.tag) || OS_AFTER_BOOT.includes(e.tag)),
      'def.osExtra',
    );
    const boot = r.array(L.BOOT_MAX, (r2) => oneOfSet(BOOT_DEVS, r2.string(16, 'def.boot'), 'def.boot'), 'def.boot');
    const clockOffset = oneOfSet(CLOCK_OFFSETS, r.string(16, 'def.clockOffset'), 'def.clockOffset');
    const clock = r.optional(els(b, 1, 'def.clock', (e) => e.tag === 'clock'));
    const top = r.array(
      L.ELEMENTS_MAX,
      els(b, 1, 'def.top', (e) => TOP_ORDER.includes(e.tag)),
      'def.top',
    );
    const metadata = r.array(
      L.ELEMENTS_MAX,
      els(b, 2, 'def.metadata', (e) => nsOf(e) !== null && !inTenantNs(e)),
      'def.metadata',
    );
    const onPoweroff = oneOfSet(LIFECYCLE_ACTIONS, r.string(32, 'def.onPoweroff'), 'def.onPoweroff');
    const onReboot = oneOfSet(LIFECYCLE_ACTIONS, r.string(32, 'def.onReboot'), 'def.onReboot');
    const onCrash = oneOfSet(LIFECYCLE_ACTIONS, r.string(32, 'def.onCrash'), 'def.onCrash');
    const devices = r.array(
      L.ELEMENTS_MAX,
      els(b, 1, 'def.devices', (e) => DEVICE_ORDER.includes(e.tag)),
      'def.devices',
    );
    const cpumask = r.optional((r2) => readBits(r2, 'def.cpumask'));
    const vcpuPins = new Map<number, number[]>();
    r.array(
      L.PIN_MAX,
      (r2) => {
        const id = u32In(r2, 0, vcpusMax - 1, 'def.vcpuPins');
        if (vcpuPins.has(id)) throw fieldError('def.vcpuPins', 'repeated vcpu');
        vcpuPins.set(id, readBits(r2, 'def.vcpuPins'));
      },
      'def.vcpuPins',
    );
    const emulatorPin = r.optional((r2) => readBits(r2, 'def.emulatorPin'));
    const iothreadPins = new Map<number, number[]>();
    r.array(
      L.PIN_MAX,
      (r2) => {
        const id = u32In(r2, 1, IOTHREAD_ID_MAX, 'def.iothreadPins');
        if (iothreadPins.has(id)) throw fieldError('def.iothreadPins', 'repeated iothread');
        iothreadPins.set(id, readBits(r2, 'def.iothreadPins'));
      },
      'def.iothreadPins',
    );
    const memtune: MemTune = {
      hardLimit: optU64(r, 'def.memtune'),
      softLimit: optU64(r, 'def.memtune'),
      swapHardLimit: optU64(r, 'def.memtune'),
      minGuarantee: optU64(r, 'def.memtune'),
    };
    const weight = r.u32('def.blkio.weight');
    const paths = new Set<string>();
    const blkDevices = r.array(
      L.BLKIO_DEVICES_MAX,
      (r2): BlkioDevice => {
        const path = b.take('def.blkio.path', r2.string(4096, 'def.blkio.path'));
        if (path === '' || paths.has(path)) throw fieldError('def.blkio.path', 'empty or repeated');
        paths.add(path);
        const dev = {
          path,
          weight: r2.u32('def.blkio.weight'),
          readIops: r2.u64('iops'),
          writeIops: r2.u64('iops'),
          readBytes: r2.u64('bps'),
          writeBytes: r2.u64('bps'),
        };
        if (dev.readIops > 0xffffffffn || dev.writeIops > 0xffffffffn) throw fieldError('def.blkio.iops', 'above 2^32-1');
        return dev;
      },
      'def.blkio.devices',
    );
    const numatune = r.optional((r2) => {
      const mode = u32In(r2, 0, NUMA_MODES.length - 1, 'def.numatune.mode');
      const nodeset = r2.string(4096, 'def.numatune.nodeset');
      const bits = nodeset === '' ? [] : parseBitmap(nodeset);
      if (bits === null || (nodeset !== '' && (bits.length === 0 || formatBitmap(bits) !== nodeset)))
        throw fieldError('def.numatune.nodeset', 'not a canonical bitmap');
      return { mode, nodeset };
    });
    const tenant = checkTenantName(r.string(IpcLimits.IDENTITY_MAX, 'def.tenant'), 'def.tenant');
    const derived = devicesOf(devices, (msg) => fieldError('def.devices', msg));
    return {
      type,
      name,
      uuid,
      title,
      description,
      maxMemKiB,
      curMemKiB,
      vcpusMax,
      vcpus,
      osType,
      arch,
      machine,
      osExtra,
      boot,
      clockOffset,
      clock,
      top,
      metadata,
      onPoweroff,
      onReboot,
      onCrash,
      devices,
      ...derived,
      cpumask,
      vcpuPins,
      emulatorPin,
      iothreadPins,
      memtune,
      blkiotune: { weight, devices: blkDevices },
      numatune,
      tenant,
    };
  },
};

// `def` as an action field: { def } requests and answers.
export const defField: Codec<{ def: DomainDef }> = {
  encode: (w, v) => domainDefCodec.encode(w, v.def),
  decode: (r) => ({ def: domainDefCodec.decode(r) }),
};

// JSON for the helper's own files: bigints as decimal text, the vCPU pins as pairs, the derived views left out.
export function domainDefToJson(d: DomainDef): string {
  const { disks: _d, nets: _n, memballoon: _m, ...rest } = d;
  return JSON.stringify(rest, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Map ? [...v] : v));
}

// The inverse, through the codec: a stored definition passes exactly the checks a sent one does. Throws on any flaw.
export function domainDefFromJson(json: string | Record<string, unknown>): DomainDef {
  const o = typeof json === 'string' ? (JSON.parse(json) as Record<string, unknown>) : json;
  const big = (v: unknown): bigint | null => {
    if (v === null) return null;
    if (typeof v !== 'string' || !/^[0-9]{1,20}$/.test(v)) throw new Error('bad number in stored definition');
    return BigInt(v);
  };
  const mt = o.memtune as Record<string, unknown>;
  const bt = o.blkiotune as { weight: number; devices: Record<string, unknown>[] };
  const def = {
    ...o,
    maxMemKiB: big(o.maxMemKiB),
    curMemKiB: big(o.curMemKiB),
    vcpuPins: new Map(o.vcpuPins as [number, number[]][]),
    iothreadPins: new Map((o.iothreadPins ?? []) as [number, number[]][]), // absent in records written before iothread pins
    memtune: { hardLimit: big(mt.hardLimit), softLimit: big(mt.softLimit), swapHardLimit: big(mt.swapHardLimit), minGuarantee: big(mt.minGuarantee) },
    blkiotune: {
      weight: bt.weight,
      devices: bt.devices.map((x) => ({
        ...x,
        readIops: big(x.readIops),
        writeIops: big(x.writeIops),
        readBytes: big(x.readBytes),
        writeBytes: big(x.writeBytes),
      })),
    },
  } as unknown as DomainDef;
  return decodeDomainDef(encodeDomainDef(def));
}

export const encodeDomainDef = (d: DomainDef): Buffer => {
  const w = new XdrWriter();
  domainDefCodec.encode(w, d);
  return Buffer.from(w.finish());
};
export function decodeDomainDef(buf: Buffer): DomainDef {
  const r = new XdrReader(buf);
  const d = domainDefCodec.decode(r);
  r.ensureConsumed();
  return d;
}
