#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Regenerates src/protocol/proc-names.ts (procedure number -> libvirt API name) from libvirt's protocol spec:
//   node src/protocol/gen-proc-names.mjs LIBVIRT_SRC/src/remote/remote_protocol.x [--stdout]
// The spec is not vendored (it is libvirt's file); `apt-get source libvirt` (deb-src) or a libvirt checkout has it.
// Only facts are taken from it: each `REMOTE_PROC_<NAME> = <number>` line.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// libvirt spells these words of an API name in capitals (its dispatch generator applies the same per-word fixups).
const WORD_FIXUPS = [
  [/Nwfilter/, 'NWFilter'],
  [/Xml$/, 'XML'],
  [/Xml2$/, 'XML2'],
  [/Uri$/, 'URI'],
  [/Uuid$/, 'UUID'],
  [/Id$/, 'ID'],
  [/Mac$/, 'MAC'],
  [/Cpu$/, 'CPU'],
  [/Os$/, 'OS'],
  [/Nmi$/, 'NMI'],
  [/Pm/, 'PM'],
  [/Fstrim$/, 'FSTrim'],
  [/Fsfreeze$/, 'FSFreeze'],
  [/Fsthaw$/, 'FSThaw'],
  [/Fsinfo$/, 'FSInfo'],
  [/Iothread$/, 'IOThread'],
  [/Scsi/, 'SCSI'],
  [/Wwn$/, 'WWN'],
  [/Dhcp$/, 'DHCP'],
  // Words the generator's list misses, checked against libvirt 9.0's exported symbols.
  [/^Ssh$/, 'SSH'],
  [/^Fd$/, 'FD'],
  [/^Sev$/, 'SEV'],
];

// Procedures whose API name is not their own: the callback variants carry the same public registration calls.
const RENAMED = {
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: 'virConnectDomainEventRegisterAny',
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: 'virConnectDomainEventDeregisterAny',
};

// Procedures that are no public API: the server's event messages and the authentication steps. They keep their
// protocol name (REMOTE_PROC_...), which is what a libvirt developer would look up.
export function isApi(name) {
  if (/^AUTH_/.test(name)) return false;
  return !(/(^|_)EVENT_/.test(name) && !/EVENT_(CALLBACK_)?(REGISTER|DEREGISTER)(_|$)/.test(name));
}

// DOMAIN_MANAGED_SAVE -> virDomainManagedSave; DOMAIN_GET_XML_DESC -> virDomainGetXMLDesc.
export function apiName(name) {
  if (Object.hasOwn(RENAMED, name)) return RENAMED[name];
  const words = name.split('_').map((w) => {
    let word = w.charAt(0) + w.slice(1).toLowerCase();
    for (const [re, to] of WORD_FIXUPS) word = word.replace(re, to);
    return word;
  });
  return `vir${words.join('')}`;
}

export function parseProcs(text) {
  const procs = new Map();
  for (const m of text.matchAll(/^\s*REMOTE_PROC_([A-Z0-9_]+)\s*=\s*(\d+)\s*,?\s*$/gm)) {
    const num = Number(m[2]);
    if (procs.has(num)) throw new Error(`procedure ${num} defined twice`);
    procs.set(num, isApi(m[1]) ? apiName(m[1]) : `REMOTE_PROC_${m[1]}`);
  }
  if (procs.size === 0) throw new Error('no REMOTE_PROC_* lines: not remote_protocol.x?');
  return new Map([...procs].sort((a, b) => a[0] - b[0]));
}

export function render(procs, source) {
  const rows = [...procs].map(([n, name]) => `  [${n}, '${name}'],`);
  return `// SPDX-License-Identifier: Apache-2.0
// Generated: do not edit; regenerate with \`node src/protocol/gen-proc-names.mjs ${source}\`.
// Every REMOTE program procedure (${procs.size}, up to ${Math.max(...procs.keys())}) -> its libvirt API name, or REMOTE_PROC_* for
// event messages and authentication steps, which are no API. Used to name procedures virtgate does not serve.
export const PROC_NAMES: ReadonlyMap<number, string> = new Map([
${rows.join('\n')}
]);
`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [spec, flag] = process.argv.slice(2);
  if (!spec) {
    process.stderr.write('usage: node src/protocol/gen-proc-names.mjs LIBVIRT_SRC/src/remote/remote_protocol.x [--stdout]\n');
    process.exit(2);
  }
  const m = /libvirt-([0-9.]+)\//.exec(path.resolve(spec));
  const out = render(parseProcs(readFileSync(spec, 'utf8')), m ? `libvirt-${m[1]}/src/remote/remote_protocol.x` : 'remote_protocol.x');
  if (flag === '--stdout') process.stdout.write(out);
  else writeFileSync(new URL('./proc-names.ts', import.meta.url), out);
}
