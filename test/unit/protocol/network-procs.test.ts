// SPDX-License-Identifier: Apache-2.0
// The network procedures: every virNetworkDriver entry of libvirt 9.0's test driver, plus the event procedures, with
// remote_protocol.x's numbers, API names and @acl lines.
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { PROC_NAMES } from '../../../src/protocol/proc-names';
import { PN } from '../../../src/protocol/procs/network';
import { requiredPermissions } from '../../../src/protocol/procs/remote';

// test_driver.c testNetworkDriver (23 entries) -> REMOTE_PROC_*; 315 is the event message.
const EXPECTED: [keyof typeof PN, number, string[]][] = [
  ['CONNECT_NUM_OF_NETWORKS', 52, ['connect:search_networks']],
  ['CONNECT_LIST_NETWORKS', 38, ['connect:search_networks']],
  ['CONNECT_NUM_OF_DEFINED_NETWORKS', 50, ['connect:search_networks']],
  ['CONNECT_LIST_DEFINED_NETWORKS', 36, ['connect:search_networks']],
  ['CONNECT_LIST_ALL_NETWORKS', 283, ['connect:search_networks']],
  ['CONNECT_NETWORK_EVENT_REGISTER_ANY', 313, ['connect:search_networks']],
  ['CONNECT_NETWORK_EVENT_DEREGISTER_ANY', 314, ['connect:read']],
  ['NETWORK_LOOKUP_BY_UUID', 47, ['network:getattr']],
  ['NETWORK_LOOKUP_BY_NAME', 46, ['network:getattr']],
  ['NETWORK_CREATE_XML', 40, ['network:write', 'network:start']],
  ['NETWORK_CREATE_XML_FLAGS', 437, ['network:write', 'network:start']],
  ['NETWORK_DEFINE_XML', 41, ['network:write', 'network:save']],
  ['NETWORK_DEFINE_XML_FLAGS', 432, ['network:write', 'network:save']],
  ['NETWORK_UNDEFINE', 49, ['network:delete']],
  ['NETWORK_UPDATE', 291, ['network:write', 'network:save']],
  ['NETWORK_CREATE', 39, ['network:start']],
  ['NETWORK_DESTROY', 42, ['network:stop']],
  ['NETWORK_GET_XML_DESC', 43, ['network:read']],
  ['NETWORK_GET_BRIDGE_NAME', 45, ['network:read']],
  ['NETWORK_GET_AUTOSTART', 44, ['network:read']],
  ['NETWORK_SET_AUTOSTART', 48, ['network:write']],
  ['NETWORK_IS_ACTIVE', 152, ['network:read']],
  ['NETWORK_IS_PERSISTENT', 153, ['network:read']],
  ['NETWORK_EVENT_LIFECYCLE', 315, []],
];

test.each(EXPECTED)('%s is procedure %d with @acl %j', (key, proc, perms) => {
  const def = PN[key];
  expect(def.proc).toBe(proc);
  expect(requiredPermissions(def, 0)).toEqual(perms);
  const api = PROC_NAMES.get(proc)!;
  if (def.message) expect(api).toBe(`REMOTE_PROC_${key}`);
  else expect(api.toLowerCase()).toBe(`vir${def.name}`.toLowerCase());
});

test('the table has exactly these network procedures', () => {
  expect(Object.keys(PN).sort()).toEqual(EXPECTED.map(([k]) => k).sort());
});

test('networkUpdate needs network:save for the config: AFFECT_CURRENT and AFFECT_CONFIG, not AFFECT_LIVE alone', () => {
  expect(requiredPermissions(PN.NETWORK_UPDATE, 1)).toEqual(['network:write']);
  expect(requiredPermissions(PN.NETWORK_UPDATE, 2)).toEqual(['network:write', 'network:save']);
  expect(requiredPermissions(PN.NETWORK_UPDATE, 3)).toEqual(['network:write', 'network:save']);
});

test('list filters are per network (network:getattr), as @aclfilter says', () => {
  for (const k of ['CONNECT_LIST_ALL_NETWORKS', 'CONNECT_LIST_NETWORKS', 'CONNECT_NUM_OF_NETWORKS', 'CONNECT_NETWORK_EVENT_REGISTER_ANY'] as const)
    expect(PN[k].aclFilter).toBe('network:getattr');
});

test('remote_nonnull_network on the wire: name then 16 uuid bytes; register args carry an optional network', () => {
  const w = new XdrWriter();
  PN.CONNECT_LIST_ALL_NETWORKS.ret.encode(w, { nets: [{ name: 'default', uuid: Buffer.alloc(16, 0xab) }], ret: 1 });
  const buf = w.finish();
  expect(buf.toString('hex')).toBe(`00000001` + `00000007${Buffer.from('default').toString('hex')}00` + 'ab'.repeat(16) + '00000001');
  const w2 = new XdrWriter();
  PN.CONNECT_NETWORK_EVENT_REGISTER_ANY.args.encode(w2, { eventID: 0, net: null });
  expect(PN.CONNECT_NETWORK_EVENT_REGISTER_ANY.args.decode(new XdrReader(w2.finish()))).toEqual({ eventID: 0, net: null });
});
