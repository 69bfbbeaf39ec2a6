// SPDX-License-Identifier: Apache-2.0
// The live <graphics> of a QEMU VM: -vnc none has no port (virsh domdisplay answers "No graphical display found");
// with the front end's VNC proxy, libvirt's address form.
import { formatDomainXml, parseDomainXml } from '../../../../src/unprivileged/xml/domain';

const xml = (type: string, g: string) =>
  `<domain type='${type}'><name>x</name><memory>1024</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>${g}</devices></domain>`;

describe('live graphics', () => {
  const g = "<graphics type='vnc' port='5900' autoport='no' listen='0.0.0.0' keymap='de'/>";

  test('a running QEMU VM: <listen type=none>, no port', () => {
    const out = formatDomainXml(parseDomainXml(xml('qemu', g)), 3);
    expect(out).toContain("<graphics type='vnc' keymap='de'>\n      <listen type='none'/>\n    </graphics>");
    expect(out).not.toMatch(/port=/);
  });

  test('with a proxy port: port, autoport, listen address', () => {
    const out = formatDomainXml(parseDomainXml(xml('kvm', g)), 3, { vncListen: { address: '192.0.2.1', port: 5911 } });
    expect(out).toContain("<graphics type='vnc' port='5911' autoport='yes' listen='192.0.2.1' keymap='de'>");
    expect(out).toContain("<listen type='address' address='192.0.2.1'/>");
  });

  test('the inactive definition and the test driver keep what was defined', () => {
    expect(formatDomainXml(parseDomainXml(xml('qemu', g)), null)).toMatch(/port='5900'/);
    expect(formatDomainXml(parseDomainXml(xml('test', g)), 1)).toMatch(/port='5900'/);
  });
});
