// SPDX-License-Identifier: Apache-2.0
// The root helper parses no XML: nothing it loads, directly or through ipc/ and common/, may import fast-xml-parser or
// the front end's XML modules (design.md: untrusted XML is parsed on the unprivileged side into typed configurations).
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');
const SRC = path.join(ROOT, 'src');
const FORBIDDEN_PACKAGES = ['fast-xml-parser'];

// Static imports, re-exports, dynamic import() and require() of one file.
function specifiers(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const re of [
    /\b(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ])
    for (const m of text.matchAll(re)) out.push(m[1]);
  return out;
}

function resolve(from: string, spec: string): string | null {
  const base = path.resolve(path.dirname(from), spec);
  for (const f of [`${base}.ts`, path.join(base, 'index.ts'), base]) if (fs.existsSync(f) && fs.statSync(f).isFile()) return f;
  return null;
}

const tsFiles = (dir: string): string[] =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));

// Every file reachable from `roots`, and every package any of them imports (with the file that imports it).
function closure(roots: string[]): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const todo = [...roots];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    for (const s of specifiers(f)) {
      if (s.startsWith('.')) {
        const r = resolve(f, s);
        if (r === null) throw new Error(`${path.relative(ROOT, f)}: cannot resolve ${s}`);
        todo.push(r);
      } else packages.set(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0], path.relative(ROOT, f));
    }
  }
  return { files, packages };
}

test('the scanner sees what it must refuse (the front end imports fast-xml-parser through xml/tree.ts)', () => {
  const { files, packages } = closure([path.join(SRC, 'unprivileged', 'xml', 'domain.ts')]);
  expect(packages.get('fast-xml-parser')).toBe(path.join('src', 'unprivileged', 'xml', 'tree.ts'));
  expect([...files].some((f) => f.startsWith(path.join(SRC, 'unprivileged', 'xml')))).toBe(true);
});

test('nothing the helper loads imports fast-xml-parser or src/unprivileged/xml', () => {
  const roots = tsFiles(path.join(SRC, 'privileged'));
  expect(roots.length).toBeGreaterThan(10);
  const { files, packages } = closure(roots);
  const xmlModules = [...files].filter((f) => f.startsWith(path.join(SRC, 'unprivileged') + path.sep)).map((f) => path.relative(ROOT, f));
  expect(xmlModules).toEqual([]);
  expect(FORBIDDEN_PACKAGES.filter((p) => packages.has(p)).map((p) => `${p} (imported by ${packages.get(p)})`)).toEqual([]);
});
