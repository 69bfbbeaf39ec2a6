// SPDX-License-Identifier: Apache-2.0
// Pool and volume XML: parse -> typed config -> format, compared with what `virsh -c test:///default` prints for the
// same input (libvirt 9.0, captured on this machine), and libvirt's own messages for bad input.
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { uuidFromString } from '../../../src/common/uuid';
import { type PoolRecord, type VolumeRecord, poolConfigCodec, volumeConfigCodec } from '../../../src/ipc/objects/storage';
import { formatPoolXml, formatVolumeXml, parsePoolXml, parseSize, parseVolumeXml, sanitizePath, scaleSize } from '../../../src/unprivileged/xml/storage';

const GiB100 = 107374182400n;
const pool = (xml: string, allocation = 0n): PoolRecord => ({
  config: parsePoolXml(xml),
  tenant: '',
  active: true,
  persistent: true,
  autostart: false,
  capacity: GiB100,
  allocation,
  available: GiB100 - allocation,
});
const vol = (xml: string, poolPath: string): VolumeRecord => {
  const config = parseVolumeXml(xml, 'dir');
  const path = `${poolPath}/${config.name}`;
  return { config, pool: 'p', poolUuid: Buffer.alloc(16), poolType: 'dir', key: path, path, tenant: '' };
};
// Both ends' codecs accept what the parser produced (the helper re-validates every field).
function roundTrip<T>(codec: { encode(w: XdrWriter, v: T): void; decode(r: XdrReader): T }, v: T): T {
  const w = new XdrWriter();
  codec.encode(w, v);
  const r = new XdrReader(w.finish());
  const out = codec.decode(r);
  r.ensureConsumed();
  return out;
}

describe('pool XML as libvirt formats it', () => {
  test('virsh pool-dumpxml default-pool', () => {
    const xml = `<pool type='dir'>
  <name>default-pool</name>
  <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
  <capacity unit='bytes'>107374182400</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>107374182400</available>
  <source>
  </source>
  <target>
    <path>/default-pool</path>
  </target>
</pool>
`;
    expect(formatPoolXml(pool(xml))).toBe(xml);
  });

  test('pool-define-as p1 dir --target /var/lib/p1, after three volumes', () => {
    const rec = pool(
      "<pool type='dir'><name>p1</name><uuid>256d9bac-8d0e-4b12-b890-9ab144521874</uuid><target><path>/var/lib/p1</path></target></pool>",
      12546048n,
    );
    expect(formatPoolXml(rec)).toBe(`<pool type='dir'>
  <name>p1</name>
  <uuid>256d9bac-8d0e-4b12-b890-9ab144521874</uuid>
  <capacity unit='bytes'>107374182400</capacity>
  <allocation unit='bytes'>12546048</allocation>
  <available unit='bytes'>107361636352</available>
  <source>
  </source>
  <target>
    <path>/var/lib/p1</path>
  </target>
</pool>
`);
  });

  test('an fs pool: device and format kept, a stray host dropped, trailing slash sanitized, permissions', () => {
    const rec = pool(
      "<pool type='fs'><name>fsp</name><uuid>11111111-2222-3333-4444-555555555555</uuid><source><device path='/dev/sdb1'/><format type='ext4'/><host name='ignored'/></source><target><path>/var/lib/fsp/</path><permissions><mode>0755</mode><owner>0</owner><group>-1</group></permissions></target></pool>",
    );
    expect(formatPoolXml(rec)).toBe(`<pool type='fs'>
  <name>fsp</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <capacity unit='bytes'>107374182400</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>107374182400</available>
  <source>
    <device path='/dev/sdb1'/>
    <format type='ext4'/>
  </source>
  <target>
    <path>/var/lib/fsp</path>
    <permissions>
      <mode>0755</mode>
      <owner>0</owner>
    </permissions>
  </target>
</pool>
`);
    expect(roundTrip(poolConfigCodec, rec.config)).toEqual(rec.config);
  });

  test('a netfs pool: host with port, dir sanitized, default format auto, protocol version', () => {
    const rec = pool(
      "<pool type='netfs'><name>nfsp</name><uuid>a208fc44-6ef0-4162-a7d9-1cb3db6411ea</uuid><source><host name='nfs.example' port='2049'/><dir path='/export//x/'/><protocol ver='4'/></source><target><path>/var/lib/nfsp</path></target></pool>",
    );
    expect(formatPoolXml(rec)).toBe(`<pool type='netfs'>
  <name>nfsp</name>
  <uuid>a208fc44-6ef0-4162-a7d9-1cb3db6411ea</uuid>
  <capacity unit='bytes'>107374182400</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>107374182400</available>
  <source>
    <host name='nfs.example' port='2049'/>
    <dir path='/export/x'/>
    <format type='auto'/>
    <protocol ver='4'/>
  </source>
  <target>
    <path>/var/lib/nfsp</path>
  </target>
</pool>
`);
    expect(roundTrip(poolConfigCodec, rec.config)).toEqual(rec.config);
  });

  test('a pool without uuid gets a fresh random one', () => {
    const a = parsePoolXml("<pool type='dir'><name>n</name><target><path>/n</path></target></pool>");
    const b = parsePoolXml("<pool type='dir'><name>n</name><target><path>/n</path></target></pool>");
    expect(a.uuid).toHaveLength(16);
    expect(a.uuid.equals(b.uuid)).toBe(false);
  });
});

describe('bad pool XML answers with libvirt words', () => {
  test.each([
    ["<pool type='zork'><name>z</name><target><path>/z</path></target></pool>", "XML error: Invalid value for attribute 'type' in element 'pool': 'zork'."],
    ['<pool><name>z</name><target><path>/z</path></target></pool>', "XML error: Missing required attribute 'type' in element 'pool'"],
    ["<pool type='dir'><name>nt</name></pool>", 'XML error: missing storage pool target path'],
    ["<pool type='dir'><target><path>/x</path></target></pool>", 'XML error: missing pool source name element'],
    ["<pool type='dir'><name>a/b</name><target><path>/ab</path></target></pool>", "XML error: name a/b cannot contain '/'"],
    ["<pool type='dir'><name>bu</name><uuid>nope</uuid><target><path>/bu</path></target></pool>", 'XML error: malformed uuid element'],
    [
      "<pool type='netfs'><name>n2</name><source><dir path='/export'/></source><target><path>/var/lib/n2</path></target></pool>",
      'XML error: missing storage pool source host name',
    ],
    [
      "<pool type='netfs'><name>n3</name><source><host name='h'/></source><target><path>/var/lib/n3</path></target></pool>",
      'XML error: missing storage pool source path',
    ],
    ["<pool type='fs'><name>fs2</name><target><path>/var/lib/fs2</path></target></pool>", 'XML error: missing storage pool source device name'],
    ["<pool type='dir'><name>m</name><target><path>/m</path><permissions><mode>0999</mode></permissions></target></pool>", 'XML error: malformed octal mode'],
    [
      "<pool type='fs'><name>f</name><source><device path='/dev/x'/><format type='zfs9'/></source><target><path>/f</path></target></pool>",
      'unsupported configuration: unknown pool format type zfs9',
    ],
    ['<volume><name>x</name></volume>', "XML error: expecting root element of 'pool', not 'volume'"],
  ])('%s', (xml, message) => {
    expect(() => parsePoolXml(xml)).toThrow(message);
  });

  test('broken XML is refused with the document label and line', () => {
    expect(() => parsePoolXml("<pool type='dir'><name>x</name>\n")).toThrow(/^\(storage_pool_definition\):\d+: /);
    expect(() => parsePoolXml('')).toThrow('(storage_pool_definition):1: Document is empty');
    expect(() => parsePoolXml('<!DOCTYPE pool [<!ENTITY x "y">]><pool/>')).toThrow(/DOCTYPE/);
  });

  // libvirt keeps these; the helper only takes confined paths, so the front end refuses them first.
  test.each([
    ['relative/dir', 'must be absolute'],
    ['/var/lib/../../etc/x', "no '//', trailing '/', '.' or '..'"],
    ['/var/./lib', "no '//', trailing '/', '.' or '..'"],
    ['/', 'must not be /'],
    ["/var/lib/it's", 'quotes'],
  ])('target path %s is refused', (p, why) => {
    expect(() => parsePoolXml(`<pool type='dir'><name>r</name><target><path>${p.replace("'", '&apos;')}</path></target></pool>`)).toThrow(why);
  });

  test('pool types libvirt knows but virtgate does not serve', () => {
    expect(() => parsePoolXml("<pool type='logical'><name>vg</name><source><device path='/dev/sda'/></source></pool>")).toThrow(
      "unsupported configuration: virtgate does not serve storage pools of type 'logical'",
    );
  });
});

describe('volume XML', () => {
  test('vol-create-as p1 v1 10M (virsh sends bytes)', () => {
    const v = vol("<volume><name>v1</name><capacity>10485760</capacity><target><format type='raw'/></target></volume>", '/var/lib/p1');
    expect(formatVolumeXml(v)).toBe(`<volume type='file'>
  <name>v1</name>
  <key>/var/lib/p1/v1</key>
  <capacity unit='bytes'>10485760</capacity>
  <allocation unit='bytes'>10485760</allocation>
  <target>
    <path>/var/lib/p1/v1</path>
    <format type='raw'/>
  </target>
</volume>
`);
  });

  test('a full volume: units KiB and KB, block type, qcow2, permissions, compat, features, backing store', () => {
    const xml = `<volume type='block'>
  <name>full</name>
  <key>ignored</key>
  <capacity unit='KiB'>2048</capacity>
  <allocation unit='KB'>3</allocation>
  <target>
    <path>/elsewhere/x</path>
    <format type='qcow2'/>
    <permissions><mode>0640</mode><owner>107</owner><group>107</group><label>virt_image_t</label></permissions>
    <compat>1.1</compat>
    <nocow/>
    <features><lazy_refcounts/></features>
  </target>
  <backingStore><path>/var/lib/p1/base</path><format type='raw'/></backingStore>
</volume>`;
    const v = vol(xml, '/default-pool');
    expect(formatVolumeXml(v)).toBe(`<volume type='block'>
  <name>full</name>
  <key>/default-pool/full</key>
  <capacity unit='bytes'>2097152</capacity>
  <allocation unit='bytes'>3000</allocation>
  <target>
    <path>/default-pool/full</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0640</mode>
      <owner>107</owner>
      <group>107</group>
      <label>virt_image_t</label>
    </permissions>
    <compat>1.1</compat>
    <features>
      <lazy_refcounts/>
    </features>
  </target>
  <backingStore>
    <path>/var/lib/p1/base</path>
    <format type='raw'/>
  </backingStore>
</volume>
`);
    expect(roundTrip(volumeConfigCodec, v.config)).toEqual(v.config);
  });

  test('features without compat imply compat 1.1; an empty <features/> stays', () => {
    const v = vol('<volume><name>f</name><capacity>1</capacity><target><features/></target></volume>', '/p');
    expect(v.config.compat).toBe('1.1');
    expect(formatVolumeXml(v)).toContain('    <compat>1.1</compat>\n    <features/>\n');
  });

  test.each([
    ["<volume><name>b1</name><capacity unit='XB'>10</capacity></volume>", "invalid argument: unknown suffix 'XB'"],
    ['<volume><name>b2</name><capacity>-5</capacity></volume>', 'XML error: malformed capacity element'],
    ['<volume><name>b2</name><capacity>1</capacity><allocation>x</allocation></volume>', 'XML error: malformed capacity element'],
    ['<volume><name>b3</name></volume>', 'XML error: missing capacity element'],
    ["<volume><name>b4</name><capacity unit='E'>9999</capacity></volume>", 'numerical overflow: value too large: 9999E'],
    [
      "<volume><name>b6</name><capacity>1</capacity><target><format type='bogus'/></target></volume>",
      'unsupported configuration: unknown volume format type bogus',
    ],
    [
      "<volume><name>b6</name><capacity>1</capacity><target><format type='none'/></target></volume>",
      'unsupported configuration: unknown volume format type none',
    ],
    ['<volume><capacity>1</capacity></volume>', 'XML error: missing volume name element'],
    ["<volume type='tape'><name>t</name><capacity>1</capacity></volume>", "unsupported configuration: unknown volume type 'tape'"],
    ['<volume><name>c</name><capacity>1</capacity><target><compat>x</compat></target></volume>', "XML error: forbidden characters in 'compat' attribute"],
    [
      '<volume><name>c</name><capacity>1</capacity><target><features><zork/></features></target></volume>',
      'unsupported configuration: unsupported feature zork',
    ],
    ['<volume><name>../x</name><capacity>1</capacity></volume>', "volume name '../x' is not accepted"],
  ])('%s', (xml, message) => {
    expect(() => parseVolumeXml(xml, 'dir')).toThrow(message);
  });

  test('broken volume XML', () => {
    expect(() => parseVolumeXml('<volume><name>b5</name><capacity>10</capacity>\n', 'dir')).toThrow(/^\(storage_volume_definition\):\d+: /);
  });
});

describe('sizes and paths as libvirt computes them', () => {
  test.each([
    ['1', null, 1n],
    ['1', 'b', 1n],
    ['3', 'bytes', 3n],
    ['1', 'k', 1024n],
    ['1', 'K', 1024n],
    ['1', 'KiB', 1024n],
    ['1', 'KB', 1000n],
    ['1', 'kb', 1000n],
    ['1', 'M', 1048576n],
    ['1', 'MB', 1000000n],
    ['1', 'MiB', 1048576n],
    ['2', 'G', 2147483648n],
    ['2', 'GB', 2000000000n],
    ['1', 'T', 1099511627776n],
    ['1', 'P', 1125899906842624n],
    ['7', 'EiB', 7n << 60n],
    [' +5', null, 5n],
  ])('%s %s = %s bytes', (v, unit, want) => {
    expect(parseSize(v, unit, 'capacity')).toBe(want);
  });

  test('limits: 2^63-1 bytes fit, one more does not; 8 EiB overflows', () => {
    expect(scaleSize((1n << 63n) - 1n, null)).toBe((1n << 63n) - 1n);
    expect(() => scaleSize(1n << 63n, null)).toThrow('numerical overflow');
    expect(() => scaleSize(8n, 'E')).toThrow('numerical overflow: value too large: 8E');
    expect(() => parseSize('99999999999999999999999', null, 'capacity')).toThrow('malformed capacity element');
    expect(() => scaleSize(1n, 'XiB')).toThrow("unknown suffix 'XiB'");
    expect(() => scaleSize(1n, 'KiBB')).toThrow("unknown suffix 'KiBB'");
  });

  test.each([
    ['/var/lib//p1/', '/var/lib/p1'],
    ['///x', '/x'],
    ['//x', '//x'],
    ['/a/./b', '/a/./b'],
    ['rel/', 'rel'],
    ['nfs://h//x', 'nfs://h//x'],
  ])('virFileSanitizePath(%s) = %s', (p, want) => {
    expect(sanitizePath(p)).toBe(want);
  });

  test('uuids parse as virUUIDParse does', () => {
    const c = parsePoolXml("<pool type='dir'><name>u</name><uuid> dfe224cb28fb8dd0c4b264eb3f0f4566 </uuid><target><path>/u</path></target></pool>");
    expect(c.uuid).toEqual(uuidFromString('dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566'));
  });
});
