// SPDX-License-Identifier: Apache-2.0
// Meta-test: every error code is documented, and codes follow the naming rule [fastify errors.test].
import fs from 'node:fs';
import path from 'node:path';
import { VG_ERR_NO_DOMAIN, defineError, errorCatalogue } from '../../../src/common/errors';

test('every catalogue code is in docs/errors.md with its libvirt mapping', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');
  for (const [code, spec] of errorCatalogue()) {
    expect(doc).toContain(`| \`${code}\` | ${spec.virCode} | ${spec.virDomain} |`);
  }
});

test('factories build errors with stable code, libvirt mapping and formatted message', () => {
  const e = VG_ERR_NO_DOMAIN(": no domain with matching name 'x'");
  expect(e).toMatchObject({ code: 'VG_ERR_NO_DOMAIN', virCode: 42, virDomain: 12, message: "Domain not found: no domain with matching name 'x'" });
});

test('codes are unique and well-formed', () => {
  expect(() => defineError('VG_ERR_NO_DOMAIN', 'x', { virCode: 1, virDomain: 0 })).toThrow(/duplicate/);
  expect(() => defineError('bad-name', 'x', { virCode: 1, virDomain: 0 })).toThrow(/bad error code/);
});
