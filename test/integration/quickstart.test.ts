// SPDX-License-Identifier: Apache-2.0
// The quick start as a user meets it (issue 11 items 1-2): `node build/src/cli/start.js` as root runs the front end
// unprivileged (uid, capabilities and groups from /proc; what a process with its credentials can and cannot open),
// and as a non-root user makes that user a host admin; in both, every command the banner prints exits 0 when run as
// printed, an event arrives and the audit log has the write.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, requireBuild } from '../helpers/daemon';
import { type Result, exec, ids } from '../helpers/users';

const START = path.join(ROOT, 'build', 'src', 'cli', 'start.js');
const CLI = path.join(ROOT, 'bin', 'virtgate.js');
const USER = 'vgquick'; // the throwaway non-root user of (b)
const CI = process.env.CI === 'true';

// What a test needs; under CI=true a missing need is a failure, elsewhere a printed skip.
function need(what: string, ok: boolean): boolean {
  if (ok) return true;
  if (CI) throw new Error(`CI=true and this test needs ${what}`);
  process.stdout.write(`SKIP: quickstart: needs ${what}\n`);
  return false;
}
const haveVirsh = (): boolean => {
  try {
    execFileSync('sh', ['-c', 'command -v virsh'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const isRoot = process.getuid?.() === 0;

interface Started {
  proc: ChildProcess;
  home: string;
  out(): string;
  banner: string;
  commands: string[];
  helperPid: number;
  frontPid: number;
  stop(): Promise<void>;
}

// Starts `node start.js --home HOME ARGS` (prefixed, e.g. to run as another user) and waits for its banner.
async function start(home: string, prefix: string[] = [], args: string[] = []): Promise<Started> {
  const argv = [...prefix, process.execPath, START, '--home', home, ...args];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: os.tmpdir() });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (t: string) => (out += t));
  proc.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
  const t0 = Date.now();
  while (!/Press Ctrl-C to stop/.test(out)) {
    if (proc.exitCode !== null) throw new Error(`start exited ${proc.exitCode}:\n${out}`);
    if (Date.now() - t0 > 30000) throw new Error(`no banner after 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const banner = out.slice(out.indexOf('virtgate is running'));
  const tryAt = banner.split('\n').findIndex((l) => /^Try, as \S+:$/.test(l));
  const commands = banner
    .split('\n')
    .slice(tryAt + 1)
    .filter((l) => l.startsWith('  '))
    .map((l) => l.trim());
  return {
    proc,
    home,
    out: () => out,
    banner,
    commands,
    helperPid: Number(/helper +pid (\d+)/.exec(banner)![1]),
    frontPid: Number(/front end +pid (\d+)/.exec(banner)![1]),
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

const status = (pid: number): Record<string, string> =>
  Object.fromEntries(
    fs
      .readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );

const sh = (prefix: string[], cmd: string): Promise<Result> => exec([...prefix, 'sh', '-c', cmd], 60000);

// A lifecycle event reaches a `virsh event` client while another client defines and starts a VM (retried: the watcher
// registers asynchronously), then the audit log holds the define, as `virtgate audit query` reads it.
async function eventAndAudit(prefix: string[], uri: string, home: string, auditAs: string[], who: string): Promise<void> {
  const xml = path.join(home, 'qsvm.xml');
  fs.writeFileSync(xml, `<domain type='test'><name>qsvm</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='i686'>hvm</type></os></domain>\n`, {
    mode: 0o644,
  });
  const argv = [...prefix, 'virsh', '-c', uri, 'event', '--event', 'lifecycle', '--loop', '--timeout', '30'];
  const watcher = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  watcher.stdout!.setEncoding('utf8').on('data', (t: string) => (seen += t));
  try {
    expect((await exec([...prefix, 'virsh', '-c', uri, 'define', xml])).rc).toBe(0);
    for (let i = 0; i < 40 && !/for domain '?qsvm'?/.test(seen); i++) {
      expect((await exec([...prefix, 'virsh', '-c', uri, i % 2 ? 'destroy' : 'start', 'qsvm'])).rc).toBe(0);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(seen).toMatch(/event 'lifecycle' for domain '?qsvm'?: (Started|Stopped|Defined)/);
  } finally {
    watcher.kill('SIGTERM');
  }
  const q = await exec([...auditAs, process.execPath, CLI, 'audit', 'query', '--home', home, '--vm', 'qsvm', '--format', 'json']);
  expect(q.rc).toBe(0);
  const recs = JSON.parse(q.out) as { kind: string; who: { user: string; method: string }; what: { procedure: string }; outcome?: { result: string } }[];
  const define = recs.find((r) => r.kind === 'outcome' && r.what.procedure === 'domainDefineXml');
  expect(define).toMatchObject({ who: { user: who, method: 'peercred' }, outcome: { result: 'success' } });
}

describe('(a) npm start as root: the front end is unprivileged', () => {
  let vg: Started | null = null;
  let home = '';
  const ok = need('root', isRoot) && need('virsh (Debian package libvirt-clients)', haveVirsh());
  const run = ok ? test : test.skip;

  beforeAll(async () => {
    if (!ok) return;
    requireBuild();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-qs-root-')); // 0700: start makes it searchable, nothing more
    vg = await start(home);
  }, 60000);
  afterAll(async () => {
    await vg?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  run('front end: non-zero uid, no capabilities, no supplementary groups; helper: root; banner says which', () => {
    const front = status(vg!.frontPid);
    const helper = status(vg!.helperPid);
    const [uid, gid] = [front.Uid.split(/\s+/), front.Gid.split(/\s+/)];
    expect(new Set(uid).size).toBe(1);
    expect(Number(uid[0])).not.toBe(0);
    expect(Number(gid[0])).not.toBe(0);
    expect(front.CapEff).toBe('0000000000000000');
    expect(front.CapPrm).toBe('0000000000000000');
    expect(front.Groups.split(/\s+/).filter(Boolean)).toEqual([]);
    expect(front.Seccomp).toBe('2');
    expect(helper.Uid.split(/\s+/)[0]).toBe('0');
    expect(vg!.banner).toMatch(new RegExp(`helper +pid ${vg!.helperPid}, uid 0 \\(root\\)`));
    expect(vg!.banner).toMatch(new RegExp(`front end +pid ${vg!.frontPid}, uid ${uid[0]} \\(`));
    // The virtgate system user when there is one, else nobody.
    const vgUser = spawnSync('getent', ['passwd', 'virtgate'], { encoding: 'utf8' });
    const expected = vgUser.status === 0 ? Number(vgUser.stdout.split(':')[2]) : 65534;
    expect(Number(uid[0])).toBe(expected);
    expect(vg!.out()).toMatch(/sandbox \(front\): privdrop skipped \(not root: runs as uid \d+, nothing to drop\)/);
  });

  run("a process with the front end's credentials opens neither /etc/shadow nor the helper's state; the helper socket admits only it", () => {
    const s = status(vg!.frontPid);
    const [uid, gid] = [s.Uid.split(/\s+/)[0], s.Gid.split(/\s+/)[0]];
    const as = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
    for (const target of ['/etc/shadow', path.join(home, 'lib', 'audit-verify.key'), path.join(home, 'lib', 'state.wal')]) {
      const r = spawnSync(as[0], [...as.slice(1), 'cat', target], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/Permission denied/);
    }
    const ls = spawnSync(as[0], [...as.slice(1), 'ls', path.join(home, 'lib')], { encoding: 'utf8' });
    expect(ls.stderr).toMatch(/Permission denied/);
    const lib = fs.statSync(path.join(home, 'lib'));
    expect([lib.uid, lib.mode & 0o777]).toEqual([0, 0o700]);
    const sock = fs.statSync(path.join(home, 'run', 'helper-sock'));
    expect([sock.uid, sock.gid, sock.mode & 0o777]).toEqual([0, Number(gid), 0o660]);
    const cmdline = fs.readFileSync(`/proc/${vg!.helperPid}/cmdline`, 'utf8').split('\0');
    expect(cmdline.filter((_, i) => cmdline[i - 1] === '--allow-uid')).toEqual([uid]);
    // Its own files are its own: audit log, sealing state, TLS key; the rw socket is its, 0660, root reaches it.
    for (const p of ['log', 'keys', path.join('pki', 'server', 'private', 'serverkey.pem'), path.join('run', 'virtgate-sock')])
      expect(fs.statSync(path.join(home, p)).uid).toBe(Number(uid));
    expect(fs.statSync(path.join(home, 'run', 'virtgate-sock')).mode & 0o777).toBe(0o660);
  });

  run('every command the banner prints exits 0 as printed (root over unix rw and ro, the CLI, TLS with the admin certificate)', async () => {
    expect(vg!.commands.length).toBe(4);
    expect(vg!.commands.some((c) => /^virtgate /.test(c))).toBe(false); // not on PATH: the absolute bin/ path instead
    for (const c of vg!.commands) {
      const r = await sh([], c);
      expect({ c, rc: r.rc, err: r.err }).toEqual({ c, rc: 0, err: '' });
      expect(r.out).toMatch(/test +running/);
    }
    expect(vg!.commands.join('\n')).toMatch(/test\+tls:\/\/localhost:\d+\/default\?pkipath=/);
  });

  run('an event reaches a virsh client and the audit log records the define (unix peer root = unix:root, host admin)', async () => {
    await eventAndAudit([], `test+unix:///default?socket=${path.join(home, 'run', 'virtgate-sock')}`, home, [], 'root');
  });
});

describe('(b) the quick start as a non-root user: that user is a host admin, every printed command works', () => {
  let vg: Started | null = null;
  let home = '';
  let prefix: string[] = [];
  let name = '';
  const ok = need('virsh (Debian package libvirt-clients)', haveVirsh());
  let unreadable = false;
  const run = (title: string, fn: () => unknown): void => (ok ? test : test.skip)(title, async () => void (unreadable || (await fn())), 60000);

  beforeAll(async () => {
    if (!ok) return;
    requireBuild();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-qs-user-'));
    if (isRoot) {
      // As root: a throwaway system account runs the whole thing; the checkout must be readable to it.
      try {
        execFileSync('id', [USER], { stdio: 'ignore' });
      } catch {
        execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
      }
      const { uid, gid } = ids(USER);
      fs.chownSync(home, uid, gid);
      prefix = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'env', `HOME=${home}`];
      name = USER;
      const probe = await exec([...prefix, process.execPath, '-e', `require(${JSON.stringify(path.join(ROOT, 'build', 'src', 'unprivileged', 'main.js'))})`]);
      // A checkout only root can read (e.g. under /root) cannot run as another user: a failure in CI, a skip elsewhere.
      if (probe.rc !== 0 && !need(`a checkout readable by ${USER} (${ROOT}): ${probe.err.split('\n')[0]}`, false)) {
        unreadable = true;
        return;
      }
    } else {
      name = os.userInfo().username;
    }
    vg = await start(home, prefix);
  }, 60000);
  afterAll(async () => {
    await vg?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  run('both processes run as the user; it is a built-in host admin; the helper does not claim to stay root', () => {
    const uid = isRoot ? ids(USER).uid : process.getuid!();
    for (const pid of [vg!.helperPid, vg!.frontPid]) expect(status(pid).Uid.split(/\s+/)).toEqual([uid, uid, uid, uid].map(String));
    expect(vg!.banner).toMatch(new RegExp(`host admins: unix:root, x509:admin, unix:${name} `));
    expect(vg!.out()).toMatch(new RegExp(`sandbox \\(helper\\): privdrop skipped \\(not root: runs as uid ${uid}, nothing to drop\\)`));
    expect(vg!.out()).not.toMatch(/helper stays root/);
    expect(vg!.banner).toMatch(new RegExp(`^Try, as ${name}:$`, 'm'));
  });

  run('every command the banner prints exits 0 when that user runs it as printed', async () => {
    expect(vg!.commands.length).toBe(4);
    for (const c of vg!.commands) {
      const r = await sh(prefix, c);
      expect({ c, rc: r.rc, err: r.err }).toEqual({ c, rc: 0, err: '' });
    }
  });

  run('define + start a VM, an event arrives, the audit log has it', async () => {
    await eventAndAudit(prefix, `test+unix:///default?socket=${path.join(home, 'run', 'virtgate-sock')}`, home, prefix, name);
  });

  run("a site policy.csv adds to the built-in admins; 'builtin, off' removes them; policy check agrees with the daemon", async () => {
    const uri = `test+unix:///default?socket=${path.join(home, 'run', 'virtgate-sock')}`;
    const file = path.join(home, 'etc', 'policy.csv');
    const check = (): Promise<Result> =>
      exec([...prefix, process.execPath, CLI, 'policy', 'check', `unix:${name}`, '-', 'host', 'connect:write', '--home', home]);
    // Written whole (rename), then wait for the reload that loaded it: its log line says which admins are in force.
    const put = async (text: string, admins: string): Promise<void> => {
      const from = vg!.out().length;
      fs.writeFileSync(`${file}.new`, text, { mode: 0o644 });
      if (isRoot) fs.chownSync(`${file}.new`, ids(USER).uid, ids(USER).gid);
      fs.renameSync(`${file}.new`, file);
      const done = (): boolean => new RegExp(`policy loaded \\((file change|SIGHUP)\\) from ${file}: \\d+ rules; ${admins}\\n`).test(vg!.out().slice(from));
      for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(done()).toBe(true);
    };
    await put('g, carol, viewer, acme\n', `built-in host admins unix:root, x509:admin, unix:${name}`);
    expect((await exec([...prefix, 'virsh', '-c', uri, 'list', '--all'])).rc).toBe(0);
    const allow = await check();
    expect(allow.rc).toBe(0);
    expect(allow.out).toMatch(new RegExp(`via: +g, unix:${name}, host-admin, \\* \\[built-in\\]`));

    await put('builtin, off\ng, carol, viewer, acme\n', 'built-in host admins off \\(builtin, off\\)');
    const denied = await exec([...prefix, 'virsh', '-c', uri, 'list', '--all']);
    expect(denied.rc).not.toBe(0);
    expect(denied.err).toMatch(/access denied/);
    expect((await check()).rc).toBe(1);
    // Both say the same about the admin certificate too.
    expect((await exec([process.execPath, CLI, 'policy', 'check', 'x509:admin', '-', 'host', 'connect:write', '--home', home])).rc).toBe(1);
    await put('g, carol, viewer, acme\n', `built-in host admins unix:root, x509:admin, unix:${name}`);
    expect((await exec([...prefix, 'virsh', '-c', uri, 'list', '--all'])).rc).toBe(0);
  });
});
