// SPDX-License-Identifier: Apache-2.0
// One-shot conversion of domain definitions an older virtgate stored as XML (STATE/domains/UUID.xml, 'config' records
// of the state log, `liveXml` of running status) into the typed JSON the helper reads. It runs as its own process
// before the helper (systemd ExecStartPre, `virtgate start`), never inside it: the helper parses no XML. It parses with
// the front end's parser, which is why it lives outside both src/privileged and src/unprivileged.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { domainDefToJson } from '../ipc/objects/domain-def';
import { type FileChange, StateStore } from '../privileged/drivers/store';
import { parseDomainXml } from '../unprivileged/xml/domain';

export interface UpgradeResult {
  converted: string[]; // uuids whose definitions are JSON now
  unconverted: string[]; // uuids whose XML could not be read: kept aside in STATE/unconverted/, not loaded
}

export function upgradeDomainState(stateDir: string, runtimeDir: string, warn: (msg: string) => void): UpgradeResult {
  if (!fs.existsSync(stateDir)) return { converted: [], unconverted: [] };
  const store = new StateStore(stateDir, runtimeDir, { warn });
  const result: UpgradeResult = { converted: [], unconverted: [] };
  try {
    const loaded = store.load(warn);
    const changes: FileChange[] = [];
    const aside = (uuid: string, what: string, xml: string, e: unknown): void => {
      const dir = path.join(stateDir, 'unconverted');
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(dir, `${uuid}.${what}.xml`), xml, { mode: 0o600 });
      warn(`domain ${uuid}: its stored ${what} XML cannot be converted (${(e as Error).message}); kept in ${dir}, not loaded`);
      result.unconverted.push(uuid);
    };
    for (const [uuid, xml] of loaded.legacyXml) {
      try {
        // Our own file: its <metadata> tenant is trusted, as the older helper trusted it.
        const def = parseDomainXml(xml, { trusted: true, warn });
        if (def.uuid !== uuid) throw new Error(`file name does not match its uuid ${def.uuid}`);
        changes.push({ kind: 'domain', uuid, data: `${domainDefToJson(def)}\n` });
        result.converted.push(uuid);
      } catch (e) {
        aside(uuid, 'config', xml, e);
      }
      changes.push({ kind: 'config', uuid, data: null });
    }
    for (const [uuid, st] of loaded.statuses) {
      if (typeof st.liveXml !== 'string' || st.live) continue;
      const { liveXml, ...rest } = st;
      let live: object | null = null;
      try {
        live = JSON.parse(domainDefToJson(parseDomainXml(liveXml, { trusted: true, warn }))) as object;
      } catch (e) {
        aside(uuid, 'live', liveXml, e); // the status is dropped below: the domain comes back shut off (its config kept)
      }
      changes.push({ kind: 'status', uuid, data: live === null ? null : `${JSON.stringify({ ...rest, live }, null, 1)}\n` });
    }
    if (changes.length > 0) {
      store.commit(changes);
      store.syncNow();
      store.checkpoint();
    }
  } finally {
    store.close();
  }
  return result;
}
