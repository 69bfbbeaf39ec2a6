// SPDX-License-Identifier: Apache-2.0
import { parsePolicyText } from '../../../src/policy/engine';
import { NAME_LIMITS, isTenantName, isUserName, parseQualified } from '../../../src/common/names';
import { Op, encodeRequest } from '../../../src/ipc/program';

const t64 = 'a'.repeat(64);
const t65 = 'a'.repeat(65);

test('one limit for tenant names: 64 accepted, 65 refused, by the validator and the policy parser alike', () => {
  expect(NAME_LIMITS.TENANT_MAX).toBe(64);
  expect(isTenantName(t64)).toBe(true);
  expect(isTenantName(t65)).toBe(false);
  expect(isTenantName('')).toBe(true);
  expect(isTenantName('-x')).toBe(false);
  expect(() => parsePolicyText(`g, alice, owner, ${t64}`)).not.toThrow();
  expect(() => parsePolicyText(`g, alice, owner, ${t65}`)).toThrow(/bad tenant/);
  expect(() => parsePolicyText(`p, alice, ${'b'.repeat(90)}, vm:*, domain:read`)).toThrow(/bad tenant/);
});

test('user names and qualified identities', () => {
  expect(isUserName('alice')).toBe(true);
  expect(isUserName('')).toBe(false);
  expect(isUserName('a b')).toBe(false);
  expect(parseQualified('x509:admin')).toEqual({ source: 'x509', name: 'admin' });
  expect(parseQualified('ldap:admin')).toBeNull();
  expect(parseQualified('admin')).toBeNull();
});

test('the front end cannot even encode a helper request with an over-long tenant', () => {
  const uuid = Buffer.alloc(16, 1);
  expect(() =>
    encodeRequest(Op.DOMAIN_WRITE_REQ, 1, {
      action: 'undefine',
      actor: { user: 'unix:alice', tenant: t64, requestId: 'r-1' },
      uuid,
      removeManagedSave: false,
      removeSnapshots: false,
    }),
  ).not.toThrow();
  expect(() =>
    encodeRequest(Op.DOMAIN_WRITE_REQ, 1, {
      action: 'undefine',
      actor: { user: 'unix:alice', tenant: 'b'.repeat(90), requestId: 'r-1' },
      uuid,
      removeManagedSave: false,
      removeSnapshots: false,
    }),
  ).toThrow();
});
