// SPDX-License-Identifier: Apache-2.0
import { DEFAULTS, parseConfigText, resolveConfig } from '../../../src/common/config';

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
