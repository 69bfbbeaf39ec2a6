// SPDX-License-Identifier: Apache-2.0
// Node device XML: NodeDevDef -> libvirt's exact text (fixtures are `virsh -c test:///default nodedev-dumpxml`, libvirt
// 9.0), and a client's vHBA creation XML -> the typed request, with libvirt's errors for what it refuses.
import fs from 'node:fs';
import path from 'node:path';
import { TEST_NODE_DEVICES } from '../../../../src/privileged/drivers/test-host-objects';
import { capNames, formatNodeDeviceXml, parseNodeDeviceCreateXml } from '../../../../src/unprivileged/xml/nodedev';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, '../../../fixtures/host-objects', name), 'utf8');

describe('node device XML', () => {
  test.each(TEST_NODE_DEVICES.map((d) => [d.name, d] as const))('%s formats as virsh nodedev-dumpxml', (name, d) => {
    expect(formatNodeDeviceXml(d) + '\n').toBe(fixture(`nodedev-${name}.xml`));
  });

  test('capability names as virNodeDeviceObjHasCap answers them', () => {
    expect(TEST_NODE_DEVICES.map(capNames)).toEqual([
      ['scsi_host', 'fc_host', 'vports'],
      ['system'],
      ['scsi_host', 'fc_host', 'vports'],
      ['scsi_host', 'fc_host'],
    ]);
  });

  test('the vHBA creation request virsh nodedev-create sends', () => {
    expect(parseNodeDeviceCreateXml(fixture('vhba-input.xml'))).toEqual({
      parent: 'scsi_host1',
      parentWwnn: null,
      parentWwpn: null,
      parentFabricWwn: null,
      wwnn: '2001001b32a9da4e',
      wwpn: '2101001b32a9da4e',
    });
  });

  test('parent by WWNs and by fabric', () => {
    const xml = (p: string) =>
      `<device>${p}<capability type='scsi_host'><capability type='fc_host'><wwnn>2001001b32a9da4e</wwnn><wwpn>2101001b32a9da4e</wwpn></capability></capability></device>`;
    expect(parseNodeDeviceCreateXml(xml("<parent wwnn='2000000012341234' wwpn='1000000012341234'/>"))).toMatchObject({
      parent: null,
      parentWwnn: '2000000012341234',
      parentWwpn: '1000000012341234',
    });
    expect(parseNodeDeviceCreateXml(xml("<parent fabric_wwn='2000000043214321'/>"))).toMatchObject({ parent: null, parentFabricWwn: '2000000043214321' });
    expect(() => parseNodeDeviceCreateXml(xml("<parent wwnn='2000000012341234'/>"))).toThrow(
      "XML error: when providing parent wwnn='2000000012341234', the wwpn must also be provided",
    );
  });

  test.each([
    ['<device/>', "internal error: no device capabilities for 'new device'"],
    ["<device><capability type='bogus'/></device>", "XML error: Invalid value for attribute 'type' in element 'capability': 'bogus'."],
    ['<device><capability/></device>', "XML error: Missing required attribute 'type' in element 'capability'"],
    ["<device><capability type='scsi_host'/></device>", 'internal error: Device is not a fibre channel HBA'],
    ["<device><capability type='net'><interface>eth0</interface></capability></device>", 'internal error: Device is not a fibre channel HBA'],
    ["<device><capability type='scsi_host'><capability/></capability></device>", "internal error: missing SCSI host capability type for 'new device'"],
    [
      "<device><capability type='scsi_host'><capability type='x'/></capability></device>",
      "internal error: unknown SCSI host capability type 'x' for 'new device'",
    ],
    [
      "<device><capability type='scsi_host'><capability type='fc_host'/></capability></device>",
      "internal error: no WWNN supplied for 'new device', and auto-generation failed",
    ],
    [
      "<device><capability type='scsi_host'><capability type='fc_host'><wwnn>nothex</wwnn></capability></capability></device>",
      'internal error: Malformed wwn: nothex',
    ],
    ['<interface/>', "XML error: expecting root element of 'device', not 'interface'"],
    ['<device>', '(node_device_definition):1: '],
  ])('%s -> %s', (xml, msg) => {
    expect(() => parseNodeDeviceCreateXml(xml)).toThrow(msg);
  });
});
