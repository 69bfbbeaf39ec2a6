// SPDX-License-Identifier: Apache-2.0
// VirtgateClient against a scripted fake daemon on a unix socket: open sequence, typed calls, events, close.
import * as net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder } from '../../../src/common/framing';
import { Limits } from '../../../src/protocol/constants';
import { type Header, decodeHeader } from '../../../src/protocol/header';
import { decodeBody, encodeErrorReply, encodeEvent, encodeReply } from '../../../src/protocol/messages';
import { type ProcDef, P, lookupProc } from '../../../src/protocol/procs/remote';
import { remoteError } from '../../../src/protocol/types';
import { VirtgateClient } from '../../../src/client/client';
import type { LifecycleEvent } from '../../../src/client/client';

const DOM = { name: 'test', uuid: Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex'), id: 1 };

type Answer = (args: unknown) => unknown;

// Answers each call from `answers` (by proc); a missing entry gets libvirtd's "unknown procedure" error.
async function fakeDaemon(answers: Record<number, Answer>) {
  const path = join(mkdtempSync(join(tmpdir(), 'vg-cli-')), 's');
  const log: { header: Header; args: unknown }[] = [];
  const peers: net.Socket[] = [];
  const server = net.createServer((sock) => {
    peers.push(sock);
    const frames = new FrameDecoder({ min: Limits.FRAME_MIN, max: Limits.MESSAGE_MAX });
    sock.on('data', (c) => {
      for (const frame of frames.push(c)) {
        const { header, body } = decodeHeader(frame);
        const def = lookupProc(header.proc) as ProcDef;
        const args = decodeBody(def.args, body, 'args');
        log.push({ header, args });
        const answer = answers[header.proc];
        if (!answer) sock.write(encodeErrorReply(header, remoteError(39, 7, `unknown procedure: ${header.proc}`)));
        else sock.write(encodeReply(def, header.serial, answer(args)));
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    uri: `test+unix:///default?socket=${path}`,
    log,
    push: (frame: Buffer) => peers.forEach((p) => p.write(frame)),
    stop: () => new Promise((r) => (peers.forEach((p) => p.destroy()), server.close(r))),
  };
}

const OPEN: Record<number, Answer> = {
  [P.AUTH_LIST.proc]: () => ({ types: [0] }),
  [P.CONNECT_SUPPORTS_FEATURE.proc]: () => ({ supported: 1 }),
  [P.CONNECT_OPEN.proc]: () => undefined,
  [P.CONNECT_CLOSE.proc]: () => undefined,
};

describe('VirtgateClient', () => {
  test('open sequence matches virsh (66, 60/10, 1, 60/14, 60/15) and close sends CONNECT_CLOSE', async () => {
    const d = await fakeDaemon(OPEN);
    const c = await VirtgateClient.connect(`${d.uri}&foo=bar`, { readonly: true });
    expect(c.features).toEqual({ keepalive: true, eventCallback: true, closeCallback: true });
    await c.close();
    expect(d.log.map((l) => [l.header.serial, l.header.proc, l.args])).toEqual([
      [0, 66, undefined],
      [1, 60, { feature: 10 }],
      [2, 1, { name: 'test:///default?foo=bar', flags: 1 }],
      [3, 60, { feature: 14 }],
      [4, 60, { feature: 15 }],
      [5, 2, undefined],
    ]);
    expect(c.closed).toBe(true);
    await d.stop();
  });

  test('typed calls decode their replies; create refreshes the domain by UUID', async () => {
    const d = await fakeDaemon({
      ...OPEN,
      [P.DOMAIN_LOOKUP_BY_NAME.proc]: () => ({ dom: { ...DOM, id: -1 } }),
      [P.DOMAIN_CREATE.proc]: () => undefined,
      [P.DOMAIN_LOOKUP_BY_UUID.proc]: () => ({ dom: { ...DOM, id: 5 } }),
      [P.DOMAIN_GET_STATE.proc]: () => ({ state: 1, reason: 1 }),
      [P.DOMAIN_IS_ACTIVE.proc]: () => ({ active: 1 }),
      [P.CONNECT_GET_VERSION.proc]: () => ({ hvVer: 2n }),
      [P.DOMAIN_SET_MEMORY_FLAGS.proc]: () => undefined,
      [P.DOMAIN_UNDEFINE.proc]: () => undefined,
    });
    const c = await VirtgateClient.connect(d.uri);
    const dom = await c.lookupByName('test');
    expect(dom.id).toBe(-1);
    expect(await c.create(dom)).toMatchObject({ name: 'test', id: 5 });
    expect(await c.getState(dom)).toEqual({ state: 1, reason: 1 });
    expect(await c.isActive(dom)).toBe(true);
    expect(await c.getVersion()).toBe(2n);
    await c.setMemory(dom, 1048576, 1);
    expect(d.log.at(-1)!.args).toEqual({ dom, memory: 1048576n, flags: 1 });
    // 231 is "unknown procedure" here: undefine falls back to 35.
    await c.undefine(dom);
    expect(d.log.slice(-2).map((l) => l.header.proc)).toEqual([231, 35]);
    await expect(c.getHostname()).rejects.toMatchObject({ code: 'VG_ERR_CLIENT_REMOTE', message: 'unknown procedure: 59' });
    await c.close();
    await d.stop();
  });

  test('lifecycle events reach the emitter and the async iterator', async () => {
    const d = await fakeDaemon({ ...OPEN, [P.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.proc]: () => ({ callbackID: 9 }) });
    const c = await VirtgateClient.connect(d.uri);
    expect(await c.registerLifecycleEvents()).toBe(9);
    expect(d.log.at(-1)!.args).toEqual({ eventID: 0, dom: null });
    const emitted: LifecycleEvent[] = [];
    c.on('lifecycle', (e: LifecycleEvent) => emitted.push(e));
    const it = c.events();
    d.push(encodeEvent(P.DOMAIN_EVENT_CALLBACK_LIFECYCLE, { callbackID: 9, dom: DOM, event: 3, detail: 0 }));
    d.push(encodeEvent(P.DOMAIN_EVENT_LIFECYCLE, { dom: DOM, event: 4, detail: 0 }));
    expect((await it.next()).value).toEqual({ callbackID: 9, dom: DOM, event: 3, detail: 0 });
    expect((await it.next()).value).toEqual({ callbackID: -1, dom: DOM, event: 4, detail: 0 });
    expect(emitted).toHaveLength(2);
    // The iterator ends when the connection goes away.
    const end = it.next();
    await d.stop();
    expect(await end).toEqual({ value: undefined, done: true });
  });

  test('an AUTH_LIST offering only SASL fails the connect', async () => {
    const d = await fakeDaemon({ ...OPEN, [P.AUTH_LIST.proc]: () => ({ types: [1] }) });
    await expect(VirtgateClient.connect(d.uri)).rejects.toMatchObject({ code: 'VG_ERR_CLIENT_REMOTE', virCode: 94 });
    await d.stop();
  });

  test('a CONNECT_OPEN error is the connect error', async () => {
    const d = await fakeDaemon({ [P.AUTH_LIST.proc]: () => ({ types: [0] }), [P.CONNECT_SUPPORTS_FEATURE.proc]: () => ({ supported: 0 }) });
    await expect(VirtgateClient.connect(d.uri)).rejects.toThrow('unknown procedure: 1');
    await d.stop();
  });

  test('connecting to a missing socket fails with VG_ERR_CLIENT_CLOSED', async () => {
    await expect(VirtgateClient.connect('test+unix:///default?socket=/nonexistent/vg.sock')).rejects.toMatchObject({
      code: 'VG_ERR_CLIENT_CLOSED',
      message: expect.stringContaining('/nonexistent/vg.sock'),
    });
  });
});
