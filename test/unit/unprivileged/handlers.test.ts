// SPDX-License-Identifier: Apache-2.0
import { type DomainSummary } from '../../../src/ipc/program';
import { ListAllFlags as F } from '../../../src/protocol/constants';
import { allProcs } from '../../../src/protocol/procs/remote';
import { apiName } from '../../../src/unprivileged/dispatcher';
import { SERVER_MESSAGES, handledProcs, matchesListFlags } from '../../../src/unprivileged/handlers';
import { AllowAllAuthorizer, isReadPermission } from '../../../src/policy/authorizer';

test('every procedure in the table has a handler, except the messages the server sends', () => {
  const handled = new Set(handledProcs());
  for (const p of allProcs()) {
    if (SERVER_MESSAGES.includes(p.proc)) expect(handled.has(p.proc)).toBe(false);
    else expect({ proc: p.name, handled: handled.has(p.proc) }).toEqual({ proc: p.name, handled: true });
  }
});

test('a procedure claimed by two handler files stops the registry from loading', () => {
  // The connection file also claiming DOMAIN_GET_INFO (handled in domain-read) must not silently shadow it.
  jest.isolateModules(() => {
    const { P } = jest.requireActual<typeof import('../../../src/protocol/procs/remote')>('../../../src/protocol/procs/remote');
    const real = jest.requireActual<typeof import('../../../src/unprivileged/handlers/connect')>('../../../src/unprivileged/handlers/connect');
    jest.doMock('../../../src/unprivileged/handlers/connect', () => ({ connectHandlers: [...real.connectHandlers, [P.DOMAIN_GET_INFO, async () => ({})]] }));
    expect(() => require('../../../src/unprivileged/handlers')).toThrow(`two handlers for procedure ${P.DOMAIN_GET_INFO.proc} (${P.DOMAIN_GET_INFO.name})`);
  });
});

const dom = (over: Partial<DomainSummary>): DomainSummary => ({ name: 'x', uuid: Buffer.alloc(16), id: 1, state: 1, reason: 1, persistent: true, ...over });
const running = dom({});
const paused = dom({ state: 3 });
const off = dom({ id: -1, state: 5 });
const transient = dom({ persistent: false });

test.each([
  ['no flags: everything', 0, [running, paused, off, transient], [true, true, true, true]],
  ['ACTIVE', F.ACTIVE, [running, off], [true, false]],
  ['INACTIVE', F.INACTIVE, [running, off], [false, true]],
  ['ACTIVE|INACTIVE (virsh list --all)', F.ACTIVE | F.INACTIVE, [running, off], [true, true]],
  ['TRANSIENT', F.TRANSIENT, [running, transient], [false, true]],
  ['PAUSED', F.PAUSED, [running, paused], [false, true]],
  ['ACTIVE and SHUTOFF (groups AND)', F.ACTIVE | F.SHUTOFF, [running, off], [false, false]],
  ['HAS_SNAPSHOT (none here)', F.HAS_SNAPSHOT, [running], [false]],
  ['NO_AUTOSTART', F.NO_AUTOSTART, [running], [true]],
])('list filter %s', (_n, flags, doms, want) => {
  expect(doms.map((d) => matchesListFlags(d, flags))).toEqual(want);
});

test('libvirt API names for read-only denials', () => {
  const byName = (n: string) => allProcs().find((p) => p.name === n)!;
  expect(apiName(byName('domainSuspend'))).toBe('virDomainSuspend');
  expect(apiName(byName('domainDefineXml'))).toBe('virDomainDefineXML');
  expect(apiName(byName('domainLookupByUuid'))).toBe('virDomainLookupByUUID');
});

test('read-only subjects never get write permissions, even from allow-all', () => {
  const a = new AllowAllAuthorizer();
  const ro = { user: 'u', tenant: '', readOnly: true };
  expect(a.can(ro, { kind: 'domain', name: 'x' }, 'domain:read').allowed).toBe(true);
  expect(a.can(ro, { kind: 'domain', name: 'x' }, 'domain:start').allowed).toBe(false);
  expect(a.can(ro, { kind: 'connect', name: 'v' }, 'connect:search_domains').allowed).toBe(true);
  expect(isReadPermission('domain:read_secure')).toBe(false);
});
