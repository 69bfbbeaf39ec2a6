// SPDX-License-Identifier: Apache-2.0
// libvirtd's keepalive timing on an injected clock (no sleeping): what the daemon's once-a-second tick does with a
// session at each second of silence. The real daemon's wiring is in integration/keepalive-and-cli.test.ts.
import { Session } from '../../../src/unprivileged/session';

// A keepalive PONG (program 0x6b656570, proc 2, type MESSAGE): bytes from the client, handled inside the session.
const PONG = Buffer.from('0000001c6b65657000000001000000020000000200000000' + '00000000', 'hex');

function session(clock: { t: number }, asked: boolean): { s: Session; closed: string[] } {
  const closed: string[] = [];
  const s = new Session({
    id: 1,
    readOnly: false,
    secure: true,
    identity: { user: 'alice', method: 'peercred', uid: 1000, source: 'unix:pid=1,uid=1000' },
    maxMessageBytes: 1 << 20,
    maxClientRequests: 4,
    onWrite: () => undefined,
    onClose: (r) => closed.push(r),
    onBusy: () => undefined,
    dispatch: () => Promise.reject(new Error('no call expected')),
    now: () => clock.t,
  });
  s.keepaliveRequested = asked;
  return { s, closed };
}

// What each tick (once a second, from `from` to `to` seconds) says, as "second:action".
function ticks(s: Session, clock: { t: number }, from: number, to: number, interval: number, count: number): string[] {
  const out: string[] = [];
  for (let sec = from; sec <= to; sec++) {
    clock.t = sec * 1000;
    const due = s.keepaliveDue(clock.t, interval, count);
    if (due) out.push(`${sec}:${due}`);
  }
  return out;
}

test("libvirtd's defaults (interval 5, count 5): a ping every 5 s of silence, dropped at 30 s, not a tick earlier", () => {
  const clock = { t: 0 };
  const { s } = session(clock, true);
  expect(ticks(s, clock, 0, 30, 5, 5)).toEqual(['5:ping', '10:ping', '15:ping', '20:ping', '25:ping', '30:close']);
});

test('interval 1, count 2 (the integration test’s settings): pings at 1 and 2 s, dropped at 3 s', () => {
  const clock = { t: 0 };
  const { s } = session(clock, true);
  expect(ticks(s, clock, 0, 3, 1, 2)).toEqual(['1:ping', '2:ping', '3:close']);
});

test('any bytes from the client (a PONG) restart the silence: a client that answers is never dropped', () => {
  const clock = { t: 0 };
  const { s, closed } = session(clock, true);
  const seen: string[] = [];
  for (let sec = 1; sec <= 600; sec++) {
    clock.t = sec * 1000;
    const due = s.keepaliveDue(clock.t, 5, 5);
    if (due) seen.push(due);
    if (due === 'ping') s.push(PONG); // the client answers at once
  }
  expect(seen).toHaveLength(120); // one ping per 5 s of silence
  expect(seen.every((d) => d === 'ping')).toBe(true);
  expect(closed).toEqual([]);
  // It stops answering at 600 s: dropped 30 s later.
  expect(ticks(s, clock, 601, 630, 5, 5)).toEqual(['605:ping', '610:ping', '615:ping', '620:ping', '625:ping', '630:close']);
});

test('a client that did not ask for keepalive is never pinged or dropped, however long it is silent', () => {
  const clock = { t: 0 };
  const { s } = session(clock, false);
  expect(ticks(s, clock, 0, 3600, 1, 2)).toEqual([]);
});

test('interval 0 turns keepalive off', () => {
  const clock = { t: 0 };
  const { s } = session(clock, true);
  expect(ticks(s, clock, 0, 3600, 0, 5)).toEqual([]);
});
