// SPDX-License-Identifier: Apache-2.0
// Remote VNC of a real, jailed QEMU VM through the front end's VeNCrypt x509 proxy: the permitted user's certificate
// gets RFB 003.008 and the guest's ServerInit; another tenant's user, a user without open_graphics and a client without
// a certificate are refused before the helper opens anything (its journal shows no openGraphics for them).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VirtgateClient } from '../../src/client';
import { initCa, issueClient, issueServer } from '../../src/pki/pki';
import { type RunningQemuDaemon, startQemuDaemon } from '../helpers/daemon';
import { launcherRequirements } from '../helpers/launcher';
import { describeIf, virshTool } from '../helpers/skip';
import { exec } from '../helpers/users';
import { type VncCreds, connect, updateRequest, vncOpen } from '../helpers/vnc-client';

jest.setTimeout(60000);

const POLICY = 'g, unix:root, host-admin, *\ng, x509:alice, owner, acme\ng, x509:bob, owner, globex\ng, x509:carol, viewer, acme\n';

describeIf(launcherRequirements(), 'remote VNC of a real QEMU VM, through the front end', () => {
  let vg: RunningQemuDaemon;
  let pkiDir: string;
  let port = 0;
  let uuid = '';
  const creds: Record<string, VncCreds> = {};
  const base = 20000 + Math.floor(Math.random() * 20000);
  const graphicsOpens = (): number => (vg.journal().match(/openGraphics/g) ?? []).length;

  beforeAll(async () => {
    pkiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-vncvm-pki-'));
    const ca = path.join(pkiDir, 'ca');
    initCa({ dir: ca, cn: 'vnc vm test CA' });
    issueServer({ dir: path.join(pkiDir, 'server'), caDir: ca, hosts: ['localhost'], ips: ['127.0.0.1'] });
    const caPem = fs.readFileSync(path.join(ca, 'cacert.pem'));
    creds.nocert = { ca: caPem };
    for (const [who, o] of [
      ['alice', 'acme'],
      ['bob', 'globex'],
      ['carol', 'acme'],
    ]) {
      issueClient({ dir: path.join(pkiDir, who), caDir: ca, cn: who, o });
      creds[who] = {
        ca: caPem,
        cert: fs.readFileSync(path.join(pkiDir, who, 'clientcert.pem')),
        key: fs.readFileSync(path.join(pkiDir, who, 'clientkey.pem')),
      };
    }
    const conf = [
      `tlsCaFile = "${path.join(ca, 'cacert.pem')}"`,
      `tlsCertFile = "${path.join(pkiDir, 'server', 'servercert.pem')}"`,
      `tlsKeyFile = "${path.join(pkiDir, 'server', 'private', 'serverkey.pem')}"`,
      'vncListen = "127.0.0.1"',
      `vncPortMin = ${base}`,
      `vncPortMax = ${base + 20}`,
      '',
    ].join('\n');
    vg = await startQemuDaemon({ policy: POLICY, conf });
    // acme's VM, defined by the host admin in acme; no kernel (a tenant names no host path): the firmware's screen.
    const c = await VirtgateClient.connect(`${vg.uri}&tenant=acme`);
    const dom = await c.defineXml(
      `<domain type='qemu'><name>v1</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>` +
        "<devices><graphics type='vnc'/><memballoon model='none'/></devices></domain>",
    );
    await c.create(dom);
    await c.close();
    uuid = Buffer.from(dom.uuid)
      .toString('hex')
      .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
    const line = await vg.waitFor(new RegExp(`vnc: ${uuid}: listening on 127\\.0\\.0\\.1:\\d+`), 30000);
    port = Number(/:(\d+)$/.exec(line)![1]);
  });
  afterAll(async () => {
    await vg?.stop();
    if (pkiDir) fs.rmSync(pkiDir, { recursive: true, force: true });
  });

  test("alice (owner of acme) gets RFB 003.008 and the guest's ServerInit; a full frame comes through", async () => {
    const t0 = Date.now();
    const o = await vncOpen(port, creds.alice);
    const took = Date.now() - t0;
    expect(o.greeting).toBe('RFB 003.008\n');
    if (o.result !== 'ok') throw new Error(JSON.stringify(o));
    expect(o.width).toBeGreaterThan(0);
    expect(o.height).toBeGreaterThan(0);
    expect(o.name).toBe('QEMU (v1)'); // QEMU's -name
    o.sock.write(updateRequest(o.width, o.height));
    // A FramebufferUpdate whose first rectangle lies within the screen, then its pixels (the firmware may switch modes
    // meanwhile: the whole frame's size is not fixed).
    const head = await o.reader.read(4 + 12);
    expect(head[0]).toBe(0);
    expect(head.readUInt16BE(2)).toBeGreaterThanOrEqual(1);
    expect(head.readUInt16BE(4 + 4)).toBeLessThanOrEqual(o.width);
    expect(head.readUInt16BE(4 + 6)).toBeLessThanOrEqual(o.height);
    await o.reader.read(64 * 1024);
    process.stdout.write(
      `vnc vm: ServerInit ${o.width}x${o.height} '${o.name}' after ${took} ms (RFB + VeNCrypt + TLS + policy + openGraphics + QEMU handshake)\n`,
    );
    o.sock.destroy();
    // The helper journaled the open with alice's identity and the front end's audit head.
    expect(graphicsOpens()).toBeGreaterThan(0);
    const begins = vg
      .journal()
      .split('\n')
      .filter((l) => l.includes('openGraphics') && l.includes('"phase":"begin"'))
      .map((l) => JSON.parse(l) as { user: string; tenant: string; auditHead: string });
    expect(begins).toEqual([expect.objectContaining({ user: 'alice', tenant: 'acme', auditHead: expect.stringMatching(/^\d+:[0-9a-f]{64}$/) })]);
  });

  test('the live XML names the port; virsh domdisplay and vncdisplay point at it', async () => {
    if (!virshTool().ok) return void process.stdout.write('SKIP virsh checks: libvirt-clients not installed\n');
    const virsh = async (...a: string[]): Promise<string> => {
      const r = await exec(['virsh', '-c', vg.uri, ...a]);
      expect({ a, err: r.err, rc: r.rc }).toEqual({ a, err: '', rc: 0 });
      return r.out.trim();
    };
    expect(await virsh('dumpxml', uuid)).toContain(`<graphics type='vnc' port='${port}' autoport='yes' listen='127.0.0.1'>`);
    expect(await virsh('domdisplay', uuid)).toBe(`vnc://127.0.0.1:${port - 5900}`);
    expect(await virsh('vncdisplay', uuid)).toBe(`127.0.0.1:${port - 5900}`);
  });

  test.each([
    ['bob, owner of another tenant', 'bob', 'access denied'],
    ['carol, a viewer without open_graphics', 'carol', 'access denied'],
    ['a client without a certificate', 'nocert', 'client certificate refused'],
  ])('refused before the helper opens anything: %s', async (_what, who, reason) => {
    const before = graphicsOpens();
    expect(await vncOpen(port, creds[who])).toMatchObject({ result: 'refused', reason });
    expect(graphicsOpens()).toBe(before);
  });

  test('the listener closes when the VM stops', async () => {
    const c = await VirtgateClient.connect(vg.uri);
    await c.destroy(await c.lookupByUuid(uuid));
    await c.close();
    await vg.waitFor(new RegExp(`vnc: ${uuid}: listener 127\\.0\\.0\\.1:${port} closed`), 20000);
    await expect(connect(port)).rejects.toThrow(/ECONNREFUSED/);
  });
});
