// SPDX-License-Identifier: Apache-2.0
// The three binaries as a user runs them: --help and --version, `| head` ending quietly, a missing or bad config file,
// and a listening address that is taken (a clear message and exit 78, never a restart loop).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AUDIT_VERSION, GENESIS } from '../../src/audit/schema';
import { pkiMain } from '../../src/cli/pki';
import { ROOT, requireBuild } from '../helpers/daemon';

const BIN = path.join(ROOT, 'bin');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const node = (bin: string, args: string[], opts: { input?: string } = {}) =>
  spawnSync(process.execPath, [path.join(BIN, bin), ...args], { encoding: 'utf8', timeout: 30000, ...opts });

let tmp: string;
beforeAll(() => {
  requireBuild();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-bins-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// Every flag each binary accepts, with the help line that must explain it.
const FLAGS: Record<string, string[]> = {
  'virtgate.js': ['-c, --connect', '-r, --readonly', '-h, --help', '-V, --version'],
  'virtgated.js': [
    '--config',
    '--home',
    '--socket',
    '--socket-ro',
    '--helper-socket',
    '--tcp',
    '--tls',
    '--tls-port-fallback',
    '--max-client-requests',
    '--keepalive-interval',
    '--keepalive-count',
    '--no-sandbox',
    '-h, --help',
    '-V, --version',
  ],
  'virtgate-helper.js': [
    '--socket',
    '--state-dir',
    '--runtime-dir',
    '--allow-uid',
    '--socket-mode',
    '--socket-group',
    '--driver',
    '--journal',
    '--journal-max-bytes',
    '--no-sandbox',
    '-h, --help',
    '-V, --version',
  ],
};
const NAMES: Record<string, string> = { 'virtgate.js': 'virtgate', 'virtgated.js': 'virtgated', 'virtgate-helper.js': 'virtgate-helper' };

describe.each(Object.keys(FLAGS))('%s', (bin) => {
  test.each(['--version', '-V'])('%s prints "NAME VERSION" and exits 0', (flag) => {
    const r = node(bin, [flag]);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `${NAMES[bin]} ${VERSION}\n`, '']);
  });

  test.each(['--help', '-h'])('%s prints the usage, one explained line per flag, and exits 0', (flag) => {
    const r = node(bin, [flag]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(new RegExp(`^usage: ${NAMES[bin]} `));
    for (const f of FLAGS[bin]) {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`  ${f} `) || l.startsWith(`  ${f}  `));
      expect([f, line && /\S {2,}\S.{8,}$/.test(line)]).toEqual([f, true]); // the flag, then at least two spaces and its explanation
    }
  });
});

test('every virtgate subcommand answers --help with exit 0 on stdout', () => {
  for (const sub of ['pki', 'user', 'policy', 'audit', 'vm', 'list', 'setmem', 'event', 'start']) {
    const r = node('virtgate.js', [sub, '--help']);
    expect([sub, r.status, r.stderr, /^usage: virtgate /.test(r.stdout)]).toEqual([sub, 0, '', true]);
  }
});

test('`virtgate audit query LOG | head -1` ends quietly: no stack trace, status 141 (as coreutils under SIGPIPE)', () => {
  const log = path.join(tmp, 'audit.log');
  const lines: string[] = [];
  for (let seq = 0; seq < 20000; seq++) {
    const rec = { v: AUDIT_VERSION, seq, ts: new Date(1e12 + seq * 1000).toISOString(), host: 'h', kind: 'event', event: { name: 'daemon-start' } };
    lines.push(JSON.stringify({ ...rec, key: 'k', prev: GENESIS, mac: 'm' }));
  }
  fs.writeFileSync(log, lines.join('\n') + '\n'); // about 2.5 MB of table: far past a pipe's buffer
  const script = `set -o pipefail; "${process.execPath}" "${path.join(BIN, 'virtgate.js')}" audit query "${log}" | head -1; echo "status=\${PIPESTATUS[0]}"`;
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 60000 });
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/^time +seq +kind .*\nstatus=141\n$/);
  // The same output read to the end exits 0: 141 means only "the reader went away".
  const all = spawnSync('bash', ['-c', `"${process.execPath}" "${path.join(BIN, 'virtgate.js')}" audit query "${log}" | wc -l`], { encoding: 'utf8' });
  expect(all.stdout.trim()).toBe(String(20000 + 2));
});

describe('virtgated configuration errors exit 78 with one clear message each', () => {
  test('--config naming a missing file says so exactly once', () => {
    const missing = path.join(tmp, 'missing.conf');
    const r = node('virtgated.js', ['--config', missing, '--no-sandbox']);
    expect([r.status, r.stdout, r.stderr]).toEqual([78, '', `virtgated: no such file: ${missing}\n`]);
  });

  test('every problem of the file is listed, with did-you-mean for libvirtd keys', () => {
    const conf = path.join(tmp, 'bad.conf');
    fs.writeFileSync(conf, 'max_clients = 10\nkeepalive_interval = 5\nlisten_tls = 1\nmaxClientRequests = 0\n');
    const r = node('virtgated.js', ['--config', conf, '--no-sandbox']);
    expect([r.status, r.stdout]).toEqual([78, '']);
    expect(r.stderr).toBe(
      [
        'virtgated: invalid configuration, 4 problems:',
        `  ${conf}:1: max_clients: unknown option; did you mean maxClients?`,
        `  ${conf}:2: keepalive_interval: unknown option; did you mean keepaliveInterval?`,
        `  ${conf}:3: listen_tls: unknown option; did you mean tls?`,
        `  ${conf}:4: maxClientRequests: must be an integer in [1, 1024]`,
        '',
      ].join('\n'),
    );
  });

  test('a bad flag value is a configuration problem too', () => {
    const r = node('virtgated.js', ['--home', path.join(tmp, 'h0'), '--keepalive-count', 'x', '--no-sandbox']);
    expect([r.status, r.stderr]).toEqual([78, 'virtgated: invalid configuration: keepaliveCount: must be an integer in [0, 100]\n']);
  });
});

describe('a listening address that is taken', () => {
  let home: string;
  let helper: ChildProcess;
  let conf: string;
  const helperSock = (): string => path.join(home, 'run', 'helper-sock');

  beforeAll(async () => {
    home = path.join(tmp, 'home');
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    const quiet = { stdout: () => undefined, stderr: (s: string) => void process.stderr.write(s) };
    expect(pkiMain(['init-ca', '--dir', path.join(home, 'pki', 'ca')], quiet)).toBe(0);
    expect(pkiMain(['server', '--dir', path.join(home, 'pki', 'server'), '--ca', path.join(home, 'pki', 'ca'), '--host', 'localhost'], quiet)).toBe(0);
    conf = path.join(home, 'etc', 'virtgate.conf');
    fs.writeFileSync(conf, 'audit = false\n'); // no audit keys in this home: what is tested here is the listeners
    helper = spawn(process.execPath, [path.join(BIN, 'virtgate-helper.js'), '--socket', helperSock(), '--state-dir', path.join(home, 'lib'), '--no-sandbox'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      helper.stdout!.on('data', (b: Buffer) => (out += b) && /listening on/.test(out) && resolve());
      helper.once('exit', (c) => reject(new Error(`helper exited ${c}`)));
    });
  });
  afterAll(() => helper?.kill('SIGTERM'));

  const front = (args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [
        path.join(BIN, 'virtgated.js'),
        '--home',
        home,
        '--config',
        conf,
        '--helper-socket',
        helperSock(),
        '--no-sandbox',
        ...args,
      ]);
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (b: Buffer) => (stdout += b));
      p.stderr.on('data', (b: Buffer) => (stderr += b));
      const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
      p.on('close', (status) => (clearTimeout(timer), resolve({ status, stdout, stderr })));
    });
  const occupy = (): Promise<net.Server> =>
    new Promise((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
  const privateSockets = (tag: string): string[] => ['--socket', path.join(home, tag, 'sock'), '--socket-ro', path.join(home, tag, 'sock-ro')];

  test.each(['tls', 'tcp'])('--%s on a taken port: "cannot listen on KIND HOST:PORT: address in use", exit 78, nothing left behind', async (kind) => {
    const taken = await occupy();
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const r = await front([...privateSockets(kind), `--${kind}`, `127.0.0.1:${port}`]);
      expect(r.status).toBe(78);
      expect(r.stderr.split('\n')).toContain(`virtgated: cannot listen on ${kind} 127.0.0.1:${port}: address in use`);
      expect(r.stderr).not.toMatch(/restart|\n\s+at /);
      // The unix sockets opened before the failing listener are closed and removed again.
      expect(fs.readdirSync(path.join(home, kind))).toEqual([]);
    } finally {
      taken.close();
    }
  });

  test('a unix socket a live daemon answers on is not taken over: exit 78, and the other daemon keeps it', async () => {
    const first = spawn(process.execPath, [
      path.join(BIN, 'virtgated.js'),
      '--home',
      home,
      '--config',
      conf,
      '--helper-socket',
      helperSock(),
      '--no-sandbox',
      ...privateSockets('live'),
    ]);
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        first.stdout!.on('data', (b: Buffer) => (out += b) && /listening on unix .*sock-ro/.test(out) && resolve());
        first.once('exit', (c) => reject(new Error(`first front end exited ${c}`)));
      });
      const sock = path.join(home, 'live', 'sock');
      const r = await front(['--socket', sock, '--socket-ro', path.join(home, 'other-ro')]);
      expect(r.status).toBe(78);
      expect(r.stderr.split('\n')).toContain(`virtgated: cannot listen on unix ${sock}: address in use`);
      await new Promise<void>((resolve, reject) => {
        const c = net.connect(sock, () => (c.destroy(), resolve()));
        c.on('error', reject);
      });
    } finally {
      first.kill('SIGTERM');
    }
  });

  test('a stale socket file (its daemon gone) is replaced, as before', async () => {
    const stale = path.join(home, 'stale', 'sock');
    fs.mkdirSync(path.dirname(stale), { recursive: true });
    // A socket file nobody listens on: bound by a process that is then killed without cleaning up.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(fs.lstatSync(stale).isSocket()).toBe(true);
    const p = spawn(process.execPath, [
      path.join(BIN, 'virtgated.js'),
      ...['--home', home, '--config', conf, '--helper-socket', helperSock(), '--no-sandbox'],
      ...['--socket', stale, '--socket-ro', `${stale}-ro`],
    ]);
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        p.stdout!.on('data', (b: Buffer) => (out += b) && out.includes(`listening on unix ${stale}\n`) && resolve());
        p.once('exit', (c) => reject(new Error(`front end exited ${c}`)));
      });
    } finally {
      p.kill('SIGTERM');
    }
  });
});
