// SPDX-License-Identifier: Apache-2.0
// Handlers for the procedures of ../../protocol/procs/host-objects.ts.
import { VG_ERR_MULTIPLE_INTERFACES, VG_ERR_NO_INTERFACE } from '../../common/errors';
import type { IfaceSummary } from '../../ipc/objects/host-objects';
import type { Entry } from './common';

// virInterfaceLookupByMACString over the visible interfaces: case-insensitive, more than one match is an error.
export function ifaceByMac(ifaces: readonly IfaceSummary[], mac: string): IfaceSummary {
  const found = ifaces.filter((i) => i.mac !== '' && i.mac.toLowerCase() === mac.toLowerCase());
  if (found.length === 0) throw VG_ERR_NO_INTERFACE(`no interface with matching mac '${mac}'`);
  if (found.length > 1) throw VG_ERR_MULTIPLE_INTERFACES('');
  return found[0];
}

export const hostObjectHandlers: Entry[] = [];
