// SPDX-License-Identifier: Apache-2.0
// Tests that drive the helper directly (driver, raw IPC) build its typed definitions from XML the way the front end does.
import { type VgError, errorCatalogue, isVgError } from '../../src/common/errors';
import type { DomainDef } from '../../src/ipc/objects/domain-def';
import { formatDomainXml, parseDomainXml } from '../../src/unprivileged/xml/domain';

// Client XML -> the DomainDef the front end sends.
export const dx = (xml: string): DomainDef => parseDomainXml(xml);

// What the front end writes for a `xml` answer of the helper.
export const xmlOf = (a: { def: DomainDef; id: number | null }): string => formatDomainXml(a.def, a.id);

// A catalogue error's %s part (what the helper's DriverError carried as `detail`).
export function detailOf(e: VgError): string {
  const format = errorCatalogue().get(e.code)?.format ?? '%s';
  const [pre, post] = format.split('%s');
  return e.message.slice(pre.length, e.message.length - (post ?? '').length);
}

// `CODE: detail` of what fn throws (a VgError, as the front end's parser throws them).
export function failsWith(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isVgError(e)) return `${e.code}: ${detailOf(e)}`;
    throw e;
  }
  throw new Error('expected a VgError');
}
