// SPDX-License-Identifier: Apache-2.0
// DOMAIN_SET_METADATA: libvirt's domain rights; the tenant element also needs connect:write on host (host admins only).
import { VG_TENANT_NS } from '../../../src/ipc/objects/domain-def';
import { CasbinAuthorizer, PolicySet } from '../../../src/policy/engine';
import { EXAMPLE_POLICY, MODEL_TEXT } from '../../../src/policy/model';
import { DomainMetadataType, TenantMetadata } from '../../../src/protocol/constants';
import { P, requiredPermissions } from '../../../src/protocol/procs/remote';
import { INTERFACE_ADDRESSES_SRC_AGENT, PD } from '../../../src/protocol/procs/domain-extra';
import { handlerFor } from '../../../src/unprivileged/handlers';
import { tenantFromMetadata } from '../../../src/unprivileged/handlers/metadata';
import { Op } from '../../../src/ipc/program';

const dom = { name: 'web', uuid: Buffer.alloc(16, 7), id: -1 };
const ELEMENT = DomainMetadataType.ELEMENT;

function fakeCtx() {
  const calls: { op: number; body: unknown }[] = [];
  const call = async (op: number, body: unknown) => (calls.push({ op, body }), { name: 'web', uuid: dom.uuid, id: -1, state: 5, reason: 0, persistent: true });
  const ctx = {
    helper: { call, act: async (op: number, action: string, fields: object) => call(op, { action, ...fields }) },
    actor: () => ({ user: 'root', tenant: '', requestId: 'r1' }),
  };
  return { ctx: ctx as never, calls };
}
const set = (ctx: never, args: Partial<{ type: number; metadata: string | null; key: string | null; uri: string | null; flags: number }>) =>
  handlerFor(P.DOMAIN_SET_METADATA.proc)!(ctx, {
    dom,
    type: ELEMENT,
    metadata: '<tenant>globex</tenant>',
    key: 'virtgate',
    uri: TenantMetadata.URI,
    flags: 0,
    ...args,
  });

test('the namespace is the one the helper stores the tenant under', () => {
  expect(TenantMetadata.URI).toBe(VG_TENANT_NS);
});

test('permissions: libvirt @acl (domain:write, domain:save unless live-only); the tenant element adds connect:write, which only host admins hold', async () => {
  const tenantEl = { type: ELEMENT, uri: TenantMetadata.URI };
  expect(requiredPermissions(P.DOMAIN_SET_METADATA, 0, tenantEl)).toEqual(['domain:write', 'domain:save', 'connect:write']);
  expect(requiredPermissions(P.DOMAIN_SET_METADATA, 1, tenantEl)).toEqual(['domain:write', 'connect:write']);
  expect(requiredPermissions(P.DOMAIN_SET_METADATA, 2, tenantEl)).toEqual(['domain:write', 'domain:save', 'connect:write']);
  // Descriptions, titles and other namespaces: libvirt's rules only, so a tenant owner describes its own VMs.
  expect(requiredPermissions(P.DOMAIN_SET_METADATA, 0, { type: DomainMetadataType.DESCRIPTION, uri: null })).toEqual(['domain:write', 'domain:save']);
  expect(requiredPermissions(P.DOMAIN_SET_METADATA, 1, { type: DomainMetadataType.TITLE, uri: null })).toEqual(['domain:write']);
  expect(requiredPermissions(P.DOMAIN_SET_METADATA, 2, { type: ELEMENT, uri: 'https://example.com/x' })).toEqual(['domain:write', 'domain:save']);
  // The tenant's URI on a description (refused by the handler anyway) is not the tenant element.
  expect(requiredPermissions(P.DOMAIN_SET_METADATA, 0, { type: DomainMetadataType.DESCRIPTION, uri: TenantMetadata.URI })).toEqual([
    'domain:write',
    'domain:save',
  ]);
  expect(P.DOMAIN_SET_METADATA.cls).toBe('write');
  const a = new CasbinAuthorizer(await PolicySet.build(MODEL_TEXT, EXAMPLE_POLICY));
  const host = { kind: 'connect' as const, name: 'virtgate' };
  expect(a.can({ user: 'unix:alice', tenant: 'acme', readOnly: false }, host, 'connect:write').allowed).toBe(false); // owner
  expect(a.can({ user: 'unix:alice', tenant: 'acme', readOnly: false }, { kind: 'domain', name: 'web', tenant: 'acme' }, 'domain:write').allowed).toBe(true);
  expect(a.can({ user: 'unix:root', tenant: '', readOnly: false }, host, 'connect:write').allowed).toBe(true);
  expect(a.can({ user: 'x509:admin', tenant: 'acme', readOnly: false }, host, 'connect:write').allowed).toBe(true);
  expect(a.can({ user: 'unix:root', tenant: '', readOnly: true }, host, 'connect:write').allowed).toBe(false); // read-only socket
});

test.each([
  ['<tenant>globex</tenant>', 'globex'],
  [`<virtgate:tenant xmlns:virtgate='${VG_TENANT_NS}'>acme</virtgate:tenant>`, 'acme'],
  [`<tenant xmlns="${VG_TENANT_NS}"> a.b@c </tenant>`, 'a.b@c'],
  ['<tenant/>', ''],
  ['<tenant></tenant>', ''],
  [null, ''],
])('tenantFromMetadata(%j) = %j', (xml, want) => {
  expect(tenantFromMetadata(xml)).toBe(want);
});

test.each([
  '<tenant>-x</tenant>',
  '<tenant>a b</tenant>',
  '<tenant><b>x</b></tenant>',
  "<tenant xmlns='https://example.com/'>x</tenant>",
  '<owner>x</owner>',
  'globex',
  `<tenant>${'x'.repeat(65)}</tenant>`,
])('tenantFromMetadata refuses %j', (xml) => {
  expect(() => tenantFromMetadata(xml)).toThrow(expect.objectContaining({ code: 'VG_ERR_ARG_INVALID' }));
});

test('the tenant element goes to setTenant, everything else to setMetadata; bad arguments never reach the helper', async () => {
  const { ctx, calls } = fakeCtx();
  await set(ctx, {});
  await set(ctx, { metadata: null, flags: 3 });
  expect(calls).toEqual([
    { op: Op.DOMAIN_WRITE_REQ, body: { action: 'setTenant', actor: { user: 'root', tenant: '', requestId: 'r1' }, uuid: dom.uuid, tenant: 'globex' } },
    { op: Op.DOMAIN_WRITE_REQ, body: { action: 'setTenant', actor: { user: 'root', tenant: '', requestId: 'r1' }, uuid: dom.uuid, tenant: '' } },
  ]);
  // virDomainSetMetadata's own checks, in libvirt's words
  await expect(set(ctx, { type: DomainMetadataType.DESCRIPTION, uri: null })).rejects.toMatchObject({
    code: 'VG_ERR_ARG_INVALID',
    message: 'invalid argument: key in virDomainSetMetadata must be NULL',
  });
  await expect(set(ctx, { type: DomainMetadataType.TITLE, uri: null, key: null, metadata: 'a\nb' })).rejects.toMatchObject({
    message: "invalid argument: metadata title can't contain newlines",
  });
  await expect(set(ctx, { type: DomainMetadataType.TITLE, uri: 'urn:x', key: null })).rejects.toMatchObject({
    message: 'invalid argument: uri in virDomainSetMetadata must be NULL',
  });
  await expect(set(ctx, { uri: null })).rejects.toMatchObject({ code: 'VG_ERR_ARG_INVALID' });
  await expect(set(ctx, { type: 7, uri: null, key: null })).rejects.toMatchObject({ message: "invalid argument: unknown metadata type '7'" });
  await expect(set(ctx, { key: null })).rejects.toMatchObject({ code: 'VG_ERR_ARG_INVALID' });
  await expect(set(ctx, { key: 'bad key' })).rejects.toMatchObject({ code: 'VG_ERR_ARG_INVALID' });
  await expect(set(ctx, { flags: 4 })).rejects.toMatchObject({ code: 'VG_ERR_FLAGS_UNSUPPORTED' });
  await expect(set(ctx, { metadata: '<tenant>..</tenant>' })).rejects.toMatchObject({ code: 'VG_ERR_ARG_INVALID' });
  await expect(set(ctx, { uri: 'urn:x', key: 'x', metadata: 'x'.repeat(300 * 1024) })).rejects.toMatchObject({ code: 'VG_ERR_ARG_INVALID' });
  expect(calls).toHaveLength(2);
  // descriptions, titles and other namespaces: one setMetadata action each
  await set(ctx, { type: DomainMetadataType.DESCRIPTION, uri: null, key: null, metadata: 'hello' });
  await set(ctx, { uri: 'https://example.com/other', key: 'o', metadata: '<x/>', flags: 2 });
  const actor = { user: 'root', tenant: '', requestId: 'r1' };
  expect(calls.slice(2)).toEqual([
    {
      op: Op.DOMAIN_WRITE_REQ,
      body: { action: 'setMetadata', actor, uuid: dom.uuid, type: 0, value: 'hello', element: null, uri: null, live: false, config: false },
    },
    {
      op: Op.DOMAIN_WRITE_REQ,
      body: {
        action: 'setMetadata',
        actor,
        uuid: dom.uuid,
        type: 2,
        value: null,
        // parsed here, in the front end: the helper gets the element tree, prefixed and declaring the namespace
        element: { tag: 'o:x', attrs: { 'xmlns:o': 'https://example.com/other' }, text: '', kids: [] },
        uri: 'https://example.com/other',
        live: false,
        config: true,
      },
    },
  ]);
});

test('an argument rule: domifaddr with the guest agent source also needs domain:write (libvirt @acl of procedure 353)', () => {
  const def = PD.DOMAIN_INTERFACE_ADDRESSES;
  expect(requiredPermissions(def, 0, { source: 0 })).toEqual(['domain:read']);
  expect(requiredPermissions(def, 0, { source: 2 })).toEqual(['domain:read']);
  expect(requiredPermissions(def, 0, { source: INTERFACE_ADDRESSES_SRC_AGENT })).toEqual(['domain:read', 'domain:write']);
});
