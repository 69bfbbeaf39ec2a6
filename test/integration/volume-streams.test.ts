// SPDX-License-Identifier: Apache-2.0
// Volume upload (208) and download (209) through a real daemon, on the raw wire: a sparse round trip of a few MiB,
// and what a hostile or confused client gets: packets for an unknown serial, data after the finish, a stream that
// stalls, more bytes than declared, a huge hole, a hole on a non-sparse stream, a download on the read-only socket,
// and a client that floods an upload without reading (the front end's RSS stays bounded, other clients answered).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { frontEndPid } from '../../bench/rows/abuse';
import { XdrWriter } from '../../src/common/xdr';
import { MessageStatus, MessageType } from '../../src/protocol/constants';
import { encodeMessage } from '../../src/protocol/header';
import { encodeCall } from '../../src/protocol/messages';
import { PS } from '../../src/protocol/procs/storage';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type RawClient, type RawReply, openRaw } from '../helpers/raw';

const UPLOAD = 208;
const DOWNLOAD = 209;
const MiB = 1024 * 1024;
const POOL = { name: 'default-pool', uuid: Buffer.from('dfe224cb28fb8dd0c4b264eb3f0f4566', 'hex') };
const volRef = (name: string) => ({ pool: 'default-pool', name, key: `/default-pool/${name}` });

const packet = (proc: number, serial: number, status: number, data: Buffer = Buffer.alloc(0), type: number = MessageType.STREAM) => {
  const head = encodeMessage({ prog: 0x20008086, vers: 1, proc, type, serial, status });
  head.writeUInt32BE(head.length + data.length, 0);
  return Buffer.concat([head, data]);
};
const holePacket = (serial: number, length: bigint) =>
  packet(UPLOAD, serial, MessageStatus.CONTINUE, new XdrWriter().i64(length).u32(0).finish(), MessageType.STREAM_HOLE);
const of = (c: RawClient, serial: number) => c.replies.filter((r) => r.header.serial === serial);
async function until(c: RawClient, done: () => boolean, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && !c.closed && Date.now() < deadline) await c.waitReplies(c.replies.length + 1, 100);
}
const streamEnd = (c: RawClient, serial: number): RawReply | undefined =>
  of(c, serial).find((r) => r.header.type === MessageType.STREAM && r.header.status !== MessageStatus.CONTINUE);

let vg: RunningDaemon;
let serial = 10;
beforeAll(async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-volstream-'));
  fs.mkdirSync(path.join(home, 'etc'));
  fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), 'streamStallTimeout = 1\n');
  vg = await startDaemon({ home });
}, 60000);
afterAll(async () => vg?.stop());

async function createVol(c: RawClient, name: string, bytes: number): Promise<void> {
  const s = serial++;
  const xml = `<volume><name>${name}</name><capacity>${bytes}</capacity><allocation>0</allocation></volume>`;
  c.write(encodeCall(PS.STORAGE_VOL_CREATE_XML, s, { pool: POOL, xml, flags: 0 }));
  await until(c, () => of(c, s).length > 0);
  expect(of(c, s)[0].header.status).toBe(MessageStatus.OK);
}

// Opens an upload; resolves with its serial once the reply came (the stream is open).
async function openUpload(c: RawClient, name: string, opts: { offset?: bigint; length?: bigint; flags?: number } = {}): Promise<number> {
  const s = serial++;
  c.write(encodeCall(PS.STORAGE_VOL_UPLOAD, s, { vol: volRef(name), offset: opts.offset ?? 0n, length: opts.length ?? 0n, flags: opts.flags ?? 0 }));
  await until(c, () => of(c, s).length > 0);
  const r = of(c, s)[0];
  expect(r.header).toMatchObject({ type: MessageType.REPLY, status: MessageStatus.OK });
  return s;
}

// The volume's bytes (holes as zeroes) and the holes the server sent, by a sparse (or plain) download.
async function download(c: RawClient, name: string, sparse: boolean): Promise<{ bytes: Buffer; holes: number }> {
  const s = serial++;
  c.write(encodeCall(PS.STORAGE_VOL_DOWNLOAD, s, { vol: volRef(name), offset: 0n, length: 0n, flags: sparse ? 1 : 0 }));
  await until(c, () => of(c, s).some((r) => r.header.type === MessageType.STREAM && r.body.length === 0), 30000);
  const parts: Buffer[] = [];
  let holes = 0;
  for (const r of of(c, s).slice(1)) {
    if (r.header.type === MessageType.STREAM_HOLE) {
      holes++;
      parts.push(Buffer.alloc(Number(r.body.readBigInt64BE(0))));
    } else parts.push(r.body);
  }
  const before = c.replies.length;
  c.write(packet(DOWNLOAD, s, MessageStatus.OK)); // finish, confirmed with OK
  await c.waitReplies(before + 1);
  return { bytes: Buffer.concat(parts), holes };
}

// 3 MiB: random data, a 1 MiB hole, a little data, a hole to the end.
function sample(): { content: Buffer; send: (c: RawClient, s: number, sparse: boolean) => void } {
  const content = Buffer.alloc(3 * MiB);
  const a = Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 7919) % 251));
  a.copy(content, 0);
  const b = Buffer.alloc(5000, 0x5a);
  b.copy(content, 700_000 + MiB);
  const send = (c: RawClient, s: number, sparse: boolean): void => {
    for (let i = 0; i < a.length; i += 262_120) c.write(packet(UPLOAD, s, MessageStatus.CONTINUE, a.subarray(i, i + 262_120)));
    if (sparse) c.write(holePacket(s, BigInt(MiB)));
    else for (let i = 0; i < MiB; i += 262_144) c.write(packet(UPLOAD, s, MessageStatus.CONTINUE, Buffer.alloc(262_144)));
    c.write(packet(UPLOAD, s, MessageStatus.CONTINUE, b));
    const rest = 3 * MiB - 700_000 - MiB - 5000;
    if (sparse) c.write(holePacket(s, BigInt(rest)));
    else c.write(packet(UPLOAD, s, MessageStatus.CONTINUE, Buffer.alloc(rest)));
  };
  return { content, send };
}

test('a sparse upload with holes and a sparse download round-trip byte for byte; a plain download equals it', async () => {
  const c = await openRaw(vg.sock);
  await createVol(c, 'rt', 3 * MiB);
  const { content, send } = sample();
  const s = await openUpload(c, 'rt', { flags: 1 });
  send(c, s, true);
  c.write(packet(UPLOAD, s, MessageStatus.OK));
  await until(c, () => streamEnd(c, s) !== undefined);
  expect(streamEnd(c, s)!.header.status).toBe(MessageStatus.OK);
  const sparse = await download(c, 'rt', true);
  expect(sparse.bytes.equals(content)).toBe(true);
  expect(sparse.holes).toBeGreaterThanOrEqual(2);
  const plain = await download(c, 'rt', false);
  expect(plain.bytes.equals(content)).toBe(true);
  expect(plain.holes).toBe(0);
  // A plain (non-sparse) upload of the same bytes gives the same volume.
  await createVol(c, 'rt2', 3 * MiB);
  const s2 = await openUpload(c, 'rt2');
  send(c, s2, false);
  c.write(packet(UPLOAD, s2, MessageStatus.OK));
  await until(c, () => streamEnd(c, s2) !== undefined);
  expect((await download(c, 'rt2', true)).bytes.equals(content)).toBe(true);
  // The write is audited: the call (intent, outcome) and the stream's end with its byte count.
  const audit = fs.readFileSync(path.join(vg.home, 'log', 'audit.log'), 'utf8');
  const rid = (/"requestId":"([^"]+)"[^\n]*"procedure":"storageVolUpload"[^\n]*"default-pool\/rt"/.exec(audit) ?? [])[1];
  expect(rid).toBeDefined();
  expect(audit).toContain(`"stream-end","detail":{"requestId":"${rid}"`);
  expect(audit).toMatch(new RegExp(`"requestId":"${rid}"[^\\n]*"object":"default-pool/rt","objectTenant":"","offset":"0","bytes":${3 * MiB},"end":"finished"`));
  c.end();
});

test('more than declared, a huge hole, a hole on a plain stream: a clear stream error, the volume keeps its bytes', async () => {
  const c = await openRaw(vg.sock);
  await createVol(c, 'cap', MiB);
  const s0 = await openUpload(c, 'cap');
  c.write(packet(UPLOAD, s0, MessageStatus.CONTINUE, Buffer.alloc(1000, 0x11)));
  c.write(packet(UPLOAD, s0, MessageStatus.OK));
  await until(c, () => streamEnd(c, s0) !== undefined);
  const before = (await download(c, 'cap', false)).bytes;
  const cases: [string, number, (s: number) => void, string][] = [
    ['more than declared', 0, (s) => c.write(packet(UPLOAD, s, MessageStatus.CONTINUE, Buffer.alloc(1500, 0x22))), 'the upload takes at most 1000 bytes'],
    ['a huge hole', 1, (s) => c.write(holePacket(s, (1n << 63n) - 1n)), 'Too many bytes to write to stream'],
    ['a hole on a plain stream', 0, (s) => c.write(holePacket(s, 10n)), 'stream error: Unexpected stream hole'],
  ];
  for (const [what, flags, act, message] of cases) {
    const s = await openUpload(c, 'cap', { offset: 10n, length: what === 'more than declared' ? 1000n : 0n, flags });
    act(s);
    c.write(packet(UPLOAD, s, MessageStatus.OK)); // after the error: dropped
    await until(c, () => streamEnd(c, s) !== undefined);
    const end = streamEnd(c, s)!;
    expect([what, end.header.status]).toEqual([what, MessageStatus.ERROR]);
    expect(end.error?.message).toContain(message);
    expect((await download(c, 'cap', false)).bytes.equals(before)).toBe(true);
  }
  // A range past the volume's end is refused at the call.
  const s = serial++;
  c.write(encodeCall(PS.STORAGE_VOL_UPLOAD, s, { vol: volRef('cap'), offset: 10n, length: BigInt(MiB), flags: 0 }));
  await until(c, () => of(c, s).length > 0);
  expect(of(c, s)[0].error?.message).toBe(`invalid argument: upload of ${MiB} bytes at offset 10 extends past the end of volume 'cap' (${MiB} bytes)`);
  expect(c.closed).toBe(false);
  c.end();
});

test('packets for an unknown serial and data after the finish are dropped; the committed bytes are what came before', async () => {
  const c = await openRaw(vg.sock);
  await createVol(c, 'late', 64 * 1024);
  c.write(packet(UPLOAD, 4242, MessageStatus.CONTINUE, Buffer.alloc(1000, 1))); // never opened
  c.write(holePacket(4243, 1n << 40n));
  const s = await openUpload(c, 'late');
  c.write(packet(UPLOAD, s, MessageStatus.CONTINUE, Buffer.alloc(100, 0x33)));
  c.write(packet(UPLOAD, s, MessageStatus.OK));
  c.write(packet(UPLOAD, s, MessageStatus.CONTINUE, Buffer.alloc(100, 0x44))); // after the finish
  c.write(packet(UPLOAD, s, MessageStatus.OK));
  await until(c, () => streamEnd(c, s) !== undefined);
  await new Promise((r) => setTimeout(r, 200));
  expect(
    of(c, s)
      .filter((r) => r.header.type === MessageType.STREAM)
      .map((r) => r.header.status),
  ).toEqual([MessageStatus.OK]);
  expect(c.replies.filter((r) => r.header.serial === 4242 || r.header.serial === 4243)).toEqual([]);
  const got = (await download(c, 'late', false)).bytes;
  expect(got.subarray(0, 100).every((x) => x === 0x33)).toBe(true);
  expect(got.subarray(100).every((x) => x === 0)).toBe(true);
  expect(c.closed).toBe(false);
  c.end();
});

test('a stream that stalls fails after streamStallTimeout; nothing is committed and the volume takes a new upload', async () => {
  const c = await openRaw(vg.sock);
  await createVol(c, 'stall', 64 * 1024);
  const s = await openUpload(c, 'stall');
  c.write(packet(UPLOAD, s, MessageStatus.CONTINUE, Buffer.alloc(100, 0x55)));
  const t0 = Date.now();
  await until(c, () => streamEnd(c, s) !== undefined, 5000);
  const end = streamEnd(c, s)!;
  expect(end.error?.message).toBe('stream error: no data from the client for 1 s: the upload is abandoned');
  expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  expect((await download(c, 'stall', false)).bytes.equals(Buffer.alloc(64 * 1024))).toBe(true);
  // The helper's upload was ended too: a new one is accepted (else "an upload in progress").
  const s2 = await openUpload(c, 'stall');
  c.write(packet(UPLOAD, s2, MessageStatus.CONTINUE, Buffer.alloc(10, 0x66)));
  c.write(packet(UPLOAD, s2, MessageStatus.OK));
  await until(c, () => streamEnd(c, s2) !== undefined);
  expect(streamEnd(c, s2)!.header.status).toBe(MessageStatus.OK);
  // No staging file is left behind.
  expect(fs.readdirSync(path.join(vg.home, 'lib', 'volumes')).filter((n) => n.includes('.upload-'))).toEqual([]);
  c.end();
});

test('a download on the read-only socket is refused, as libvirt refuses it', async () => {
  const c = await openRaw(vg.sockRo);
  const s = serial++;
  c.write(encodeCall(PS.STORAGE_VOL_DOWNLOAD, s, { vol: volRef('rt'), offset: 0n, length: 0n, flags: 0 }));
  await until(c, () => of(c, s).length > 0);
  expect(of(c, s)[0].error?.message).toMatch(/read only/i);
  c.end();
});

const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

test('a client that floods an upload without reading: the front end holds a bounded amount; other clients are answered', async () => {
  const front = frontEndPid(vg.home);
  const c = await openRaw(vg.sock);
  await createVol(c, 'flood', 512 * MiB);
  const s = await openUpload(c, 'flood');
  const other = await openRaw(vg.sock);
  const base = rssKiB(front);
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(front))), 20);
  // The flood: 256 MiB of upload packets written as fast as the socket takes them; the replies are never read.
  c.sock.pause();
  const chunk = packet(UPLOAD, s, MessageStatus.CONTINUE, Buffer.alloc(262_120, 0x77));
  const total = 1024;
  let sent = 0;
  const pump = new Promise<void>((resolve) => {
    const more = (): void => {
      while (sent < total) {
        sent++;
        if (!c.sock.write(chunk)) return void c.sock.once('drain', more);
      }
      resolve();
    };
    more();
  });
  // Meanwhile another client's calls are answered promptly.
  const latencies: number[] = [];
  let done = false;
  void pump.then(() => (done = true));
  while (!done) {
    const t = Date.now();
    const sn = serial++;
    other.call(3, sn); // CONNECT_GET_TYPE
    await until(other, () => of(other, sn).length > 0);
    latencies.push(Date.now() - t);
    await new Promise((r) => setTimeout(r, 20));
  }
  c.sock.resume();
  c.write(packet(UPLOAD, s, MessageStatus.OK));
  await until(c, () => streamEnd(c, s) !== undefined, 60000);
  clearInterval(sampler);
  expect(streamEnd(c, s)!.header.status).toBe(MessageStatus.OK);
  latencies.sort((x, y) => x - y);
  const max = latencies[latencies.length - 1];
  process.stdout.write(
    `volume-streams flood: ${((total * 262_120) / MiB).toFixed(0)} MiB pushed; front end RSS ${(base / 1024).toFixed(1)} -> peak ${(peak / 1024).toFixed(1)} MiB; ` +
      `other client: ${latencies.length} calls, median ${latencies[latencies.length >> 1]} ms, max ${max} ms\n`,
  );
  expect(peak - base).toBeLessThan(64 * 1024); // KiB: the per-stream (1 MiB) and per-connection (4 MiB) marks plus reads in flight
  expect(max).toBeLessThan(1000);
  c.end();
  other.end();
}, 120000);
