// SPDX-License-Identifier: Apache-2.0
// seccomp filter in a real child Node: the front-end workload still runs, forbidden syscalls fail, every thread is filtered.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root, testIf } from '../helpers/skip';

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD = path.join(ROOT, 'build', 'src', 'sandbox');

// Runs `body` in a fresh node; the script prints one JSON line prefixed with RESULT.
function runChild(body: string, timeout = 30000): { status: number | null; signal: string | null; result: any; stderr: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-seccomp-'));
  const file = path.join(dir, 'child.js');
  fs.writeFileSync(
    file,
    `'use strict';
const B = ${JSON.stringify(BUILD)};
const koffi = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'koffi'))});
const libc = koffi.load('libc.so.6');
const sc = require(B + '/seccomp.js');
const sets = require(B + '/syscall-sets.js');
const done = (r) => process.stdout.write('RESULT ' + JSON.stringify(r) + '\\n');
const TMP = ${JSON.stringify(dir)};
(async () => { ${body} })().catch((e) => { done({ error: String(e && e.stack || e) }); process.exit(3); });
`,
  );
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: r.status, signal: r.signal, result: line ? JSON.parse(line.slice(7)) : null, stderr: r.stderr };
}

beforeAll(() => {
  if (!fs.existsSync(path.join(BUILD, 'seccomp.js'))) throw new Error('build output missing: run `npm run build` first (npm test does)');
});

// Start the libuv pool (4 threads, created together) before the filter, so TSYNC has pre-existing threads to reach.
const WARM = `await new Promise((res) => require('crypto').pbkdf2('w', 's', 10, 16, 'sha256', res)); await require('fs').promises.readFile(__filename);`;
const asyncCall = `(fn, ...a) => new Promise((res, rej) => fn.async(...a, (e, v) => (e ? rej(e) : res(v))))`;

test('front-end workload runs under FRONT_SYSCALLS with EPERM default: TLS, fs+fsync, unix socket, crypto, pool threads', () => {
  const { result, stderr } = runChild(`
    const crypto = require('crypto'), fs = require('fs'), net = require('net'), tls = require('tls'), path = require('path');
    // A self-signed certificate made before the sandbox (node-forge is a dependency already).
    const forge = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'node-forge'))});
    const keys = forge.pki.rsa.generateKeyPair(2048);
    const cert = forge.pki.createCertificate();
    cert.publicKey = keys.publicKey; cert.serialNumber = '01';
    cert.validity.notBefore = new Date(Date.now() - 60000); cert.validity.notAfter = new Date(Date.now() + 3600000);
    const attrs = [{ name: 'commonName', value: 'localhost' }];
    cert.setSubject(attrs); cert.setIssuer(attrs); cert.sign(keys.privateKey, forge.md.sha256.create());
    const pem = { key: forge.pki.privateKeyToPem(keys.privateKey), cert: forge.pki.certificateToPem(cert) };
    ${WARM}
    const report = sc.applySeccomp({ allow: sets.FRONT_SYSCALLS, defaultAction: 'errno' });
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const out = { report, nnp: /NoNewPrivs:\\s+1/.test(status), mode: /Seccomp:\\s+2/.test(status) };

    // TLS server and 5 clients on loopback.
    const srv = tls.createServer(pem, (s) => s.end('hello ' + s.getProtocol()));
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const replies = await Promise.all([1, 2, 3, 4, 5].map(() => new Promise((res, rej) => {
      const c = tls.connect({ port: srv.address().port, host: '127.0.0.1', ca: pem.cert, servername: 'localhost' });
      let t = ''; c.on('data', (d) => (t += d)); c.on('end', () => res(t)); c.on('error', rej);
    })));
    srv.close();
    out.tls = replies;

    // fs write + fsync (main thread) and an async write + rename (pool threads).
    const f = path.join(TMP, 'audit.log');
    const fd = fs.openSync(f, 'a', 0o600); fs.writeSync(fd, '{"seq":0}\\n'); fs.fsyncSync(fd); fs.fdatasyncSync(fd); fs.closeSync(fd);
    await fs.promises.writeFile(f + '.tmp', 'x'); await fs.promises.rename(f + '.tmp', f + '.2');
    out.fs = fs.readFileSync(f, 'utf8').trim() + '/' + fs.readFileSync(f + '.2', 'utf8');

    // unix socket round trip.
    const sock = path.join(TMP, 'helper.sock');
    const us = net.createServer((s) => s.on('data', (d) => s.end(d)));
    await new Promise((r) => us.listen(sock, r));
    out.unix = await new Promise((res, rej) => { const c = net.connect(sock, () => c.write('ping')); let t = ''; c.on('data', (d) => (t += d)); c.on('end', () => res(t)); c.on('error', rej); });
    us.close();

    // crypto on the pool and on the main thread.
    out.pbkdf2 = (await new Promise((res, rej) => crypto.pbkdf2('pw', 'salt', 1000, 32, 'sha256', (e, k) => (e ? rej(e) : res(k))))).toString('hex').length;
    out.scrypt = (await new Promise((res, rej) => crypto.scrypt('pw', 'salt', 32, (e, k) => (e ? rej(e) : res(k))))).length;
    out.sha = crypto.createHash('sha256').update('x').digest('hex').slice(0, 8);
    out.random = crypto.randomBytes(16).length;
    out.threads = sc.threadSeccompModes();
    done(out);
  `);
  expect(stderr).toBe('');
  expect(result.error).toBeUndefined();
  expect(result.nnp).toBe(true);
  expect(result.mode).toBe(true);
  expect(result.report).toMatchObject({ defaultAction: 'errno(EPERM)', badArchAction: 'kill-process', noNewPrivs: true, tsync: true });
  expect(result.report.allowed).toBeGreaterThan(250);
  expect(result.report.threads.filtered).toBe(result.report.threads.total);
  expect(result.tls).toEqual(Array(5).fill(expect.stringMatching(/^hello TLSv1\.[23]$/)));
  expect(result.fs).toBe('{"seq":0}/x');
  expect(result.unix).toBe('ping');
  expect(result).toMatchObject({ pbkdf2: 64, scrypt: 32, sha: '2d711642', random: 16 });
  // Threads the workload started after the load (TLS, fs) inherit the filter; earlier ones got it through TSYNC.
  expect(result.threads.every((m: number) => m === 2)).toBe(true);
  process.stdout.write(
    `seccomp front: ${result.report.allowed} syscalls allowed (${result.report.unknownHere} names not on this arch), load ${result.report.loadMs} ms, ${result.threads.length} threads filtered\n`,
  );
});

test('forbidden syscalls fail with EPERM on the main thread and on pool threads (TSYNC); the process survives', () => {
  const { result, stderr } = runChild(`
    ${WARM}
    const chroot = libc.func('int chroot(const char *path)');
    const mount = libc.func('int mount(const char *src, const char *dst, const char *type, unsigned long flags, const void *data)');
    const ptrace = libc.func('long ptrace(int req, int pid, void *addr, void *data)');
    const call = ${asyncCall};
    sc.applySeccomp({ allow: sets.FRONT_SYSCALLS, defaultAction: 'errno' });
    const out = {};
    out.chroot = [chroot('/'), koffi.errno()];
    out.mount = [mount('none', TMP, 'tmpfs', 0, null), koffi.errno()];
    out.ptrace = [ptrace(0, 0, null, null), koffi.errno()];
    // Node's own wrappers: setuid and setgroups are in @privileged, so even root gets EPERM now.
    try { process.setgroups([0]); out.setgroups = 'ok'; } catch (e) { out.setgroups = e.code; }
    // The same call from a libuv pool thread that existed before the filter.
    out.poolChroot = await call(chroot, '/');
    out.poolMount = await call(mount, 'none', TMP, 'tmpfs', 0, null);
    out.alive = true;
    done(out);
  `);
  expect(stderr).toBe('');
  expect(result).toEqual({ chroot: [-1, 1], mount: [-1, 1], ptrace: [-1, 1], setgroups: 'EPERM', poolChroot: -1, poolMount: -1, alive: true });
});

// Root: an unfiltered chroot must succeed to show the escape.
testIf(root('an unfiltered chroot must succeed'), 'without TSYNC a pre-existing pool thread escapes the filter (the gap TSYNC closes)', () => {
  const { result } = runChild(`
    ${WARM}
    const chroot = libc.func('int chroot(const char *path)');
    const call = ${asyncCall};
    const r = sc.applySeccomp({ allow: sets.FRONT_SYSCALLS, defaultAction: 'errno', tsync: false });
    done({ main: chroot('/'), pool: await call(chroot, '/'), threads: r.threads });
  `);
  expect(result.main).toBe(-1);
  expect(result.pool).toBe(0); // chroot("/") as root: harmless, and proves the pool thread was not filtered
  expect(result.threads.filtered).toBeLessThan(result.threads.total);
});

test('helper set with KILL_PROCESS: unix sockets work, AF_INET gets EAFNOSUPPORT, a forbidden syscall kills with SIGSYS', () => {
  const ok = runChild(`
    const net = require('net'), path = require('path');
    ${WARM}
    const report = sc.applySeccomp({ allow: sets.HELPER_SYSCALLS, defaultAction: 'kill', argRules: sc.UNIX_SOCKETS_ONLY });
    const sock = path.join(TMP, 'h.sock');
    const us = net.createServer((s) => s.end('pong'));
    await new Promise((r) => us.listen(sock, r));
    const unix = await new Promise((res, rej) => { const c = net.connect(sock); let t = ''; c.on('data', (d) => (t += d)); c.on('end', () => res(t)); c.on('error', rej); });
    us.close();
    const inet = await new Promise((res) => { const s = net.createServer(); s.on('error', (e) => res(e.code)); s.listen(0, '127.0.0.1', () => res('listening')); });
    await require('fs').promises.writeFile(path.join(TMP, 'state.json'), '{}');
    done({ report, unix, inet });
  `);
  expect(ok.stderr).toBe('');
  expect(ok.result.report).toMatchObject({ defaultAction: 'kill-process', argRules: 1 });
  expect(ok.result.unix).toBe('pong');
  expect(ok.result.inet).toBe('EAFNOSUPPORT');

  const killed = runChild(`
    const mount = libc.func('int mount(const char *src, const char *dst, const char *type, unsigned long flags, const void *data)');
    sc.applySeccomp({ allow: sets.HELPER_SYSCALLS, defaultAction: 'kill', argRules: sc.UNIX_SOCKETS_ONLY });
    process.stdout.write('loaded\\n');
    mount('none', TMP, 'tmpfs', 0, null);
    done({ survived: true });
  `);
  expect(killed.result).toBeNull();
  expect(killed.signal).toBe('SIGSYS');
});

test('no-new-privs is set before the load and reported', () => {
  const { result } = runChild(`
    const before = require('fs').readFileSync('/proc/self/status', 'utf8').match(/NoNewPrivs:\\s+(\\d)/)[1];
    const r = sc.applySeccomp({ allow: sets.FRONT_SYSCALLS, defaultAction: 'errno' });
    const after = require('fs').readFileSync('/proc/self/status', 'utf8').match(/NoNewPrivs:\\s+(\\d)/)[1];
    done({ before, after, nnp: r.noNewPrivs, mode: sc.seccompMode() });
  `);
  expect(result).toEqual({ before: '0', after: '1', nnp: true, mode: 2 });
});

test('bad options are refused before anything is loaded', () => {
  const { result } = runChild(`
    const codes = [];
    for (const o of [{ allow: [], defaultAction: 'errno' }, { allow: ['read'], defaultAction: 'allow' }]) {
      try { sc.applySeccomp(o); codes.push('loaded'); } catch (e) { codes.push(e.code); }
    }
    done({ codes, mode: sc.seccompMode() });
  `);
  expect(result).toEqual({ codes: ['VG_ERR_SANDBOX_CONFIG', 'VG_ERR_SANDBOX_CONFIG'], mode: 0 });
});
