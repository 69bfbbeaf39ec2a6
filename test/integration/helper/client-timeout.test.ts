// SPDX-License-Identifier: Apache-2.0
// HelperClient timeouts against a scripted helper that answers HELLO and the subscription but sits on one request:
// the call fails with VG_ERR_HELPER_TIMEOUT, other calls are unaffected, the late answer is dropped (no protocol
// error, the connection stays), and the abandoned call counts against maxInFlight until its answer comes.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FrameDecoder } from '../../../src/common/framing';
import { IPC_VERSION, IpcLimits, Op, decodeRequest, encodeAnswer } from '../../../src/ipc/program';
import { HelperClient } from '../../../src/unprivileged/helper-client';

let dir: string;
let server: net.Server;
const held: { sock: net.Socket; id: number }[] = [];

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-timeout-'));
  held.length = 0;
  server = net.createServer((sock) => {
    const dec = new FrameDecoder({ min: IpcLimits.FRAME_MIN, max: IpcLimits.REQUEST_MAX });
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: Buffer) => {
      for (const f of dec.push(chunk)) {
        const req = decodeRequest(f);
        if (req.op === Op.HELLO_REQ) sock.write(encodeAnswer(Op.HELLO_ANS, req.id, { version: IPC_VERSION, driver: 'test' }));
        else if (req.op === Op.EVENTS_SUBSCRIBE_REQ) sock.write(encodeAnswer(Op.EVENTS_SUBSCRIBE_ANS, req.id, { event: null, synced: true }));
        else if (req.op === Op.DOMAIN_READ_REQ)
          held.push({ sock, id: req.id }); // sits on it
        else if (req.op === Op.NODE_FACTS_REQ) sock.destroy(); // not used
      }
    });
  });
  await new Promise<void>((r) => server.listen(path.join(dir, 'h.sock'), r));
});
afterEach(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an unanswered call times out with a clear error; its late answer is dropped and the connection stays', async () => {
  const logs: string[] = [];
  const c = new HelperClient({ socketPath: path.join(dir, 'h.sock'), watch: false, readTimeoutMs: 150, maxInFlight: 2, log: (l) => logs.push(l) });
  c.start();
  await c.waitReady(5000);
  const t0 = Date.now();
  await expect(c.act(Op.DOMAIN_READ_REQ, 'list', {})).rejects.toMatchObject({
    code: 'VG_ERR_HELPER_TIMEOUT',
    message: 'internal error: hypervisor helper did not answer DOMAIN_READ_REQ.list in time; its outcome is unknown',
  });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  expect(c.inFlight).toBe(1); // the helper still has it
  // Now the helper answers, late: dropped quietly, the connection is not torn down as for an unknown answer.
  const { sock, id } = held[0];
  sock.write(encodeAnswer(Op.DOMAIN_READ_ANS, id, { action: 'list', domains: [] }));
  await new Promise((r) => setTimeout(r, 50));
  expect(c.ready).toBe(true);
  expect(c.inFlight).toBe(0);
  expect(logs.some((l) => l.includes('unknown request'))).toBe(false);
  expect(logs.some((l) => /did not answer DOMAIN_READ_REQ.list \(request \d+\) within 150 ms/.test(l))).toBe(true);
  c.close();
});

test('abandoned calls still count against maxInFlight (the helper is still busy with them)', async () => {
  const c = new HelperClient({ socketPath: path.join(dir, 'h.sock'), watch: false, readTimeoutMs: 50, maxInFlight: 2 });
  c.start();
  await c.waitReady(5000);
  await expect(c.act(Op.DOMAIN_READ_REQ, 'list', {})).rejects.toMatchObject({ code: 'VG_ERR_HELPER_TIMEOUT' });
  await expect(c.act(Op.DOMAIN_READ_REQ, 'list', {})).rejects.toMatchObject({ code: 'VG_ERR_HELPER_TIMEOUT' });
  await expect(c.act(Op.DOMAIN_READ_REQ, 'list', {})).rejects.toMatchObject({ code: 'VG_ERR_HELPER_BUSY' });
  c.close();
});
