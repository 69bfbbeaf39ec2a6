// SPDX-License-Identifier: Apache-2.0
// The metrics registry on its own: the series it renders, addGauge for other parts' status, and the config keys.
import { spawnSync } from 'node:child_process';
import { resolveConfig } from '../../../src/common/config';
import { testIf, tool } from '../../helpers/skip';
import { Metrics } from '../../../src/unprivileged/metrics';

const sources = { outputQueuedBytes: () => 1234, domains: () => undefined, helperUp: () => true };

test('calls, denials, logins and connections render with their labels; the registry is private', async () => {
  const m = new Metrics(sources);
  m.call('domainGetInfo', 'ok', 0.0002);
  m.call('domainGetInfo', 'ok', 0.0003);
  m.call('domainSuspend', 'denied', 0.001);
  m.denial('read_only');
  m.login('sasl', false);
  m.connectionOpened('tls');
  m.connectionOpened('tls');
  m.connectionClosed('tls');
  m.auditCommit(3, 0.002);
  const text = await m.render();
  expect(text).toMatch(/^virtgate_calls_total\{procedure="domainGetInfo",outcome="ok"\} 2$/m);
  expect(text).toMatch(/^virtgate_calls_total\{procedure="domainSuspend",outcome="denied"\} 1$/m);
  expect(text).toMatch(/^virtgate_call_duration_seconds_count\{procedure="domainGetInfo"\} 2$/m);
  expect(text).toMatch(/^virtgate_denials_total\{reason="read_only"\} 1$/m);
  expect(text).toMatch(/^virtgate_logins_total\{method="sasl",result="failure"\} 1$/m);
  expect(text).toMatch(/^virtgate_connections_total\{listener="tls"\} 2$/m);
  expect(text).toMatch(/^virtgate_connections\{listener="tls"\} 1$/m);
  expect(text).toMatch(/^virtgate_output_queued_bytes 1234$/m);
  expect(text).toMatch(/^virtgate_audit_group_commit_records_sum 3$/m);
  expect(text).toMatch(/^virtgate_helper_up 1$/m);
  // Nothing leaked into prom-client's global registry.
  const { register } = await import('prom-client');
  expect(await register.metrics()).not.toMatch(/virtgate_/);
});

test('VMs are counted by state and tenant from the mirror', async () => {
  const dom = (state: number, tenant?: string) => ({ name: 'x', uuid: Buffer.alloc(16), id: 1, state, reason: 0, persistent: true, tenant });
  const m = new Metrics({ ...sources, domains: () => [dom(1, 'acme'), dom(1, 'acme'), dom(3, 'acme'), dom(5)] });
  const text = await m.render();
  expect(text).toMatch(/^virtgate_vms\{state="running",tenant="acme"\} 2$/m);
  expect(text).toMatch(/^virtgate_vms\{state="paused",tenant="acme"\} 1$/m);
  expect(text).toMatch(/^virtgate_vms\{state="shutoff",tenant=""\} 1$/m);
});

test('addGauge: prefixed name, read at each scrape, old series dropped, at most 1000 series', async () => {
  const m = new Metrics(sources);
  let rows = [{ labels: { source: 'database' }, value: 1 }];
  m.addGauge('policy_store_up', 'Policy store connected', ['source'], () => rows);
  m.addGauge('virtgate_audit_forward_lag_records', 'Records not yet acknowledged by the collector', [], () => [{ labels: {}, value: 7 }]);
  expect(await m.render()).toMatch(/^virtgate_policy_store_up\{source="database"\} 1$/m);
  rows = [{ labels: { source: 'cache' }, value: 0 }];
  const text = await m.render();
  expect(text).toMatch(/^virtgate_policy_store_up\{source="cache"\} 0$/m);
  expect(text).not.toMatch(/source="database"/);
  expect(text).toMatch(/^virtgate_audit_forward_lag_records 7$/m);
  m.addGauge('many', 'too many', ['n'], () => Array.from({ length: 5000 }, (_, i) => ({ labels: { n: String(i) }, value: i })));
  expect((await m.render()).split('\n').filter((l) => l.startsWith('virtgate_many{')).length).toBe(1000);
});

test.each([
  [{ metricsListen: '0.0.0.0:9100' }, /not a loopback address/],
  [{ metricsListen: '10.1.2.3:9100' }, /not a loopback address/],
  [{ metricsListen: 'localhost' }, /expected HOST:PORT/],
  [{ metricsSocketMode: 0o1777 }, /integer in/],
  [{ metricsMaxScrapes: 0 }, /integer in/],
  [{ metrics: 'yes' }, /expected a boolean/],
])('config %j is refused', (input, re) => {
  expect(() => resolveConfig({ home: '/tmp/m', ...input })).toThrow(re);
});

test('config: loopback listeners accepted, a non-loopback one only when forced; the socket defaults under HOME/run', () => {
  expect(resolveConfig({ home: '/tmp/m', metricsListen: '127.0.0.1:9100' }).metricsListen).toBe('127.0.0.1:9100');
  expect(resolveConfig({ home: '/tmp/m', metricsListen: '[::1]:9100' }).metricsListen).toBe('[::1]:9100');
  expect(resolveConfig({ home: '/tmp/m', metricsListen: '0.0.0.0:9100', metricsAllowNonLoopback: true }).metricsListen).toBe('0.0.0.0:9100');
  expect(resolveConfig({ home: '/tmp/m' }).metricsSocket).toBe('/tmp/m/run/metrics-sock');
});

test('call latency buckets are cumulative, with +Inf, sum and count', async () => {
  const m = new Metrics(sources);
  for (const s of [0.0002, 0.0004, 99]) m.call('domainGetInfo', 'ok', s);
  m.unknownProcedure(); // counted, no latency
  const text = await m.render();
  const b = (le: string): string => `virtgate_call_duration_seconds_bucket{procedure="domainGetInfo",le="${le}"}`;
  expect(text).toContain(`${b('0.0001')} 0\n`);
  expect(text).toContain(`${b('0.00025')} 1\n`);
  expect(text).toContain(`${b('0.0005')} 2\n`);
  expect(text).toContain(`${b('30')} 2\n`);
  expect(text).toContain(`${b('+Inf')} 3\n`);
  expect(text).toMatch(/^virtgate_call_duration_seconds_count\{procedure="domainGetInfo"\} 3$/m);
  expect(text).toMatch(/^virtgate_calls_total\{procedure="unknown",outcome="error"\} 1$/m);
  expect(text).not.toMatch(/call_duration_seconds_count\{procedure="unknown"\}/);
});

// promtool's linter on our series (prom-client's own nodejs_*_total gauges draw its naming warnings: left out).
testIf(tool('promtool', 'prometheus'), 'promtool check metrics accepts every virtgate_ family', async () => {
  const m = new Metrics(sources);
  m.call('domainGetInfo', 'ok', 0.001);
  m.helperCall('DOMAIN_READ_REQ.info', 0.0003);
  m.auditCommit(2, 0.001);
  m.addGauge('policy_store_up', 'Policy store connected', ['source'], () => [{ labels: { source: 'file' }, value: 1 }]);
  const ours = (await m.render())
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?virtgate_/.test(l))
    .join('\n');
  const r = spawnSync('promtool', ['check', 'metrics'], { input: `${ours}\n`, encoding: 'utf8' });
  expect(`${r.stdout}${r.stderr}`).toBe('');
  expect(r.status).toBe(0);
});
