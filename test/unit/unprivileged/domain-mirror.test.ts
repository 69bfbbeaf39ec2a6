// SPDX-License-Identifier: Apache-2.0
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import { type DomainInfo, type DomainSnapshot, LookupKind, OPS } from '../../../src/ipc/program';
import { DomainMirror } from '../../../src/unprivileged/domain-mirror';
import type { HelperClient } from '../../../src/unprivileged/helper-client';

const uuid = (n: number): Buffer => Buffer.alloc(16, n);
const info = (n: number, over: Partial<DomainInfo> = {}): DomainInfo => ({
  name: `vm${n}`,
  uuid: uuid(n),
  id: n,
  state: 1,
  reason: 1,
  persistent: true,
  maxMemKiB: 1024n,
  memoryKiB: 512n,
  nrVirtCpu: 1,
  maxVcpus: 2,
  cpuTimeNs: 0n,
  autostart: false,
  osType: 'linux',
  hasManagedSave: false,
  securityLabel: '',
  securityEnforcing: false,
  ...over,
});
const snap = (i: DomainInfo, over: Partial<DomainSnapshot> = {}): DomainSnapshot => ({
  info: i,
  cpuBaseNs: 5_000_000n,
  cpuSinceMs: 1000,
  cpuClock: true,
  ...over,
});

function setup(): { helper: EventEmitter; mirror: DomainMirror } {
  const helper = new EventEmitter();
  return { helper, mirror: new DomainMirror(helper as unknown as HelperClient) };
}

test('answers nothing until the initial sync is complete, then everything', () => {
  const { helper, mirror } = setup();
  helper.emit('sync-start');
  helper.emit('snapshot', snap(info(1)));
  expect(mirror.info(uuid(1))).toBeUndefined(); // not synced: ask the helper
  helper.emit('up', 'test');
  expect(mirror.info(uuid(1), 1000)).toMatchObject({ name: 'vm1', memoryKiB: 512n });
  expect(mirror.info(uuid(9))).toBeNull(); // synced and absent: no such domain
  expect(mirror.list()?.map((d) => d.name)).toEqual(['vm1']);
});

test('CPU time is extrapolated from the wall clock while running, frozen while stopped', () => {
  const { helper, mirror } = setup();
  helper.emit('snapshot', snap(info(1)));
  helper.emit('snapshot', snap(info(2, { id: -1, state: 5 }), { cpuSinceMs: null, cpuBaseNs: 7n }));
  helper.emit('up');
  expect(mirror.info(uuid(1), 1250)?.cpuTimeNs).toBe(5_000_000n + 250_000_000n);
  expect(mirror.info(uuid(2), 99999)?.cpuTimeNs).toBe(7n);
});

test('a driver that cannot extrapolate CPU time makes the mirror defer to the helper', () => {
  const { helper, mirror } = setup();
  helper.emit('snapshot', snap(info(1), { cpuClock: false }));
  helper.emit('up');
  expect(mirror.info(uuid(1))).toBeUndefined();
  expect(mirror.lookup({ kind: LookupKind.NAME, name: 'vm1' })?.name).toBe('vm1'); // identity data is still exact
});

test('lookups by name, uuid and id follow changes and removals', () => {
  const { helper, mirror } = setup();
  helper.emit('snapshot', snap(info(1)));
  helper.emit('up');
  expect(mirror.lookup({ kind: LookupKind.ID, id: 1 })?.name).toBe('vm1');
  helper.emit('snapshot', snap(info(1, { id: -1, state: 5 }))); // stopped: no longer found by id
  expect(mirror.lookup({ kind: LookupKind.ID, id: 1 })).toBeNull();
  expect(mirror.lookup({ kind: LookupKind.UUID, uuid: uuid(1) })?.state).toBe(5);
  helper.emit('removed', uuid(1));
  expect(mirror.lookup({ kind: LookupKind.NAME, name: 'vm1' })).toBeNull();
  expect(mirror.size).toBe(0);
});

test('losing the helper, or a new sync, forgets everything', () => {
  const { helper, mirror } = setup();
  helper.emit('snapshot', snap(info(1)));
  helper.emit('up');
  helper.emit('down', 'lost');
  expect(mirror.synced).toBe(false);
  expect(mirror.size).toBe(0);
  helper.emit('snapshot', snap(info(2)));
  helper.emit('up');
  helper.emit('sync-start');
  expect(mirror.list()).toBeUndefined();
});

test("a running real VM's CPU time is read from its cgroup accounting file by the mirror itself; unreadable: the helper answers", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-cpufile-'));
  try {
    const file = path.join(dir, 'cpuacct.usage');
    const { helper, mirror } = setup();
    helper.emit('snapshot', snap(info(1), { cpuClock: false, cpuFile: file }));
    helper.emit('up');
    fs.writeFileSync(file, '123456789\n');
    expect(mirror.info(uuid(1))?.cpuTimeNs).toBe(123456789n);
    fs.writeFileSync(file, '223456789\n'); // read afresh each time (the file stays open: one pread per call)
    expect(mirror.info(uuid(1))?.cpuTimeNs).toBe(223456789n);
    const target = (fd: string): string | null => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return null; // the directory listing's own descriptor, gone already
      }
    };
    const open = (): number => fs.readdirSync('/proc/self/fd').filter((fd) => target(fd) === file).length;
    expect(open()).toBe(1);
    fs.writeFileSync(file, 'garbage');
    expect(mirror.info(uuid(1))).toBeUndefined();
    expect(open()).toBe(0); // not held while it says nothing useful
    fs.writeFileSync(file, '323456789\n');
    expect(mirror.info(uuid(1))?.cpuTimeNs).toBe(323456789n);
    helper.emit('removed', uuid(1)); // a removed or replaced domain's file is closed
    expect(open()).toBe(0);
    helper.emit('snapshot', snap(info(1), { cpuClock: false, cpuFile: file }));
    fs.rmSync(file);
    expect(mirror.info(uuid(1))).toBeUndefined();
    // cgroup v2's cpu.stat (usage_usec) that cannot be opened: the helper answers
    helper.emit('snapshot', snap(info(1), { cpuClock: false, cpuFile: path.join(dir, 'nonexistent', 'cpu.stat') }));
    expect(mirror.info(uuid(1))).toBeUndefined();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the stream codec carries only a cgroup accounting file as cpuFile', () => {
  const enc = (cpuFile: string) => {
    const w = new XdrWriter();
    OPS.EVENTS_SUBSCRIBE.answer.encode(w, { event: null, snapshot: snap(info(1), { cpuClock: false, cpuFile }) });
    return () => OPS.EVENTS_SUBSCRIBE.answer.decode(new XdrReader(w.finish()));
  };
  expect(enc('/sys/fs/cgroup/cpuacct/virtgate/_host/vm-x/cpuacct.usage')().snapshot?.cpuFile).toBe('/sys/fs/cgroup/cpuacct/virtgate/_host/vm-x/cpuacct.usage');
  expect(enc('/sys/fs/cgroup/virtgate/acme/vm-x/cpu.stat')().snapshot?.cpuFile).toBe('/sys/fs/cgroup/virtgate/acme/vm-x/cpu.stat');
  for (const bad of ['/etc/shadow', '/sys/fs/cgroup/../../etc/shadow/cpu.stat', '/sys/fs/cgroup/x/../cpuacct.usage', '/proc/self/environ', 'cpu.stat'])
    expect(enc(bad)).toThrow(/cpuFile/);
});
