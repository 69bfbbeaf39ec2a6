// SPDX-License-Identifier: Apache-2.0
// The supervisor's restart delay: at once after a stable run, growing only while a process keeps dying soon after
// start, and back to no delay once a process has stayed up for the stable period (it used to grow for good).
import { RestartBackoff } from '../../../src/cli/start';

test('a crash loop backs off 0, 200, 400, ... up to 3 s', () => {
  const b = new RestartBackoff(3000, 3000);
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    b.ready(1000 * i);
    delays.push(b.exited(1000 * i + 500)); // dies half a second after it was ready
  }
  expect(delays).toEqual([0, 200, 400, 800, 1600, 3000, 3000, 3000]);
});

test('a process that dies during start-up (never ready) keeps backing off', () => {
  const b = new RestartBackoff(3000, 3000);
  expect([b.exited(0), b.exited(10000), b.exited(20000)]).toEqual([0, 200, 400]);
});

test('a stable run resets the backoff: every crash after one restarts at once', () => {
  const b = new RestartBackoff(3000, 3000);
  for (let i = 0; i < 6; i++) b.exited(i); // a crash loop first
  let t = 100000;
  for (let i = 0; i < 10; i++) {
    b.ready(t);
    t += 3000; // up for the stable period, then killed
    expect(b.exited(t)).toBe(0);
    t += 500;
  }
});

test('just short of the stable period does not reset', () => {
  const b = new RestartBackoff(3000, 3000);
  b.ready(0);
  expect(b.exited(2999)).toBe(0); // first crash: at once
  b.ready(3000);
  expect(b.exited(5999)).toBe(200);
  b.ready(6000);
  expect(b.exited(9000)).toBe(0); // stable again
});
