// SPDX-License-Identifier: Apache-2.0
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type AuthEvent, AuthService } from '../../../src/unprivileged/auth';

const service = (events: AuthEvent[] = []): AuthService =>
  new AuthService(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vg-auth-')), 'users.json'), (e) => events.push(e));

test('failed logins are slowed per source address: 250 ms, doubling, forgotten after a success', async () => {
  jest.useFakeTimers();
  try {
    const events: AuthEvent[] = [];
    const a = service(events);
    const fail = (source: string): { done: boolean } => {
      const state = { done: false };
      void a.failed({ method: 'sasl', user: 'x', source, evidence: {}, reason: 'r' }).then(() => (state.done = true));
      return state;
    };
    const f1 = fail('203.0.113.7:50000');
    await jest.advanceTimersByTimeAsync(249);
    expect(f1.done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(f1.done).toBe(true);
    const f2 = fail('203.0.113.7:50001'); // another port, same address: same penalty counter
    await jest.advanceTimersByTimeAsync(499);
    expect(f2.done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(f2.done).toBe(true);
    expect(a.penaltyCount('203.0.113.7:1')).toBe(2);
    const other = fail('198.51.100.1:4000'); // a different source starts at 250 ms
    await jest.advanceTimersByTimeAsync(250);
    expect(other.done).toBe(true);
    a.succeeded({ method: 'sasl', user: 'x', source: '203.0.113.7:50002', evidence: {} });
    expect(a.penaltyCount('203.0.113.7:1')).toBe(0);
    expect(events.map((e) => e.outcome)).toEqual(['failure', 'failure', 'failure', 'success']);
  } finally {
    jest.useRealTimers();
  }
});

test('unix peers share a penalty per uid, not per pid', () => {
  expect(AuthService.sourceKey('unix:pid=123,uid=1000')).toBe(AuthService.sourceKey('unix:pid=456,uid=1000'));
  expect(AuthService.sourceKey('unix:pid=123,uid=1000')).not.toBe(AuthService.sourceKey('unix:pid=123,uid=0'));
});
