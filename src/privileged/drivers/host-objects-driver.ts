// SPDX-License-Identifier: Apache-2.0
// The host-object driver contracts behind the helper's IFACE_*, NODEDEV_* and HOST_READ ops (helper side): typed
// configs in, typed results out, DriverError for every refusal. Host objects belong to no tenant (''): only an actor
// without a tenant (a host admin, as the front end's policy decided) may change them; a tenant's request is refused.
import type { CpuStat, IfaceDef, IfaceSummary, NodeDevDef, Sysinfo, VhbaRequest } from '../../ipc/objects/host-objects';

// The context they are built with (records, events, first start) is the test driver's ObjectDriverContext.
export type { ObjectDriverContext as HostObjectsContext } from './object-context';

// virNodeDeviceEventLifecycleType
export const NodeDeviceEvent = { CREATED: 0, DELETED: 1, DEFINED: 2, UNDEFINED: 3 } as const;

export interface InterfaceDriver {
  list(): IfaceSummary[];
  get(name: string): { def: IfaceDef; active: boolean };
  define(def: IfaceDef, tenant: string): IfaceSummary;
  undefine(name: string, tenant: string): void;
  start(name: string, tenant: string): void;
  stop(name: string, tenant: string): void;
  begin(tenant: string): void;
  commit(tenant: string): void;
  rollback(tenant: string): void;
}

export interface NodeDeviceDriver {
  list(): NodeDevDef[];
  get(name: string): NodeDevDef;
  create(req: VhbaRequest, tenant: string): { name: string };
  destroy(name: string, tenant: string): void;
}

export interface HostFactsDriver {
  sysinfo(): Sysinfo;
  cpuStats(cpuNum: number): CpuStat[];
  cpuMap(): { cpus: number; online: number; map: Buffer };
  cpuModels(arch: string): string[];
  freePages(pages: number[], startCell: number, cellCount: number): bigint[];
}
