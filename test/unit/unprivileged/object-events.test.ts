// SPDX-License-Identifier: Apache-2.0
// The object event hub: each registration gets the events of its type (and object, when it named one), only for
// objects its connection may see, in callback order; closed connections' registrations go; a connection cannot hold
// more than OBJECT_REGISTRATIONS_MAX.
import type { ObjectEvent } from '../../../src/ipc/program';
import type { PolicyObject } from '../../../src/policy/authorizer';
import { OBJECT_REGISTRATIONS_MAX, ObjectEventHub, registerObjectEventKind } from '../../../src/unprivileged/object-events';
import type { Session } from '../../../src/unprivileged/session';

// The kind under test; its frames name the callback, event id and object so the test can read them back.
registerObjectEventKind('nodedev', {
  permission: 'node_device:getattr',
  object: (ev) => ({ kind: 'node_device', name: ev.name, tenant: ev.tenant }),
  frames: (callbackID, eventID, ev) => (eventID === ev.event || eventID === 0 ? [Buffer.from(`${callbackID}:${eventID}:${ev.name}`)] : []),
});

const fakeSession = (name: string) => {
  const sent: string[] = [];
  const s = { name, closed: false, opened: true, send: (b: Buffer) => void sent.push(b.toString()) };
  return { s: s as unknown as Session & { closed: boolean }, sent, raw: s };
};
const ev = (name: string, tenant = '', event = 0): ObjectEvent => ({ type: 'nodedev', name, uuid: Buffer.alloc(16), tenant, event, detail: 0 });

test('delivery per registration, filtered by what each connection may see', () => {
  const seen: string[] = [];
  const hub = new ObjectEventHub((s, o: PolicyObject, perm) => (seen.push(perm), (s as unknown as { name: string }).name === 'admin' || o.name === 'public'));
  const admin = fakeSession('admin');
  const tenant = fakeSession('tenant');
  hub.register(admin.s, 'nodedev', 0, 7, null);
  hub.register(admin.s, 'nodedev', 0, 3, null);
  hub.register(tenant.s, 'nodedev', 0, 4, null);
  hub.publish(ev('secret'));
  hub.publish(ev('public'));
  expect(admin.sent).toEqual(['3:0:secret', '7:0:secret', '3:0:public', '7:0:public']); // callback order
  expect(tenant.sent).toEqual(['4:0:public']); // never hears of what it may not see
  expect(new Set(seen)).toEqual(new Set(['node_device:getattr']));
});

test('a registration for one object hears only that object; deregistering stops delivery', () => {
  const hub = new ObjectEventHub(() => true);
  const a = fakeSession('a');
  hub.register(a.s, 'nodedev', 0, 1, Buffer.alloc(16, 9));
  hub.publish(ev('x')); // uuid all zero: another object
  expect(a.sent).toEqual([]);
  hub.publish({ ...ev('y'), uuid: Buffer.alloc(16, 9) });
  expect(a.sent).toEqual(['1:0:y']);
  expect(hub.deregister(a.s, 'network', 1)).toBe(false); // wrong type: not this callback
  expect(hub.deregister(a.s, 'nodedev', 2)).toBe(false);
  expect(hub.deregister(a.s, 'nodedev', 1)).toBe(true);
  hub.publish({ ...ev('y'), uuid: Buffer.alloc(16, 9) });
  expect(a.sent).toHaveLength(1);
  expect(hub.registered).toBe(0);
});

test("closed connections' registrations go; unopened ones hear nothing; at most OBJECT_REGISTRATIONS_MAX each", () => {
  const hub = new ObjectEventHub(() => true);
  const a = fakeSession('a');
  const b = fakeSession('b');
  for (let i = 0; i < OBJECT_REGISTRATIONS_MAX; i++) hub.register(a.s, 'nodedev', 0, i, null);
  expect(() => hub.register(a.s, 'nodedev', 0, 99999, null)).toThrow(/at most 1024/);
  hub.register(b.s, 'nodedev', 0, 1, null);
  b.raw.opened = false;
  hub.publish(ev('x'));
  expect(b.sent).toEqual([]);
  a.raw.closed = true;
  expect(hub.registered).toBe(1);
});
