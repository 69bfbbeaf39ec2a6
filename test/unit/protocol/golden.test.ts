// SPDX-License-Identifier: Apache-2.0
// Golden bytes from real virsh 9.0 / libvirtd captures (shared/reference/libvirt-captures/40-hex-key-messages.txt):
// encode -> compare -> decode -> re-encode.
import { XdrWriter } from '../../../src/common/xdr';
import { MessageStatus, MessageType, Program } from '../../../src/protocol/constants';
import { decodeHeader, encodeMessage } from '../../../src/protocol/header';
import { decodeBody, encodeCall, encodeErrorReply, encodeEvent, encodeKeepalive, encodeReply } from '../../../src/protocol/messages';
import { P, allProcs, requiredPermissions } from '../../../src/protocol/procs/remote';
import { errorCodec, remoteError } from '../../../src/protocol/types';
import { hex } from '../../helpers/hex';

const TEST_UUID = Buffer.from('6695eb01f6a4830479aa97f2502e193f', 'hex');
const testDom = { name: 'test', uuid: TEST_UUID, id: 1 };

const goldens: [string, Buffer, Buffer][] = [
  [
    'CONNECT_OPEN call',
    encodeCall(P.CONNECT_OPEN, 2, { name: 'test:///default', flags: 0 }),
    hex(
      '00000038 20008086 00000001 00000001 00000000 00000002 00000000 /* name present */ 00000001 0000000f 74657374 3a2f2f2f 64656661 756c7400 /* flags */ 00000000',
    ),
  ],
  [
    'LOOKUP_BY_NAME reply',
    encodeReply(P.DOMAIN_LOOKUP_BY_NAME, 6, { dom: testDom }),
    hex('00000038 20008086 00000001 00000017 00000001 00000006 00000000 00000004 74657374 6695eb01 f6a48304 79aa97f2 502e193f 00000001'),
  ],
  [
    'GET_INFO reply (unsigned char and short take 4 bytes)',
    encodeReply(P.DOMAIN_GET_INFO, 8, { state: 1, maxMem: 8388608n, memory: 2097152n, nrVirtCpu: 2, cpuTime: 0x18eb5f47a22ce2d0n }),
    hex('0000003c 20008086 00000001 00000010 00000001 00000008 00000000 00000001 00000000 00800000 00000000 00200000 00000002 18eb5f47 a22ce2d0'),
  ],
  [
    'NODE_GET_SECURITY_MODEL reply (char<> arrays, NUL counted)',
    encodeReply(P.NODE_GET_SECURITY_MODEL, 12, { model: 'testSecurity', doi: '' }),
    hex(`0000005c 20008086 00000001 0000007a 00000001 0000000c 00000000 0000000d
         00000074 00000065 00000073 00000074 00000053 00000065 00000063 00000075 00000072 00000069 00000074 00000079 00000000
         00000001 00000000`),
  ],
  [
    'LIST_ALL reply',
    encodeReply(P.CONNECT_LIST_ALL_DOMAINS, 6, { domains: [testDom], ret: 1 }),
    hex('00000040 20008086 00000001 00000111 00000001 00000006 00000000 00000001 00000004 74657374 6695eb01 f6a48304 79aa97f2 502e193f 00000001 00000001'),
  ],
  [
    'NODE_GET_INFO reply (char model[32] is 128 bytes)',
    encodeReply(P.NODE_GET_INFO, 6, { model: 'i686', memory: 3145728n, cpus: 16, mhz: 1400, nodes: 2, sockets: 2, cores: 2, threads: 2 }),
    hex(`000000bc 20008086 00000001 00000006 00000001 00000006 00000000
         00000069 00000036 00000038 00000036 ${'00000000 '.repeat(28)}
         00000000 00300000 00000010 00000578 00000002 00000002 00000002 00000002`),
  ],
  [
    'lifecycle event MESSAGE (serial 1)',
    encodeEvent(P.DOMAIN_EVENT_CALLBACK_LIFECYCLE, { callbackID: 0, dom: testDom, event: 3, detail: 0 }),
    hex(
      '00000044 20008086 00000001 0000013e 00000002 00000001 00000000 00000000 00000004 74657374 6695eb01 f6a48304 79aa97f2 502e193f 00000001 00000003 00000000',
    ),
  ],
  ['keepalive PING', encodeKeepalive(1), hex('0000001c 6b656570 00000001 00000001 00000002 00000000 00000000')],
  [
    'no-domain error reply (code 42, domain 12)',
    encodeErrorReply({ prog: Program.REMOTE, vers: 1, proc: 23, serial: 6 }, remoteError(42, 12, 'Domain not found')),
    hex(`00000070 20008086 00000001 00000017 00000001 00000006 00000001 0000002a 0000000c
         00000001 00000010 446f6d61 696e206e 6f742066 6f756e64 00000002 00000000
         00000001 00000010 446f6d61 696e206e 6f742066 6f756e64 00000000 00000000 ffffffff ffffffff 00000000`),
  ],
];

describe('golden bytes from real libvirt traffic', () => {
  test.each(goldens)('%s', (_name, ours, theirs) => {
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
    const { header } = decodeHeader(theirs);
    expect(header.prog === Program.REMOTE || header.prog === Program.KEEPALIVE).toBe(true);
  });

  test('decode then re-encode the GET_INFO reply', () => {
    const bytes = goldens[2][2];
    const { header, body } = decodeHeader(bytes);
    const ret = decodeBody(P.DOMAIN_GET_INFO.ret, body, 'getInfo');
    expect(ret).toEqual({ state: 1, maxMem: 8388608n, memory: 2097152n, nrVirtCpu: 2, cpuTime: 0x18eb5f47a22ce2d0n });
    expect(encodeReply(P.DOMAIN_GET_INFO, header.serial, ret).equals(bytes)).toBe(true);
  });

  test('unknown-procedure error reply matches libvirtd byte for byte', () => {
    const theirs = hex(`00000088 20008086 00000001 0000270f 00000001 00000002 00000001 00000027
      00000007 00000001 00000017 756e6b6e 6f776e20 70726f63 65647572 653a2039 39393900 00000002 00000000
      00000001 00000002 25730000 00000001 00000017 756e6b6e 6f776e20 70726f63 65647572 653a2039 39393900
      00000000 ffffffff ffffffff 00000000`);
    const { body } = decodeHeader(theirs);
    const err = decodeBody(errorCodec, body, 'error');
    expect(err).toMatchObject({ code: 39, domain: 7, message: 'unknown procedure: 9999', str1: '%s', str2: 'unknown procedure: 9999' });
    const ours = encodeErrorReply({ prog: Program.REMOTE, vers: 1, proc: 9999, serial: 2 }, err);
    expect(ours.equals(theirs)).toBe(true);
  });
});

describe('header', () => {
  test('refuses an unknown message type or status', () => {
    const bad = encodeMessage({ prog: Program.REMOTE, vers: 1, proc: 1, type: MessageType.CALL, serial: 0, status: MessageStatus.OK });
    bad.writeInt32BE(9, 16);
    expect(() => decodeHeader(bad)).toThrow(/unknown message type 9/);
    bad.writeInt32BE(0, 16);
    bad.writeInt32BE(7, 24);
    expect(() => decodeHeader(bad)).toThrow(/unknown status 7/);
  });

  test('refuses to build a message over the 32 MiB limit', () => {
    expect(() =>
      encodeMessage({ prog: Program.REMOTE, vers: 1, proc: 7, type: 1, serial: 0, status: 0 }, (w: XdrWriter) => w.opaqueFixed(Buffer.alloc(33 * 1024 * 1024))),
    ).toThrow(/exceeds/);
  });
});

describe('procedure table', () => {
  test('numbers are unique and names are camelCase', () => {
    const procs = allProcs();
    expect(new Set(procs.map((p) => p.proc)).size).toBe(procs.length);
    for (const p of procs) expect(p.name).toMatch(/^[a-z][A-Za-z]+$/);
  });

  test('every procedure has an ACL entry, except the exempt bookkeeping ones', () => {
    const exempt = new Set([
      'connectClose',
      'authList',
      'authSaslInit',
      'authSaslStart',
      'authSaslStep',
      'domainEventLifecycle',
      'domainEventCallbackLifecycle',
      'connectIsSecure',
    ]);
    for (const p of allProcs()) {
      if (exempt.has(p.name) || p.message)
        expect(p.acl).toHaveLength(0); // messages: `@acl: none`
      else expect(p.acl.length).toBeGreaterThan(0);
    }
  });

  test('only AUTH_* procedures run before authentication', () => {
    expect(
      allProcs()
        .filter((p) => !p.needAuth)
        .map((p) => p.name),
    ).toEqual(['authList', 'authSaslInit', 'authSaslStart', 'authSaslStep']);
  });

  test.each([
    ['dumpxml plain', P.DOMAIN_GET_XML_DESC, 0, ['domain:read']],
    ['dumpxml --security-info', P.DOMAIN_GET_XML_DESC, 1, ['domain:read', 'domain:read_secure']],
    ['dumpxml migratable', P.DOMAIN_GET_XML_DESC, 8, ['domain:read', 'domain:read_secure']],
    ['define', P.DOMAIN_DEFINE_XML, 0, ['domain:write', 'domain:save']],
    ['setmem current', P.DOMAIN_SET_MEMORY_FLAGS, 0, ['domain:write', 'domain:save']],
    ['setmem --live', P.DOMAIN_SET_MEMORY_FLAGS, 1, ['domain:write']],
    ['setmem --config', P.DOMAIN_SET_MEMORY_FLAGS, 2, ['domain:write', 'domain:save']],
    ['reboot via agent', P.DOMAIN_REBOOT, 2, ['domain:init_control', 'domain:write']],
  ])('flag-dependent permissions: %s', (_n, def, flags, want) => {
    expect(requiredPermissions(def, flags)).toEqual(want);
  });
});
