// SPDX-License-Identifier: Apache-2.0
// A compromised front end talks to the real helper directly (raw IPC, as a tenant's session would be forwarded): the
// helper parses no XML, so the attack surface is the typed DomainDef. Host paths in it are refused on typed fields
// (VG_ERR_RESOURCE_DENIED, nothing defined); a malformed element tree or field ends the connection.
import * as fs from 'node:fs';
import { LookupKind, Op } from '../../../src/ipc/program';
import type { DomainDef, XmlEl } from '../../../src/ipc/objects/domain-def';
import { TEST_DOMAIN_DEF } from '../../../src/privileged/drivers/test-driver';
import { ACTOR, RawClient } from './ipc-client';
import { type Helper, startHelper, stopHelper, tempDir } from './spawn';

let h: Helper;
let dir: string;
beforeAll(async () => {
  dir = tempDir();
  h = await startHelper(dir);
});
afterAll(async () => {
  await stopHelper(h);
  fs.rmSync(dir, { recursive: true, force: true });
});

async function ready(): Promise<RawClient> {
  const c = await RawClient.connect(h.socket);
  await c.hello();
  return c;
}

const el = (tag: string, attrs: Record<string, string> = {}, kids: XmlEl[] = [], text = ''): XmlEl => ({ tag, attrs, text, kids });
let n = 0;
// A definition built by hand, not by the front end's parser: what an attacker controlling the front end could send.
function forged(devices: XmlEl[], extra: Partial<DomainDef> = {}): DomainDef {
  n++;
  return {
    ...TEST_DOMAIN_DEF,
    name: `evil${n}`,
    uuid: `0d46d412-f292-416c-8b9a-ea26480a5${String(n).padStart(3, '0')}`,
    devices,
    // The typed views are not sent: the helper derives them from the devices (a forged empty list changes nothing).
    disks: [],
    nets: [],
    memballoon: false,
    tenant: '',
    ...extra,
  };
}
const shadowDisk = el('disk', { type: 'file', device: 'disk' }, [el('source', { file: '/etc/shadow' }), el('target', { dev: 'vda', bus: 'virtio' })]);
const tenantActor = () => ({ ...ACTOR, tenant: 'acme' }); // a fresh request id each time

test.each([
  ['define', [shadowDisk]],
  ['createXml', [shadowDisk]],
  ['define', [el('disk', { type: 'block', device: 'disk' }, [el('source', { dev: '/dev/sda' }), el('target', { dev: 'vdb' })])]],
  ['define', [el('hostdev', { mode: 'subsystem', type: 'usb' })]],
  ['define', [el('interface', { type: 'bridge' }, [el('source', { bridge: 'br0' })])]],
] as const)("a tenant's forged %s naming a host resource is refused on typed fields", async (action, devices) => {
  const c = await ready();
  const def = forged([...devices]);
  const a = await c.call(Op.DOMAIN_WRITE_REQ, { action, actor: tenantActor(), def });
  expect(a).toMatchObject({ ok: false, code: 'VG_ERR_RESOURCE_DENIED' });
  expect(await c.call(Op.DOMAIN_READ_REQ, { action: 'lookup', key: { kind: LookupKind.NAME, name: def.name } })).toMatchObject({
    ok: false,
    code: 'VG_ERR_NO_DOMAIN',
  });
  c.end();
});

test('a host path in <os> (a kernel) is refused too; the same definition is accepted for a host admin (no tenant)', async () => {
  const c = await ready();
  const def = forged([], { osExtra: [el('kernel', {}, [], '/boot/vmlinuz')], boot: [] });
  expect(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: tenantActor(), def })).toMatchObject({ ok: false, code: 'VG_ERR_RESOURCE_DENIED' });
  expect(await c.call(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: { ...ACTOR, tenant: '' }, def })).toMatchObject({ ok: true });
  c.end();
});

test.each([
  ['an element name that is not an XML name', () => forged([el('disk><x')]), { why: /not an XML name/ }],
  ['a NUL in text', () => forged([el('disk', {}, [], 'a\0b')]), { why: /contains NUL/ }],
  ['a NUL in an attribute value', () => forged([el('disk', { type: 'file\0' })]), { why: /contains NUL/ }],
  [
    'elements nested 17 deep',
    () => forged([Array.from({ length: 16 }).reduce<XmlEl>((k) => el('controller', {}, [k]), el('x'))]),
    { why: /nested deeper than 16/ },
  ],
  ['a device kind libvirt does not keep', () => forged([el('frobnicator')]), { why: /<frobnicator> not allowed/ }],
  ['a repeated attribute', () => forged([]), { why: /repeated attribute/, repeatAttr: true }],
  [
    'more than 20000 elements',
    () =>
      forged([
        el(
          'controller',
          {},
          Array.from({ length: 20000 }, () => el('a')),
        ),
      ]),
    { why: /more than 20000 elements/ },
  ],
  [
    'a definition over the size budget',
    () => forged([el('controller', { x: 'y'.repeat(200 * 1024) }), el('controller', { x: 'y'.repeat(70 * 1024) })]),
    { why: /larger than 262144 bytes/ },
  ],
  ['current memory above the maximum', () => forged([], { curMemKiB: TEST_DOMAIN_DEF.maxMemKiB + 1n }), { why: /def.curMem/ }],
  ['a vcpu pin for a vcpu the domain does not have', () => forged([], { vcpuPins: new Map([[5, [1]]]) }), { why: /def.vcpuPins/ }],
  [
    'a metadata element in our tenant namespace',
    () => forged([], { metadata: [el('v:tenant', { 'xmlns:v': 'https://virtgate.dev/xmlns/tenant/1' }, [], 'globex')] }),
    { why: /<v:tenant> not allowed/ },
  ],
] as [string, () => DomainDef, { why: RegExp; repeatAttr?: boolean }][])('%s: the helper closes the connection', async (...[, make, opts]) => {
  const c = await ready();
  const def = make();
  const before = h.stderr().length;
  if (opts.repeatAttr) {
    // Object keys cannot repeat: write the tree by hand with the attribute twice (encodeEl's layout).
    const { XdrWriter } = await import('../../../src/common/xdr');
    const { encodeRequest } = await import('../../../src/ipc/program');
    const ok = encodeRequest(Op.DOMAIN_WRITE_REQ, 1, {
      action: 'define',
      actor: tenantActor(),
      def: { ...def, devices: [el('disk', { type: 'file' })] },
    } as never);
    const once = Buffer.from(new XdrWriter().string('type', 256).string('file', 256).finish());
    const i = ok.indexOf(once);
    expect(i).toBeGreaterThan(0);
    const twice = Buffer.concat([ok.subarray(0, i - 4), Buffer.from([0, 0, 0, 2]), once, once, ok.subarray(i + once.length)]);
    twice.writeUInt32BE(twice.length, 0);
    c.send(twice);
  } else c.request(Op.DOMAIN_WRITE_REQ, { action: 'define', actor: tenantActor(), def });
  expect(await c.closesWithin()).toBe(true);
  const line = h.stderr().slice(before);
  expect(line).toMatch(/closing: malformed DOMAIN_WRITE_REQ: /);
  expect(line).toMatch(opts.why);
});
