// SPDX-License-Identifier: Apache-2.0
// Server certificate names: --host takes RFC 1123 DNS names only, --ip IPv4/IPv6 addresses only; refused before any
// file is written, as a usage error of `virtgate pki server`.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkHost, checkIp, initCa, issueServer } from '../../../src/pki/pki';
import { pkiMain } from '../../../src/cli/pki';

test.each(['localhost', 'vm.example', 'a', 'x-1.example.org', '*.example.com', 'UPPER.Example', `${'a'.repeat(63)}.example`, '1host.example'])(
  'host %s is a DNS name',
  (h) => {
    expect(checkHost(h)).toBe(h);
  },
);

test.each([
  ['bad host!', /not a DNS name/],
  ['', /not a DNS name/],
  ['-lead.example', /not a DNS name/],
  ['trail-.example', /not a DNS name/],
  ['a..b', /not a DNS name/],
  ['under_score.example', /not a DNS name/],
  [`${'a'.repeat(64)}.example`, /not a DNS name/],
  [`${'abcdefghi.'.repeat(25)}example`, /not a DNS name/], // 262 characters
  ['foo.*.example', /not a DNS name/],
  ['127.0.0.1', /is an IP address: give it as --ip 127.0.0.1/],
  ['::1', /is an IP address/],
])('host %j is refused', (h, re) => {
  expect(() => checkHost(h)).toThrow(re);
});

test.each([
  ['127.0.0.1', '127.0.0.1'],
  ['0.0.0.0', '0.0.0.0'],
  ['255.255.255.255', '255.255.255.255'],
  ['::1', '::1'],
  ['::', '::'],
  ['fe80::1', 'fe80::1'],
  ['2001:db8::8a2e:370:7334', '2001:db8::8a2e:370:7334'],
  ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ['::ffff:192.0.2.1', '::ffff:c000:201'],
  ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
])('ip %s is an address (encoded as %s)', (ip, encoded) => {
  expect(checkIp(ip)).toBe(encoded);
});

test.each(['256.1.1.1', '1.2.3', '01.2.3.4', '1:2:3:4:5:6:7:8:9', '1::2::3', 'localhost', '12345::', '1:2:3:4:5:6:7:1.2.3.4', '::ffff:300.1.1.1', ''])(
  'ip %j is refused',
  (ip) => {
    expect(() => checkIp(ip)).toThrow(/is not an IPv4 or IPv6 address/);
  },
);

test('pki server refuses a bad --host or --ip with exit 2, and writes nothing', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-pki-names-'));
  try {
    const caDir = path.join(root, 'ca');
    initCa({ dir: caDir });
    for (const bad of [
      ['--host', 'bad host!'],
      ['--host', 'ok.example', '--ip', '1.2.3.999'],
    ]) {
      let out = '';
      let err = '';
      const dir = path.join(root, 'server');
      const rc = pkiMain(['server', '--dir', dir, '--ca', caDir, ...bad], { stdout: (s) => void (out += s), stderr: (s) => void (err += s) });
      expect(rc).toBe(2);
      expect(out).toBe('');
      expect(err).toMatch(/^error: --(host 'bad host!' is not a DNS name|ip '1\.2\.3\.999' is not an IPv4 or IPv6 address)/);
      expect(fs.existsSync(dir)).toBe(false);
    }
    // The library refuses too, for callers other than the CLI.
    expect(() => issueServer({ dir: path.join(root, 's2'), caDir, hosts: ['bad host!'], ips: [] })).toThrow(/not a DNS name/);
    expect(fs.existsSync(path.join(root, 's2'))).toBe(false);
    const { certFile } = issueServer({ dir: path.join(root, 's3'), caDir, hosts: ['*.example.com'], ips: ['::ffff:192.0.2.1'] });
    expect(new crypto.X509Certificate(fs.readFileSync(certFile)).subjectAltName).toBe('DNS:*.example.com, IP Address:0:0:0:0:0:FFFF:C000:201');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
