// SPDX-License-Identifier: Apache-2.0
// Interface XML: client text -> IfaceDef -> libvirt's exact text. The expected files are `virsh -c test:///default
// iface-dumpxml` output (libvirt 9.0), captured in test/fixtures/host-objects; virsh adds one newline after the XML.
import fs from 'node:fs';
import path from 'node:path';
import { XdrReader, XdrWriter } from '../../../../src/common/xdr';
import { ifaceDefCodec } from '../../../../src/ipc/objects/host-objects';
import { TEST_IFACES } from '../../../../src/privileged/drivers/test-host-objects';
import { formatInterfaceXml, parseInterfaceXml } from '../../../../src/unprivileged/xml/interface';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, '../../../fixtures/host-objects', name), 'utf8');
const virshText = (xml: string) => xml + '\n';

describe('interface XML', () => {
  test('the seeded eth1 formats as virsh -c test:///default iface-dumpxml eth1', () => {
    expect(virshText(formatInterfaceXml(TEST_IFACES[0]))).toBe(fixture('iface-eth1.xml'));
  });

  test('eth1 as written in test_driver.c (double quotes, mac before mtu) parses to the seed', () => {
    const src = `<interface type="ethernet" name="eth1">  <start mode="onboot"/>  <mac address="aa:bb:cc:dd:ee:ff"/>  <mtu size="1492"/>
      <protocol family="ipv4">    <ip address="192.168.0.5" prefix="24"/>    <route gateway="192.168.0.1"/>  </protocol></interface>`;
    expect(parseInterfaceXml(src)).toEqual(TEST_IFACES[0]);
  });

  test.each(['br0', 'bond0', 'bond1', 'vlan42', 'br1'])('%s: define then dumpxml matches libvirt byte for byte', (n) => {
    const def = parseInterfaceXml(fixture(`iface-${n}-input.xml`));
    expect(virshText(formatInterfaceXml(def))).toBe(fixture(`iface-${n}.xml`));
    // and what libvirt prints parses back to the same config
    expect(parseInterfaceXml(fixture(`iface-${n}.xml`))).toEqual(def);
  });

  test.each(['br0', 'bond0', 'bond1', 'vlan42', 'br1'])('%s: the typed config survives the IPC codec unchanged', (n) => {
    const def = parseInterfaceXml(fixture(`iface-${n}-input.xml`));
    const w = new XdrWriter();
    ifaceDefCodec.encode(w, def);
    const r = new XdrReader(w.finish());
    expect(ifaceDefCodec.decode(r)).toEqual(def);
    r.ensureConsumed('iface');
  });

  // libvirt 9.0's own messages for the same inputs (virsh iface-define), after "XML error: ".
  test.each([
    ["<interface name='x'/>", "Missing required attribute 'type' in element 'interface'"],
    ["<interface type='foo' name='x'/>", "Invalid value for attribute 'type' in element 'interface': 'foo'."],
    ["<interface type='ethernet'/>", 'interface has no name'],
    ["<interface type='ethernet' name='x'><start mode='sometimes'/></interface>", 'unknown interface startmode sometimes'],
    ["<interface type='ethernet' name='x'><mtu size='100001'/></interface>", "value of the 'size' attribute of 'mtu' element must be at most 100000"],
    ["<interface type='ethernet' name='x'><protocol/></interface>", 'protocol misses the family attribute'],
    ["<interface type='bond' name='x'/>", 'bond interface misses the bond element'],
    ["<interface type='vlan' name='x'><vlan/></interface>", 'vlan interface misses the tag attribute'],
    ['<network/>', "expecting root element of 'interface', not 'network'"],
    ["<interface type='bond' name='x'><bond><interface type='bridge' name='y'/></bond></interface>", "interface has unsupported type 'bridge'"],
    ["<interface type='ethernet' name='x'><protocol family='ipx'/></interface>", "unsupported protocol family 'ipx'"],
    ["<interface type='bond' name='x'><bond mode='foo'/></interface>", 'unknown bonding mode foo'],
  ])('%s -> XML error: %s', (xml, msg) => {
    expect(() => parseInterfaceXml(xml)).toThrow(expect.objectContaining({ code: 'VG_ERR_XML_INVALID', message: `XML error: ${msg}` }));
  });

  // Where libvirt accepts anything, virtgate keeps the fields the helper and the policy can trust.
  test.each([
    ["<interface type='ethernet' name='a/b'/>", 'is not allowed'],
    ["<interface type='ethernet' name='x'><mac address='zz'/></interface>", "invalid MAC address 'zz'"],
    ["<interface type='ethernet' name='x'><protocol family='ipv4'><ip address='1.2.3.4&apos;/&gt;'/></protocol></interface>", 'invalid ip address'],
    ["<interface type='ethernet' name='x'><mtu size='abc'/></interface>", "invalid mtu size 'abc'"],
    ['<!DOCTYPE x [<!ENTITY a "b">]><interface/>', 'DOCTYPE and ENTITY declarations are not allowed'],
  ])('%s is refused (%s)', (xml, msg) => {
    expect(() => parseInterfaceXml(xml)).toThrow(msg);
  });

  test('broken XML is an XML detail error naming the document, as libvirt does', () => {
    expect(() => parseInterfaceXml("<interface type='ethernet' name='x'")).toThrow(expect.objectContaining({ code: 'VG_ERR_XML_DETAIL' }));
    expect(() => parseInterfaceXml("<interface type='ethernet' name='x'")).toThrow(/^\(interface_definition\):1: /);
    expect(() => parseInterfaceXml('')).toThrow('Document is empty');
    expect(() => parseInterfaceXml('<interface type="ethernet" name="x"/><interface/>')).toThrow(expect.objectContaining({ code: 'VG_ERR_XML_DETAIL' }));
  });

  test('a decoder refuses a config the parser would never produce', () => {
    const bad = { ...TEST_IFACES[0], type: 'bridge' as const }; // a bridge with a MAC and no bridge element
    const w = new XdrWriter();
    ifaceDefCodec.encode(w, bad);
    expect(() => ifaceDefCodec.decode(new XdrReader(w.finish()))).toThrow(expect.objectContaining({ code: 'VG_ERR_IPC_VALIDATION' }));
  });
});
