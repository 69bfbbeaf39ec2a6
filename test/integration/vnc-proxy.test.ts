// SPDX-License-Identifier: Apache-2.0
// The VNC proxy for remote users against a real QEMU (its VNC on a unix socket, started here), real TLS clients with
// certificates from src/pki, and the real Casbin policy: who gets the VM's framebuffer, who is refused before QEMU
// sees a byte, and every limit, as an attacker on the network would meet them.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { EventRecord, IntentRecord, OutcomeRecord, DurableRef } from '../../src/audit/trail';
import { resolveConfig } from '../../src/common/config';
import { CasbinAuthorizer, PolicySet } from '../../src/policy/engine';
import { MODEL_TEXT, composePolicy } from '../../src/policy/model';
import { initCa, issueClient, issueServer, revoke, writeCrl } from '../../src/pki/pki';
import { AuditHook } from '../../src/unprivileged/audit-hook';
import { type UpstreamRequest, VncProxy } from '../../src/unprivileged/vnc-proxy';
import { describeIf, tool } from '../helpers/skip';
import { ByteReader, type VncCreds, connect, updateRequest, vncOpen } from '../helpers/vnc-client';

const QEMU = '/usr/bin/qemu-system-x86_64';
const POLICY = `g, x509:admin, host-admin, *
g, x509:alice, owner, acme
g, x509:bob, owner, globex
g, x509:carol, viewer, acme
`;
const UUID_A = Buffer.from('6a1e7c2e5b3d4f0a9e8d7c6b5a493827', 'hex'); // acme's VM, backed by the QEMU below
const UUID_B = Buffer.from('0b1e7c2e5b3d4f0a9e8d7c6b5a493827', 'hex'); // a second VM (limits), same QEMU
const A = '6a1e7c2e-5b3d-4f0a-9e8d-7c6b5a493827';

class MemoryTrail {
  readonly intents: IntentRecord[] = [];
  readonly outcomes: OutcomeRecord[] = [];
  readonly events: EventRecord[] = [];
  readonly available = true;
  async intent(rec: IntentRecord): Promise<DurableRef> {
    this.intents.push(rec);
    return { seq: this.intents.length, hash: '0'.repeat(64) };
  }
  async outcome(rec: OutcomeRecord): Promise<void> {
    this.outcomes.push(rec);
  }
  async event(rec: EventRecord): Promise<void> {
    this.events.push(rec);
  }
}

// Two connected sockets (a unix socketpair stand-in) through a throwaway listener.
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const a = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  const b = await accepted;
  srv.close();
  return [a, b];
}

const waitFor = async (what: string, ok: () => boolean, ms = 5000): Promise<void> => {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describeIf([tool(QEMU, 'qemu-system-x86')], 'VNC proxy: VeNCrypt x509 in the front end, spliced to a real QEMU', () => {
  let dir: string;
  let qemu: ChildProcess;
  let vncSock: string;
  let creds: Record<string, VncCreds>;
  let proxy: VncProxy;
  let trail: MemoryTrail;
  let authorizer: CasbinAuthorizer;
  let port: number;
  const logs: string[] = [];
  const upstreams: string[] = []; // every openUpstream call: who asked
  let upstreamMode: 'qemu' | 'reject' | 'garbage' = 'qemu';
  const base = 20000 + Math.floor(Math.random() * 20000);

  const policy = async (text: string): Promise<PolicySet> => PolicySet.build(MODEL_TEXT, composePolicy(text, '', 'test').text, 'test');

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-vnc-'));
    vncSock = path.join(dir, 'vnc.sock');
    qemu = spawn(QEMU, ['-machine', 'q35', '-accel', 'tcg', '-S', '-display', 'none', '-vnc', `unix:${vncSock}`, '-nodefaults', '-device', 'VGA', '-m', '64'], {
      stdio: 'ignore',
    });
    const pki = path.join(dir, 'pki');
    const ca = path.join(pki, 'ca');
    initCa({ dir: ca, cn: 'vnc test CA' });
    issueServer({ dir: path.join(pki, 'server'), caDir: ca, hosts: ['localhost'], ips: ['127.0.0.1'] });
    const caPem = fs.readFileSync(path.join(ca, 'cacert.pem'));
    creds = { nocert: { ca: caPem } };
    for (const [name, o] of [
      ['admin', undefined],
      ['alice', 'acme'],
      ['bob', 'globex'],
      ['carol', 'acme'],
      ['mallory', 'evil'],
      ['alice2', 'acme'],
    ] as const) {
      issueClient({ dir: path.join(pki, name), caDir: ca, cn: name === 'alice2' ? 'alice' : name, o }); // alice2: alice's second certificate
      creds[name] = { ca: caPem, cert: fs.readFileSync(path.join(pki, name, 'clientcert.pem')), key: fs.readFileSync(path.join(pki, name, 'clientkey.pem')) };
    }
    // A certificate for CN=admin from another CA: the name alone proves nothing.
    initCa({ dir: path.join(dir, 'other-ca'), cn: 'vnc test CA' });
    issueClient({ dir: path.join(dir, 'stranger'), caDir: path.join(dir, 'other-ca'), cn: 'admin' });
    creds.stranger = {
      ca: caPem,
      cert: fs.readFileSync(path.join(dir, 'stranger', 'clientcert.pem')),
      key: fs.readFileSync(path.join(dir, 'stranger', 'clientkey.pem')),
    };

    const config = resolveConfig({
      home: dir,
      tlsCaFile: path.join(ca, 'cacert.pem'),
      tlsCertFile: path.join(pki, 'server', 'servercert.pem'),
      tlsKeyFile: path.join(pki, 'server', 'private', 'serverkey.pem'),
      tlsAllowedDnList: ['CN=admin', 'O=acme,CN=*', 'O=globex,CN=*'],
      vncListen: '127.0.0.1',
      vncPortMin: base,
      vncPortMax: base + 20,
      vncHandshakeTimeout: 2,
      vncMaxClientsPerVm: 3,
      vncMaxClients: 4,
    });
    trail = new MemoryTrail();
    authorizer = new CasbinAuthorizer(await policy(POLICY));
    proxy = new VncProxy({
      config,
      log: (m) => logs.push(m),
      authorizer,
      audit: new AuditHook(trail),
      record: (r) => trail.event(r),
      domain: (uuid) => (uuid.equals(UUID_A) ? { name: 'a1', tenant: 'acme' } : uuid.equals(UUID_B) ? { name: 'b1', tenant: 'acme' } : null),
      openUpstream: async (req: UpstreamRequest) => {
        upstreams.push(`${req.actor.user}@${req.actor.tenant}`);
        if (upstreamMode === 'reject') throw new Error('no descriptor channel');
        if (upstreamMode === 'garbage') {
          // A VNC server that wants a password: the proxy must not pass the client on to it.
          const [a, b] = await socketPair();
          b.write(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 2])]));
          return a;
        }
        // No helper here, so no helper request for the gate: the open's intent is then written after the fact.
        return new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(vncSock, () => resolve(s));
          s.once('error', reject);
        });
      },
      recheckMs: 200,
    });
    await waitFor('QEMU VNC socket', () => fs.existsSync(vncSock), 20000);
    port = (await proxy.listen(UUID_A))!.port;
  }, 60000);

  afterEach(() => {
    if (process.env.VNC_TEST_LOG) process.stdout.write(logs.splice(0).join('\n') + '\n');
  });

  afterAll(async () => {
    proxy?.close();
    qemu?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the listener sits in the configured range; portOf answers for that VM only', () => {
    expect(port).toBeGreaterThanOrEqual(base);
    expect(port).toBeLessThanOrEqual(base + 20);
    expect(proxy.portOf(UUID_A)).toEqual({ address: '127.0.0.1', port });
    expect(proxy.portOf(A)).toEqual({ address: '127.0.0.1', port });
    expect(proxy.portOf(UUID_B)).toBeNull();
  });

  test("alice (owner of acme) sees RFB 003.008, then QEMU's ServerInit through TLS; open and close are audited", async () => {
    const t0 = process.hrtime.bigint();
    const o = await vncOpen(port, creds.alice);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(o.greeting).toBe('RFB 003.008\n');
    if (o.result !== 'ok') throw new Error(JSON.stringify(o));
    expect([o.width, o.height, o.name]).toEqual([640, 480, 'QEMU']);
    process.stdout.write(
      `vnc proxy: connect to ServerInit in ${ms.toFixed(1)} ms (RFB, VeNCrypt, TLS 1.3 with client certificate, policy, QEMU's handshake)\n`,
    );
    // A whole-screen update comes back through the splice: 640x480 at 32 bpp, raw encoding.
    o.sock.write(updateRequest(640, 480));
    const head = await o.reader.read(4);
    expect(head[0]).toBe(0); // FramebufferUpdate
    await waitFor('the whole frame', () => o.reader.total.bytes >= 640 * 480 * 4);
    expect(upstreams).toEqual(['alice@acme']);
    const open = trail.intents.find((r) => r.what.procedure === 'vncOpen' && r.decision.result === 'allow')!;
    expect(open.who).toMatchObject({ user: 'alice', tenant: 'acme', method: 'x509', dn: 'O=acme,CN=alice' });
    expect(open.what).toMatchObject({ permission: 'domain:open_graphics', object: { name: 'a1', uuid: A, tenant: 'acme' } });
    expect(trail.outcomes.find((r) => r.requestId === open.requestId)!.outcome).toEqual({ result: 'success' });
    o.sock.destroy();
    await waitFor('the close record', () => trail.events.some((e) => e.name === 'vnc-close'));
    const close = trail.events.find((e) => e.name === 'vnc-close')!;
    expect(close.who).toMatchObject({ user: 'alice', dn: 'O=acme,CN=alice' });
    expect(close.detail).toMatchObject({ requestId: open.requestId, uuid: A });
    expect(close.detail!.bytesOut as number).toBeGreaterThanOrEqual(640 * 480 * 4);
    await waitFor('the connection count', () => proxy.connections === 0);
  });

  test.each([
    ['bob, owner of another tenant', 'bob', 'domain:getattr', 'VG_ERR_NO_DOMAIN'],
    ['carol, a viewer of acme (no open_graphics)', 'carol', 'domain:open_graphics', 'VG_ERR_ACCESS_DENIED'],
  ])('refused before QEMU sees a byte: %s; the denial is audited', async (_what, who, perm, code) => {
    const before = upstreams.length;
    const o = await vncOpen(port, creds[who]);
    expect(o).toEqual({ result: 'refused', reason: 'access denied', greeting: 'RFB 003.008\n' });
    expect(upstreams.length).toBe(before);
    const denial = trail.intents.filter((r) => r.decision.result === 'deny' && r.who.user === who).pop()!;
    expect(denial.what).toMatchObject({ procedure: 'vncOpen', permission: perm, object: { name: 'a1', tenant: 'acme' } });
    expect(denial.decision.rule).toContain(code);
  });

  test.each([
    ['no client certificate', 'nocert', /no client certificate/],
    ['a certificate from another CA', 'stranger', /not verified: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/],
    ['a DN outside tlsAllowedDnList', 'mallory', /client DN 'O=evil,CN=mallory' is not in tlsAllowedDnList/],
  ])('refused: %s (as on the libvirt TLS listener)', async (_what, who, logged) => {
    const before = upstreams.length;
    const o = await vncOpen(port, creds[who]);
    // TLS 1.3: the client's handshake is done before the server has looked at its certificate; the refusal follows.
    expect(o.result === 'refused' ? o.reason : o.result).toBe('client certificate refused');
    expect(upstreams.length).toBe(before);
    await waitFor(`log ${logged}`, () => logs.some((l) => logged.test(l)));
  });

  test.each([
    ['the helper cannot open it', 'reject'],
    ["the VM's VNC server wants a password", 'garbage'],
  ] as const)('display not available when %s: the client is told, the failed open is audited', async (_what, mode) => {
    upstreamMode = mode;
    try {
      const o = await vncOpen(port, creds.alice);
      expect(o).toMatchObject({ result: 'refused', reason: 'display not available' });
      const last = trail.outcomes[trail.outcomes.length - 1];
      expect(last.what.procedure).toBe('vncOpen');
      expect(last.outcome.result).toBe('error');
      await waitFor('no connection left', () => proxy.connections === 0);
    } finally {
      upstreamMode = 'qemu';
    }
  });

  test('a certificate revoked with a CRL written now is refused on its next connection', async () => {
    const first = await vncOpen(port, creds.alice2);
    if (first.result !== 'ok') throw new Error(JSON.stringify(first));
    first.sock.destroy();
    revoke({ caDir: path.join(dir, 'pki', 'ca'), certFile: path.join(dir, 'pki', 'alice2', 'clientcert.pem') });
    writeCrl({ caDir: path.join(dir, 'pki', 'ca') });
    const before = upstreams.length;
    expect(await vncOpen(port, creds.alice2)).toMatchObject({ result: 'refused', reason: 'client certificate refused' });
    expect(upstreams.length).toBe(before);
    await waitFor('the reason logged', () => logs.some((l) => /client certificate 'O=acme,CN=alice' not verified: CERT_REVOKED/.test(l)));
    const other = await vncOpen(port, creds.alice); // her other certificate still works
    if (other.result !== 'ok') throw new Error(JSON.stringify(other));
    other.sock.destroy();
    await waitFor('no connection left', () => proxy.connections === 0);
  });

  test('malformed RFB: an HTTP request, a wrong security type, X509Plain: closed, nothing reaches TLS or QEMU', async () => {
    const before = upstreams.length;
    const http = await connect(port);
    const r1 = new ByteReader(http);
    http.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await r1.rest()).toString()).toBe('RFB 003.008\n');
    expect(r1.closed).toBe(true);

    const none = await connect(port);
    const r2 = new ByteReader(none);
    await r2.read(12);
    none.write('RFB 003.008\n');
    expect((await r2.read(2)).toString('hex')).toBe('0113'); // VeNCrypt only
    none.write(Buffer.from([1])); // None
    const res = await r2.rest();
    expect(res.readUInt32BE(0)).toBe(1);
    expect(res.subarray(8).toString()).toBe('only VeNCrypt X509None is offered');

    const plain = await connect(port);
    const r3 = new ByteReader(plain);
    await r3.read(12);
    plain.write(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([19, 0, 2])]));
    await r3.read(2 + 2 + 2 + 4);
    plain.write(Buffer.from('00000106', 'hex')); // X509Plain
    expect((await r3.rest()).toString('hex')).toBe('00'); // refused, closed
    expect(upstreams.length).toBe(before);
  });

  test('bytes before authentication are tiny: 1 MiB of junk is cut off after 19 bytes', async () => {
    const s = await connect(port);
    const r = new ByteReader(s);
    s.write(Buffer.alloc(1 << 20, 0x52));
    const got = await r.rest();
    expect(r.closed).toBe(true);
    expect(got.length).toBeLessThanOrEqual(12); // the greeting; nothing answers the junk
    await waitFor('the slot back', () => proxy.connections === 0);
  });

  test('a client that stalls is dropped after vncHandshakeTimeout (2 s): in RFB, in VeNCrypt, in the TLS handshake', async () => {
    const t0 = Date.now();
    const silent = await connect(port);
    const r = new ByteReader(silent);
    await r.rest(6000);
    const took = Date.now() - t0;
    expect(r.closed).toBe(true);
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(4000);
    // Mid-way: version and type, then silence.
    const half = await connect(port);
    const r2 = new ByteReader(half);
    await r2.read(12);
    half.write(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([19])]));
    await r2.rest(6000);
    expect(r2.closed).toBe(true);
    // In the TLS handshake: the whole VeNCrypt exchange, then the first bytes of a ClientHello, then silence.
    const tlsStall = await connect(port);
    const r3 = new ByteReader(tlsStall);
    await r3.read(12);
    tlsStall.write(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([19, 0, 2])]));
    await r3.read(2 + 2 + 2 + 4);
    tlsStall.write(Buffer.from('00000104', 'hex'));
    expect((await r3.read(1))[0]).toBe(1);
    tlsStall.write(Buffer.from('160301', 'hex'));
    const t1 = Date.now();
    await r3.rest(6000);
    expect(r3.closed).toBe(true);
    expect(Date.now() - t1).toBeLessThan(3000);
    await waitFor('no connection left', () => proxy.connections === 0);
  });

  test('limits: vncMaxClientsPerVm (3) for one VM, vncMaxClients (4) over all VMs', async () => {
    const portB = (await proxy.listen(UUID_B))!.port;
    expect(portB).not.toBe(port);
    const held: net.Socket[] = [];
    for (let i = 0; i < 3; i++) {
      held.push(await connect(port));
      await new ByteReader(held[i]).read(12);
    }
    const fourthA = new ByteReader(await connect(port));
    expect((await fourthA.rest()).length).toBe(0); // closed at once, no greeting
    held.push(await connect(portB));
    await new ByteReader(held[3]).read(12);
    const fifth = new ByteReader(await connect(portB));
    expect((await fifth.rest()).length).toBe(0);
    await waitFor('refusals logged', () => logs.some((l) => /vncMaxClientsPerVm/.test(l)) && logs.some((l) => /vncMaxClients\b/.test(l)));
    for (const s of held) s.destroy();
    await waitFor('slots back', () => proxy.connections === 0);
    proxy.unlisten(UUID_B);
    expect(proxy.portOf(UUID_B)).toBeNull();
    await expect(connect(portB)).rejects.toThrow(/ECONNREFUSED/);
  });

  test('backpressure: a client that does not read holds the proxy to bounded memory while QEMU sends megabytes', async () => {
    const o = await vncOpen(port, creds.admin);
    if (o.result !== 'ok') throw new Error(JSON.stringify(o));
    const handle = (o.sock as unknown as { _handle: { readStop(): void; readStart(): void } })._handle;
    handle.readStop(); // the client stops reading: kernel buffers fill, then the proxy must stop reading QEMU
    // Whole-screen, non-incremental updates (1.2 MB each) asked for again and again for 3 s.
    let most = 0;
    for (let i = 0; i < 100; i++) {
      o.sock.write(updateRequest(640, 480));
      most = Math.max(most, proxy.buffered());
      await new Promise((r) => setTimeout(r, 30));
    }
    const held = o.reader.total.bytes;
    handle.readStart();
    o.sock.write(updateRequest(640, 480));
    await waitFor('the frames queued behind the stall', () => o.reader.total.bytes > held + 4 * 640 * 480 * 4, 30000);
    process.stdout.write(`vnc backpressure: proxy held at most ${most} bytes; client got ${o.reader.total.bytes} bytes\n`);
    expect(most).toBeLessThan(1024 * 1024);
    o.sock.destroy();
    await waitFor('no connection left', () => proxy.connections === 0);
  }, 60000);

  test('revocation is immediate: an open display ends when the policy no longer allows it', async () => {
    const o = await vncOpen(port, creds.alice);
    if (o.result !== 'ok') throw new Error(JSON.stringify(o));
    authorizer.replace(await policy(POLICY.replace('g, x509:alice, owner, acme\n', '')));
    try {
      await o.reader.rest(3000);
      expect(o.reader.closed).toBe(true);
      await waitFor('close record', () => trail.events.some((e) => e.name === 'vnc-close' && e.detail?.reason === 'permission revoked'));
      expect((await vncOpen(port, creds.alice)).result).toBe('refused');
    } finally {
      authorizer.replace(await policy(POLICY));
    }
  });

  test('unlisten (the VM stopped) ends open displays and frees the port', async () => {
    const o = await vncOpen(port, creds.admin);
    if (o.result !== 'ok') throw new Error(JSON.stringify(o));
    proxy.unlisten(UUID_A);
    await o.reader.rest(3000);
    expect(o.reader.closed).toBe(true);
    expect(proxy.portOf(UUID_A)).toBeNull();
    await expect(connect(port)).rejects.toThrow(/ECONNREFUSED/);
    port = (await proxy.listen(UUID_A))!.port;
  });
});
