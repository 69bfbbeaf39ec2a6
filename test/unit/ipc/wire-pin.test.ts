// SPDX-License-Identifier: Apache-2.0
// The helper IPC's bytes, pinned: one request and one answer frame per op, as SHA-256 of the whole frame. The digests
// were taken from the encoder before the op table became one descriptor table, so they prove that refactor kept the
// wire byte for byte; any later change to a frame's layout must change this file too.
import { createHash } from 'node:crypto';
import {
  type Actor,
  type Answers,
  type DomainInfo,
  type DomainSummary,
  type Requests,
  Op,
  decodeAnswer,
  decodeRequest,
  encodeAnswer,
  encodeRequest,
} from '../../../src/ipc/program';

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
const xml = "<domain type='test'><name>foo</name><memory>1024</memory><os><type>hvm</type></os></domain>";

// Request op -> [request body, answer body]; every op of the table must be listed (checked below).
const SAMPLES: { [K in keyof Requests]: [Requests[K], unknown] } = {
  [Op.HELLO_REQ]: [{ version: 1 }, { version: 1, driver: 'test' }],
  [Op.NODE_FACTS_REQ]: [
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
  [Op.DOMAIN_LIST_REQ]: [{}, { domains: [summary, { ...summary, name: 'bar', id: -1, state: 5, reason: 0, tenant: undefined }] }],
  [Op.DOMAIN_LOOKUP_REQ]: [{ key: { kind: 0, name: 'foo' } }, summary],
  [Op.DOMAIN_INFO_REQ]: [{ uuid }, info],
  [Op.DOMAIN_XML_REQ]: [{ uuid, inactive: true }, { xml }],
  [Op.DOMAIN_DEFINE_REQ]: [{ actor, xml }, summary],
  [Op.DOMAIN_CREATE_XML_REQ]: [{ actor, xml }, summary],
  [Op.DOMAIN_UNDEFINE_REQ]: [{ actor, uuid }, {}],
  [Op.DOMAIN_CONTROL_REQ]: [{ actor, uuid, action: 3 }, summary],
  [Op.DOMAIN_SET_MEMORY_REQ]: [{ actor, uuid, memoryKiB: 131072n, live: true, config: false, max: true }, {}],
  [Op.DOMAIN_SET_VCPUS_REQ]: [{ actor, uuid, nvcpus: 2, live: false, config: true, max: false }, {}],
  [Op.EVENTS_SUBSCRIBE_REQ]: [
    {},
    {
      event: { domain: summary, event: 2, detail: 1 },
      snapshot: { info, cpuBaseNs: 5n, cpuSinceMs: 1700000000000, cpuClock: true },
      removed: uuid,
      synced: true,
    },
  ],
  [Op.DOMAIN_SET_TENANT_REQ]: [
    { actor, uuid, tenant: 'globex' },
    { ...summary, tenant: 'globex' },
  ],
};

// [request frame digest, answer frame digest] by request op, request id 0x01020304.
const PINNED: Record<number, [string, string]> = {
  0: ['7bd9465daef92d8f1c9bce1a4faf8472f75db2a4e194fd7f7e973f682fd8a0c9', '1cfc39400e13d10f89a1d5fc9a580e37356c4d31fe15e1ade9b18a0475f50ca5'], // HELLO
  2: ['89a15e4f4ad5e18d9764a6d18ebb2e40b9ea2086682bf1466cd2dcf86c6c2dc2', 'a14cc148cbf371a8d19367337d96b6c851acdc5d5a6af627370aa6868dc42e34'], // NODE_FACTS (answer: + maxVcpus, cells, free memory)
  4: ['9c6838a8d50a53cca3dbc63f79efc080669c50607851d594097ee440be53f448', '16f575eebf85dbc9db06e406ad75712d820884143eda4bebd150ff95e50527f2'], // DOMAIN_LIST
  6: ['4caec63ce4afb0814394ac54537f407a60689984ac0f130c0c3f52940f7816f5', '8415df5993747ea176147d098579d11ade07a7e387ebaa1a1a5292f2f91277f6'], // DOMAIN_LOOKUP
  8: ['edc19f788324e74b90fa273641c4efcff4ef05cbfb59dd09d2ca1e287412f0d7', 'bf177f64a03d60085fbe855fc33535ad8c2714cbdec22af78fde3cc5816524d8'], // DOMAIN_INFO
  10: ['ded96c3212485f31b63af03b90d8dbdb4fee06a36ea36322cda3728886924b4c', 'a007ab15fc1d903427ebf5758b5db128d7a5c34df62f10b389dba8296c58a812'], // DOMAIN_XML
  12: ['50d9aac1cd8c2a80430ce6897d39371907b2e3e18fbb6d8451887cc942d0d74e', 'f09869ec54a2a2963e48eb83c5a06a38139b2e800cd26be6ce49749cb3598fde'], // DOMAIN_DEFINE
  14: ['16b1c619cd798b39355cf3da39fda76bfe81da769d3b0e8aeeff66450608756a', '87fca5a0cb6139964d30f557f9a6cf66e9258565a2654d34d84c4a31d26bdb5b'], // DOMAIN_CREATE_XML
  16: ['d686d8f74bd5d8f2f241f295328ead80abaf584fc2c808730d0a745a421ada56', 'dd971af24ca666bc5112d00e216f3331ffd7b8af06390e8b17d33af1f8684ebe'], // DOMAIN_UNDEFINE
  18: ['d7c2e7f66037b3773dff58076395aceceae8d0792affe6cf532a0d02a1fd2064', '582ce534324c491b5e14751c9f52d22885e13447a515e9bea0dc20ead0dd6f2d'], // DOMAIN_CONTROL
  20: ['726b4b7c332a808e2e317ef589f3634d5ea4db2332c286285ea750ac92082977', 'de6679a0ed9e298e10bda00dced030c4bea55cf7699b73cab84892e7eebf61be'], // DOMAIN_SET_MEMORY
  22: ['b6d0da8e3b42775aaad7942a9589baa536947fb445b9ee41f6d02962e3641efa', 'fb14f1a9c72138c4344516765e1b86d9ad84437c0ec12ec44bb32bf65eed679c'], // DOMAIN_SET_VCPUS
  24: ['b9b1ce0b9678f817ed55e85061a5fd145ea47ad885d7a839cdd1f0c65c2d4096', '6b18ba0cd71319246cc2e2623067850ed2fb20cedd9c17b38fee6c43c064aa9b'], // EVENTS_SUBSCRIBE
  26: ['e796de947a04cc3c563a32c169591c15408dc0fa75b6e92354e9698b51056765', '104e469a24f485299b2481bff9bf90706d4f14ef74df6f565f6a1a6cd7ccdd45'], // DOMAIN_SET_TENANT
};

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const ID = 0x01020304;

function frames(): Record<number, [string, string]> {
  const out: Record<number, [string, string]> = {};
  for (const [k, [req, ans]] of Object.entries(SAMPLES)) {
    const op = Number(k) as keyof Requests;
    out[op] = [sha(encodeRequest(op, ID, req as never)), sha(encodeAnswer((op + 1) as keyof Answers, ID, ans as never))];
  }
  return out;
}

test('every request and answer frame is byte-identical to the pinned encoding', () => {
  expect(frames()).toEqual(PINNED);
});

test('each pinned frame decodes back to its sample', () => {
  for (const [k, [req, ans]] of Object.entries(SAMPLES)) {
    const op = Number(k) as keyof Requests;
    expect(decodeRequest(encodeRequest(op, ID, req as never))).toEqual({ op, id: ID, body: req });
    const back = decodeAnswer(encodeAnswer((op + 1) as keyof Answers, ID, ans as never));
    expect(back).toMatchObject({ op: op + 1, id: ID, ok: true });
  }
});
