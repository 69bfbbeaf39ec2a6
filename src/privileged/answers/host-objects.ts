// SPDX-License-Identifier: Apache-2.0
// Host-object answers: IFACE_READ/IFACE_WRITE, NODEDEV_READ/NODEDEV_WRITE and HOST_READ dispatched on the action
// (helper side). Every field arrives validated by the group's codec; the drivers enforce the tenant rule.
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import type { ActionAnswer, ActionGroup, ActionRequest, Actions } from '../../ipc/actions';
import type { DomainCapsQuery, HOST_READ, IFACE_READ, IFACE_WRITE, NODEDEV_READ, NODEDEV_WRITE } from '../../ipc/objects/host-objects';
import { type Async, driverError } from '../drivers/driver';
import type { HostFactsDriver, InterfaceDriver, NodeDeviceDriver } from '../drivers/host-objects-driver';

type Req<G> = G extends ActionGroup<infer T extends Actions, infer W extends boolean> ? ActionRequest<T, W> : never;
type Ans<G> = G extends ActionGroup<infer T extends Actions, boolean> ? ActionAnswer<T> : never;

// What these answers need of the helper's context: the driver's optional host-object members.
export interface HostObjectsAnswerContext {
  readonly driver: {
    readonly interfaces?: InterfaceDriver;
    readonly nodeDevices?: NodeDeviceDriver;
    readonly host?: HostFactsDriver;
    domainCapabilities?(q: DomainCapsQuery): Async<string>;
  };
}

// A driver without the sub-driver answers as libvirt does for a missing driver table entry.
function need<T>(d: T | undefined, api: string): T {
  if (d === undefined) throw driverError(VG_ERR_NOT_SUPPORTED, api);
  return d;
}

export function answerIfaceRead(ctx: HostObjectsAnswerContext, body: Req<typeof IFACE_READ>): Ans<typeof IFACE_READ> {
  const d = need(ctx.driver.interfaces, 'virConnectListAllInterfaces');
  switch (body.action) {
    case 'list':
      return { action: 'list', ifaces: d.list() };
    case 'get':
      return { action: 'get', ...d.get(body.name) };
  }
}

export function answerIfaceWrite(ctx: HostObjectsAnswerContext, body: Req<typeof IFACE_WRITE>): Ans<typeof IFACE_WRITE> {
  const d = need(ctx.driver.interfaces, 'virInterfaceDefineXML');
  const tenant = body.actor.tenant;
  switch (body.action) {
    case 'define':
      return { action: 'define', ...d.define(body.def, tenant) };
    case 'undefine':
      d.undefine(body.name, tenant);
      return { action: 'undefine' };
    case 'start':
      d.start(body.name, tenant);
      return { action: 'start' };
    case 'stop':
      d.stop(body.name, tenant);
      return { action: 'stop' };
    case 'begin':
      d.begin(tenant);
      return { action: 'begin' };
    case 'commit':
      d.commit(tenant);
      return { action: 'commit' };
    case 'rollback':
      d.rollback(tenant);
      return { action: 'rollback' };
  }
}

export function answerNodeDevRead(ctx: HostObjectsAnswerContext, body: Req<typeof NODEDEV_READ>): Ans<typeof NODEDEV_READ> {
  const d = need(ctx.driver.nodeDevices, 'virConnectListAllNodeDevices');
  switch (body.action) {
    case 'list':
      return { action: 'list', devices: d.list() };
    case 'get':
      return { action: 'get', ...d.get(body.name) };
  }
}

export function answerNodeDevWrite(ctx: HostObjectsAnswerContext, body: Req<typeof NODEDEV_WRITE>): Ans<typeof NODEDEV_WRITE> {
  const d = need(ctx.driver.nodeDevices, 'virNodeDeviceCreateXML');
  switch (body.action) {
    case 'create': {
      const { actor, action: _a, ...req } = body;
      return { action: 'create', ...d.create(req, actor.tenant) };
    }
    case 'destroy':
      d.destroy(body.name, body.actor.tenant);
      return { action: 'destroy' };
  }
}

export function answerHostRead(ctx: HostObjectsAnswerContext, body: Req<typeof HOST_READ>): Ans<typeof HOST_READ> | Promise<Ans<typeof HOST_READ>> {
  if (body.action === 'domainCapabilities') {
    // The driver's own member (the QEMU driver formats it from its probe); libvirt's test driver has none.
    if (!ctx.driver.domainCapabilities) throw driverError(VG_ERR_NOT_SUPPORTED, 'virConnectGetDomainCapabilities');
    const { action: _a, ...q } = body;
    return Promise.resolve(ctx.driver.domainCapabilities(q)).then((xml) => ({ action: 'domainCapabilities' as const, xml }));
  }
  const d = need(ctx.driver.host, 'virConnectGetSysinfo');
  switch (body.action) {
    case 'sysinfo':
      return { action: 'sysinfo', sysinfo: d.sysinfo() };
    case 'cpuStats':
      return { action: 'cpuStats', stats: d.cpuStats(body.cpuNum) };
    case 'cpuMap':
      return { action: 'cpuMap', ...d.cpuMap() };
    case 'cpuModels':
      return { action: 'cpuModels', models: d.cpuModels(body.arch) };
    case 'freePages':
      return { action: 'freePages', counts: d.freePages(body.pages, body.startCell, body.cellCount) };
  }
}
