// SPDX-License-Identifier: Apache-2.0
// Answers of the extra domain actions (stats, pinning, tuning, metadata, autostart, managed save, rename) over
// driver.domainExtra; undefined = not an extra action (helper side of the IPC boundary).
import { VG_ERR_NOT_SUPPORTED, isVgError } from '../../common/errors';
import type { ActionArgs } from '../../ipc/actions';
import type { DOMAIN_READ_EXTRA, DOMAIN_WRITE_EXTRA } from '../../ipc/objects/domain-extra';
import type { Actor, Op, Requests } from '../../ipc/program';
import type { DomainExtraDriver } from '../drivers/domain-extra-driver';
import { type Driver, driverError } from '../drivers/driver';
import type { AnswerContext, AnswerFn } from './types';

// A domain listed by the front end may be gone by the time its stats are read: it then has no threads to report.
function threadsOrNone(x: DomainExtraDriver, uuid: Buffer): ReturnType<DomainExtraDriver['iothreadStats']> {
  try {
    return x.iothreadStats(uuid);
  } catch (e) {
    if (isVgError(e) && e.code === 'VG_ERR_NO_DOMAIN') return [];
    throw e;
  }
}

type R = typeof DOMAIN_READ_EXTRA;
type W = typeof DOMAIN_WRITE_EXTRA;
type Answer<K extends RequestOp2> = ReturnType<AnswerFn<K>>;
type RequestOp2 = typeof Op.DOMAIN_READ_REQ | typeof Op.DOMAIN_WRITE_REQ;

function extra(driver: Driver): DomainExtraDriver {
  if (!driver.domainExtra) throw driverError(VG_ERR_NOT_SUPPORTED, 'domain statistics and tuning');
  return driver.domainExtra;
}

const flags = (b: { live: boolean; config: boolean }) => ({ live: b.live, config: b.config });

// Each answer is the action's answer without `action` (the server echoes the request's).
const READ: { [K in keyof R]: (x: DomainExtraDriver, b: ActionArgs<R, K>) => object } = {
  vcpus: (x, b) => x.vcpus(b.uuid, b.maxinfo),
  vcpuPinInfo: (x, b) => ({ maps: x.vcpuPinInfo(b.uuid, b.ncpumaps, flags(b)) }),
  emulatorPinInfo: (x, b) => ({ map: x.emulatorPinInfo(b.uuid, flags(b)) }),
  blockStats: (x, b) => x.blockStats(b.uuid, b.path),
  interfaceStats: (x, b) => x.interfaceStats(b.uuid, b.device),
  memoryStats: (x, b) => ({ stats: x.memoryStats(b.uuid, b.maxStats) }),
  blockInfo: (x, b) => x.blockInfo(b.uuid, b.path),
  diskErrors: (x, b) => x.diskErrors(b.uuid, b.maxerrors),
  fsInfo: (x, b) => ({ info: x.fsInfo(b.uuid) }),
  interfaceAddresses: (x, b) => ({ ifaces: x.interfaceAddresses(b.uuid, b.source) }),
  tuning: (x, b) => ({ params: x.tuning(b.uuid, b.kind, flags(b)) }),
  time: (x, b) => x.time(b.uuid),
  iothreadInfo: (x, b) => ({ threads: x.iothreadInfo(b.uuid, flags(b)) }),
  perfEvents: (x, b) => ({ enabled: x.perfEvents(b.uuid, flags(b)) }),
  interfaceParams: (x, b) => ({ params: x.interfaceParams(b.uuid, b.device, flags(b)) }),
  active: (x, b) => (x.checkActive(b.uuid), {}),
  iothreadStats: (x, b) => ({ domains: b.uuids.map((uuid) => ({ uuid, threads: threadsOrNone(x, uuid) })) }),
  blockIoTune: (x, b) => ({ params: x.blockIoTune(b.uuid, b.disk, flags(b)) }),
  metadata: (x, b) => x.metadata(b.uuid, b.type, b.uri, flags(b)),
};

type WriteBody<K extends keyof W> = ActionArgs<W, K> & { actor: Actor };
const WRITE: { [K in keyof W]: (x: DomainExtraDriver, b: WriteBody<K>) => object } = {
  setTuning: (x, b) => (x.setTuning(b.uuid, b.kind, b.params, flags(b)), {}),
  pinVcpu: (x, b) => (x.pinVcpu(b.uuid, b.vcpu, b.cpus), {}),
  pinEmulator: (x, b) => (x.pinEmulator(b.uuid, b.cpus, flags(b)), {}),
  setMetadata: (x, b) => (x.setMetadata(b.uuid, b.type, b.value, b.element, b.uri, flags(b)), {}),
  setAutostart: (x, b) => (x.setAutostart(b.uuid, b.autostart), {}),
  reset: (x, b) => (x.reset(b.uuid), {}),
  managedSave: (x, b) => (x.managedSave(b.uuid), {}),
  managedSaveRemove: (x, b) => (x.managedSaveRemove(b.uuid), {}),
  // The helper's own tenant rule: a tenant's session never takes a name another tenant's VM holds.
  rename: (x, b) => (x.rename(b.uuid, b.name, b.actor.tenant), {}),
  setLifecycleAction: (x, b) => (x.setLifecycleAction(b.uuid, b.type, b.lifecycleAction, flags(b)), {}),
  setMemoryStatsPeriod: (x, b) => (x.setMemoryStatsPeriod(b.uuid, b.period, flags(b)), {}),
  setTime: (x, b) => (x.setTime(b.uuid, b.seconds, b.nseconds), {}),
  addIothread: (x, b) => (x.addIothread(b.uuid, b.id, flags(b)), {}),
  delIothread: (x, b) => (x.delIothread(b.uuid, b.id, flags(b)), {}),
  pinIothread: (x, b) => (x.pinIothread(b.uuid, b.id, b.cpus, flags(b)), {}),
  setIothreadParams: (x, b) => (x.setIothreadParams(b.uuid, b.id, b.params, b.live), {}),
  setPerfEvents: (x, b) => (x.setPerfEvents(b.uuid, b.events, flags(b)), {}),
  setInterfaceParams: (x, b) => (x.setInterfaceParams(b.uuid, b.device, b.params, flags(b)), {}),
  fsFreeze: (x, b) => ({ count: x.fsFreeze(b.uuid, b.mountpoints, b.thaw) }),
  fsTrim: (x, b) => (x.fsTrim(b.uuid, b.mountpoint), {}),
  injectNmi: (x, b) => (x.injectNmi(b.uuid), {}),
  sendProcessSignal: (x, b) => (x.sendProcessSignal(b.uuid, b.signum), {}),
  setUserPassword: (x, b) => (x.setUserPassword(b.uuid, b.user), {}),
  sendKey: (x, b) => (x.sendKey(b.uuid, b.codeset, b.keycodes), {}),
  setBlockIoTune: (x, b) => (x.setBlockIoTune(b.uuid, b.disk, b.params, flags(b)), {}),
};

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

export function answerDomainReadExtra(ctx: AnswerContext, body: Requests[typeof Op.DOMAIN_READ_REQ]): Answer<typeof Op.DOMAIN_READ_REQ> | undefined {
  if (!has(READ, body.action)) return undefined;
  const fn = READ[body.action as keyof R] as (x: DomainExtraDriver, b: unknown) => object;
  return fn(extra(ctx.driver), body) as Answer<typeof Op.DOMAIN_READ_REQ>;
}

export function answerDomainWriteExtra(ctx: AnswerContext, body: Requests[typeof Op.DOMAIN_WRITE_REQ]): Answer<typeof Op.DOMAIN_WRITE_REQ> | undefined {
  if (!has(WRITE, body.action)) return undefined;
  const fn = WRITE[body.action as keyof W] as (x: DomainExtraDriver, b: unknown) => object;
  return fn(extra(ctx.driver), body) as Answer<typeof Op.DOMAIN_WRITE_REQ>;
}
