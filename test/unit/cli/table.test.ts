// SPDX-License-Identifier: Apache-2.0
// CLI output against virsh 9.0's own output (libvirt-captures 02, 04, 16, 42) and the formatting helpers.
import { formatDomInfo, formatDomainList, formatLifecycleEvent, formatNodeInfo, formatTable, sortDomains } from '../../../src/cli/table';
import { lifecycleDetailName, lifecycleEventName, stateName, stateReasonName, uuidFromString, uuidToString, versionString } from '../../../src/client';

const UUID = '6695eb01-f6a4-8304-79aa-97f2502e193f';
const dom = (name: string, id: number) => ({ name, id, uuid: uuidFromString(UUID)! });

test('list table matches virsh list --all', () => {
  expect(formatDomainList([{ dom: dom('test', 1), state: 1 }])).toBe(' Id   Name   State\n----------------------\n 1    test   running\n\n');
});

test('table columns widen to the longest cell; inactive ids print as -', () => {
  expect(
    formatDomainList([
      { dom: dom('a-long-name', -1), state: 5 },
      { dom: dom('b', 12), state: 3 },
    ]),
  ).toBe([' Id   Name          State', '------------------------------', ' -    a-long-name   shut off', ' 12   b             paused', '', ''].join('\n'));
  expect(formatTable(['A'], [])).toBe(' A\n----\n');
});

test('sortDomains: active by id, then inactive by name', () => {
  const sorted = sortDomains([dom('z', -1), dom('b', 3), dom('A', -1), dom('c', 1)]);
  expect(sorted.map((d) => d.name)).toEqual(['c', 'b', 'A', 'z']);
});

test('dominfo matches virsh', () => {
  const info = { state: 1, maxMem: 8388608n, memory: 2097152n, nrVirtCpu: 2, cpuTime: 1795633637705442000n };
  const text = formatDomInfo(dom('test', 1), info, {
    osType: 'linux',
    persistent: true,
    autostart: false,
    managedSave: false,
    security: { model: 'testSecurity', doi: '', label: { label: 'libvirt-test', enforcing: true } },
  });
  expect(text).toBe(
    [
      'Id:             1',
      'Name:           test',
      `UUID:           ${UUID}`,
      'OS Type:        linux',
      'State:          running',
      'CPU(s):         2',
      'CPU time:       1795633637.7s',
      'Max memory:     8388608 KiB',
      'Used memory:    2097152 KiB',
      'Persistent:     yes',
      'Autostart:      disable',
      'Managed save:   no',
      'Security model: testSecurity',
      'Security DOI:   ',
      'Security label: libvirt-test (enforcing)',
      '',
      '',
    ].join('\n'),
  );
});

test('dominfo omits what optional calls could not tell', () => {
  const text = formatDomInfo(dom('x', -1), { state: 5, maxMem: 1n, memory: 1n, nrVirtCpu: 1, cpuTime: 0n }, {});
  expect(text).not.toMatch(/OS Type|CPU time|Autostart|Security/);
  expect(text).toMatch(/^Id: {13}-$/m);
  expect(text).toMatch(/^Persistent: {5}unknown$/m);
});

test('nodeinfo matches virsh', () => {
  expect(formatNodeInfo({ model: 'i686', memory: 3145728n, cpus: 16, mhz: 1400, nodes: 2, sockets: 2, cores: 2, threads: 2 })).toBe(
    [
      'CPU model:           i686',
      'CPU(s):              16',
      'CPU frequency:       1400 MHz',
      'CPU socket(s):       2',
      'Core(s) per socket:  2',
      'Thread(s) per core:  2',
      'NUMA cell(s):        2',
      'Memory size:         3145728 KiB',
      '',
      '',
    ].join('\n'),
  );
});

test.each([
  [0, 0, "event 'lifecycle' for domain 'test': Defined Added"],
  [2, 0, "event 'lifecycle' for domain 'test': Started Booted"],
  [3, 0, "event 'lifecycle' for domain 'test': Suspended Paused"],
  [4, 0, "event 'lifecycle' for domain 'test': Resumed Unpaused"],
  [5, 1, "event 'lifecycle' for domain 'test': Stopped Destroyed"],
  [1, 0, "event 'lifecycle' for domain 'test': Undefined Removed"],
  [6, 1, "event 'lifecycle' for domain 'test': Shutdown Finished after guest request"],
  [7, 1, "event 'lifecycle' for domain 'test': PMSuspended Disk"],
  [8, 0, "event 'lifecycle' for domain 'test': Crashed Panicked"],
  [42, 0, "event 'lifecycle' for domain 'test': unknown unknown"],
])('event %d/%d', (event, detail, line) => {
  expect(formatLifecycleEvent({ callbackID: 0, dom: dom('test', 1), event, detail })).toBe(`${line}\n`);
  expect(lifecycleEventName(event)).toBe(line.split(': ')[1].split(' ')[0]);
  expect(typeof lifecycleDetailName(event, detail)).toBe('string');
});

test('state names and reasons as virsh prints them', () => {
  expect([0, 1, 2, 3, 4, 5, 6, 7, 8].map(stateName)).toEqual([
    'no state',
    'running',
    'idle',
    'paused',
    'in shutdown',
    'shut off',
    'crashed',
    'pmsuspended',
    'unknown',
  ]);
  expect(stateReasonName(1, 1)).toBe('booted');
  expect(stateReasonName(3, 1)).toBe('user');
  expect(stateReasonName(5, 2)).toBe('destroyed');
  expect(stateReasonName(9, 9)).toBe('unknown');
});

test('uuid round trip and rejects', () => {
  const raw = uuidFromString(UUID)!;
  expect(raw.toString('hex')).toBe('6695eb01f6a4830479aa97f2502e193f');
  expect(uuidToString(raw)).toBe(UUID);
  expect(uuidFromString('6695eb01f6a4830479aa97f2502e193f')).toEqual(raw);
  expect(uuidFromString(' 6695EB01-F6A4-8304-79AA-97F2502E193F ')).toEqual(raw);
  for (const bad of ['test', '6695eb01-f6a4-8304-79aa-97f2502e193', `-${UUID}`, `${UUID}0`, 'g695eb01-f6a4-8304-79aa-97f2502e193f'])
    expect(uuidFromString(bad)).toBeNull();
});

test('versionString', () => {
  expect(versionString(2n)).toBe('0.0.2');
  expect(versionString(9000000)).toBe('9.0.0');
  expect(versionString(8002001n)).toBe('8.2.1');
});
