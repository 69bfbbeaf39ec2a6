// SPDX-License-Identifier: Apache-2.0
// The front end's HelperClient pairs each request with its answer op from the IPC op table. DOMAIN_SET_TENANT was
// missing from the client's own hand-written pairing; here it goes through a real helper over its unix socket and
// comes back as the moved VM. Against a scripted helper, an answer carrying another op's number (DOMAIN_CONTROL_ANS
// for a DOMAIN_SET_TENANT request) is refused: the client drops the connection instead of resolving the call with it.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FrameDecoder } from '../../../src/common/framing';
import { type Actor, type AnswerOp, type DomainSummary, IPC_VERSION, IpcLimits, Op, decodeRequest, encodeAnswer } from '../../../src/ipc/program';
import { runHelper } from '../../../src/privileged/helper';
import { HelperClient } from '../../../src/unprivileged/helper-client';
import { dx } from '../../helpers/domain-def';

const XML = "<domain type='test'><name>mover</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>";
let seq = 0;
const actor = (tenant: string): Actor => ({ user: 'root', tenant, requestId: `pairing-${process.pid}-${++seq}` });

describe('HelperClient request/answer pairing', () => {
  let dir: string;
  const cleanups: (() => Promise<void> | void)[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pairing-'));
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const client = (socketPath: string, logs: string[]): HelperClient => {
    const c = new HelperClient({ socketPath, watch: false, reconnectMinMs: 60_000, reconnectMaxMs: 60_000, log: (m) => logs.push(m) });
    cleanups.push(() => c.close());
    c.start();
    return c;
  };

  test('DOMAIN_SET_TENANT through a real helper answers with the moved VM', async () => {
    const socket = path.join(dir, 'helper.sock');
    const stop = await runHelper({
      socket,
      stateDir: path.join(dir, 'lib'),
      runtimeDir: path.join(dir, 'run'),
      allowUids: [process.getuid?.() ?? 0],
      socketMode: 0o600,
      socketGroup: null,
      driver: 'test',
      sandbox: false,
      journalMaxBytes: 0,
      journal: path.join(dir, 'lib', 'helper-journal.log'),
    });
    cleanups.push(stop);
    const logs: string[] = [];
    const c = client(socket, logs);
    await c.waitReady(5000);
    const defined = await c.act(Op.DOMAIN_WRITE_REQ, 'define', { actor: actor('acme'), def: dx(XML) });
    expect(defined.tenant).toBe('acme');
    const moved: DomainSummary = await c.act(Op.DOMAIN_WRITE_REQ, 'setTenant', { actor: actor(''), uuid: defined.uuid, tenant: 'globex' });
    expect(moved).toEqual({ ...defined, action: 'setTenant', tenant: 'globex' });
    const listed = await c.act(Op.DOMAIN_READ_REQ, 'list', {});
    expect(listed.domains.find((d) => d.name === 'mover')?.tenant).toBe('globex');
    expect(logs.filter((l) => l.includes('unknown request'))).toEqual([]);
    expect(c.ready).toBe(true);
  });

  // A scripted helper: answers HELLO and EVENTS_SUBSCRIBE properly, and DOMAIN_WRITE with `answerOp` and `action`.
  async function scripted(answerOp: AnswerOp, action: string): Promise<string> {
    const socket = path.join(dir, 'scripted.sock');
    const summary: DomainSummary = { name: 'mover', uuid: Buffer.alloc(16, 7), id: -1, state: 5, reason: 0, persistent: true, tenant: 'globex' };
    const server = net.createServer((sock) => {
      const dec = new FrameDecoder({ min: IpcLimits.FRAME_MIN, max: IpcLimits.REQUEST_MAX });
      sock.on('error', () => sock.destroy());
      sock.on('data', (chunk: Buffer) => {
        for (const f of dec.push(chunk)) {
          const req = decodeRequest(f);
          if (req.op === Op.HELLO_REQ) sock.write(encodeAnswer(Op.HELLO_ANS, req.id, { version: IPC_VERSION, driver: 'test' }));
          else if (req.op === Op.EVENTS_SUBSCRIBE_REQ) sock.write(encodeAnswer(Op.EVENTS_SUBSCRIBE_ANS, req.id, { event: null, synced: true }));
          else if (req.op === Op.DOMAIN_WRITE_REQ) sock.write(encodeAnswer(answerOp, req.id, { ...summary, action } as never));
        }
      });
    });
    await new Promise<void>((r) => server.listen(socket, r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    return socket;
  }

  const setTenant = (c: HelperClient) => c.call(Op.DOMAIN_WRITE_REQ, { action: 'setTenant', actor: actor(''), uuid: Buffer.alloc(16, 7), tenant: 'globex' });

  test('the matching answer (DOMAIN_WRITE_ANS, action setTenant) resolves the call', async () => {
    const logs: string[] = [];
    const c = client(await scripted(Op.DOMAIN_WRITE_ANS, 'setTenant'), logs);
    await c.waitReady(5000);
    await expect(setTenant(c)).resolves.toMatchObject({ name: 'mover', tenant: 'globex' });
  });

  test.each([
    ["another action's answer of the same op (control: same body shape)", Op.DOMAIN_WRITE_ANS, 'control'],
    ["another op's answer (DOMAIN_READ lookup: same body shape)", Op.DOMAIN_READ_ANS, 'lookup'],
  ] as [string, AnswerOp, string][])('%s is refused and the connection dropped', async (_what, op, action) => {
    const logs: string[] = [];
    const c = client(await scripted(op, action), logs);
    await c.waitReady(5000);
    await expect(setTenant(c)).rejects.toMatchObject({ code: 'VG_ERR_HELPER_UNAVAILABLE' });
    expect(logs).toContain(`helper answered unknown request 3 op ${op}`);
  });
});
