// SPDX-License-Identifier: Apache-2.0
// Network XML on the front end: parse (libvirt's checks and messages) and format (byte for byte what libvirt 9.0 prints).
// The *.virsh.xml fixtures are `virsh -c test:///default net-define X.xml; net-dumpxml NAME` output, captured once.
import fs from 'node:fs';
import path from 'node:path';
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { type NetworkConfig, canonicalIp, checkNetworkConfig, networkConfigCodec } from '../../../src/ipc/objects/network';
import { DEFAULT_NETWORK } from '../../../src/privileged/drivers/test-networks';
import { NETWORK_XML_MAX, formatNetworkXml, parseNetworkXml, parseUpdateItem } from '../../../src/unprivileged/xml/network';

const FIX = path.join(__dirname, 'network-fixtures');
const fixture = (f: string): string => fs.readFileSync(path.join(FIX, f), 'utf8');

const DEFAULT_XML = `<network>
  <name>default</name>
  <uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid>
  <bridge name='virbr0'/>
  <forward/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`;

test("test:///default's default network: parsed, it is the helper's seed; formatted, it is virsh net-dumpxml default", () => {
  const parsed = parseNetworkXml(DEFAULT_XML);
  expect(parsed).toEqual(DEFAULT_NETWORK);
  expect(formatNetworkXml(parsed)).toBe(fixture('default.virsh.xml'));
});

test.each(['bridge', 'natdhcp', 'isolated', 'route', 'open', 'passthrough', 'hostdev', 'natplain'])(
  '%s.xml defines to exactly what virsh net-dumpxml prints, and the output parses back to the same config',
  (name) => {
    const cfg = parseNetworkXml(fixture(`${name}.xml`));
    const xml = formatNetworkXml(cfg);
    expect(xml).toBe(fixture(`${name}.virsh.xml`));
    expect(parseNetworkXml(xml)).toEqual(cfg);
  },
);

test('the typed config survives the IPC codec unchanged', () => {
  const cfg = parseNetworkXml(fixture('natdhcp.xml'));
  const w = new XdrWriter();
  networkConfigCodec.encode(w, cfg);
  const r = new XdrReader(w.finish());
  expect(networkConfigCodec.decode(r)).toEqual(cfg);
  r.ensureConsumed();
});

test('a network without <uuid> gets a fresh random (v4) one', () => {
  const a = parseNetworkXml('<network><name>n</name></network>');
  const b = parseNetworkXml('<network><name>n</name></network>');
  expect(a.uuid.equals(b.uuid)).toBe(false);
  expect(a.uuid[6] >> 4).toBe(4);
});

// [input, libvirt's message as virsh prints it after "error: "]: texts checked against virsh -c test:///default.
const BAD: [string, string, string][] = [
  ['broken XML', '<network><name>n', '(network_definition):1: '],
  ['empty document', '  ', 'XML error: Document is empty'],
  ['wrong root', '<domain><name>x</name></domain>', "XML error: expecting root element of 'network', not 'domain'"],
  ['no name', '<network></network>', 'missing name information'],
  ['empty name', '<network><name></name></network>', 'missing name information'],
  ["name with '/'", '<network><name>a/b</name></network>', 'invalid char in name: /'],
  ['bad uuid', '<network><name>n</name><uuid>zz</uuid></network>', 'internal error: malformed uuid element'],
  ['bad IP', "<network><name>n</name><ip address='300.1.1.1'/></network>", "XML error: Invalid address '300.1.1.1' in network 'n'"],
  ['bad netmask', "<network><name>n</name><ip address='10.0.0.1' netmask='x'/></network>", "XML error: Invalid netmask 'x' in network 'n'"],
  [
    'prefix and netmask',
    "<network><name>n</name><ip address='10.0.0.1' netmask='255.0.0.0' prefix='8'/></network>",
    "unsupported configuration: Network 'n' IP address cannot have both a prefix and a netmask",
  ],
  [
    'IPv4 prefix 33',
    "<network><name>n</name><ip address='10.0.0.1' prefix='33'/></network>",
    "unsupported configuration: Invalid IPv4 prefix '33' in network 'n'",
  ],
  [
    'IPv6 address without family',
    "<network><name>n</name><ip address='fd00::1'/></network>",
    "unsupported configuration: no family specified for non-IPv4 address 'fd00::1' in network 'n'",
  ],
  ['unknown family', "<network><name>n</name><ip family='ipx' address='10.0.0.1'/></network>", "XML error: Unrecognized family 'ipx' in network 'n'"],
  ['unknown forward mode', "<network><name>n</name><forward mode='foo'/></network>", "unsupported configuration: unknown forwarding type 'foo'"],
  [
    'nat without IP',
    "<network><name>n</name><forward mode='nat'/></network>",
    "XML error: nat forwarding requested, but no IP address provided for network 'n'",
  ],
  [
    'DHCP range outside the network',
    "<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.1.2' end='10.0.1.9'/></dhcp></ip></network>",
    'internal error: range 10.0.1.2 - 10.0.1.9 is not entirely within network 10.0.0.1/24',
  ],
  [
    'reversed DHCP range',
    "<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.9' end='10.0.0.2'/></dhcp></ip></network>",
    'internal error: range 10.0.0.9 - 10.0.0.2 is reversed ',
  ],
  [
    'range from the network address',
    "<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.0' end='10.0.0.9'/></dhcp></ip></network>",
    'internal error: start of range 10.0.0.0 - 10.0.0.9 in network 10.0.0.1/24 is the network address',
  ],
  ['bad stp delay', "<network><name>n</name><bridge name='virbr0' delay='x'/></network>", "XML error: Invalid delay value in network 'n'"],
  [
    'multicast bridge mac',
    "<network><name>n</name><mac address='01:00:5e:00:00:01'/></network>",
    "XML error: Invalid multicast bridge mac address '01:00:5e:00:00:01' in network 'n'",
  ],
  ['bad mtu', "<network><name>n</name><mtu size='big'/></network>", "XML error: Invalid mtu size 'big' in network 'n'"],
  [
    'bridge mode with stp',
    "<network><name>n</name><forward mode='bridge'/><bridge name='br0' stp='on'/></network>",
    "XML error: bridge delay/stp/zone options only allowed in route, nat, and isolated mode, not in bridge (network 'n')",
  ],
  [
    'DHCP host without mac or name',
    "<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp><host ip='10.0.0.5'/></dhcp></ip></network>",
    "XML error: Static host definition in IPv4 network 'n' must have mac or name attribute",
  ],
  [
    'bridge name not an interface name',
    "<network><name>n</name><bridge name='../etc'/></network>",
    "unsupported configuration: bridge name '../etc' in network 'n' is not a valid interface name",
  ],
  [
    'element we do not model',
    "<network><name>n</name><dns><host ip='1.2.3.4'/></dns></network>",
    'unsupported configuration: <dns> is not supported by virtgate in network XML',
  ],
  [
    'entity expansion',
    '<!DOCTYPE x [<!ENTITY a "aaaa">]><network><name>&a;</name></network>',
    'XML error: DOCTYPE and ENTITY declarations are not allowed (line 1)',
  ],
];

test.each(BAD)('refused: %s', (_what, xml, message) => {
  let err: unknown;
  try {
    parseNetworkXml(xml);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(Error);
  if (message.endsWith(': ')) expect((err as Error).message.startsWith(message)).toBe(true);
  else expect((err as Error).message).toBe(message);
  expect((err as { code: string }).code).toMatch(/^VG_ERR_(XML_INVALID|XML_DETAIL|DOMAIN_INTERNAL)$/);
});

test('huge input is refused before parsing', () => {
  const xml = `<network><name>n</name>${' '.repeat(NETWORK_XML_MAX)}</network>`;
  const t0 = Date.now();
  expect(() => parseNetworkXml(xml)).toThrow(/exceeds 1048576/);
  expect(Date.now() - t0).toBeLessThan(1000);
});

test('too many DHCP hosts for the IPC are refused with a clear message', () => {
  const hosts = Array.from({ length: 300 }, (_, i) => `<host name='h${i}' ip='10.0.${i >> 8}.${(i & 255) + 0}'/>`).join('');
  expect(() => parseNetworkXml(`<network><name>n</name><ip address='10.0.0.1' prefix='16'><dhcp>${hosts}</dhcp></ip></network>`)).toThrow(
    "XML error: more than 256 DHCP hosts in one <ip> of network 'n'",
  );
});

test('addresses come out as libvirt (glibc inet_ntop) prints them', () => {
  expect(canonicalIp('2001:DB8:0:0:1:0:0:1')?.text).toBe('2001:db8::1:0:0:1');
  expect(canonicalIp('0:0:0:0:0:0:0:1')?.text).toBe('::1');
  expect(canonicalIp('::ffff:10.0.0.1')?.text).toBe('::ffff:10.0.0.1');
  expect(canonicalIp('::10.0.0.1')?.text).toBe('::10.0.0.1');
  expect(canonicalIp('fe80:0:0:0:0:0:0:0')?.text).toBe('fe80::');
  expect(canonicalIp('1:0:0:2:0:0:0:3')?.text).toBe('1:0:0:2::3');
  expect(canonicalIp('1:2:3:4:5:6:7:8')?.text).toBe('1:2:3:4:5:6:7:8');
  for (const bad of ['1.2.3', '01.2.3.4', '1.2.3.256', '1::2::3', '1:2:3:4:5:6:7:8:9', ':::', 'fe80::1%eth0', '']) expect(canonicalIp(bad)).toBeNull();
});

test("the helper's decoder refuses a config the parser would never build", () => {
  const base = parseNetworkXml(fixture('natdhcp.xml'));
  const broken: ((c: NetworkConfig) => void)[] = [
    (c) => (c.name = 'a/b'),
    (c) => (c.ips[0].address = '192.168.150.01'),
    (c) => (c.ips[0].prefix = 33),
    (c) => (c.bridge.name = 'x'.repeat(16)),
    (c) => (c.forward.mode = 'tunnel' as never),
    (c) => (c.forward.interfaces = ['eth0', 'eth0']),
    (c) => (c.mac = '52:54:00:AB:CD:EF'),
  ];
  for (const breakIt of broken) {
    const c = structuredClone({ ...base, uuid: undefined }) as unknown as NetworkConfig;
    c.uuid = Buffer.from(base.uuid);
    breakIt(c);
    expect(() => checkNetworkConfig(c)).toThrow(/helper IPC field/);
  }
});

describe('net-update snippets (texts as virsh -c test:///default prints them)', () => {
  const HOST = 4;
  const RANGE = 5;
  const msg = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };

  test('a host for the <ip> with DHCP, and a delete that names only one attribute', () => {
    expect(parseUpdateItem(HOST, 3, "<host mac='52:54:00:00:00:01' name='vm1' ip='192.168.122.50'/>", DEFAULT_NETWORK, -1)).toEqual({
      section: HOST,
      host: { mac: '52:54:00:00:00:01', id: '', name: 'vm1', ip: '192.168.122.50' },
    });
    expect(parseUpdateItem(HOST, 2, "<host name='vm1'/>", DEFAULT_NETWORK, -1)).toEqual({ section: HOST, host: { mac: '', id: '', name: 'vm1', ip: '' } });
    expect(parseUpdateItem(RANGE, 3, "<range start='192.168.122.2' end='192.168.122.9'/>", DEFAULT_NETWORK, 0)).toEqual({
      section: RANGE,
      range: { start: '192.168.122.2', end: '192.168.122.9' },
    });
  });

  test.each([
    [HOST, 3, "<range start='1.2.3.4' end='1.2.3.5'/>", "XML error: unexpected element <range>, expecting <host>, while updating network 'default'"],
    [HOST, 2, '<host/>', "XML error: At least one of name, mac, or ip attribute must be specified for static host definition in network 'default' "],
    [RANGE, 3, "<range start='10.0.0.2' end='10.0.0.5'/>", 'internal error: range 10.0.0.2 - 10.0.0.5 is not entirely within network 192.168.122.1/24'],
    [
      RANGE,
      1,
      "<range start='192.168.122.2' end='192.168.122.254'/>",
      'this function is not supported by the connection driver: dhcp ranges cannot be modified, only added or deleted',
    ],
    [1, 3, "<bridge name='x'/>", expect.stringContaining("the 'bridge' section")],
    [HOST, 9, '<host/>', 'invalid argument: unrecognized network update command code 9'],
  ])('section %d command %d %s is refused', (section, command, xml, text) => {
    expect(msg(() => parseUpdateItem(section, command, xml, DEFAULT_NETWORK, -1))).toEqual(text);
  });
});
