// SPDX-License-Identifier: Apache-2.0
// Argument summaries never carry a secret, not even hashed: only whether one was given.
import { summarizeArgs } from '../../../src/audit/schema';

test('a password is recorded as given, never as text or hash', () => {
  expect(summarizeArgs({ user: 'root', password: 'hunter2', flags: 0 })).toEqual({ user: 'root', passwordGiven: true, flags: 0 });
  expect(summarizeArgs({ user: 'root', password: null })).toEqual({ user: 'root', passwordGiven: false });
  const long = 'x'.repeat(500);
  expect(JSON.stringify(summarizeArgs({ password: long }))).not.toContain('x'.repeat(10));
});
