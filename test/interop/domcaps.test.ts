// SPDX-License-Identifier: Apache-2.0
// CONNECT_GET_DOMAIN_CAPABILITIES (342) through real virsh 9.0 and python3-libvirt against the test driver: the same
// answer as libvirt's test:///default (which has no domain capabilities), errors and exit codes line for line; a
// read-only connection is refused as libvirt refuses it. The QEMU driver's document is checked in
// test/unit/qemu/host-caps.test.ts (libvirt's schemas, virtinst).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, exec, referenceVirsh } from '../helpers/users';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const virsh = (uri: string, ...args: string[]): Promise<Result> => exec(['virsh', '-c', uri, ...args]);

describeIf([virshTool(), pyLibvirt()], 'domain capabilities: virsh and python3-libvirt against virtgate and test:///default', () => {
  let vg: RunningDaemon;
  beforeAll(async () => {
    vg = await startDaemon();
  });
  afterAll(async () => vg?.stop());

  test.each([[['domcapabilities']], [['domcapabilities', '--machine', 'q35', '--virttype', 'kvm', '--arch', 'x86_64']]])('virsh %j', async (args) => {
    const ours = await virsh(vg.uri, ...args);
    const theirs = await referenceVirsh(...args);
    expect(ours).toEqual(theirs);
    expect(ours.err).toContain('this function is not supported by the connection driver: virConnectGetDomainCapabilities');
  });

  test('read-only connection: refused as libvirt refuses it', async () => {
    const ours = await exec(['virsh', '-r', '-c', vg.uriRo, 'domcapabilities']);
    const theirs = await exec(['virsh', '-r', '-c', 'test:///default', 'domcapabilities']);
    expect(ours).toEqual(theirs);
    expect(ours.err).toContain('read only access prevents virConnectGetDomainCapabilities');
  });

  test('python3-libvirt: the same error code and domain as test:///default', async () => {
    const script = `
import sys, json, libvirt
c = libvirt.open(sys.argv[1])
try:
    c.getDomainCapabilities(None, 'x86_64', None, None, 0)
    print(json.dumps(None))
except libvirt.libvirtError as e:
    print(json.dumps([e.get_error_code(), e.get_error_domain(), e.get_error_message()]))
`;
    const ask = async (uri: string) => JSON.parse((await run('/usr/bin/python3', ['-c', script, uri])).stdout) as unknown;
    const ours = await ask(vg.uri);
    expect(ours).toEqual(await ask('test:///default'));
    expect(ours).toEqual([3, 20, 'this function is not supported by the connection driver: virConnectGetDomainCapabilities']);
  });
});
