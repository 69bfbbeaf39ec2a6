// SPDX-License-Identifier: Apache-2.0
// Hostile and malformed input to the domain stats/tuning procedures on the libvirt socket: typed parameters of unknown
// names, wrong types, too many, unknown discriminants; counts over libvirt's bounds. Each gets libvirt's error reply
// (or the payload error), nothing reaches the helper that its decoder would refuse, and the daemon keeps serving.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XdrWriter } from '../../src/common/xdr';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { openRaw } from '../helpers/raw';

const TEST_UUID = Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex');
const dom = (w: XdrWriter): void => void w.string('test', 100).opaqueFixed(TEST_UUID).i32(1);
// remote_typed_param: field, int discriminant, value
const param = (w: XdrWriter, field: string, type: number, value: (w: XdrWriter) => void): void => {
  w.string(field, 100).i32(type);
  value(w);
};

let vg: RunningDaemon;
beforeAll(async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-dom-bad-'));
  vg = await startDaemon({ home });
});
afterAll(async () => vg?.stop());

// One call on a fresh, opened connection: [status, error code, message] (status 0: success).
async function call(proc: number, body: (w: XdrWriter) => void): Promise<[number, number | null, string | null]> {
  const c = await openRaw(vg.sock);
  c.call(proc, 2, body);
  const r = await c.waitReplies(3);
  c.end();
  const last = r[2];
  expect(last).toBeDefined();
  return [last.header.status, last.error?.code ?? null, last.error?.message ?? null];
}

async function stillServes(): Promise<void> {
  const c = await openRaw(vg.sock);
  c.call(23, 2, (w) => w.string('test', 100));
  const r = await c.waitReplies(3);
  c.end();
  expect(r[2].header.status).toBe(0);
}

const SET_MEMORY_PARAMETERS = 197;
const SET_SCHEDULER_PARAMETERS_FLAGS = 219;
const GET_MEMORY_PARAMETERS = 198;
const GET_VCPUS = 20;
const PIN_VCPU = 26;
const SET_BLKIO_PARAMETERS = 205;
const GET_METADATA = 265;
const MEMORY_STATS = 159;

test.each<[string, number, (w: XdrWriter) => void, [number, number | null, string | RegExp | null]]>([
  [
    'unknown typed-parameter field',
    SET_MEMORY_PARAMETERS,
    (w) => {
      dom(w);
      w.u32(1);
      param(w, 'foo', 4, (x) => void x.u64(1n));
      w.u32(0);
    },
    [1, 74, "argument unsupported: parameter 'foo' not supported"],
  ],
  [
    'a known field of the wrong type',
    SET_MEMORY_PARAMETERS,
    (w) => {
      dom(w);
      w.u32(1);
      param(w, 'hard_limit', 2, (x) => void x.u32(1));
      w.u32(0);
    },
    [1, 8, "invalid argument: invalid type 'uint' for parameter 'hard_limit', expected 'ullong'"],
  ],
  [
    'the same field twice',
    SET_MEMORY_PARAMETERS,
    (w) => {
      dom(w);
      w.u32(2);
      param(w, 'soft_limit', 4, (x) => void x.u64(1n));
      param(w, 'soft_limit', 4, (x) => void x.u64(2n));
      w.u32(0);
    },
    [1, 8, "invalid argument: parameter 'soft_limit' occurs multiple times"],
  ],
  [
    'a double where the scheduler wants a uint',
    SET_SCHEDULER_PARAMETERS_FLAGS,
    (w) => {
      dom(w);
      w.u32(1);
      param(w, 'weight', 5, (x) => void x.opaqueFixed(Buffer.alloc(8)));
      w.u32(0);
    },
    [1, 8, /invalid type 'double' for parameter 'weight'/],
  ],
  [
    'more parameters than REMOTE_DOMAIN_MEMORY_PARAMETERS_MAX',
    SET_MEMORY_PARAMETERS,
    (w) => {
      dom(w);
      w.u32(17);
      for (let i = 0; i < 17; i++) param(w, 'hard_limit', 4, (x) => void x.u64(1n));
      w.u32(0);
    },
    [1, 39, /Unable to decode message payload|cannot decode/],
  ],
  [
    'an unknown typed-parameter discriminant',
    SET_MEMORY_PARAMETERS,
    (w) => {
      dom(w);
      w.u32(1);
      param(w, 'hard_limit', 9, (x) => void x.u32(0));
      w.u32(0);
    },
    [1, 39, /Unable to decode message payload|cannot decode/],
  ],
  [
    'a blkio device list that does not parse',
    SET_BLKIO_PARAMETERS,
    (w) => {
      dom(w);
      w.u32(1);
      param(w, 'device_weight', 7, (x) => void x.string('/dev/sda', 100));
      w.u32(0);
    },
    [1, 8, "invalid argument: unable to parse blkio device 'device_weight' '/dev/sda'"],
  ],
  ['nparams over the bound', GET_MEMORY_PARAMETERS, (w) => (dom(w), w.i32(17).u32(0)), [1, 1, 'internal error: nparams too large']],
  ['negative nparams', GET_MEMORY_PARAMETERS, (w) => (dom(w), w.i32(-1).u32(0)), [1, 1, 'internal error: nparams too large']],
  ['maxinfo over REMOTE_VCPUINFO_MAX', GET_VCPUS, (w) => (dom(w), w.i32(16385).i32(1)), [1, 1, 'internal error: maxinfo > REMOTE_VCPUINFO_MAX']],
  [
    'maxinfo * maplen over REMOTE_CPUMAPS_MAX',
    GET_VCPUS,
    (w) => (dom(w), w.i32(16384).i32(1024)),
    [1, 1, 'internal error: maxinfo * maplen > REMOTE_CPUMAPS_MAX'],
  ],
  [
    'a cpumap longer than REMOTE_CPUMAP_MAX',
    PIN_VCPU,
    (w) => (dom(w), w.u32(0).opaque(Buffer.alloc(2049, 1), 4096)),
    [1, 39, /Unable to decode|cannot decode/],
  ],
  ['an empty cpumap', PIN_VCPU, (w) => (dom(w), w.u32(0).opaque(Buffer.alloc(0), 4096)), [1, 8, /maplen in virDomainPinVcpu must be greater than zero/]],
  ['maxStats over REMOTE_DOMAIN_MEMORY_STATS_MAX', MEMORY_STATS, (w) => (dom(w), w.u32(1025).u32(0)), [1, 1, /maxStats/]],
  ['an unknown metadata type', GET_METADATA, (w) => (dom(w), w.i32(9).u32(0).u32(0)), [1, 8, "invalid argument: unknown metadata type '9'"]],
  [
    'a scheduler weight that is accepted',
    SET_SCHEDULER_PARAMETERS_FLAGS,
    (w) => (dom(w), w.u32(1), param(w, 'weight', 2, (x) => void x.u32(10)), w.u32(0)),
    [0, null, null],
  ],
])('%s', async (_what, proc, body, [status, code, message]) => {
  const [s, c, m] = await call(proc, body);
  expect([s, c]).toEqual([status, code]);
  if (message instanceof RegExp) expect(m).toMatch(message);
  else expect(m).toBe(message);
  await stillServes();
});
