// SPDX-License-Identifier: Apache-2.0
// The helper IPC's bytes, pinned: one request and one answer frame per op and per action of a grouped op, as SHA-256
// of the whole frame. Any change to a frame's layout must change this file too (a reviewed change).
import { createHash } from 'node:crypto';
import {
  type Actor,
  type Answers,
  type DomainInfo,
  type DomainSummary,
  type Requests,
  DOMAIN_READ,
  DOMAIN_WRITE,
  Op,
  REQUEST_OPS,
  decodeAnswer,
  decodeRequest,
  encodeAnswer,
  encodeRequest,
} from '../../../src/ipc/program';
import { NETWORK_READ, NETWORK_WRITE, type NetworkSummary } from '../../../src/ipc/objects/network';
import { DEFAULT_NETWORK } from '../../../src/privileged/drivers/test-networks';

const uuid = Buffer.from('0d46d412f292416c8b9aea26480a531f', 'hex');
const actor: Actor = { user: 'alice', tenant: 'acme', requestId: 'req-7', auditHead: `12:${'ab'.repeat(32)}` };
const summary: DomainSummary = { name: 'foo', uuid, id: 3, state: 1, reason: 1, persistent: true, tenant: 'acme' };
const info: DomainInfo = {
  ...summary,
  maxMemKiB: 524288n,
  memoryKiB: 262144n,
  nrVirtCpu: 2,
  maxVcpus: 4,
  cpuTimeNs: 123456789n,
  autostart: false,
  osType: 'hvm',
  hasManagedSave: false,
  securityLabel: 'virtgate_t',
  securityEnforcing: true,
};
// The test driver's seeded network (its config is the typed one the front end parses test:///default's XML into).
const net: NetworkSummary = { name: 'default', uuid, tenant: '', active: true, persistent: true, autostart: false };
const xml = "<domain type='test'><name>foo</name><memory>1024</memory><os><type>hvm</type></os></domain>";

// [label, request op, request body, answer body]: every op of the table, and every action of a grouped op (checked below).
const SAMPLES: [string, keyof Requests, unknown, unknown][] = [
  ['HELLO', Op.HELLO_REQ, { version: 2 }, { version: 2, driver: 'test' }],
  [
    'NODE_FACTS',
    Op.NODE_FACTS_REQ,
    {},
    {
      driver: 'test',
      uri: 'test:///default',
      hvType: 'Test',
      hvVersion: 2n,
      hostname: 'h1',
      model: 'i686',
      memoryKiB: 3145728n,
      cpus: 16,
      mhz: 1400,
      nodes: 2,
      sockets: 2,
      cores: 2,
      threads: 2,
      capabilitiesXml: '<capabilities/>',
      securityModel: 'selinux',
      securityDoi: '0',
      maxVcpus: 32,
      cellsFreeBytes: [2097152n, 4194304n],
      freeMemoryBytes: 3145728n,
    },
  ],
  [
    'DOMAIN_READ.list',
    Op.DOMAIN_READ_REQ,
    { action: 'list' },
    { action: 'list', domains: [summary, { ...summary, name: 'bar', id: -1, state: 5, reason: 0, tenant: undefined }] },
  ],
  ['DOMAIN_READ.lookup', Op.DOMAIN_READ_REQ, { action: 'lookup', key: { kind: 0, name: 'foo' } }, { action: 'lookup', ...summary }],
  ['DOMAIN_READ.info', Op.DOMAIN_READ_REQ, { action: 'info', uuid }, { action: 'info', ...info }],
  ['DOMAIN_READ.xml', Op.DOMAIN_READ_REQ, { action: 'xml', uuid, inactive: true }, { action: 'xml', xml }],
  ['DOMAIN_WRITE.define', Op.DOMAIN_WRITE_REQ, { action: 'define', actor, xml }, { action: 'define', ...summary }],
  ['DOMAIN_WRITE.createXml', Op.DOMAIN_WRITE_REQ, { action: 'createXml', actor, xml }, { action: 'createXml', ...summary }],
  ['DOMAIN_WRITE.undefine', Op.DOMAIN_WRITE_REQ, { action: 'undefine', actor, uuid }, { action: 'undefine' }],
  ['DOMAIN_WRITE.control', Op.DOMAIN_WRITE_REQ, { action: 'control', actor, uuid, control: 3 }, { action: 'control', ...summary }],
  [
    'DOMAIN_WRITE.setMemory',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setMemory', actor, uuid, memoryKiB: 131072n, live: true, config: false, max: true },
    { action: 'setMemory' },
  ],
  ['DOMAIN_WRITE.setVcpus', Op.DOMAIN_WRITE_REQ, { action: 'setVcpus', actor, uuid, nvcpus: 2, live: false, config: true, max: false }, { action: 'setVcpus' }],
  [
    'DOMAIN_WRITE.setTenant',
    Op.DOMAIN_WRITE_REQ,
    { action: 'setTenant', actor, uuid, tenant: 'globex' },
    { action: 'setTenant', ...summary, tenant: 'globex' },
  ],
  [
    'EVENTS_SUBSCRIBE',
    Op.EVENTS_SUBSCRIBE_REQ,
    {},
    {
      event: { domain: summary, event: 2, detail: 1 },
      snapshot: { info, cpuBaseNs: 5n, cpuSinceMs: 1700000000000, cpuClock: true },
      removed: uuid,
      synced: true,
      objectEvent: { type: 'network', name: 'default', uuid, tenant: '', event: 2, detail: 0 },
    },
  ],
  ['NETWORK_READ.list', Op.NETWORK_READ_REQ, { action: 'list' }, { action: 'list', networks: [net, { ...net, name: 'lab', tenant: 'acme', active: false }] }],
  ['NETWORK_READ.lookup', Op.NETWORK_READ_REQ, { action: 'lookup', key: { name: 'default' } }, { action: 'lookup', network: net }],
  ['NETWORK_READ.get', Op.NETWORK_READ_REQ, { action: 'get', uuid, inactive: true }, { action: 'get', network: net, config: DEFAULT_NETWORK }],
  ['NETWORK_WRITE.define', Op.NETWORK_WRITE_REQ, { action: 'define', actor, config: DEFAULT_NETWORK }, { action: 'define', network: net }],
  ['NETWORK_WRITE.create', Op.NETWORK_WRITE_REQ, { action: 'create', actor, config: DEFAULT_NETWORK }, { action: 'create', network: net }],
  ['NETWORK_WRITE.undefine', Op.NETWORK_WRITE_REQ, { action: 'undefine', actor, uuid }, { action: 'undefine', network: net }],
  ['NETWORK_WRITE.start', Op.NETWORK_WRITE_REQ, { action: 'start', actor, uuid }, { action: 'start', network: net }],
  ['NETWORK_WRITE.destroy', Op.NETWORK_WRITE_REQ, { action: 'destroy', actor, uuid }, { action: 'destroy', network: net }],
  ['NETWORK_WRITE.setAutostart', Op.NETWORK_WRITE_REQ, { action: 'setAutostart', actor, uuid, autostart: true }, { action: 'setAutostart', network: net }],
  [
    'NETWORK_WRITE.update',
    Op.NETWORK_WRITE_REQ,
    {
      action: 'update',
      actor,
      uuid,
      command: 3,
      parentIndex: -1,
      live: true,
      config: false,
      item: { section: 4, host: { mac: '52:54:00:00:00:01', id: '', name: 'vm1', ip: '192.168.122.50' } },
    },
    { action: 'update', network: net },
  ],
];

// [request frame digest, answer frame digest] by label, request id 0x01020304. IPC version 2 regrouped the domain ops
// into DOMAIN_READ / DOMAIN_WRITE with typed actions and added object events to the stream: every frame changed then.
const PINNED: Record<string, [string, string]> = {
  HELLO: ['5ad229d21825dc1d75714c9a600d073a72e2488da2373b3dd25224892b2649cf', 'd9eb610d1665b1755a49056509da4a90b3c4bc521165207832799c6161735651'],
  NODE_FACTS: ['89a15e4f4ad5e18d9764a6d18ebb2e40b9ea2086682bf1466cd2dcf86c6c2dc2', 'a14cc148cbf371a8d19367337d96b6c851acdc5d5a6af627370aa6868dc42e34'],
  'DOMAIN_READ.list': ['6921f3b41bb4f11d699c9f06dca47fd2692edc1ab6ce1ee279e9160468c6b979', '8937b32f33abf04affff31149a9fbb1452d5dcf1ce35c1398982605c08a4a0d2'],
  'DOMAIN_READ.lookup': [
    '6bda206e33b2f4c3e4f5afc73768c4c82c0026021b429a6a7f4721ef06ca588e',
    '40d5791f2e61e893a01d08feef0f194182b81cb668450bf6b5a07f7878ac8b3b',
  ],
  'DOMAIN_READ.info': ['f3866ff47035747c9dcef97e71ad788c8f5fabf233f858349cc2e952a3021181', '281b36f47d169c73d65b67a1d957ed82f98ba2f1913aaf8d6cb418b13a7c324a'],
  'DOMAIN_READ.xml': ['8d0eabde53efcfc18661c363670af647adb39bc692a5c9263f1b37919f73da3e', 'b8c8f3fd9272baaa6cc7757692e8d4ecafb985790cafb2d5f3060fe2902e652f'],
  'DOMAIN_WRITE.define': [
    'ff5e53d629119ef7044276ced34070b89311e7f7bd87ee74c355ffe45f489c4c',
    '0043129708856f548f35aa737947d6b102fc2fa5de900d2b15f3c72438c30005',
  ],
  'DOMAIN_WRITE.createXml': [
    '24c65fd0e7aa52bfc3e8fd2de7fe0a135bc78751c790fe0146a98202a416f940',
    '0d4e3a01d9e6e8b0bb3869923d4f05c96cefdc169286eb715ad9ce169003f7e6',
  ],
  'DOMAIN_WRITE.undefine': [
    'bc3ff4baac9e11264518d9ab0d8da93a3f6a462902fd37d849f05fb466b65ef5',
    'c6b36d3f6a2df2c7c40c366fd6eb134a5f13d54ac4530973be50050031cce78b',
  ],
  'DOMAIN_WRITE.control': [
    '36c17b2f342831e4834adca27535798d3ef0478b64a1950679a768a0fcae5d01',
    '9301cb1621cace07afa2000f37692e50b6f4f903af4979ac938f7519dbe98a32',
  ],
  'DOMAIN_WRITE.setMemory': [
    '84161f4b57d78b735155b0a011bcef7f6ef11a588b72bb10b3aac4bfdf8ca558',
    'fbda6b79933d07ba19238898d8e906b44614b44716567fe11b5baa4bdca3c9b7',
  ],
  'DOMAIN_WRITE.setVcpus': [
    '61afa12a3d479a59fe2c79cc947f1c7567bfac6d8e1fd329d9e9e506d32bbbe9',
    '158a52c48f250d52c9f956bb45da877938df23fc119b6b235cbe712e9687fa57',
  ],
  'DOMAIN_WRITE.setTenant': [
    '6825397978e6c113840bfe7d9757c3fa7c9e7203bb629f46ee4fd5b94102acb8',
    '84b05d5c4acddf312da5e659c5c77e6bc717365a511082d743dc9d667cdcf6ca',
  ],
  EVENTS_SUBSCRIBE: ['50fed1ae603bdfd21ece728102ded645cd098ba88027ccf25bd7b3b931eba4b2', 'd083d20397351095b371f4f1fc45c0698f242c8ea262a4cc03f7fe47124ef30b'],
  'NETWORK_READ.list': ['93be576a2af985d942ccb156be0b709f9c10db0ac2d2207f90c45f4c245971e6', 'f5507c06f9343881d571d2358823e21fd97ee088acd836489528d5a23517b738'],
  'NETWORK_READ.lookup': [
    '49e945c575dfc41237be1ad6d5809d9044e179eaa50734154b5c195420390993',
    '130690dc55b9d6aa9cb2bef9971a3fd14dd981edd2930a7a35ac18b13c07db3e',
  ],
  'NETWORK_READ.get': ['aafe3ad77e09fa6d4b66069671d8873c1e32705de6a638a9c286c49db57db489', '265ebbc42dfec70c22a2cc092ac3d30d9c089cff5995361869aabec26a2b29a9'],
  'NETWORK_WRITE.define': [
    '4a14de059ba0f7c839771b218c86cbd0abf9953ec866ff293972ad87e0018a8d',
    'c08c078da51012f30ade06141767af925a1a848a1a3dc9c3f91f5237007dd2f7',
  ],
  'NETWORK_WRITE.create': [
    '8d8593a4fb10d961510121f42941f44777b813f4b26a1c7cf3eace2ed2e2e75a',
    '4784579ac7ea577873731bccd9a0d64c3845aabb422fd21a1b7480c59d18be59',
  ],
  'NETWORK_WRITE.undefine': [
    'e38f84bacae32ddee6623022beac2d00eaca4a737f753113c11c733dd86569f7',
    '8c240e3e994a80c8ceba49c91e6826ed215e83768f17d07df9ee8074cecdc85d',
  ],
  'NETWORK_WRITE.start': [
    '06e28a813a093161f68b8fe6aa3cf3039825231622193c0762dbd9e686630183',
    '14bcf0b27979e52d5979b9e8ec53f5986bd5941396660e89d22d4d6842c63371',
  ],
  'NETWORK_WRITE.destroy': [
    '08ba79be3a1bc7c1cba8f07fc4c0f8af8c3469ac8464f1d5b26dc1fc2394f413',
    'a38b071c8e3727499df3c154c6bf74301586428a60300b8aa1005c17d86d9604',
  ],
  'NETWORK_WRITE.setAutostart': [
    'a2447663eac217bf5a2f8897e48c75308a8a097197da88ef8ec7b4718ee99a30',
    '5044ab0221e90288d0c2d5f014a7b4c7b5af4dd3293452db1e7a4d33bc6d0334',
  ],
  'NETWORK_WRITE.update': [
    '51d581fc7e5c52467676652d14e7d9450969c585aeb9f36966f50f71d966f61c',
    '3f30a3eef98c245795775b0fbc2973ace50ef5eb75dda627e42a589cb24a1ca1',
  ],
};

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const ID = 0x01020304;

function frames(): Record<string, [string, string]> {
  const out: Record<string, [string, string]> = {};
  for (const [label, op, req, ans] of SAMPLES)
    out[label] = [sha(encodeRequest(op, ID, req as never)), sha(encodeAnswer((op + 1) as keyof Answers, ID, ans as never))];
  return out;
}

test('every request and answer frame is byte-identical to the pinned encoding', () => {
  expect(frames()).toEqual(PINNED);
});

test('the samples cover every op and every action of each grouped op', () => {
  expect([...new Set(SAMPLES.map(([, op]) => op))].sort((x, y) => x - y)).toEqual([...REQUEST_OPS].sort((x, y) => x - y));
  for (const g of [DOMAIN_READ, DOMAIN_WRITE, NETWORK_READ, NETWORK_WRITE]) {
    const seen = SAMPLES.filter(([label]) => label.startsWith(`${g.name}.`)).map(([label]) => label.slice(g.name.length + 1));
    expect(seen.sort()).toEqual(Object.keys(g.actions).sort());
  }
});

test('each pinned frame decodes back to its sample', () => {
  for (const [, op, req, ans] of SAMPLES) {
    expect(decodeRequest(encodeRequest(op, ID, req as never))).toEqual({ op, id: ID, body: req });
    const back = decodeAnswer(encodeAnswer((op + 1) as keyof Answers, ID, ans as never));
    expect(back).toMatchObject({ op: op + 1, id: ID, ok: true });
  }
});
