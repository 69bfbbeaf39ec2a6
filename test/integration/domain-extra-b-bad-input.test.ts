// SPDX-License-Identifier: Apache-2.0
// Issue 12 part B, hostile and malformed input on the libvirt socket: out-of-range values, unknown iothreads, bad
// keycodes and codesets, signals out of range, oversized peeks, calls carrying descriptors, old-style callbacks
// deregistered twice. Each gets libvirt's error reply (or the payload error) and the daemon keeps serving.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XdrWriter } from '../../src/common/xdr';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { openRaw } from '../helpers/raw';

const TEST_UUID = Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex');
const dom = (w: XdrWriter): void => void w.string('test', 100).opaqueFixed(TEST_UUID).i32(1);
const param = (w: XdrWriter, field: string, type: number, value: (w: XdrWriter) => void): void => {
  w.string(field, 100).i32(type);
  value(w);
};

let vg: RunningDaemon;
beforeAll(async () => {
  vg = await startDaemon({ home: fs.mkdtempSync(path.join(os.tmpdir(), 'vg-dom-b-bad-')) });
});
afterAll(async () => vg?.stop());

type Outcome = [number, number | null, string | RegExp | null];

async function call(
  proc: number,
  body: (w: XdrWriter) => void,
  type = 0,
): Promise<{ status: number; code: number | null; message: string | null; body: Buffer }> {
  const c = await openRaw(vg.sock);
  c.call(proc, 2, body, { type });
  const r = await c.waitReplies(3);
  c.end();
  const last = r[2];
  expect(last).toBeDefined();
  return { status: last.header.status, code: last.error?.code ?? null, message: last.error?.message ?? null, body: last.body };
}

async function stillServes(): Promise<void> {
  const r = await call(23, (w) => w.string('test', 100));
  expect(r.status).toBe(0);
}

const P = {
  SET_MAX_MEMORY: 30,
  MEMORY_PEEK: 104,
  EVENT_REGISTER: 105,
  EVENT_DEREGISTER: 106,
  INJECT_NMI: 210,
  SEND_KEY: 226,
  SET_BLOCK_IO_TUNE: 252,
  GET_BLOCK_IO_TUNE: 253,
  SET_IFACE_PARAMS: 256,
  GET_IFACE_PARAMS: 257,
  GET_CPU_STATS: 262,
  SEND_PROCESS_SIGNAL: 295,
  SET_MEMSTATS_PERIOD: 308,
  CREATE_XML_WITH_FILES: 309,
  FSFREEZE: 335,
  SET_TIME: 338,
  PIN_IOTHREAD: 352,
  ADD_IOTHREAD: 355,
  DEL_IOTHREAD: 356,
  SET_USER_PASSWORD: 357,
  SET_PERF_EVENTS: 366,
  SET_LIFECYCLE_ACTION: 390,
  SET_IOTHREAD_PARAMS: 402,
} as const;

test.each<[string, number, (w: XdrWriter) => void, Outcome]>([
  ['setmaxmem 0', P.SET_MAX_MEMORY, (w) => (dom(w), w.u64(0n)), [1, 8, 'invalid argument: memory in virDomainSetMaxMemory must not be zero']],
  ['setmaxmem beyond any size', P.SET_MAX_MEMORY, (w) => (dom(w), w.u64(1n << 62n)), [1, 8, /out of range/]],
  ['setmaxmem of a running domain', P.SET_MAX_MEMORY, (w) => (dom(w), w.u64(1000n)), [1, 55, /cannot resize the maximum memory on an active domain/]],
  ['an unknown lifecycle type', P.SET_LIFECYCLE_ACTION, (w) => (dom(w), w.u32(7).u32(0).u32(0)), [1, 8, 'invalid argument: unknown lifecycle type 7']],
  ['an unknown lifecycle action', P.SET_LIFECYCLE_ACTION, (w) => (dom(w), w.u32(2).u32(9).u32(0)), [1, 8, 'invalid argument: unknown lifecycle action 9']],
  [
    'a coredump action on poweroff',
    P.SET_LIFECYCLE_ACTION,
    (w) => (dom(w), w.u32(0).u32(4).u32(0)),
    [1, 67, "unsupported configuration: Lifecycle event 'poweroff' doesn't support 'coredump-destroy' action"],
  ],
  [
    'a negative stats period',
    P.SET_MEMSTATS_PERIOD,
    (w) => (dom(w), w.i32(-1).u32(0)),
    [1, 8, 'invalid argument: period in virDomainSetMemoryStatsPeriod must be zero or greater'],
  ],
  ['nseconds of a whole second', P.SET_TIME, (w) => (dom(w), w.i64(5n).u32(1000000000).u32(0)), [1, 8, /nseconds 1000000000 out of range/]],
  ['an unknown domtime flag', P.SET_TIME, (w) => (dom(w), w.i64(5n).u32(0).u32(2)), [1, 8, 'unsupported flags (0x2) in function testDomainSetTime']],
  ['iothread id 0', P.ADD_IOTHREAD, (w) => (dom(w), w.u32(0).u32(0)), [1, 8, 'invalid argument: invalid value of 0 for iothread_id']],
  [
    'an unknown iothread to delete',
    P.DEL_IOTHREAD,
    (w) => (dom(w), w.u32(77).u32(0)),
    [1, 8, "invalid argument: cannot find IOThread '77' in iothreadids list"],
  ],
  [
    'an unknown iothread to pin',
    P.PIN_IOTHREAD,
    (w) => (
      dom(w),
      w
        .u32(77)
        .opaque(Buffer.from([1]), 2048)
        .u32(0)
    ),
    [1, 8, 'invalid argument: iothreadid 77 not found'],
  ],
  [
    'an empty iothread cpumap',
    P.PIN_IOTHREAD,
    (w) => (
      dom(w),
      w
        .u32(1)
        .opaque(Buffer.from([0]), 2048)
        .u32(0)
    ),
    [1, 8, /Empty iothread cpumap list for pinning/],
  ],
  [
    'an unknown iothread to tune',
    P.SET_IOTHREAD_PARAMS,
    (w) => (dom(w), w.u32(77).u32(1), param(w, 'poll_max_ns', 4, (x) => void x.u64(1n)), w.u32(1)),
    [1, 8, "invalid argument: cannot find IOThread '77' in iothreadids"],
  ],
  [
    'more iothread parameters than REMOTE_DOMAIN_IOTHREAD_PARAMS_MAX',
    P.SET_IOTHREAD_PARAMS,
    (w) => {
      dom(w);
      w.u32(1).u32(65);
      for (let i = 0; i < 65; i++) param(w, 'poll_grow', 2, (x) => void x.u32(1));
      w.u32(1);
    },
    [1, 39, /Unable to decode|cannot decode/],
  ],
  [
    'an unknown perf event',
    P.SET_PERF_EVENTS,
    (w) => (dom(w), w.u32(1), param(w, 'bogus', 6, (x) => void x.u32(1)), w.u32(0)),
    [1, 74, "argument unsupported: parameter 'bogus' not supported"],
  ],
  [
    'a perf event that is not a boolean',
    P.SET_PERF_EVENTS,
    (w) => (dom(w), w.u32(1), param(w, 'cmt', 2, (x) => void x.u32(1)), w.u32(0)),
    [1, 8, "invalid argument: invalid type 'uint' for parameter 'cmt', expected 'boolean'"],
  ],
  [
    'an unknown interface',
    P.SET_IFACE_PARAMS,
    (w) => (dom(w), w.string('eth9', 100).u32(1), param(w, 'inbound.average', 2, (x) => void x.u32(1)), w.u32(0)),
    [1, 8, "invalid argument: 'eth9' is not a known interface"],
  ],
  [
    'an unknown bandwidth field',
    P.SET_IFACE_PARAMS,
    (w) => (dom(w), w.string('testnet0', 100).u32(1), param(w, 'inbound.x', 2, (x) => void x.u32(1)), w.u32(0)),
    [1, 74, "argument unsupported: parameter 'inbound.x' not supported"],
  ],
  [
    'a throttle over the test driver limit',
    P.SET_BLOCK_IO_TUNE,
    (w) => (dom(w), w.string('vda', 100).u32(1), param(w, 'total_bytes_sec', 4, (x) => void x.u64(10n ** 16n)), w.u32(0)),
    [1, 74, 'argument unsupported: block I/O throttle limit value must be no more than 1000000000000000'],
  ],
  [
    'total and read throttles together',
    P.SET_BLOCK_IO_TUNE,
    (w) => (
      dom(w),
      w.string('vda', 100).u32(2),
      param(w, 'total_iops_sec', 4, (x) => void x.u64(1n)),
      param(w, 'read_iops_sec', 4, (x) => void x.u64(1n)),
      w.u32(0)
    ),
    [1, 8, 'invalid argument: total and read/write of iops_sec cannot be set at the same time'],
  ],
  [
    'a throttle on an unknown disk',
    P.SET_BLOCK_IO_TUNE,
    (w) => (dom(w), w.string('vdz', 100).u32(1), param(w, 'total_iops_sec', 4, (x) => void x.u64(1n)), w.u32(0)),
    [1, 8, "invalid argument: missing persistent configuration for disk 'vdz'"],
  ],
  ['throttles of no disk', P.GET_BLOCK_IO_TUNE, (w) => (dom(w), w.u32(0).i32(20).u32(0)), [1, 8, /disk in virDomainGetBlockIoTune must not be NULL/]],
  ['throttle nparams over the bound', P.GET_BLOCK_IO_TUNE, (w) => (dom(w), w.u32(0).i32(33).u32(0)), [1, 1, 'internal error: nparams too large']],
  [
    'interface nparams over the bound',
    P.GET_IFACE_PARAMS,
    (w) => (dom(w), w.string('testnet0', 100).i32(17).u32(0)),
    [1, 1, 'internal error: nparams too large'],
  ],
  [
    'an unknown mount point',
    P.FSFREEZE,
    (w) => (dom(w), w.u32(1).string('/x', 100).u32(0)),
    [1, 55, 'Requested operation is not valid: mount point not found: /x'],
  ],
  ['a signal out of range', P.SEND_PROCESS_SIGNAL, (w) => (dom(w), w.i64(1n).u32(65).u32(0)), [1, 8, 'invalid argument: signum value 65 is out of range']],
  ['a signal to pid 0', P.SEND_PROCESS_SIGNAL, (w) => (dom(w), w.i64(0n).u32(9).u32(0)), [1, 8, /pid_value in virDomainSendProcessSignal must not be zero/]],
  [
    'a signal to pid 7',
    P.SEND_PROCESS_SIGNAL,
    (w) => (dom(w), w.i64(7n).u32(9).u32(0)),
    [1, 8, 'invalid argument: only sending a signal to pid 1 is supported'],
  ],
  ['cpu stats nparams over the bound', P.GET_CPU_STATS, (w) => (dom(w), w.u32(17).i32(0).u32(1).u32(0)), [1, 1, 'internal error: nparams too large']],
  ['cpu stats ncpus over the bound', P.GET_CPU_STATS, (w) => (dom(w), w.u32(2).i32(0).u32(129).u32(0)), [1, 1, 'internal error: ncpus too large']],
  ['total cpu stats for two cpus', P.GET_CPU_STATS, (w) => (dom(w), w.u32(3).i32(-1).u32(2).u32(0)), [1, 8, /ncpus must be 1 when start_cpu is -1/]],
  [
    'a start cpu past the host',
    P.GET_CPU_STATS,
    (w) => (dom(w), w.u32(2).i32(5).u32(1).u32(0)),
    [1, 8, 'invalid argument: start_cpu 5 larger than maximum of 1'],
  ],
  ['a peek over the buffer bound', P.MEMORY_PEEK, (w) => (dom(w), w.u64(0n).u32(4194305).u32(1)), [1, 1, 'internal error: size > maximum buffer size']],
  [
    'a peek of neither kind',
    P.MEMORY_PEEK,
    (w) => (dom(w), w.u64(0n).u32(4).u32(0)),
    [1, 8, /flags parameter must be VIR_MEMORY_VIRTUAL or VIR_MEMORY_PHYSICAL/],
  ],
  [
    'a password for no user',
    P.SET_USER_PASSWORD,
    (w) => (dom(w), w.u32(0).u32(1).string('x', 100).u32(0)),
    [1, 8, /user in virDomainSetUserPassword must not be NULL/],
  ],
  ['an unknown codeset', P.SEND_KEY, (w) => (dom(w), w.u32(10).u32(0).u32(1).u32(30).u32(0)), [1, 8, "invalid argument: Unsupported codeset '10'"]],
  ['no keys', P.SEND_KEY, (w) => (dom(w), w.u32(0).u32(0).u32(0).u32(0)), [1, 8, /nkeycodes in virDomainSendKey must be greater than zero/]],
  [
    'a keycode the codeset lacks',
    P.SEND_KEY,
    (w) => (dom(w), w.u32(7).u32(0).u32(1).u32(9999).u32(0)),
    [1, 1, 'internal error: invalid keycode 9999 of usb codeset'],
  ],
  [
    'more keys than REMOTE_DOMAIN_SEND_KEY_MAX',
    P.SEND_KEY,
    (w) => {
      dom(w);
      w.u32(0).u32(0).u32(17);
      for (let i = 0; i < 17; i++) w.u32(30);
      w.u32(0);
    },
    [1, 39, /Unable to decode|cannot decode/],
  ],
  ['an NMI flag', P.INJECT_NMI, (w) => (dom(w), w.u32(1)), [1, 8, 'unsupported flags (0x1) in function testDomainInjectNMI']],
])('%s', async (_what, proc, body, [status, code, message]) => {
  const r = await call(proc, body);
  expect([r.status, r.code]).toEqual([status, code]);
  if (message instanceof RegExp) expect(r.message).toMatch(message);
  else expect(r.message).toBe(message);
  await stillServes();
});

test('a peek answers the test driver bytes: (offset + i) mod 256', async () => {
  const r = await call(P.MEMORY_PEEK, (w) => (dom(w), w.u64(254n).u32(4).u32(2)));
  expect(r.status).toBe(0);
  expect([...r.body.subarray(4, 8)]).toEqual([254, 255, 0, 1]);
});

test('a call carrying descriptors is refused, and nothing is created', async () => {
  const xml = "<domain type='test'><name>fdvm</name><memory>1024</memory><os><type>hvm</type></os></domain>";
  // VIR_NET_CALL_WITH_FDS: the payload starts with the descriptor count
  const r = await call(P.CREATE_XML_WITH_FILES, (w) => w.u32(1).string(xml, 4096).u32(0), 4);
  expect([r.status, r.code, r.message]).toEqual([
    1,
    3,
    'this function is not supported by the connection driver: virDomainCreateXMLWithFiles: virtgate does not accept file descriptors from clients',
  ]);
  const look = await call(23, (w) => w.string('fdvm', 100));
  expect(look.code).toBe(42); // VIR_ERR_NO_DOMAIN
  await stillServes();
});

test('old-style lifecycle callbacks: events as 107 messages until deregistered; a second deregistration fails', async () => {
  const c = await openRaw(vg.sock);
  c.call(P.EVENT_REGISTER, 2);
  await c.waitReplies(3);
  c.call(34, 3, dom); // suspend
  c.call(28, 4, dom); // resume
  // replies 3 and 4, and the two events (sent as the helper reports the changes)
  let r = await c.waitReplies(7);
  c.call(P.EVENT_DEREGISTER, 5);
  c.call(P.EVENT_DEREGISTER, 6);
  r = await c.waitReplies(9);
  c.end();
  const byType = (t: number) => r.slice(2).filter((x) => x.header.type === t);
  const events = byType(2); // VIR_NET_MESSAGE
  expect(events.map((e) => e.header.proc)).toEqual([107, 107]);
  // remote_domain_event_lifecycle_msg: dom, event, detail (SUSPENDED 3 / RESUMED 4)
  expect(events.map((e) => e.body.readInt32BE(e.body.length - 8))).toEqual([3, 4]);
  const replies = byType(1);
  expect(replies.map((x) => [x.header.serial, x.header.status])).toEqual([
    [2, 0],
    [3, 0],
    [4, 0],
    [5, 0],
    [6, 1],
  ]);
  expect(replies[4].error?.message).toBe('internal error: domain event 0 not registered');
});

test('a user password is accepted, audited as given, and written nowhere: not the audit log, not the helper journal', async () => {
  const secret = 'hunter2-Zq9xV';
  const r = await call(P.SET_USER_PASSWORD, (w) => (dom(w), w.u32(1).string('root', 100).u32(1).string(secret, 100).u32(0)));
  expect([r.status, r.code]).toEqual([0, null]);
  await new Promise((res) => setTimeout(res, 300)); // the outcome record follows the reply
  const audit = fs.readFileSync(path.join(vg.home, 'log', 'audit.log'), 'utf8');
  const journal = fs.readFileSync(path.join(vg.home, 'lib', 'helper-journal.log'), 'utf8');
  expect(audit).toContain('domainSetUserPassword');
  expect(audit).toContain('"passwordGiven":true');
  for (const text of [audit, journal]) {
    expect(text).not.toContain(secret);
    expect(text).not.toContain(createHash('sha256').update(secret).digest('hex'));
  }
});
