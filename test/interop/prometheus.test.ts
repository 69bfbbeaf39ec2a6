// SPDX-License-Identifier: Apache-2.0
// A real Prometheus server (Debian package prometheus) scrapes the daemon's loopback metrics listener every second; a
// scripted virsh workload (calls, a write, a read-only denial, a policy denial) then shows in PromQL through the
// server's HTTP API: counters by procedure and outcome, denials by reason, latency histograms, VMs by state.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, root, tool, virshTool } from '../helpers/skip';
import { asUser, exec, localUsers } from '../helpers/users';
import { freePort } from '../../bench/lib/proc';

jest.setTimeout(180_000);

type Vector = { metric: Record<string, string>; value: [number, string] }[];

describeIf(
  [root('the front end drops to an unprivileged user only when started as root'), tool('prometheus', 'prometheus'), virshTool(), ...localUsers(['alice'])],
  'prometheus scrapes virtgate',
  () => {
    let d: RunningDaemon;
    let home: string;
    let prom: ChildProcess | null = null;
    let promLog = '';
    let api = '';

    async function query(q: string): Promise<Vector> {
      const r = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`);
      const j = (await r.json()) as { status: string; data: { resultType: string; result: Vector }; error?: string };
      if (j.status !== 'success') throw new Error(`PromQL ${q}: ${j.error}`);
      return j.data.result;
    }

    // Polls until the query's single value satisfies `ok` (scrapes are 1 s apart; a loaded machine may lag).
    async function until(q: string, ok: (v: number) => boolean, timeoutMs = 60_000): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      let last: Vector = [];
      for (;;) {
        last = await query(q).catch(() => []);
        if (last.length === 1 && ok(Number(last[0].value[1]))) return Number(last[0].value[1]);
        if (Date.now() > deadline) throw new Error(`PromQL ${q}: last answer ${JSON.stringify(last)}\nprometheus log:\n${promLog.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }

    beforeAll(async () => {
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-prom-'));
      fs.mkdirSync(path.join(home, 'etc'));
      const metricsPort = await freePort();
      fs.writeFileSync(path.join(home, 'etc', 'virtgate.conf'), `metricsListen = "127.0.0.1:${metricsPort}"\n`);
      d = await startDaemon({ home });
      await d.waitFor(/metrics on tcp 127\.0\.0\.1:\d+/);
      const promDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-prom-server-'));
      const cfg = path.join(promDir, 'prometheus.yml');
      fs.writeFileSync(
        cfg,
        [
          'global:',
          '  scrape_interval: 1s',
          '  evaluation_interval: 1s',
          'scrape_configs:',
          '  - job_name: virtgate',
          `    static_configs: [{ targets: ['127.0.0.1:${metricsPort}'] }]`,
          '',
        ].join('\n'),
      );
      const webPort = await freePort();
      api = `http://127.0.0.1:${webPort}`;
      prom = spawn(
        'prometheus',
        [`--config.file=${cfg}`, `--storage.tsdb.path=${path.join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`, '--log.level=warn'],
        { stdio: ['ignore', 'pipe', 'pipe'], cwd: promDir },
      );
      prom.stdout!.setEncoding('utf8').on('data', (t: string) => (promLog += t));
      prom.stderr!.setEncoding('utf8').on('data', (t: string) => (promLog += t));
      (prom as ChildProcess & { promDir?: string }).promDir = promDir;
      const deadline = Date.now() + 60_000;
      for (;;) {
        const ready = await fetch(`${api}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
        if (ready) break;
        if (prom.exitCode !== null || Date.now() > deadline) throw new Error(`prometheus did not become ready:\n${promLog}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    });

    afterAll(async () => {
      if (prom && prom.exitCode === null) {
        await new Promise<void>((resolve) => {
          prom!.once('exit', () => resolve());
          prom!.kill('SIGTERM');
          setTimeout(() => prom!.kill('SIGKILL'), 10_000).unref();
        });
      }
      const promDir = (prom as (ChildProcess & { promDir?: string }) | null)?.promDir;
      if (promDir) fs.rmSync(promDir, { recursive: true, force: true });
      await d?.stop();
      if (home) fs.rmSync(home, { recursive: true, force: true });
    });

    test('a scripted virsh workload shows in PromQL', async () => {
      await until('up{job="virtgate"}', (v) => v === 1);
      const n = 25;
      const script = [...Array.from({ length: n }, () => 'dominfo test'), 'suspend test', 'resume test', 'suspend test'].join('; ');
      const ok = await exec(['virsh', '-c', d.uri, script], 60_000);
      expect(ok.rc).toBe(0);
      // A write on the read-only socket (read_only), and a local user with no rule at all (policy).
      const ro = await exec(['virsh', '-c', d.uriRo, 'resume', 'test']);
      expect(ro.err).toMatch(/read only access prevents virDomainResume/);
      const alice = await exec([...asUser('alice'), 'virsh', '-c', d.uriRo, 'list']);
      expect(alice.err).toMatch(/access denied/);

      expect(await until('virtgate_calls_total{procedure="domainGetInfo",outcome="ok"}', (v) => v >= n)).toBeGreaterThanOrEqual(n);
      expect(await until('virtgate_calls_total{procedure="domainSuspend",outcome="ok"}', (v) => v === 2)).toBe(2);
      expect(await until('virtgate_calls_total{procedure="domainResume",outcome="denied"}', (v) => v === 1)).toBe(1);
      expect(await until('virtgate_denials_total{reason="read_only"}', (v) => v === 1)).toBe(1);
      expect(await until('virtgate_denials_total{reason="policy"}', (v) => v >= 1)).toBeGreaterThanOrEqual(1);
      expect(await until('virtgate_calls_total{procedure="connectOpen",outcome="denied"}', (v) => v >= 1)).toBeGreaterThanOrEqual(1);
      // The suspended guest, by state and tenant, from the front end's mirror.
      expect(await until('sum(virtgate_vms{state="paused"})', (v) => v === 1)).toBe(1);
      expect(await until('sum(virtgate_vms{state="running"}) or vector(0)', (v) => v === 0)).toBe(0);
      // Front-end and helper latency are separate histograms; writes went to the helper, each audited. (Over the
      // counters' lifetime: a series born in the workload's scrape has no earlier sample for rate() to use.)
      await until('virtgate_helper_call_duration_seconds_count{op="DOMAIN_WRITE_REQ.control"}', (v) => v >= 3);
      const p99 = await until(
        'histogram_quantile(0.99, sum by (le) (virtgate_call_duration_seconds_bucket{procedure="domainGetInfo"}))',
        (v) => Number.isFinite(v) && v > 0,
      );
      expect(p99).toBeLessThan(30);
      await until('virtgate_audit_group_commit_records_sum', (v) => v >= 6);
      await until('virtgate_audit_fdatasync_seconds_count', (v) => v >= 1);
      expect(await until('sum(virtgate_logins_total{method="peercred",result="success"})', (v) => v >= 3)).toBeGreaterThanOrEqual(3);
      await until('sum(virtgate_connections_total{listener="unix_ro"})', (v) => v >= 2);
      await until('virtgate_connections{listener="unix"}', (v) => v === 0);
      await until('virtgate_helper_up', (v) => v === 1);
      // Cardinality: every calls_total series has a procedure from the table (names, never numbers or users).
      const names = (await query('virtgate_calls_total')).map((s) => s.metric.procedure);
      expect(names.every((p) => /^[a-z][A-Za-z]*$/.test(p))).toBe(true);
      expect((await query('count(process_resident_memory_bytes{job="virtgate"})'))[0].value[1]).toBe('1');
    });
  },
);
