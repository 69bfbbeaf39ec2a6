// SPDX-License-Identifier: Apache-2.0
// virtgate-upgrade-state --state-dir DIR --runtime-dir DIR: the one-shot domain XML -> JSON conversion (./domain-state.ts),
// run with the helper stopped, before it starts. Exit 0 when nothing is left for the helper to refuse.
import { parseArgs } from 'node:util';
import { upgradeDomainState } from './domain-state';

const { values } = parseArgs({ options: { 'state-dir': { type: 'string' }, 'runtime-dir': { type: 'string' } }, strict: true });
if (!values['state-dir'] || !values['runtime-dir']) {
  process.stderr.write('usage: virtgate-upgrade-state --state-dir DIR --runtime-dir DIR\n');
  process.exit(2);
}
const warn = (m: string) => process.stderr.write(`virtgate-upgrade-state: ${m}\n`);
try {
  const r = upgradeDomainState(values['state-dir'], values['runtime-dir'], warn);
  if (r.converted.length + r.unconverted.length > 0)
    warn(`${r.converted.length} domain definition(s) converted to typed JSON, ${r.unconverted.length} kept aside unconverted`);
} catch (e) {
  warn(`failed: ${(e as Error).message}`);
  process.exit(1);
}
