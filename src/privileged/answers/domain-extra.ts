// SPDX-License-Identifier: Apache-2.0
// The helper's answers to the domain stats/pinning/tuning actions of DOMAIN_READ (codes >= 32), over driver.domainExtra.
import { VG_ERR_NOT_SUPPORTED } from '../../common/errors';
import type { ActionArgs, ActionResult } from '../../ipc/actions';
import type { Actor } from '../../ipc/shared';
import type { DOMAIN_READ_EXTRA, DOMAIN_WRITE_EXTRA } from '../../ipc/objects/domain-extra';
import type { DomainExtraDriver } from '../drivers/domain-extra-driver';
import { type Driver, driverError } from '../drivers/driver';

type R = typeof DOMAIN_READ_EXTRA;
type ReadExtraAnswers = { [K in keyof R]: (x: DomainExtraDriver, body: ActionArgs<R, K>) => ActionResult<R, K> };

function extra(driver: Driver): DomainExtraDriver {
  if (!driver.domainExtra) throw driverError(VG_ERR_NOT_SUPPORTED, 'domain statistics');
  return driver.domainExtra;
}

const flags = (b: { live: boolean; config: boolean }) => ({ live: b.live, config: b.config });

export const READ_EXTRA_ANSWERS: ReadExtraAnswers = {
  vcpus: (x, b) => ({ action: 'vcpus', ...x.vcpus(b.uuid, b.maxinfo) }),
  vcpuPinInfo: (x, b) => ({ action: 'vcpuPinInfo', maps: x.vcpuPinInfo(b.uuid, b.ncpumaps, flags(b)) }),
  emulatorPinInfo: (x, b) => ({ action: 'emulatorPinInfo', map: x.emulatorPinInfo(b.uuid, flags(b)) }),
  blockStats: (x, b) => ({ action: 'blockStats', ...x.blockStats(b.uuid, b.path) }),
  interfaceStats: (x, b) => ({ action: 'interfaceStats', ...x.interfaceStats(b.uuid, b.device) }),
  memoryStats: (x, b) => ({ action: 'memoryStats', stats: x.memoryStats(b.uuid, b.maxStats) }),
  blockInfo: (x, b) => ({ action: 'blockInfo', ...x.blockInfo(b.uuid, b.path) }),
  diskErrors: (x, b) => ({ action: 'diskErrors', ...x.diskErrors(b.uuid, b.maxerrors) }),
  fsInfo: (x, b) => ({ action: 'fsInfo', info: x.fsInfo(b.uuid) }),
  interfaceAddresses: (x, b) => ({ action: 'interfaceAddresses', ifaces: x.interfaceAddresses(b.uuid, b.source) }),
  tuning: (x, b) => ({ action: 'tuning', params: x.tuning(b.uuid, b.kind, flags(b)) }),
  metadata: (x, b) => ({ action: 'metadata', value: x.metadata(b.uuid, b.type, b.uri, flags(b)) }),
};

// One DOMAIN_READ extra action; `body.action` is one of READ_EXTRA_ANSWERS' keys (the group's decoder checked it).
export function answerDomainReadExtra<K extends keyof R>(driver: Driver, body: { action: K } & ActionArgs<R, K>): ActionResult<R, K> {
  const fn = READ_EXTRA_ANSWERS[body.action] as (x: DomainExtraDriver, b: ActionArgs<R, K>) => ActionResult<R, K>;
  return fn(extra(driver), body);
}

export const isReadExtraAction = (a: string): a is keyof R => Object.prototype.hasOwnProperty.call(READ_EXTRA_ANSWERS, a);

type W = typeof DOMAIN_WRITE_EXTRA;
type WriteBody<K extends keyof W> = ActionArgs<W, K> & { actor: Actor };
type WriteExtraAnswers = { [K in keyof W]: (x: DomainExtraDriver, body: WriteBody<K>) => ActionResult<W, K> };

export const WRITE_EXTRA_ANSWERS: WriteExtraAnswers = {
  setTuning: (x, b) => (x.setTuning(b.uuid, b.kind, b.params, flags(b)), { action: 'setTuning' }),
  pinVcpu: (x, b) => (x.pinVcpu(b.uuid, b.vcpu, b.cpus), { action: 'pinVcpu' }),
  pinEmulator: (x, b) => (x.pinEmulator(b.uuid, b.cpus, flags(b)), { action: 'pinEmulator' }),
  setAutostart: (x, b) => (x.setAutostart(b.uuid, b.autostart), { action: 'setAutostart' }),
  reset: (x, b) => (x.reset(b.uuid), { action: 'reset' }),
  managedSave: (x, b) => (x.managedSave(b.uuid), { action: 'managedSave' }),
  managedSaveRemove: (x, b) => (x.managedSaveRemove(b.uuid), { action: 'managedSaveRemove' }),
  // The helper's own tenant rule: a tenant's session never takes a name another tenant's VM holds.
  rename: (x, b) => (x.rename(b.uuid, b.name, b.actor.tenant), { action: 'rename' }),
  setMetadata: (x, b) => (x.setMetadata(b.uuid, b.type, b.value, b.key, b.uri, flags(b)), { action: 'setMetadata' }),
};

export function answerDomainWriteExtra<K extends keyof W>(driver: Driver, body: { action: K } & WriteBody<K>): ActionResult<W, K> {
  const fn = WRITE_EXTRA_ANSWERS[body.action] as (x: DomainExtraDriver, b: WriteBody<K>) => ActionResult<W, K>;
  return fn(extra(driver), body);
}

export const isWriteExtraAction = (a: string): a is keyof W => Object.prototype.hasOwnProperty.call(WRITE_EXTRA_ANSWERS, a);
