// SPDX-License-Identifier: Apache-2.0
// SASL logins from real libvirt clients (python3-libvirt openAuth, virsh with an auth file) against users made by
// `virtgate user add`; plus the pre-auth limits: 20 unauthenticated connections, an auth deadline, failure penalties.
import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { pyLibvirt, saslScram, testIf, virshTool } from '../helpers/skip';
import { XdrReader } from '../../src/common/xdr';
import { decodeBody } from '../../src/protocol/messages';
import { P } from '../../src/protocol/procs/remote';
import { RawClient, type RawReply } from '../helpers/raw';

const run = promisify(execFile);
const PY = '/usr/bin/python3';

let vg: RunningDaemon;
let home: string;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-sasl-'));
  fs.mkdirSync(path.join(home, 'etc'));
  // Failure delays are the lockout test's subject: here they would only add up across cases.
  fs.writeFileSync(
    path.join(home, 'etc', 'virtgate.conf'),
    'authUnixRw = "sasl"\nauthTimeout = 3\nmaxAnonymousClients = 20\nauthDelayBaseMs = 10\nauthDelayMaxMs = 100\n',
  );
  for (const [u, pw] of [
    ['alice', 'alice-password'],
    ['root', 'root-password'],
  ]) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), 'user', 'add', u, '--home', home, '--password-stdin'], { input: `${pw}\n` });
    expect(r.status).toBe(0);
  }
  // The SASL user alice is a viewer in acme; the SASL user root is not the local root (unix:root) and holds nothing.
  fs.writeFileSync(path.join(home, 'etc', 'policy.csv'), 'g, root, host-admin, *\ng, sasl:alice, viewer, acme\n');
  vg = await startDaemon({ home });
});
afterAll(async () => vg?.stop());

testIf([pyLibvirt(), saslScram()], 'python3-libvirt openAuth: right password in, wrong password out, unknown user out', async () => {
  const login = async (u: string, pw: string): Promise<{ ok: boolean; names?: string[]; code?: number; message?: string }> =>
    JSON.parse((await run(PY, [path.join(__dirname, 'py', 'sasl_login.py'), vg.uri, u, pw], { timeout: 30000 })).stdout);
  expect(await login('alice', 'alice-password')).toEqual({ ok: true, names: [] }); // acme owns no VM
  // root's password is right, but sasl:root is not the local root: logged in, then refused at open.
  expect(await login('root', 'root-password')).toMatchObject({ ok: false, message: expect.stringMatching(/access denied/) });
  const wrong = await login('root', 'not-the-password');
  expect(wrong.ok).toBe(false);
  expect(wrong.message).toMatch(/authentication failed/);
  expect((await login('mallory', 'whatever-password')).ok).toBe(false);
  expect(vg.output()).toMatch(/auth success: method=sasl user="root"/);
  expect(vg.output()).toMatch(/auth failure: method=sasl user="" source=unix:.*reason="wrong password for 'root'"/);
});

testIf([virshTool(), saslScram()], 'virsh logs in with an auth file and sees what its policy allows', async () => {
  const authfile = path.join(home, 'auth.conf');
  fs.writeFileSync(
    authfile,
    '[credentials-vg]\nauthname=alice\npassword=alice-password\n\n[auth-libvirt-localhost]\ncredentials=vg\n[auth-libvirt-default]\ncredentials=vg\n',
  );
  const r = await run('virsh', ['-c', `${vg.uri}&authfile=${authfile}&tenant=acme`, 'list', '--all'], { timeout: 30000 }).catch((e) => e);
  // alice is a viewer in acme, which owns no VM: the login works and the list is empty.
  expect(r.stderr ?? '').toBe('');
  expect(r.stdout).not.toMatch(/test/);
});

// An RFC 5802 SCRAM-SHA-256 client over the raw wire (AUTH_SASL_INIT/START/STEP), then CONNECT_OPEN; returns the open's reply.
async function scramThenOpen(user: string, password: string): Promise<{ login: boolean; open: RawReply | undefined }> {
  const c = await RawClient.connect(vg.sock);
  try {
    const next = async (): Promise<RawReply> => {
      const n = c.replies.length + 1;
      await c.waitReplies(n, 20000);
      return c.replies[n - 1];
    };
    const data = (r: RawReply): Buffer => decodeBody(P.AUTH_SASL_START.ret, new XdrReader(r.body), 'sasl reply').data;
    c.call(67, 0);
    await next();
    const bare = `n=${user},r=${crypto.randomBytes(12).toString('base64')}`;
    c.call(68, 1, (w) =>
      w
        .string('SCRAM-SHA-256', 100)
        .i32(0)
        .charBytes(Buffer.from(`n,,${bare}`), 65536),
    );
    const first = await next();
    if (first.error) return { login: false, open: undefined };
    const serverFirst = data(first).toString();
    const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
    const salted = crypto.pbkdf2Sync(password, Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
    const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = crypto.createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${attrs.r}`;
    const sig = crypto.createHmac('sha256', storedKey).update(`${bare},${serverFirst},${withoutProof}`).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]));
    c.call(69, 2, (w) => w.i32(0).charBytes(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`), 65536));
    const fin = await next();
    if (fin.error || decodeBody(P.AUTH_SASL_STEP.ret, new XdrReader(fin.body), 'sasl reply').complete !== 1) return { login: false, open: undefined };
    c.call(1, 3, (w) => w.u32(1).string('test:///default', 4096).u32(0));
    return { login: true, open: await next() };
  } finally {
    c.end();
  }
}

test('a SASL user named root is not the local root: logged in as sasl:root, refused at open; sasl:alice gets her tenant', async () => {
  const root = await scramThenOpen('root', 'root-password');
  expect(root.login).toBe(true);
  expect(root.open?.error).toMatchObject({ code: 88, message: expect.stringMatching(/access denied/) });
  const alice = await scramThenOpen('alice', 'alice-password');
  expect(alice).toMatchObject({ login: true, open: { error: null } });
  expect((await scramThenOpen('root', 'wrong-password')).login).toBe(false);
});

test('before login only AUTH_* calls work, and the auth list says SASL', async () => {
  const c = await RawClient.connect(vg.sock);
  try {
    c.call(66, 0);
    c.call(59, 1);
    const r = [...(await c.waitReplies(2))].sort((a, b) => a.header.serial - b.header.serial);
    expect(r[0].body.readUInt32BE(0)).toBe(1); // one auth type
    expect(r[0].body.readUInt32BE(4)).toBe(1); // SASL
    expect(r[1].error).toMatchObject({ code: 39, domain: 7, message: 'authentication required' });
  } finally {
    c.end();
  }
});

test('a SASL exchange out of sequence or with an unoffered mechanism fails without detail', async () => {
  const c = await RawClient.connect(vg.sock);
  c.call(68, 0, (w) => w.string('PLAIN', 100).i32(0).charBytes(Buffer.from('\0root\0root-password'), 65536)); // START before INIT
  c.call(67, 1);
  c.call(68, 2, (w) => w.string('PLAIN', 100).i32(0).charBytes(Buffer.from('\0root\0root-password'), 65536)); // PLAIN is TLS-only
  const r = [...(await c.waitReplies(3, 20000))].sort((a, b) => a.header.serial - b.header.serial);
  expect(r[0].error).toMatchObject({ code: 45, message: 'authentication failed' });
  expect(r[1].body.toString('utf8', 4, 4 + r[1].body.readUInt32BE(0))).toBe('SCRAM-SHA-256');
  expect(r[2].error?.message).toBe('authentication failed');
  c.end();
});

test('the 21st unauthenticated connection is refused while 20 wait; unauthenticated ones are dropped at the deadline', async () => {
  const waiting = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(vg.sock)));
  await new Promise((r) => setTimeout(r, 200));
  const extra = await RawClient.connect(vg.sock);
  expect(await extra.waitClosed(2000)).toBe(true);
  expect({ closed: waiting.filter((c) => c.closed).length, log: waiting.some((c) => c.closed) ? vg.output().slice(-1500) : '' }).toEqual({
    closed: 0,
    log: '',
  });
  expect(vg.output()).toMatch(/20 unauthenticated connections already \(maxAnonymousClients\)/);
  // authTimeout = 3 s: every waiting connection is dropped, then new ones are accepted again.
  for (const c of waiting) expect(await c.waitClosed(6000)).toBe(true);
  const again = await RawClient.connect(vg.sock);
  again.call(66, 0);
  expect((await again.waitReplies(1))[0].header.status).toBe(0);
  again.end();
}, 20000);
