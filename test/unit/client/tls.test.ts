// SPDX-License-Identifier: Apache-2.0
// TLS transport: certificate files, server-name check and libvirt's one-byte confirmation, against a node tls server.
import * as tls from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { FrameDecoder } from '../../../src/common/framing';
import { Limits } from '../../../src/protocol/constants';
import { decodeHeader } from '../../../src/protocol/header';
import { encodeReply } from '../../../src/protocol/messages';
import { lookupProc } from '../../../src/protocol/procs/remote';
import { VirtgateClient } from '../../../src/client/client';
import { openTransport, pkiFiles } from '../../../src/client/transport';
import { parseUri } from '../../../src/client/uri';

interface Issued {
  cert: string;
  key: string;
}

function issue(
  cn: string,
  ca: { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey } | null,
  ext: object[],
): Issued & { raw: forge.pki.Certificate; rawKey: forge.pki.rsa.PrivateKey } {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = String(Math.floor(Math.random() * 1e9) + 1);
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  cert.setIssuer(ca ? ca.cert.subject.attributes : [{ name: 'commonName', value: cn }]);
  cert.setExtensions(ext);
  cert.sign(ca ? ca.key : keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey), raw: cert, rawKey: keys.privateKey };
}

let dir: string;
let ca: ReturnType<typeof issue>;
let server: Issued;
let wrongHost: Issued;

beforeAll(() => {
  ca = issue('virtgate test CA', null, [
    { name: 'basicConstraints', cA: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true },
  ]);
  const signer = { cert: ca.raw, key: ca.rawKey };
  const leaf = (alt: object[], purpose: object) => [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    purpose,
    { name: 'subjectAltName', altNames: alt },
  ];
  server = issue('127.0.0.1', signer, leaf([{ type: 7, ip: '127.0.0.1' }], { name: 'extKeyUsage', serverAuth: true }));
  wrongHost = issue('wronghost.example', signer, leaf([{ type: 2, value: 'wronghost.example' }], { name: 'extKeyUsage', serverAuth: true }));
  const client = issue('client', signer, leaf([{ type: 2, value: 'client' }], { name: 'extKeyUsage', clientAuth: true }));
  dir = mkdtempSync(join(tmpdir(), 'vg-pki-'));
  writeFileSync(join(dir, 'cacert.pem'), ca.cert);
  writeFileSync(join(dir, 'clientcert.pem'), client.cert);
  writeFileSync(join(dir, 'clientkey.pem'), client.key);
});

// A TLS server requiring a client certificate; `greet` decides what it does once the handshake is done.
async function tlsServer(id: Issued, greet: (s: tls.TLSSocket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const srv = tls.createServer({ key: id.key, cert: id.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, greet);
  const socks: tls.TLSSocket[] = [];
  srv.on('secureConnection', (s) => socks.push(s.on('error', () => undefined)));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    close: () => new Promise((r) => (socks.forEach((s) => s.destroy()), srv.close(() => r()))),
  };
}

const target = (port: number) => parseUri(`test+tls://127.0.0.1:${port}/default?pkipath=${dir}`);

describe('TLS transport', () => {
  test('0x01 confirms; bytes after it stay in the stream', async () => {
    const srv = await tlsServer(server, (s) => s.write(Buffer.from([0x01, 0x41, 0x42])));
    const sock = await openTransport(target(srv.port));
    const rest = await new Promise<Buffer>((r) => sock.once('data', r));
    expect(rest.toString()).toBe('AB');
    sock.destroy();
    await srv.close();
  });

  test('any other byte is a verification failure', async () => {
    const srv = await tlsServer(server, (s) => s.write(Buffer.from([0x00])));
    await expect(openTransport(target(srv.port))).rejects.toMatchObject({
      code: 'VG_ERR_CLIENT_CLOSED',
      message: 'connection closed: server verification (of our certificate or IP address) failed',
    });
    await srv.close();
  });

  test('a server that closes without confirming', async () => {
    const srv = await tlsServer(server, (s) => s.end());
    await expect(openTransport(target(srv.port))).rejects.toThrow(/Unable to read TLS confirmation/);
    await srv.close();
  });

  test('the server certificate must match the URI host', async () => {
    const srv = await tlsServer(wrongHost, (s) => s.write(Buffer.from([0x01])));
    await expect(openTransport(target(srv.port))).rejects.toMatchObject({
      code: 'VG_ERR_CLIENT_CLOSED',
      message: expect.stringMatching(/ERR_TLS_CERT_ALTNAME_INVALID/),
    });
    // ?no_verify=1 downgrades the check, as libvirt does.
    const sock = await openTransport(parseUri(`test+tls://127.0.0.1:${srv.port}/default?pkipath=${dir}&no_verify=1`));
    sock.destroy();
    await srv.close();
  });

  test('the whole open sequence runs inside the tunnel after the byte', async () => {
    const srv = await tlsServer(server, (s) => {
      s.write(Buffer.from([0x01]));
      const frames = new FrameDecoder({ min: Limits.FRAME_MIN, max: Limits.MESSAGE_MAX });
      s.on('data', (c) => {
        for (const f of frames.push(c)) {
          const { header } = decodeHeader(f);
          const ret = header.proc === 66 ? { types: [0] } : header.proc === 60 ? { supported: 0 } : undefined;
          s.write(encodeReply(lookupProc(header.proc)!, header.serial, ret));
        }
      });
    });
    const c = await VirtgateClient.connect(`test+tls://127.0.0.1:${srv.port}/default?pkipath=${dir}`);
    expect(c.features.eventCallback).toBe(false);
    await c.close();
    await srv.close();
  });

  test('a missing CA file is reported before connecting', async () => {
    await expect(openTransport(parseUri('test+tls://127.0.0.1:1/default?pkipath=/nonexistent'))).rejects.toMatchObject({
      code: 'VG_ERR_USAGE',
      message: "Cannot read CA certificate '/nonexistent/cacert.pem': ENOENT",
    });
  });
});

describe('pkiFiles', () => {
  const has =
    (...files: string[]) =>
    (p: string) =>
      files.includes(p);
  test.each([
    ['pkipath, no client cert', '/p', false, has(), { ca: '/p/cacert.pem', cert: null, key: null }],
    [
      'pkipath with cert and key',
      '/p',
      false,
      has('/p/clientcert.pem', '/p/clientkey.pem'),
      { ca: '/p/cacert.pem', cert: '/p/clientcert.pem', key: '/p/clientkey.pem' },
    ],
    [
      'root',
      null,
      true,
      has('/etc/pki/libvirt/clientcert.pem', '/etc/pki/libvirt/private/clientkey.pem'),
      { ca: '/etc/pki/CA/cacert.pem', cert: '/etc/pki/libvirt/clientcert.pem', key: '/etc/pki/libvirt/private/clientkey.pem' },
    ],
    [
      'user files',
      null,
      false,
      has('/h/.pki/libvirt/cacert.pem', '/h/.pki/libvirt/clientcert.pem', '/h/.pki/libvirt/clientkey.pem'),
      { ca: '/h/.pki/libvirt/cacert.pem', cert: '/h/.pki/libvirt/clientcert.pem', key: '/h/.pki/libvirt/clientkey.pem' },
    ],
    [
      'user without key falls back to the system pair',
      null,
      false,
      has('/h/.pki/libvirt/clientcert.pem', '/etc/pki/libvirt/clientcert.pem', '/etc/pki/libvirt/private/clientkey.pem'),
      { ca: '/etc/pki/CA/cacert.pem', cert: '/etc/pki/libvirt/clientcert.pem', key: '/etc/pki/libvirt/private/clientkey.pem' },
    ],
  ])('%s', (_name, pkipath, root, exists, want) => {
    expect(pkiFiles(pkipath, { root, home: '/h', exists })).toEqual(want);
  });
});
