// SPDX-License-Identifier: Apache-2.0
import { DEFAULTS, loadConfigText, parseConfigText, resolveConfig, suggestOption } from '../../../src/common/config';

test('defaults resolve paths under home and freeze', () => {
  const c = resolveConfig({ home: '/tmp/h' });
  expect(c.unixSocket).toBe('/tmp/h/run/virtgate-sock');
  expect(c.unixSocketRo).toBe('/tmp/h/run/virtgate-sock-ro');
  expect(c.maxAnonymousClients).toBe(DEFAULTS.maxAnonymousClients);
  expect(Object.isFrozen(c)).toBe(true);
});

test.each([
  [{ nosuch: 1 }, /nosuch: unknown option/],
  [{ maxClients: '5' }, /expected a number/],
  [{ maxClientRequests: 0 }, /integer in \[1, 1024\]/],
  [{ maxMessageBytes: 64 * 1024 * 1024 }, /maxMessageBytes/],
  [{ tcp: 'localhost' }, /expected HOST:PORT/],
  [{ authDelayBaseMs: 500, authDelayMaxMs: 100 }, /authDelayMaxMs: must not be below authDelayBaseMs/],
  [{ authLockoutWindow: 0 }, /authLockoutWindow/],
  [{ authLockoutFailures: -1 }, /authLockoutFailures/],
])('invalid option %j is refused', (input, re) => {
  expect(() => resolveConfig(input)).toThrow(re);
});

test('config text: comments, ints, octal, strings, booleans', () => {
  const parsed = parseConfigText('# a comment\nmaxClients = 10\nunixSocketMode = 0o660\ntcp = "127.0.0.1:16509"  # dev\ntcpAllowNonLoopback = false\n');
  expect(parsed).toEqual({ maxClients: 10, unixSocketMode: 0o660, tcp: '127.0.0.1:16509', tcpAllowNonLoopback: false });
  expect(resolveConfig(parsed).maxClients).toBe(10);
});

test.each([
  ['maxClients 10', /expected key = value/],
  ['maxClients = ten', /cannot parse value/],
  ['a = 1\na = 2', /set twice/],
])('bad config text %j names the line', (text, re) => {
  expect(() => parseConfigText(text, 'f.conf')).toThrow(re);
});

test('virtgate.conf.example lists every option at its default, and parses once uncommented', () => {
  const fs = require('node:fs');
  const text: string = fs.readFileSync(require('node:path').join(__dirname, '..', '..', '..', 'virtgate.conf.example'), 'utf8');
  const uncommented = text
    .split('\n')
    .filter((l) => /^#\w+ = /.test(l))
    .map((l) => l.slice(1))
    .join('\n');
  expect(parseConfigText(uncommented)).toEqual(DEFAULTS);
});

test('the login limits reach the auth service from the resolved configuration', () => {
  const c = resolveConfig({ home: '/tmp/limits-home', authLockoutFailures: 3, authLockoutDuration: 0, authDelayBaseMs: 5, authDelayMaxMs: 5 });
  const fs = require('node:fs');
  const os = require('node:os');
  const dir: string = fs.mkdtempSync(require('node:path').join(os.tmpdir(), 'vg-limits-'));
  const { AuthService } = require('../../../src/unprivileged/auth');
  const a = new AuthService(require('node:path').join(dir, 'users.json'), () => undefined, c);
  expect(a.limits).toEqual({ authDelayBaseMs: 5, authDelayMaxMs: 5, authLockoutFailures: 3, authLockoutWindow: 900, authLockoutDuration: 0 });
  a.close?.();
  fs.rmSync(dir, { recursive: true, force: true });
});

// What a thrown configuration error lists, one problem per entry.
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect((e as { code?: string }).code).toBe('VG_ERR_CONFIG_INVALID');
    return (e as { problems: string[] }).problems;
  }
  throw new Error('no error thrown');
}

test('every problem is listed, not only the first, each with its file and line', () => {
  const text = ['# libvirtd habits', 'max_clients = 10', 'keepalive_interval = 5', 'maxClinets = 3', 'bad line', 'tcp = "x"', 'maxClientRequests = "4"'].join(
    '\n',
  );
  const e = (() => {
    try {
      loadConfigText(text, '/etc/virtgate.conf');
    } catch (err) {
      return err as Error & { problems: string[] };
    }
    throw new Error('accepted');
  })();
  expect(e.problems).toEqual([
    '/etc/virtgate.conf:2: max_clients: unknown option; did you mean maxClients?',
    '/etc/virtgate.conf:3: keepalive_interval: unknown option; did you mean keepaliveInterval?',
    '/etc/virtgate.conf:4: maxClinets: unknown option; did you mean maxClients?',
    "/etc/virtgate.conf:5: expected key = value, got 'bad line'",
    "/etc/virtgate.conf:6: tcp: expected HOST:PORT, got 'x'",
    '/etc/virtgate.conf:7: maxClientRequests: expected a number, got "4"',
  ]);
  expect(e.message).toMatch(/^invalid configuration: 6 problems: \/etc\/virtgate\.conf:2: max_clients: unknown option; did you mean maxClients\?; /);
});

test('one problem keeps the one-line message; several keys given directly are all listed', () => {
  expect(() => resolveConfig({ max_clients: 1 })).toThrow(/^invalid configuration: max_clients: unknown option; did you mean maxClients\?$/);
  expect(problemsOf(() => resolveConfig({ maxClients: 0, authTcp: 'kerberos', tlsMinVersion: 'SSLv3', auditCopy: 'email' }))).toEqual([
    'maxClients: must be an integer in [1, 100000]',
    "authTcp: expected 'none' or 'sasl'",
    "auditCopy: expected '', 'console', 'syslog' or 'console,syslog', got 'email'",
    'tlsMinVersion: expected one of TLSv1.2, TLSv1.3',
  ]);
});

test('parseConfigText reports every bad line', () => {
  expect(problemsOf(() => parseConfigText('a 1\nb = 2\nb = 3\nc = nope\n', 'f.conf'))).toEqual([
    "f.conf:1: expected key = value, got 'a 1'",
    'f.conf:3: b set twice (first at f.conf:2)',
    "f.conf:4: c: cannot parse value 'nope' (quote strings)",
  ]);
});

test('flags override the file, and a bad file value that a flag replaces is no problem', () => {
  const c = loadConfigText('maxClients = 7\nkeepaliveCount = "x"\n', 'f.conf', { keepaliveCount: 3 });
  expect([c.maxClients, c.keepaliveCount]).toEqual([7, 3]);
  expect(problemsOf(() => loadConfigText('', 'f.conf', { keepaliveCount: -1 }))).toEqual(['keepaliveCount: must be an integer in [0, 100]']);
});

test.each([
  ['max_clients', 'maxClients'],
  ['MAX_ANONYMOUS_CLIENTS', 'maxAnonymousClients'],
  ['keepalive_interval', 'keepaliveInterval'],
  ['tls_allowed_dn_list', 'tlsAllowedDnList'],
  ['auth_unix_rw', 'authUnixRw'],
  ['listen_tls', 'tls'],
  ['listen_tcp', 'tcp'],
  ['unix_sock_rw_perms', 'unixSocketMode'],
  ['key_file', 'tlsKeyFile'],
  ['maxClinets', 'maxClients'],
  ['keepaliveInterva', 'keepaliveInterval'],
  ['auditkeepfiles', 'auditKeepFiles'],
])('did you mean: %s -> %s', (key, want) => {
  expect(suggestOption(key)).toBe(want);
});

test.each(['max_workers', 'log_level', 'foo', 'admin_max_clients'])('no suggestion for %s (nothing close)', (key) => {
  expect(suggestOption(key)).toBeUndefined();
  expect(() => resolveConfig({ [key]: 1 })).toThrow(new RegExp(`${key}: unknown option$`));
});
