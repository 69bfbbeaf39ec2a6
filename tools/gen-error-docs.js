#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Regenerates docs/errors.md from the error catalogue (run after `npm run build`): `node tools/gen-error-docs.js`.
const fs = require('node:fs');
const path = require('node:path');
const { errorCatalogue } = require('../build/src/common/errors.js');

let s = '# Error codes\n\n<!-- do not edit; regenerate with `npm run build && node tools/gen-error-docs.js` -->\n\n';
s += "Every error virtgate raises has a stable `VG_ERR_*` code (match on `err.code`). Errors that reach a libvirt client are translated once, at the dispatch boundary, to libvirt's `{code, domain, message}`; the table gives that mapping. `%s`/`%d` stand for the details filled in at run time.\n\n";
s += '| code | libvirt code | libvirt domain | message |\n|---|---|---|---|\n';
for (const [code, spec] of errorCatalogue()) s += `| \`${code}\` | ${spec.virCode} | ${spec.virDomain} | ${spec.format.replace(/\|/g, '\\|')} |\n`;
fs.writeFileSync(path.join(__dirname, '..', 'docs', 'errors.md'), s);
