// SPDX-License-Identifier: Apache-2.0
// URI table: transport selection, defaults, and the CONNECT_OPEN name (remote_driver.c:797-816).
import { DEFAULT_SOCKET, DEFAULT_SOCKET_RO, parseUri } from '../../../src/client/uri';

describe('parseUri', () => {
  test.each([
    // uri, transport, host, port, socket, openName
    ['test+unix:///default?socket=/tmp/s', 'unix', null, null, '/tmp/s', 'test:///default'],
    ['test+unix:///default', 'unix', null, null, DEFAULT_SOCKET, 'test:///default'],
    ['test:///default', 'unix', null, null, DEFAULT_SOCKET, 'test:///default'],
    ['test+tcp://127.0.0.1/default', 'tcp', '127.0.0.1', 16509, null, 'test:///default'],
    ['test+tcp://127.0.0.1:16509/default?foo=bar', 'tcp', '127.0.0.1', 16509, null, 'test:///default?foo=bar'],
    ['test+tcp://host:1234/default?socket=/x&foo=bar&no_verify=1&baz=2', 'tcp', 'host', 1234, null, 'test:///default?foo=bar&baz=2'],
    ['test+tls://h.example/default?pkipath=/p', 'tls', 'h.example', 16514, null, 'test:///default'],
    ['test://h.example/default', 'tls', 'h.example', 16514, null, 'test:///default'],
    ['qemu+tls://[::1]:9999/system', 'tls', '::1', 9999, null, 'qemu:///system'],
    ['test+tcp://user@h/default', 'tcp', 'h', 16509, null, 'test:///default'],
    ['remote+tcp://127.0.0.1/', 'tcp', '127.0.0.1', 16509, null, ''],
    ['test+tcp://h/default?name=test:///other', 'tcp', 'h', 16509, null, 'test:///other'],
    ['test+tcp://h/default?NAME=x&Command=y&AUTH=z&sshauth=1&netcat=n&keyfile=k&known_hosts=k&known_hosts_verify=n', 'tcp', 'h', 16509, null, 'x'],
    ['test+tcp://h/default?tls_priority=N&mode=legacy&proxy=auto&no_sanity=1&no_tty=1&authfile=a&keep=1', 'tcp', 'h', 16509, null, 'test:///default?keep=1'],
    ['test+tcp://h', 'tcp', 'h', 16509, null, 'test://'],
    ['test+tcp://h/default#frag', 'tcp', 'h', 16509, null, 'test:///default#frag'],
  ])('%s', (uri, transport, host, port, socket, openName) => {
    const t = parseUri(uri);
    expect(t).toMatchObject({ transport, host, port, socketPath: socket, openName });
  });

  test('readonly picks the -ro socket only when none is given', () => {
    expect(parseUri('test+unix:///default', { readonly: true }).socketPath).toBe(DEFAULT_SOCKET_RO);
    expect(parseUri('test+unix:///default?socket=/s', { readonly: true }).socketPath).toBe('/s');
  });

  test('pkipath, no_verify and escapes in client-only values', () => {
    const t = parseUri('test+tls://h/default?pkipath=/a%20b&no_verify=1');
    expect(t.pkiPath).toBe('/a b');
    expect(t.noVerify).toBe(true);
    expect(parseUri('test+tls://h/default').noVerify).toBe(false);
  });

  test.each([
    ['not a uri', /invalid URI/],
    ['test+ssh://h/default', /not supported/],
    ['test+foo://h/default', /unknown transport/],
    ['test+tcp:///default', /needs a host/],
    ['test+tcp://h:99999/default', /invalid port/],
    ['test+tcp://h:0/default', /invalid port/],
    ['test+tcp://h/default?socket=%zz', /invalid escape/],
  ])('rejects %s', (uri, msg) => {
    expect(() => parseUri(uri)).toThrow(msg);
    try {
      parseUri(uri);
    } catch (err) {
      expect((err as { code: string }).code).toBe('VG_ERR_USAGE');
    }
  });
});
