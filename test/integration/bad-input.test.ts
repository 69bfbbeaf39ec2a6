// SPDX-License-Identifier: Apache-2.0
// Malformed and hostile input on the libvirt socket: each case closes that connection or gets libvirtd's error reply,
// and a well-behaved client keeps working afterwards.
import fs from 'node:fs';
import path from 'node:path';
import { XdrWriter } from '../../src/common/xdr';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { RawClient, openRaw } from '../helpers/raw';

const TEST_UUID = Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex');
const dom = (w: XdrWriter): void => void w.string('test', 100).opaqueFixed(TEST_UUID).i32(1);

let vg: RunningDaemon;

beforeAll(async () => {
  const home = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'vg-bad-'));
  fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'frameTimeout = 2\nmaxMessageBytes = 1048576\n');
  vg = await startDaemon({ home });
});
afterAll(async () => vg?.stop());

// After every hostile case, a fresh client must still get a correct answer.
async function stillServes(): Promise<void> {
  const c = await openRaw(vg.sock);
  c.call(23, 2, (w) => w.string('test', 100));
  const r = await c.waitReplies(3);
  c.end();
  expect(r[2].header.status).toBe(0);
}

const lengthWord = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};

describe('framing errors close the connection', () => {
  test.each([
    ['length under 28', lengthWord(27)],
    ['length zero', lengthWord(0)],
    ['length over the maximum', lengthWord(1048577)],
    ['length 4 GiB', lengthWord(0xffffffff)],
  ])('%s', async (_n, bytes) => {
    const c = await RawClient.connect(vg.sock);
    c.write(bytes);
    expect(await c.waitClosed()).toBe(true);
    expect(c.replies).toHaveLength(0);
    await stillServes();
  });

  test('unknown message type in the header', async () => {
    const c = await RawClient.connect(vg.sock);
    c.call(66, 0, undefined, { type: 42 });
    expect(await c.waitClosed()).toBe(true);
    await stillServes();
  });

  test('random garbage', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await RawClient.connect(vg.sock);
      const junk = Buffer.from(Array.from({ length: 64 + i * 7 }, () => Math.floor(Math.random() * 256)));
      junk.writeUInt32BE(0x7f000000 + i, 0); // a length no valid message has
      c.write(junk);
      expect(await c.waitClosed()).toBe(true);
    }
    await stillServes();
  });

  test('half a frame then a stall is dropped at the frame deadline; others are served meanwhile', async () => {
    const c = await RawClient.connect(vg.sock);
    c.write(Buffer.concat([lengthWord(1000), Buffer.alloc(100)]));
    await stillServes();
    expect(c.closed).toBe(false);
    expect(await c.waitClosed(6000)).toBe(true);
  });
});

describe('payload errors get libvirtd error replies', () => {
  test('truncated arguments: "Unable to decode message payload"', async () => {
    const c = await openRaw(vg.sock);
    c.call(23, 2, (w) => w.u32(100).opaqueFixed(Buffer.from('abcd'))); // claims 100 bytes, sends 4
    const [, , r] = await c.waitReplies(3);
    expect(r.error).toMatchObject({ code: 39, domain: 7, message: 'Unable to decode message payload' });
    c.end();
  });

  test('non-zero padding', async () => {
    const c = await openRaw(vg.sock);
    c.call(23, 2, (w) => w.u32(3).opaqueFixed(Buffer.from([0x61, 0x62, 0x63, 0x01])));
    const [, , r] = await c.waitReplies(3);
    expect(r.error?.message).toBe('Unable to decode message payload');
    c.end();
  });

  test('trailing bytes after the arguments', async () => {
    const c = await openRaw(vg.sock);
    c.call(23, 2, (w) => w.string('test', 100).u32(7));
    const [, , r] = await c.waitReplies(3);
    expect(r.error?.message).toBe('Unable to decode message payload');
    c.end();
  });

  test('string length past REMOTE_STRING_MAX', async () => {
    const c = await openRaw(vg.sock);
    c.call(23, 2, (w) => w.u32(4 * 1024 * 1024 + 1));
    const [, , r] = await c.waitReplies(3);
    expect(r.error).toMatchObject({ code: 39, message: 'Unable to decode message payload' });
    c.end();
  });

  test('wrong program and wrong version', async () => {
    const c = await openRaw(vg.sock);
    c.call(66, 2, undefined, { prog: 0x12345678 });
    c.call(66, 3, undefined, { vers: 2 });
    const r = await c.waitReplies(4);
    expect(r[2].error).toMatchObject({ code: 39, domain: 7, message: 'Cannot find program 305419896 version 1' });
    expect(r[2].header.prog).toBe(0x12345678);
    expect(r[3].error?.message).toBe('Cannot find program 536903814 version 2');
    c.end();
  });

  test('QEMU monitor/agent and LXC passthrough programs: refused as libvirtd refuses a driver without them', async () => {
    const c = await openRaw(vg.sock);
    c.call(1, 2, (w) => w.string('x', 100), { prog: 0x20008087 }); // qemu-monitor-command
    c.call(3, 3, (w) => w.string('x', 100), { prog: 0x20008087 }); // qemu-agent-command
    c.call(6, 4, undefined, { prog: 0x20008087 }); // the monitor event message: no call
    c.call(1, 5, undefined, { prog: 0x00068000 }); // lxc-enter-namespace
    const r = await c.waitReplies(6);
    expect(r[2].error).toMatchObject({ code: 3, message: 'this function is not supported by the connection driver: virDomainQemuMonitorCommand' });
    expect(r[2].header.prog).toBe(0x20008087);
    expect(r[3].error?.message).toBe('this function is not supported by the connection driver: virDomainQemuAgentCommand');
    expect(r[4].error).toMatchObject({ code: 39, message: expect.stringMatching(/^unknown procedure: 6/) });
    expect(r[5].error?.message).toBe('this function is not supported by the connection driver: virDomainLxcOpenNamespace');
    c.end();
  });

  test('unknown procedure answers exactly like libvirtd', async () => {
    const c = await openRaw(vg.sock);
    c.call(9999, 2);
    const [, , r] = await c.waitReplies(3);
    expect(r.header).toMatchObject({ proc: 9999, serial: 2, type: 1, status: 1 });
    expect(r.error).toMatchObject({ code: 39, domain: 7, message: 'unknown procedure: 9999', str1: '%s', int1: -1 });
    c.end();
  });

  test('a client calling a server-only MESSAGE procedure gets unknown procedure', async () => {
    const c = await openRaw(vg.sock);
    c.call(318, 2);
    const [, , r] = await c.waitReplies(3);
    expect(r.error?.message).toBe('unknown procedure: 318 (REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE)');
    c.end();
  });

  test('hypervisor calls before CONNECT_OPEN, and a second open', async () => {
    const c = await RawClient.connect(vg.sock);
    c.call(59, 0);
    c.call(1, 1, (w) => w.u32(1).string('test:///default', 4096).u32(0));
    c.call(1, 2, (w) => w.u32(1).string('test:///default', 4096).u32(0));
    const r = [...(await c.waitReplies(3))].sort((a, b) => a.header.serial - b.header.serial);
    expect(r[0].error).toMatchObject({ code: 1, message: 'internal error: hypervisor connection not open' });
    expect(r[1].header.status).toBe(0);
    expect(r[2].error?.message).toBe('internal error: connection already open');
    c.end();
  });

  test('opening a URI for another driver is refused', async () => {
    const c = await RawClient.connect(vg.sock);
    c.call(1, 0, (w) => w.u32(1).string('qemu:///system', 4096).u32(0));
    const [r] = await c.waitReplies(1);
    expect(r.error?.message).toMatch(/cannot open URI 'qemu:\/\/\/system'/);
    c.end();
  });

  test('a write on the read-only socket is refused by the server (code 29), whatever the client library does', async () => {
    const c = await openRaw(vg.sockRo);
    c.call(34, 2, dom);
    const [, , r] = await c.waitReplies(3);
    expect(r.error).toMatchObject({ code: 29, domain: 20, message: 'operation forbidden: read only access prevents virDomainSuspend' });
    c.end();
  });

  test('a write on a connection opened with VIR_CONNECT_RO is refused too', async () => {
    const c = await RawClient.connect(vg.sock);
    c.call(1, 0, (w) => w.u32(1).string('test:///default', 4096).u32(1));
    c.call(12, 1, dom);
    const r = await c.waitReplies(2);
    expect(r.find((x) => x.header.serial === 1)?.error?.code).toBe(29);
    c.end();
  });

  test('unknown flags are refused with invalid argument', async () => {
    const c = await openRaw(vg.sock);
    c.call(212, 2, (w) => (dom(w), w.u32(0x80)));
    const [, , r] = await c.waitReplies(3);
    expect(r.error).toMatchObject({ code: 8, message: 'unsupported flags (0x80) in function virDomainGetState' });
    c.end();
  });

  test('a REPLY sent by the client is ignored, like libvirtd', async () => {
    const c = await openRaw(vg.sock);
    c.call(66, 2, undefined, { type: 1 });
    c.call(59, 3);
    const r = await c.waitReplies(3);
    expect(r[2].header.serial).toBe(3);
    c.end();
  });
});

describe('keepalive', () => {
  test('PING is answered with PONG, PONG is accepted silently', async () => {
    const c = await RawClient.connect(vg.sock);
    const ka = (proc: number): Buffer => Buffer.from(`0000001c6b65657000000001${proc.toString(16).padStart(8, '0')}000000020000000000000000`, 'hex');
    c.write(ka(2));
    c.write(ka(1));
    const [r] = await c.waitReplies(1);
    expect(r.header).toMatchObject({ prog: 0x6b656570, proc: 2, type: 2, serial: 0 });
    c.call(66, 0);
    expect((await c.waitReplies(2))[1].header.proc).toBe(66);
    c.end();
  });
});

describe('pipelining on one connection', () => {
  test('many calls in flight each get their own reply, matched by serial', async () => {
    const c = await openRaw(vg.sock);
    for (let s = 2; s < 202; s++) c.call(s % 2 ? 16 : 212, s, s % 2 ? dom : (w) => (dom(w), w.u32(0)));
    const r = await c.waitReplies(202, 10000);
    const serials = r
      .slice(2)
      .map((x) => x.header.serial)
      .sort((a, b) => a - b);
    expect(serials).toEqual(Array.from({ length: 200 }, (_, i) => i + 2));
    for (const x of r.slice(2)) {
      expect(x.header.status).toBe(0);
      expect(x.header.proc).toBe(x.header.serial % 2 ? 16 : 212);
    }
    c.end();
  });
});
