// SPDX-License-Identifier: Apache-2.0
// Snapshot and checkpoint XML on the unprivileged side (parse into typed moments, format as libvirt does), and the
// typed moment's strict IPC codec: what the helper receives is checked again there.
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { type Moment, momentCodec } from '../../../src/ipc/objects/snapshot';
import { formatCheckpointXml, formatSnapshotXml, parseCheckpointXml, parseSnapshotXml } from '../../../src/unprivileged/xml/snapshot';
import { parseDomainXml } from '../../../src/unprivileged/xml/domain';

const DOM =
  "<domain type='test'>\n  <name>test</name>\n  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n  <memory>8192</memory>\n  <os>\n    <type>hvm</type>\n  </os>\n</domain>\n";
const errOf = (f: () => unknown): { code: string; message: string; virDomain: number } => {
  try {
    f();
  } catch (e) {
    const v = e as { code: string; message: string; virDomain: number };
    return { code: v.code, message: v.message, virDomain: v.virDomain };
  }
  throw new Error('no error');
};

test('a new snapshot: name, description, memory and disk requests; nothing else is taken from the client', () => {
  const m = parseSnapshotXml(
    `<domainsnapshot><name>s1</name><description>a &amp; b</description><state>paused</state><creationTime>7</creationTime>
     <memory snapshot='external' file='/var/lib/m1'/><disks><disk name='vda' snapshot='no'/><disk name='vdb'><source file='/var/lib/b.s1'/></disk></disks>
     ${DOM}</domainsnapshot>`,
    false,
  );
  expect(m).toEqual({
    name: 's1',
    description: 'a & b',
    parent: '',
    creationTime: -1n, // state, time, parent and domain count only in a redefinition
    state: 0,
    memory: 3,
    memoryFile: '/var/lib/m1',
    disks: [
      { name: 'vda', location: 1, sourceType: '', source: '', driver: '', bitmap: '' },
      { name: 'vdb', location: 3, sourceType: 'file', source: '/var/lib/b.s1', driver: '', bitmap: '' },
    ],
    def: null,
  });
});

test('a redefinition carries its <domain> to the helper as a typed definition, parsed here', () => {
  const m = parseSnapshotXml(
    `<domainsnapshot><name>r</name><state>running</state><parent><name>p</name></parent><creationTime>1700000000</creationTime>${DOM}</domainsnapshot>`,
    true,
  );
  expect(m).toMatchObject({ name: 'r', state: 1, parent: 'p', creationTime: 1700000000n, memory: 2 });
  expect(m.def).toMatchObject({ name: 'test', uuid: '6695eb01-f6a4-8304-79aa-97f2502e193f', type: 'test' });
});

test.each([
  ['<domainsnapshot><name>x</nam', 'VG_ERR_XML_DETAIL', /^\(domain_snapshot\):1: /],
  ['', 'VG_ERR_XML_DETAIL', /^\(domain_snapshot\):1: Document is empty$/],
  ['<domain/>', 'VG_ERR_XML_INVALID', /expecting root element of 'domainsnapshot', not 'domain'/],
  ['<!DOCTYPE x [<!ENTITY a "b">]><domainsnapshot/>', 'VG_ERR_XML_INVALID', /DOCTYPE and ENTITY/],
  [`<domainsnapshot><name>${'x'.repeat(129)}</name></domainsnapshot>`, 'VG_ERR_XML_INVALID', /is not accepted: names are 1-128/],
  ['<domainsnapshot><name>../etc</name></domainsnapshot>', 'VG_ERR_XML_INVALID', /is not accepted/],
  ["<domainsnapshot><memory snapshot='manual'/></domainsnapshot>", 'VG_ERR_XML_INVALID', /'manual' memory snapshot mode not supported/],
  ["<domainsnapshot><memory snapshot='default'/></domainsnapshot>", 'VG_ERR_XML_INVALID', /Invalid value for attribute 'snapshot'/],
  ["<domainsnapshot><memory snapshot='internal' file='/m'/></domainsnapshot>", 'VG_ERR_XML_INVALID', /requires external snapshot/],
  ["<domainsnapshot><memory snapshot='external'/></domainsnapshot>", 'VG_ERR_XML_INVALID', /external memory snapshots require a filename/],
  ["<domainsnapshot><memory file='m'/></domainsnapshot>", 'VG_ERR_XML_INVALID', /must be absolute/],
  ["<domainsnapshot><disks><disk snapshot='no'/></disks></domainsnapshot>", 'VG_ERR_DOMAIN_INTERNAL', /missing name from disk snapshot element/],
  ["<domainsnapshot><disks><disk name='vda' type='volume'/></disks></domainsnapshot>", 'VG_ERR_XML_INVALID', /unsupported disk snapshot type 'volume'/],
  ["<domainsnapshot><disks><disk name='vda'><source file='x/../y'/></disk></disks></domainsnapshot>", 'VG_ERR_XML_INVALID', /must be absolute/],
  [
    "<domainsnapshot><disks><disk name='vda'><driver type='evil'/></disk></disks></domainsnapshot>",
    'VG_ERR_CONFIG_UNSUPPORTED',
    /unknown disk snapshot driver/,
  ],
])('bad snapshot XML %#: %s', (xml, code, message) => {
  const e = errOf(() => parseSnapshotXml(xml, false));
  expect(e.code).toBe(code);
  expect(e.message).toMatch(message);
  expect(e.virDomain).toBe(35); // VIR_FROM_DOMAIN_SNAPSHOT, as libvirt reports them
});

test.each([
  ['<domainsnapshot><state>running</state><creationTime>1</creationTime></domainsnapshot>', /a redefined snapshot must have a name/],
  ['<domainsnapshot><name>r</name><state>running</state></domainsnapshot>', /missing creationTime from existing snapshot/],
  ['<domainsnapshot><name>r</name><state>running</state><creationTime>soon</creationTime></domainsnapshot>', /missing creationTime/],
  ['<domainsnapshot><name>r</name><creationTime>1</creationTime></domainsnapshot>', /missing state from existing snapshot/],
  ['<domainsnapshot><name>r</name><state>flying</state><creationTime>1</creationTime></domainsnapshot>', /Invalid state 'flying'/],
  [
    "<domainsnapshot><name>r</name><state>shutoff</state><creationTime>1</creationTime><memory snapshot='internal'/></domainsnapshot>",
    /memory state cannot be saved/,
  ],
])('bad redefinition %#', (xml, message) => expect(errOf(() => parseSnapshotXml(xml, true)).message).toMatch(message));

test('format: libvirt layout, escaping, external disks, and a bare <domain><uuid> without a kept domain', () => {
  const m: Moment = {
    name: 's1',
    description: `<b> & 'q'`,
    parent: 's0',
    creationTime: 1795702949n,
    state: 5,
    memory: 1,
    memoryFile: '',
    disks: [
      { name: 'vda', location: 3, sourceType: 'file', source: '/var/lib/a.s1', driver: 'qcow2', bitmap: '' },
      { name: 'hdc', location: 1, sourceType: '', source: '', driver: '', bitmap: '' },
    ],
    def: null,
  };
  expect(formatSnapshotXml(m, '6695eb01-f6a4-8304-79aa-97f2502e193f')).toBe(`<domainsnapshot>
  <name>s1</name>
  <description>&lt;b&gt; &amp; &apos;q&apos;</description>
  <state>shutoff</state>
  <parent>
    <name>s0</name>
  </parent>
  <creationTime>1795702949</creationTime>
  <memory snapshot='no'/>
  <disks>
    <disk name='vda' snapshot='external' type='file'>
      <driver type='qcow2'/>
      <source file='/var/lib/a.s1'/>
    </disk>
    <disk name='hdc' snapshot='no'/>
  </disks>
  <domain>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  </domain>
</domainsnapshot>
`);
  expect(formatSnapshotXml({ ...m, def: parseDomainXml(DOM) }, 'x')).toContain("  <domain type='test'>\n    <name>test</name>\n");
});

test('checkpoints: parse, format, --no-domain, and their own errors', () => {
  const m = parseCheckpointXml(
    "<domaincheckpoint><name>c1</name><disks><disk name='vda'/><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>",
    false,
  );
  expect(m.disks.map((d) => [d.name, d.location, d.bitmap])).toEqual([
    ['vda', 2, ''],
    ['vdb', 1, ''],
  ]);
  const full = { ...m, creationTime: 5n, disks: [{ ...m.disks[0], bitmap: 'c1' }], def: parseDomainXml(DOM) };
  expect(formatCheckpointXml(full, true)).toBe(
    "<domaincheckpoint>\n  <name>c1</name>\n  <creationTime>5</creationTime>\n  <disks>\n    <disk name='vda' checkpoint='bitmap' bitmap='c1'/>\n  </disks>\n</domaincheckpoint>\n",
  );
  expect(formatCheckpointXml(full, false)).toContain("  <domain type='test'>");
  const e = errOf(() => parseCheckpointXml('<domaincheckpoint><creationTime>1</creationTime></domaincheckpoint>', true));
  expect(e).toMatchObject({ code: 'VG_ERR_XML_INVALID', virDomain: 69 });
  expect(e.message).toMatch(/a redefined checkpoint must have a name/);
});

test('the IPC codec round-trips a moment and refuses what the helper must never see', () => {
  const m = parseSnapshotXml("<domainsnapshot><name>s1</name><disks><disk name='vda' snapshot='no'/></disks></domainsnapshot>", false);
  const enc = (v: Moment) => {
    const w = new XdrWriter(64);
    momentCodec.encode(w, v);
    return w.finish();
  };
  const r = new XdrReader(enc(m));
  expect(momentCodec.decode(r)).toEqual(m);
  r.ensureConsumed();
  const bad: [Partial<Moment>, RegExp][] = [
    [{ name: '../x' }, /name/],
    [{ name: 'x'.repeat(129) }, /exceeds maximum 128/], // refused before it is even sent
    [{ memoryFile: 'relative' }, /memoryFile/],
    [{ memoryFile: '/a/../etc/shadow' }, /memoryFile/],
    [{ state: 9 }, /state/],
    [{ memory: 5 }, /memory/],
    [{ creationTime: -2n }, /creationTime/],
    [{ disks: [{ name: 'vd/a', location: 0, sourceType: '', source: '', driver: '', bitmap: '' }] }, /disk/],
    [{ disks: [{ name: 'vda', location: 0, sourceType: 'volume', source: '', driver: '', bitmap: '' }] }, /disk/],
    [{ description: 'a\0b' }, /description/],
  ];
  for (const [patch, field] of bad) expect(() => momentCodec.decode(new XdrReader(enc({ ...m, ...patch })))).toThrow(field);
});
