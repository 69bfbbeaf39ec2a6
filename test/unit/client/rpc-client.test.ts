// SPDX-License-Identifier: Apache-2.0
// RpcClient against an in-test fake server over a real unix socket: pipelining, errors, keepalive, events, closing.
import * as net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder } from '../../../src/common/framing';
import { KeepaliveProc, Limits, MessageStatus, MessageType, Program } from '../../../src/protocol/constants';
import { type Header, decodeHeader, encodeMessage } from '../../../src/protocol/header';
import { encodeErrorReply, encodeEvent, encodeKeepalive, encodeReply } from '../../../src/protocol/messages';
import { P } from '../../../src/protocol/procs/remote';
import { remoteError } from '../../../src/protocol/types';
import { RemoteCallError, RpcClient, type RpcEvent, isNoSupport } from '../../../src/client/rpc-client';

const DOM = { name: 'test', uuid: Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex'), id: 1 };

interface Fake {
  client: RpcClient;
  peer: net.Socket; // server side of the connection
  calls: { header: Header; frame: Buffer }[];
  onFrame(fn: (h: Header, frame: Buffer) => void): void;
  closed: Promise<Error | null>;
  done(): Promise<void>;
}

// A unix socket pair: the client side feeds RpcClient, the server side records frames for the test to answer.
async function fake(timeoutMs?: number): Promise<Fake> {
  const dir = mkdtempSync(join(tmpdir(), 'vg-rpc-'));
  const path = join(dir, 's');
  let handler: (h: Header, frame: Buffer) => void = () => undefined;
  const calls: Fake['calls'] = [];
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const sock = net.connect(path);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const peer = await accepted;
  const frames = new FrameDecoder({ min: Limits.FRAME_MIN, max: Limits.MESSAGE_MAX });
  peer.on('data', (c) => {
    for (const frame of frames.push(c)) {
      const { header } = decodeHeader(frame);
      calls.push({ header, frame });
      handler(header, frame);
    }
  });
  peer.on('error', () => undefined);
  const client = new RpcClient({ onWrite: (b) => sock.write(b), timeoutMs });
  sock.on('data', (c) => client.push(c));
  sock.on('end', () => client.end());
  sock.on('error', (e) => client.close(e));
  const closed = new Promise<Error | null>((r) => client.once('close', (e: Error | null) => (sock.destroy(), r(e))));
  return {
    client,
    peer,
    calls,
    onFrame: (fn) => (handler = fn),
    closed,
    done: async () => {
      client.close();
      sock.destroy();
      peer.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const waitFor = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error('condition not met');
};

describe('RpcClient', () => {
  let f: Fake;
  afterEach(async () => f && (await f.done()));

  test('serials 0,1,2,… and 100 pipelined calls answered out of order', async () => {
    f = await fake();
    const N = 100;
    const results = Array.from({ length: N }, (_, i) => f.client.call(P.DOMAIN_LOOKUP_BY_NAME, { name: `d${i}` }));
    await waitFor(() => f.calls.length === N);
    expect(f.calls.map((c) => c.header.serial)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(f.client.inFlight).toBe(N);
    // Reply in reverse order, all in one write, each carrying a domain named after its serial.
    const replies = [...f.calls]
      .reverse()
      .map(({ header }) => encodeReply(P.DOMAIN_LOOKUP_BY_NAME, header.serial, { dom: { ...DOM, name: `d${header.serial}`, id: header.serial } }));
    f.peer.write(Buffer.concat(replies));
    const got = await Promise.all(results);
    got.forEach((r, i) => expect(r.dom).toMatchObject({ name: `d${i}`, id: i }));
    expect(f.client.inFlight).toBe(0);
  });

  test('replies split into single bytes are reassembled', async () => {
    f = await fake();
    const p = f.client.call(P.CONNECT_GET_HOSTNAME, undefined);
    await waitFor(() => f.calls.length === 1);
    const reply = encodeReply(P.CONNECT_GET_HOSTNAME, 0, { hostname: 'vm' });
    for (const b of reply) f.peer.write(Buffer.from([b]));
    await expect(p).resolves.toEqual({ hostname: 'vm' });
  });

  test('an error reply rejects with VG_ERR_CLIENT_REMOTE carrying the libvirt fields', async () => {
    f = await fake();
    f.onFrame((h) => f.peer.write(encodeErrorReply(h, remoteError(42, 12, 'Domain not found'))));
    const err = (await f.client.call(P.DOMAIN_LOOKUP_BY_NAME, { name: 'nosuch' }).catch((e) => e)) as RemoteCallError;
    expect(err).toBeInstanceOf(RemoteCallError);
    expect(err.code).toBe('VG_ERR_CLIENT_REMOTE');
    expect(err.message).toBe('Domain not found');
    expect(err.virCode).toBe(42);
    expect(err.virDomain).toBe(12);
    expect(err.remote.level).toBe(2);
    expect(isNoSupport(err)).toBe(false);
    // The connection survives an error reply.
    f.onFrame((h) => f.peer.write(encodeReply(P.CONNECT_GET_HOSTNAME, h.serial, { hostname: 'vm' })));
    await expect(f.client.call(P.CONNECT_GET_HOSTNAME, undefined)).resolves.toEqual({ hostname: 'vm' });
  });

  test('"unknown procedure" and code 3 count as NO_SUPPORT', async () => {
    f = await fake();
    f.onFrame((h) =>
      f.peer.write(encodeErrorReply(h, h.serial === 0 ? remoteError(39, 7, 'unknown procedure: 426') : remoteError(3, 20, 'this function is not supported'))),
    );
    const a = await f.client.call(P.DOMAIN_GET_MESSAGES, { dom: DOM, flags: 0 }).catch((e) => e);
    const b = await f.client.call(P.DOMAIN_GET_MESSAGES, { dom: DOM, flags: 0 }).catch((e) => e);
    expect([isNoSupport(a), isNoSupport(b), isNoSupport(new Error('x'))]).toEqual([true, true, false]);
  });

  test('keepalive PING is answered with PONG; PONG is ignored', async () => {
    f = await fake();
    f.peer.write(encodeKeepalive(KeepaliveProc.PONG));
    f.peer.write(encodeKeepalive(KeepaliveProc.PING));
    await waitFor(() => f.calls.length === 1);
    expect(f.calls[0].header).toEqual({ prog: Program.KEEPALIVE, vers: 1, proc: KeepaliveProc.PONG, type: MessageType.MESSAGE, serial: 0, status: 0 });
    expect(f.calls[0].frame.length).toBe(28);
    expect(f.client.closed).toBe(false);
  });

  test('events (318 and legacy 107) are emitted decoded; unknown event procedures are skipped', async () => {
    f = await fake();
    const seen: RpcEvent[] = [];
    f.client.on('event', (e: RpcEvent) => seen.push(e));
    f.peer.write(encodeEvent(P.DOMAIN_EVENT_CALLBACK_LIFECYCLE, { callbackID: 7, dom: DOM, event: 3, detail: 0 }));
    f.peer.write(encodeMessage({ prog: Program.REMOTE, vers: 1, proc: 9999, type: MessageType.MESSAGE, serial: 1, status: 0 }));
    f.peer.write(encodeEvent(P.DOMAIN_EVENT_LIFECYCLE, { dom: DOM, event: 4, detail: 0 }));
    await waitFor(() => seen.length === 2);
    expect(seen[0]).toEqual({ proc: 318, name: 'domainEventCallbackLifecycle', body: { callbackID: 7, dom: DOM, event: 3, detail: 0 } });
    expect(seen[1]).toMatchObject({ proc: 107, body: { dom: DOM, event: 4, detail: 0 } });
  });

  test('close rejects every pending call with VG_ERR_CLIENT_CLOSED, and later calls too', async () => {
    f = await fake();
    const pending = [f.client.call(P.CONNECT_GET_HOSTNAME, undefined), f.client.call(P.CONNECT_GET_TYPE, undefined)];
    await waitFor(() => f.calls.length === 2);
    f.peer.end();
    for (const p of pending) await expect(p).rejects.toMatchObject({ code: 'VG_ERR_CLIENT_CLOSED' });
    expect(await f.closed).toBeNull();
    await expect(f.client.call(P.CONNECT_GET_TYPE, undefined)).rejects.toMatchObject({ code: 'VG_ERR_CLIENT_CLOSED' });
  });

  test('a reply with an unknown serial closes the connection', async () => {
    f = await fake();
    const p = f.client.call(P.CONNECT_GET_HOSTNAME, undefined);
    await waitFor(() => f.calls.length === 1);
    f.peer.write(encodeReply(P.CONNECT_GET_HOSTNAME, 77, { hostname: 'vm' }));
    const err = await p.catch((e) => e);
    expect(err.code).toBe('VG_ERR_CLIENT_CLOSED');
    expect(err.message).toMatch(/unknown serial 77/);
    expect(((await f.closed) as { code?: string } | null)?.code).toBe('VG_ERR_HEADER');
  });

  test('a reply whose proc does not match the call closes the connection', async () => {
    f = await fake();
    const p = f.client.call(P.CONNECT_GET_HOSTNAME, undefined);
    await waitFor(() => f.calls.length === 1);
    f.peer.write(encodeReply(P.CONNECT_GET_TYPE, 0, { type: 'TEST' }));
    await expect(p).rejects.toThrow(/carries proc 3, expected 59/);
  });

  test('an oversize length word closes with a clear error before allocating', async () => {
    f = await fake();
    const p = f.client.call(P.CONNECT_GET_HOSTNAME, undefined);
    await waitFor(() => f.calls.length === 1);
    f.peer.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await expect(p).rejects.toThrow('connection closed: frame length 4294967295 outside [28, 33554432]');
    expect(((await f.closed) as { code?: string } | null)?.code).toBe('VG_ERR_FRAME_LENGTH');
  });

  test('EOF inside a frame closes with a truncation error', async () => {
    f = await fake();
    const p = f.client.call(P.CONNECT_GET_HOSTNAME, undefined);
    await waitFor(() => f.calls.length === 1);
    f.peer.end(encodeReply(P.CONNECT_GET_HOSTNAME, 0, { hostname: 'vm' }).subarray(0, 30));
    await expect(p).rejects.toThrow(/connection ended inside a frame \(30 bytes buffered\)/);
  });

  test('a malformed reply body fails that call only', async () => {
    f = await fake();
    f.onFrame((h) => f.peer.write(encodeMessage({ ...h, type: MessageType.REPLY, status: MessageStatus.OK }, (w) => w.u32(1))));
    await expect(f.client.call(P.CONNECT_GET_HOSTNAME, undefined)).rejects.toMatchObject({ code: 'VG_ERR_XDR_DECODE' });
    expect(f.client.closed).toBe(false);
  });

  test('per-call timeout rejects with VG_ERR_CLIENT_TIMEOUT and a late reply is dropped quietly', async () => {
    f = await fake(50);
    const err = await f.client.call(P.CONNECT_GET_HOSTNAME, undefined).catch((e) => e);
    expect(err.code).toBe('VG_ERR_CLIENT_TIMEOUT');
    f.peer.write(encodeReply(P.CONNECT_GET_HOSTNAME, 0, { hostname: 'late' }));
    f.onFrame((h) => f.peer.write(encodeReply(P.CONNECT_GET_TYPE, h.serial, { type: 'TEST' })));
    await expect(f.client.call(P.CONNECT_GET_TYPE, undefined, { timeoutMs: 0 })).resolves.toEqual({ type: 'TEST' });
    expect(f.client.closed).toBe(false);
  });
});
