// SPDX-License-Identifier: Apache-2.0
// sd_listen_fds(3) parsing: which fd is which listener, and every way a hand-over can be wrong.
import { parseListenFds } from '../../../src/common/systemd';
import { SdNotifier, sockaddrUn } from '../../../src/sandbox/notify';

const env = (fds: string, names?: string, pid = '42'): Record<string, string> => ({
  LISTEN_FDS: fds,
  LISTEN_PID: pid,
  ...(names === undefined ? {} : { LISTEN_FDNAMES: names }),
});

test('names map to listeners from fd 3 on, in any order and any subset', () => {
  expect(parseListenFds(env('3', 'virtgate-sock:virtgate-sock-ro:virtgate-tls'), 42)).toEqual({ rw: 3, ro: 4, tls: 5 });
  expect(parseListenFds(env('2', 'virtgate-tls:virtgate-sock'), 42)).toEqual({ tls: 3, rw: 4 });
  expect(parseListenFds({ LISTEN_FDS: '0', LISTEN_PID: '42' }, 42)).toEqual({});
});

test('nothing is taken when the variables are absent or name another process', () => {
  expect(parseListenFds({}, 42)).toEqual({});
  expect(parseListenFds(env('1', 'virtgate-sock', '41'), 42)).toEqual({});
  expect(parseListenFds({ LISTEN_FDS: '1' }, 42)).toEqual({});
});

test.each([
  [env('1', 'virtgate-sock', 'x'), /LISTEN_PID: not a pid/],
  [env('one', 'virtgate-sock'), /LISTEN_FDS: not a count/],
  [env('2', 'virtgate-sock'), /2 socket\(s\) passed but 1 name/],
  [env('1'), /1 socket\(s\) passed but 0 name/],
  [env('1', 'unknown'), /socket 'unknown' is none of virtgate-sock, virtgate-sock-ro, virtgate-tls/],
  [env('2', 'virtgate-sock:virtgate-sock'), /socket 'virtgate-sock' passed twice/],
])('a wrong hand-over is refused: %j', (e, re) => {
  expect(() => parseListenFds(e, 42)).toThrow(re);
  try {
    parseListenFds(e, 42);
  } catch (err) {
    expect((err as { code?: string }).code).toBe('VG_ERR_CONFIG_INVALID');
  }
});

test('sockaddr_un: a path ends in NUL; an abstract name starts with one and has no trailing NUL', () => {
  const p = sockaddrUn('/run/systemd/notify');
  expect(p.addr.readUInt16LE(0)).toBe(1);
  expect(p.len).toBe(2 + '/run/systemd/notify'.length + 1);
  expect(p.addr.subarray(2, p.len).toString()).toBe('/run/systemd/notify\0');
  const a = sockaddrUn('@abc');
  expect(a.len).toBe(2 + 1 + 3);
  expect([...a.addr.subarray(2, a.len)]).toEqual([0, 0x61, 0x62, 0x63]);
  expect(() => sockaddrUn(`/${'x'.repeat(107)}`)).toThrow(/too long/);
});

test('the notifier takes NOTIFY_SOCKET out of the environment and is a no-op without it', () => {
  const e: Record<string, string | undefined> = { NOTIFY_SOCKET: '/nonexistent/notify', PATH: '/bin' };
  const n = SdNotifier.fromEnv(e);
  expect(e).toEqual({ PATH: '/bin' });
  expect(n.target).toBe('/nonexistent/notify');
  expect(n.notify('READY=1')).toBe(false); // nobody listens: false, not a throw
  expect(SdNotifier.fromEnv({}).notify('READY=1')).toBe(false);
  expect(() => new SdNotifier('relative/sock')).toThrow(/not a unix socket address/);
});
