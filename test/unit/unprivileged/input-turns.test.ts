// SPDX-License-Identifier: Apache-2.0
import { InputTurns } from '../../../src/unprivileged/input-turns';

describe('InputTurns: large-message input shares the loop turn', () => {
  function turns(perTurn: number): { t: InputTurns; next: () => void; pending: () => number } {
    const queue: Array<() => void> = [];
    const t = new InputTurns(perTurn, (f) => queue.push(f));
    return { t, next: () => queue.splice(0).forEach((f) => f()), pending: () => queue.length };
  }

  test('under the budget nobody waits; past it the connection waits for the next turn', () => {
    const { t, next } = turns(100);
    const resumed: string[] = [];
    expect(t.spend(60, () => resumed.push('a'))).toBe(false);
    expect(t.spend(60, () => resumed.push('b'))).toBe(true); // 120 of 100: b stops reading
    expect(t.spend(10, () => resumed.push('c'))).toBe(true); // the turn is spent for everyone
    expect(t.waiting).toBe(2);
    expect(resumed).toEqual([]);
    next();
    expect(resumed).toEqual(['b', 'c']);
    expect(t.waiting).toBe(0);
    expect(t.yields).toBe(2);
    // A new turn starts with a full budget.
    expect(t.spend(99, () => resumed.push('d'))).toBe(false);
  });

  test('one turn is scheduled per turn, not per call', () => {
    const { t, next, pending } = turns(1000);
    for (let i = 0; i < 50; i++) t.spend(10, () => undefined);
    expect(pending()).toBe(1);
    next();
    expect(pending()).toBe(0);
    t.spend(10, () => undefined);
    expect(pending()).toBe(1);
  });
});
