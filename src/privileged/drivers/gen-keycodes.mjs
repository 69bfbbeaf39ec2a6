#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Regenerates src/privileged/drivers/keycodes.ts (the keycodes each libvirt codeset knows) from libvirt's keycodemapdb:
//   node src/privileged/drivers/gen-keycodes.mjs LIBVIRT_SRC [--stdout]
// LIBVIRT_SRC is an extracted libvirt 9.0 tree (src/keycodemapdb/data/keymaps.csv and tools/keymap-gen, which needs
// python3). Its tables are run through libvirt's own generator, exactly as libvirt's build does, and only the facts
// (which values each table holds) are kept: virKeycodeValueTranslate(set, set, v) succeeds iff v is one of them.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [src, flag] = process.argv.slice(2);
if (!src) {
  process.stderr.write('usage: gen-keycodes.mjs LIBVIRT_SRC [--stdout]\n');
  process.exit(2);
}
const db = path.join(src, 'src/keycodemapdb');
// virKeycodeSet order (libvirt-domain.h), each with the table libvirt's virkeycode.c uses for it ("xt" is atset1's).
const SETS = [
  ['linux', 'linux'],
  ['xt', 'atset1'],
  ['atset1', 'atset1'],
  ['atset2', 'atset2'],
  ['atset3', 'atset3'],
  ['os_x', 'osx'],
  ['xt_kbd', 'xtkbd'],
  ['usb', 'usb'],
  ['win32', 'win32'],
  ['qnum', 'qnum'],
];

function table(name) {
  const out = execFileSync(
    'python3',
    [path.join(db, 'tools/keymap-gen'), 'code-table', '--lang', 'stdc', '--varname', 't', path.join(db, 'data/keymaps.csv'), name],
    {
      encoding: 'utf8',
    },
  );
  const size = Number(/t\[(\d+)\] = \{/.exec(out)[1]);
  const values = new Array(size).fill(0); // C: entries not named are 0
  for (const m of out.matchAll(/^\s*\[(0x[0-9a-f]+)\] = (0x[0-9a-f]+),/gm)) values[Number(m[1])] = Number(m[2]);
  return [...new Set(values)].sort((a, b) => a - b);
}

const lines = [
  '// SPDX-License-Identifier: Apache-2.0',
  '// Generated: do not edit; regenerate with `node src/privileged/drivers/gen-keycodes.mjs libvirt-9.0.0`.',
  "// The keycodes of each virKeycodeSet (index = codeset number) in libvirt 9.0's keycodemapdb tables (helper side).",
  'export const KEYCODE_SET_NAMES = [' + SETS.map(([n]) => `'${n}'`).join(', ') + '] as const;',
  '',
  'export const KEYCODES: readonly (readonly number[])[] = [',
];
for (const [name, t] of SETS) {
  const vals = table(t);
  lines.push(`  // ${name}`);
  for (let i = 0; i < vals.length; i += 16) lines.push(`  ${i === 0 ? '[' : ' '}${vals.slice(i, i + 16).join(', ')}${i + 16 >= vals.length ? '],' : ','}`);
}
lines.push('];', '');
const text = lines.join('\n');
if (flag === '--stdout') process.stdout.write(text);
else writeFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'keycodes.ts'), text);
