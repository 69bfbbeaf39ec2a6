// SPDX-License-Identifier: Apache-2.0
// NETWORK_READ / NETWORK_WRITE through their codecs both ways and the helper's answer functions, on TestNetworks.
import { XdrReader, XdrWriter } from '../../../src/common/xdr';
import type { Codec } from '../../../src/ipc/shared';
import { NETWORK_READ, NETWORK_WRITE } from '../../../src/ipc/objects/network';
import { answerNetworkRead, answerNetworkWrite } from '../../../src/privileged/answers/network';
import type { Driver } from '../../../src/privileged/drivers/driver';
import { DEFAULT_NETWORK, TestNetworks } from '../../../src/privileged/drivers/test-networks';
import { parseNetworkXml } from '../../../src/unprivileged/xml/network';

// Every request and answer crosses the wire form: what the helper acts on is what its decoder accepted.
function wire<T>(c: Codec<T>, v: T): T {
  const w = new XdrWriter();
  c.encode(w, v);
  const r = new XdrReader(w.finish());
  const out = c.decode(r);
  r.ensureConsumed();
  return out;
}

function helper() {
  const store = new Map<string, string>();
  const networks = new TestNetworks({
    records: { load: () => new Map(store), put: (_t, k, j) => void (j === null ? store.delete(k) : store.set(k, j)) },
    emit: () => undefined,
    firstStart: true,
    warn: () => undefined,
  });
  const driver = { networks } as unknown as Driver;
  const ctx = { driver, subscribe: () => undefined, passFd: (): Buffer => Buffer.alloc(16), onClose: () => undefined };
  const read = (body: Parameters<typeof answerNetworkRead>[1]) =>
    wire(NETWORK_READ.answer, { ...(answerNetworkRead(ctx, wire(NETWORK_READ.request, body)) as object), action: body.action } as never);
  const write = async (body: Parameters<typeof answerNetworkWrite>[1]) =>
    wire(NETWORK_WRITE.answer, { ...((await answerNetworkWrite(ctx, wire(NETWORK_WRITE.request, body))) as object), action: body.action } as never);
  return { read, write, driver };
}

const actor = (tenant: string) => ({ user: 'x509:alice', tenant, requestId: 'r1', auditHead: '' });

test('list, lookup and get answer the seeded default network', () => {
  const { read } = helper();
  expect(read({ action: 'list' })).toEqual({ action: 'list', networks: [expect.objectContaining({ name: 'default', tenant: '', active: true })] });
  expect(read({ action: 'lookup', key: { name: 'default' } })).toMatchObject({ action: 'lookup', network: { uuid: DEFAULT_NETWORK.uuid } });
  expect(read({ action: 'get', uuid: DEFAULT_NETWORK.uuid, inactive: false })).toEqual({
    action: 'get',
    network: expect.objectContaining({ name: 'default' }),
    config: DEFAULT_NETWORK,
  });
});

test('define then start through NETWORK_WRITE records the actor tenant; another tenant cannot destroy it', async () => {
  const { write, read } = helper();
  const config = parseNetworkXml("<network><name>lab</name><bridge name='vbr1'/></network>");
  const d = await write({ action: 'define', actor: actor('acme'), config });
  expect(d).toEqual({ action: 'define', network: expect.objectContaining({ name: 'lab', tenant: 'acme', persistent: true, active: false }) });
  expect(await write({ action: 'start', actor: actor('acme'), uuid: config.uuid })).toMatchObject({ network: { active: true } });
  await expect(write({ action: 'destroy', actor: actor('globex'), uuid: config.uuid })).rejects.toMatchObject({ code: 'VG_ERR_NO_NETWORK' });
  expect(read({ action: 'lookup', key: { uuid: config.uuid } })).toMatchObject({ network: { active: true } });
});

test('a driver without networks answers "not supported"', () => {
  expect(() =>
    answerNetworkRead(
      { driver: {} as Driver, subscribe: () => undefined, passFd: (): Buffer => Buffer.alloc(16), onClose: () => undefined },
      { action: 'list' },
    ),
  ).toThrow(expect.objectContaining({ code: 'VG_ERR_NOT_SUPPORTED' }));
});

test('the decoders refuse an unknown action and a bad field', () => {
  const w = new XdrWriter();
  w.u32(99);
  expect(() => NETWORK_READ.request.decode(new XdrReader(w.finish()))).toThrow(/unknown NETWORK_READ action 99/);
  const w2 = new XdrWriter();
  w2.u32(1).u32(0).string('a/b', 64);
  expect(() => NETWORK_READ.request.decode(new XdrReader(w2.finish()))).toThrow(/key.name/);
});
