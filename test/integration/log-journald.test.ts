// SPDX-License-Identifier: Apache-2.0
// Structured logs from the real daemon: journald's native protocol (to a test-owned SOCK_DGRAM listener that parses
// it), a file and stderr; what must reach them (failed logins, unknown procedures, denials) does, and no secret does.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { openRaw } from '../helpers/raw';
import { pyLibvirt, saslScram, testIf } from '../helpers/skip';

const run = promisify(execFile);
const PASSWORD = 'Correct-Horse-7f3a9c-battery';

let vg: RunningDaemon | undefined;
let listener: ChildProcess | undefined;
let dir: string;
let home: string;
let capture: string;
let logFile: string;

// The native format: KEY=VALUE\n, or KEY\n<u64 LE length><bytes>\n for values with a newline.
function parseEntry(b: Buffer): Record<string, string> {
  const f: Record<string, string> = {};
  let i = 0;
  while (i < b.length) {
    const nl = b.indexOf(0x0a, i);
    const line = b.subarray(i, nl).toString();
    const eq = line.indexOf('=');
    if (eq >= 0) {
      f[line.slice(0, eq)] = line.slice(eq + 1);
      i = nl + 1;
    } else {
      const len = Number(b.readBigUInt64LE(nl + 1));
      f[line] = b.subarray(nl + 9, nl + 9 + len).toString();
      if (b[nl + 9 + len] !== 0x0a) throw new Error('binary field not terminated by a newline');
      i = nl + 10 + len;
    }
  }
  return f;
}

const entries = (): Record<string, string>[] =>
  fs
    .readFileSync(capture, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => parseEntry(Buffer.from(l, 'base64')));

async function until<T>(what: string, f: () => T | undefined, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-log-'));
  fs.chmodSync(dir, 0o755);
  home = path.join(dir, 'home');
  capture = path.join(dir, 'journal.capture');
  logFile = path.join(dir, 'virtgate.log');
  fs.writeFileSync(logFile, '');
  fs.chmodSync(logFile, 0o666); // the front end's user appends to it
  const sockPath = path.join(dir, 'journal.sock');
  listener = spawn('/usr/bin/python3', [path.join(__dirname, 'py', 'journal_listener.py'), sockPath, capture], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    listener!.stdout!.once('data', () => resolve());
    listener!.once('exit', (c) => reject(new Error(`listener exited ${c}`)));
  });
  fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
  fs.writeFileSync(
    path.join(home, 'etc', 'virtgate.conf'),
    [
      'authUnixRw = "sasl"',
      'authDelayBaseMs = 10',
      'authDelayMaxMs = 100',
      `journalSocket = "${sockPath}"`,
      `logOutputs = "1:journald 1:stderr 1:file:${logFile}"`,
      'logFilters = "1:*"',
      '',
    ].join('\n'),
  );
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), 'user', 'add', 'alice', '--home', home, '--password-stdin'], {
    input: `${PASSWORD}\n`,
  });
  expect(r.status).toBe(0);
  // TLS keys in place (a CA and a server key under HOME/pki): their bodies must never reach a log either.
  const pki = (...a: string[]): void => void expect(spawnSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), 'pki', ...a]).status).toBe(0);
  pki('init-ca', '--dir', path.join(home, 'pki', 'ca'));
  pki('server', '--dir', path.join(home, 'pki', 'server'), '--ca', path.join(home, 'pki', 'ca'), '--ip', '127.0.0.1');
  vg = await startDaemon({ home, extraArgs: ['--tls', '127.0.0.1:0'] });
}, 60000);

afterAll(async () => {
  await vg?.stop();
  listener?.kill('SIGTERM');
});

test('entries arrive in journald native format with the structured fields', async () => {
  const start = await until('the daemon-start entries', () => entries().find((e) => /effective config/.test(e.MESSAGE)));
  expect(start).toMatchObject({ PRIORITY: '6', SYSLOG_IDENTIFIER: 'virtgated', VIRTGATE_COMPONENT: 'daemon' });
  expect(Number(start.SYSLOG_PID)).toBeGreaterThan(0);
  // An unknown procedure: a warning from the rpc component, with its number as a field.
  const c = await openRaw(vg!.sock);
  c.call(9999, 1);
  await c.waitReplies(1, 20000);
  c.end();
  const unknown = await until('the unknown procedure entry', () => entries().find((e) => e.VIRTGATE_PROC === '9999'));
  expect(unknown).toMatchObject({ PRIORITY: '4', VIRTGATE_COMPONENT: 'rpc', MESSAGE: expect.stringMatching(/^unknown procedure 9999 from unix:/) });
  await until('the same line in the file', () => /warning: unknown procedure 9999 from unix:.*\[rpc /.test(fs.readFileSync(logFile, 'utf8')) || undefined);
  await vg!.waitFor(/virtgated: warning: unknown procedure 9999/);
});

testIf(
  [pyLibvirt(), saslScram()],
  'failed logins and denials reach the log; the password, keys and sealing key never do',
  async () => {
    const login = async (u: string, pw: string): Promise<{ ok: boolean; message?: string }> =>
      JSON.parse((await run('/usr/bin/python3', [path.join(ROOT, 'test', 'interop', 'py', 'sasl_login.py'), vg!.uri, u, pw], { timeout: 30000 })).stdout);
    expect((await login('alice', `${PASSWORD}-wrong`)).ok).toBe(false);
    // Right password; alice holds no rights: logged in, then denied at open.
    expect(await login('alice', PASSWORD)).toMatchObject({ ok: false, message: expect.stringMatching(/access denied/) });
    const failed = await until('the failed login', () => entries().find((e) => /^auth failure: method=sasl/.test(e.MESSAGE)));
    expect(failed).toMatchObject({ PRIORITY: '4', VIRTGATE_COMPONENT: 'auth' });
    const denied = await until('the denial', () => entries().find((e) => /^denied /.test(e.MESSAGE) && e.VIRTGATE_USER === 'sasl:alice'));
    expect(denied).toMatchObject({ PRIORITY: '4', VIRTGATE_COMPONENT: 'rpc' });
    await until('auth success line', () => entries().find((e) => /^auth success: method=sasl user="alice"/.test(e.MESSAGE)));

    const secrets: [string, string][] = [
      ['password', PASSWORD],
      ['server key body', pemBody(path.join(home, 'pki', 'server', 'private', 'serverkey.pem'))],
      ['CA key body', pemBody(path.join(home, 'pki', 'ca', 'private', 'cakey.pem'))],
    ];
    const sealing = fs.readFileSync(path.join(home, 'keys', 'audit.key'));
    for (const enc of ['hex', 'base64'] as const) secrets.push([`sealing key (${enc})`, sealing.toString(enc).slice(0, 40)]);
    const stored = JSON.stringify(tryJson(sealing.toString('utf8')) ?? {});
    for (const m of stored.matchAll(/"([A-Za-z0-9+/=]{32,})"/g)) secrets.push(['sealing key field', m[1]]);
    const outputs: [string, string][] = [
      ['stderr', vg!.output()],
      ['file', fs.readFileSync(logFile, 'utf8')],
      [
        'journal',
        entries()
          .map((e) => JSON.stringify(e))
          .join('\n'),
      ],
      ['journal raw', fs.readFileSync(capture, 'utf8')],
    ];
    for (const [where, text] of outputs) {
      expect(text.length).toBeGreaterThan(100);
      for (const [what, secret] of secrets) {
        expect(secret.length).toBeGreaterThanOrEqual(16);
        if (text.includes(secret)) throw new Error(`${what} found in ${where}`);
      }
    }
  },
  90000,
);

function pemBody(file: string): string {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'));
  return lines[Math.floor(lines.length / 2)]; // a full line from the middle of the base64 body
}

function tryJson(t: string): unknown {
  try {
    return JSON.parse(t);
  } catch {
    return null;
  }
}

test('a helper restart (kill -9) reaches the journal as warnings: lost, then re-established', async () => {
  process.kill(vg!.helperPid(), 'SIGKILL');
  const lost = await until(
    'the helper-lost entry',
    () => entries().find((e) => e.VIRTGATE_COMPONENT === 'helper' && /^helper connection lost \(/.test(e.MESSAGE)),
    30000,
  );
  expect(lost.PRIORITY).toBe('4');
  await until('the re-established entry', () => entries().find((e) => e.VIRTGATE_COMPONENT === 'helper' && /re-established/.test(e.MESSAGE)), 60000);
}, 90000);
