// SPDX-License-Identifier: Apache-2.0
// The metrics registry on its own: the series it renders, addGauge for other parts' status, and the config keys.
import { resolveConfig } from '../../../src/common/config';
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
