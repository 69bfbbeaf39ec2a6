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

test('every code documented in docs/errors.md exists in the catalogue, with the same mapping and text', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `(VG_ERR_[A-Z0-9_]+)` \| (\d+) \| (\d+) \| (.*) \|$/gm)];
  expect(rows.length).toBe(errorCatalogue().size);
  for (const [, code, virCode, virDomain, text] of rows) {
    const spec = errorCatalogue().get(code);
    expect(spec).toBeDefined();
    expect([spec!.virCode, spec!.virDomain, spec!.format]).toEqual([Number(virCode), Number(virDomain), text]);
  }
});

// Raised means built, not merely named: a factory call (VG_ERR_X(...)), a factory handed to a builder
// (driverError(VG_ERR_X, ...)), or the code string given to a constructor or an answer encoder. A comparison such as
// `err.code === 'VG_ERR_X'` or an import does not count.
function raisedIn(text: string, code: string): boolean {
  return (
    new RegExp(`\\b${code}\\s*\\(`).test(text) ||
    new RegExp(`\\w\\(\\s*${code}\\s*,`).test(text) ||
    new RegExp(`(super|new VgError|encodeAnswerError)\\([^)]*'${code}'`).test(text)
  );
}

test('every catalogue code is raised somewhere in src (a code nothing raises is a promise nothing keeps)', () => {
  const src = path.join(__dirname, '..', '..', '..', 'src');
  const files = (fs.readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && f !== path.join('common', 'errors.ts'));
  const text = files.map((f) => fs.readFileSync(path.join(src, f), 'utf8')).join('\n');
  expect([...errorCatalogue().keys()].filter((code) => !raisedIn(text, code))).toEqual([]);
});

test('the raised-code check tells raising from naming', () => {
  const text = [
    "if (e.code === 'VG_ERR_A') x();",
    "import { VG_ERR_B } from './errors';",
    "throw VG_ERR_C('y');",
    "throw driverError(VG_ERR_D, 'z');",
    "super('VG_ERR_E', message);",
    "this.#write(encodeAnswerError(op, id, 'VG_ERR_F', rid));",
    'const f = VG_ERR_G;',
  ].join('\n');
  const codes = ['VG_ERR_A', 'VG_ERR_B', 'VG_ERR_C', 'VG_ERR_D', 'VG_ERR_E', 'VG_ERR_F', 'VG_ERR_G'];
  expect(codes.filter((c) => raisedIn(text, c))).toEqual(['VG_ERR_C', 'VG_ERR_D', 'VG_ERR_E', 'VG_ERR_F']);
});

test('factories build errors with stable code, libvirt mapping and formatted message', () => {
  const e = VG_ERR_NO_DOMAIN(": no domain with matching name 'x'");
  expect(e).toMatchObject({ code: 'VG_ERR_NO_DOMAIN', virCode: 42, virDomain: 12, message: "Domain not found: no domain with matching name 'x'" });
});

test('codes are unique and well-formed', () => {
  expect(() => defineError('VG_ERR_NO_DOMAIN', 'x', { virCode: 1, virDomain: 0 })).toThrow(/duplicate/);
  expect(() => defineError('bad-name', 'x', { virCode: 1, virDomain: 0 })).toThrow(/bad error code/);
});
