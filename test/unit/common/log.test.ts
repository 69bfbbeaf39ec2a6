// SPDX-License-Identifier: Apache-2.0
// The logger core: libvirt filter/output syntax, per-component levels, per-output levels, rate limit and its summary.
import { Level, type LogRecord, Logger, formatLine, parseFilters, parseOutputs } from '../../../src/common/log';

function setup(filters = '', outputs = '1:stderr', rateLimit = 0, now?: () => number) {
  const lines: { out: string; rec: LogRecord }[] = [];
  const log = new Logger({
    filters,
    outputs,
    rateLimit,
    now,
    open: (spec) => ({ write: (rec) => void lines.push({ out: `${spec.kind}${spec.level}`, rec }) }),
  });
  return { log, lines };
}

test('filters: numbers and names, first match wins, substring and glob', () => {
  expect(parseFilters('3:rpc 1:policy warning:*')).toEqual([
    { level: 3, match: 'rpc' },
    { level: 1, match: 'policy' },
    { level: 3, match: '*' },
  ]);
  expect(() => parseFilters('9:rpc')).toThrow(/unknown level/);
  expect(() => parseFilters('rpc')).toThrow(/LEVEL:COMPONENT/);
  const { log, lines } = setup('4:rpc 1:policy');
  log.log('rpc', Level.WARNING, 'hidden');
  log.log('rpc', Level.ERROR, 'shown');
  log.log('policy', Level.DEBUG, 'debug shown');
  log.log('net', Level.DEBUG, 'default is info: hidden');
  log.log('net', Level.INFO, 'info shown');
  expect(lines.map((l) => l.rec.message)).toEqual(['shown', 'debug shown', 'info shown']);
});

test('outputs: syntax, per-output level, live change keeps the old set on a bad text', () => {
  expect(parseOutputs('1:journald 3:stderr 2:file:/var/log/x.log')).toEqual([
    { level: 1, kind: 'journald' },
    { level: 3, kind: 'stderr' },
    { level: 2, kind: 'file', path: '/var/log/x.log' },
  ]);
  expect(() => parseOutputs('2:file:relative')).toThrow(/absolute/);
  expect(() => parseOutputs('2:syslog')).toThrow(/expected/);
  const { log, lines } = setup('1:*', '1:stderr 3:journald');
  log.log('a', Level.INFO, 'i');
  log.log('a', Level.ERROR, 'e');
  expect(lines.map((l) => `${l.out} ${l.rec.message}`)).toEqual(['stderr1 i', 'stderr1 e', 'journald3 e']);
  expect(() => log.setOutputs('bogus')).toThrow();
  expect(log.outputs).toBe('1:stderr 3:journald');
  log.setFilters('4:*');
  expect(log.filters).toBe('4:*');
  log.log('a', Level.WARNING, 'hidden now');
  expect(lines).toHaveLength(3);
});

test('rate limit: N lines per component per second, then one summary; stats() counts the suppressed', async () => {
  let t = 1000;
  const { log, lines } = setup('', '1:stderr', 3, () => t);
  for (let i = 0; i < 10; i++) log.log('rpc', Level.WARNING, `denied ${i}`);
  log.log('net', Level.WARNING, 'other component unaffected');
  expect(lines.map((l) => l.rec.message)).toEqual(['denied 0', 'denied 1', 'denied 2', 'other component unaffected']);
  expect(log.stats()).toEqual({ suppressed: { rpc: 7 }, dropped: {} });
  t += 1000;
  log.log('rpc', Level.WARNING, 'next window');
  expect(lines.slice(4).map((l) => l.rec.message)).toEqual(['7 lines suppressed (logRateLimit 3/s)', 'next window']);
  // A burst that then stops is summarised by the timer.
  for (let i = 0; i < 5; i++) log.log('rpc', Level.WARNING, 'again');
  await new Promise((r) => setTimeout(r, 1200));
  expect(lines.at(-1)!.rec.message).toBe('3 lines suppressed (logRateLimit 3/s)');
  expect(log.stats().suppressed.rpc).toBe(10);
  log.close();
});

test('a text line cannot be split by a client-chosen name', () => {
  const line = formatLine({ time: new Date(), level: Level.WARNING, component: 'rpc', message: 'denied to x\nvirtgated: forged', fields: { user: 'a\nb' } });
  expect(line).not.toContain('\n');
  expect(line).toBe('virtgated: warning: denied to x\\x0avirtgated: forged [rpc user="a\\nb"]');
});
