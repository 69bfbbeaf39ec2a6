// SPDX-License-Identifier: Apache-2.0
// Issue 15 F with a real collector: two daemons forward their audit records over RFC 5425 (TLS, client certificates
// from `virtgate pki`) to rsyslogd writing one central file. The collector is stopped during writes and restarted:
// every record arrives, in order per host, duplicates only flagged, central verify passes; tampering with the central
// file is named; a daemon restart resumes from its cursor.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatRecord, frame, parseMessage } from '../../src/audit/forward-format';
import { connectTls } from '../../src/unprivileged/audit-forwarder';
import type { AuditRecord } from '../../src/audit/schema';
import { ROOT, type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Collector, RSYSLOGD, makeCollector, makeCollectorPki, pki } from '../../bench/lib/rsyslog';
import { scrapeMetrics, seriesValue } from '../helpers/metrics';
import { describeIf, file, virshTool } from '../helpers/skip';

const NEEDS = [file(RSYSLOGD, 'rsyslog'), file('/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so', 'rsyslog-gnutls'), virshTool()];
const HOSTS = ['host-a', 'host-b'];

function cli(args: string[]): { rc: number; out: string } {
  try {
    return { rc: 0, out: execFileSync(process.execPath, [path.join(ROOT, 'bin', 'virtgate.js'), ...args], { encoding: 'utf8' }) };
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string };
    return { rc: x.status, out: `${x.stdout}${x.stderr}` };
  }
}

// Writes through virsh: each suspend/resume leaves an intent and an outcome record.
function work(d: RunningDaemon, rounds: number): void {
  const cmds = Array.from({ length: rounds }, () => 'suspend test; resume test').join('; ');
  execFileSync('virsh', ['-q', '-c', d.uri, cmds], { stdio: 'ignore', timeout: 120_000 });
}

const localSeq = (home: string): number => {
  const lines = fs
    .readFileSync(path.join(home, 'log', 'audit.log'), 'utf8')
    .trim()
    .split('\n');
  return (JSON.parse(lines[lines.length - 1]) as AuditRecord).seq;
};

interface Arrival {
  seq: number;
  resent: boolean;
  line: string;
}

function central(f: string): Map<string, Arrival[]> {
  const by = new Map<string, Arrival[]>();
  if (!fs.existsSync(f)) return by;
  for (const l of fs.readFileSync(f, 'utf8').split('\n')) {
    const m = parseMessage(l);
    if (!m) continue;
    const host = (JSON.parse(m.msg) as AuditRecord).host;
    if (!by.has(host)) by.set(host, []);
    by.get(host)!.push({ seq: m.seq!, resent: m.resent, line: l });
  }
  return by;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describeIf(NEEDS, 'audit forwarding to a real rsyslog collector (RFC 5425, mutual TLS)', () => {
  let dir: string;
  let collector: Collector;
  let certs: ReturnType<typeof makeCollectorPki>;
  const daemons: Record<string, RunningDaemon> = {};
  const homes: Record<string, string> = {};

  const startHost = async (h: string): Promise<void> => {
    daemons[h] = await startDaemon({ home: homes[h] });
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-rsyslog-'));
    fs.chmodSync(dir, 0o755); // the CA certificate in it is read by the front ends' user
    certs = makeCollectorPki(path.join(dir, 'pki'), HOSTS);
    collector = await makeCollector(path.join(dir, 'collector'), certs, HOSTS);
    await collector.start();
    for (const h of HOSTS) {
      // Each home its own temp dir (the front end's user must reach it); the host's client certificate at the default
      // place, HOME/pki/forward, whose key `virtgate start` hands to the front end's user.
      homes[h] = fs.mkdtempSync(path.join(os.tmpdir(), `vg-fwd-${h}-`));
      fs.mkdirSync(path.join(homes[h], 'etc'), { recursive: true });
      fs.cpSync(certs.clients[h], path.join(homes[h], 'pki', 'forward'), { recursive: true });
      fs.writeFileSync(
        path.join(homes[h], 'etc', 'virtgate.conf'),
        [`auditHost = "${h}"`, `auditForward = "127.0.0.1:${collector.port}"`, `auditForwardCa = "${certs.ca}"`, 'auditForwardName = "collector"', ''].join(
          '\n',
        ),
      );
      await startHost(h);
    }
  }, 120_000);

  afterAll(async () => {
    for (const d of Object.values(daemons)) await d.stop().catch(() => undefined);
    await collector?.stop();
    for (const h of Object.values(homes)) fs.rmSync(h, { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const allArrived = (): boolean => {
    const c = central(collector.file);
    return HOSTS.every((h) => {
      const seqs = new Set((c.get(h) ?? []).map((a) => a.seq));
      const last = localSeq(homes[h]);
      for (let s = 0; s <= last; s++) if (!seqs.has(s)) return false;
      return true;
    });
  };

  const keys = (): string[] => HOSTS.flatMap((h) => ['--verify-key', `${h}=${path.join(homes[h], 'lib', 'audit-verify.key')}`]);

  test('collector stopped during writes and restarted: every record arrives, in order, re-sends flagged; central verify passes', async () => {
    for (const h of HOSTS) work(daemons[h], 5);
    await until('the first records at the collector', allArrived);
    await collector.stop();
    // Writes go on while the collector is away (the local log is the truth) ...
    for (const h of HOSTS) work(daemons[h], 10);
    const during = Object.fromEntries(HOSTS.map((h) => [h, localSeq(homes[h])]));
    await new Promise((r) => setTimeout(r, 1500)); // at least one failed reconnect
    // The operator sees the outage: not connected, records waiting.
    const m = await scrapeMetrics(homes[HOSTS[0]]);
    expect(seriesValue(m, 'virtgate_audit_forward_connected')).toBe(0);
    expect(seriesValue(m, 'virtgate_audit_forward_lag_records')).toBeGreaterThan(0);
    await collector.start();
    for (const h of HOSTS) work(daemons[h], 5);
    await until('every record at the collector after its restart', allArrived);

    await until('the lag back to 0 in metrics', async () => seriesValue(await scrapeMetrics(homes[HOSTS[0]]), 'virtgate_audit_forward_lag_records') === 0);
    const c = central(collector.file);
    for (const h of HOSTS) {
      const arr = c.get(h)!;
      // In order: the first copies of the seqs are 0, 1, 2, ... with nothing skipped; every later copy is flagged.
      const seen = new Set<number>();
      const first: number[] = [];
      for (const a of arr) {
        if (seen.has(a.seq)) expect({ host: h, seq: a.seq, resent: a.resent }).toEqual({ host: h, seq: a.seq, resent: true });
        else first.push(a.seq);
        seen.add(a.seq);
      }
      expect(first).toEqual(Array.from({ length: localSeq(homes[h]) + 1 }, (_, i) => i));
      expect(during[h]).toBeLessThan(localSeq(homes[h]));
    }
    const v = cli(['audit', 'verify', '--collector', collector.file, ...keys()]);
    expect(v.out).toMatch(/ok: host host-a: .*chain and MACs checked/);
    expect(v.out).toMatch(/ok: host host-b: .*chain and MACs checked/);
    expect(v.rc).toBe(0);
    // Each host's local log verifies too: forwarding changed nothing there.
    for (const h of HOSTS) expect(cli(['audit', 'verify', '--home', homes[h]]).rc).toBe(0);
  }, 300_000);

  test('tampering with the central file is named: host, seq, line', () => {
    const lines = fs.readFileSync(collector.file, 'utf8').split('\n');
    const idx = (h: string, seq: number): number =>
      lines.findIndex((l) => {
        const m = parseMessage(l);
        return m !== null && m.seq === seq && !m.resent && (JSON.parse(m.msg) as AuditRecord).host === h;
      });
    const tampered = (edit: (ls: string[]) => void): { rc: number; out: string } => {
      const ls = [...lines];
      edit(ls);
      const f = path.join(dir, `tampered-${Math.random().toString(16).slice(2)}.log`);
      fs.writeFileSync(f, ls.join('\n'));
      return cli(['audit', 'verify', '--collector', f, ...keys()]);
    };
    // an edited field (the chain and the MAC)
    let r = tampered((ls) => {
      const i = idx('host-b', 4);
      ls[i] = ls[i].replace(/"ts":"([^"]+)"/, '"ts":"2020-01-01T00:00:00.000Z"');
    });
    expect(r.rc).toBe(1);
    expect(r.out).toMatch(/FAILED \(edited\): host host-b seq 4: line \d+: seq 4 MAC mismatch/);
    // a deleted line
    r = tampered((ls) => {
      const i = idx('host-a', 6);
      for (let j = ls.length - 1; j >= 0; j--) if (parseMessage(ls[j])?.seq === 6 && ls[j].includes('"host":"host-a"')) ls.splice(j, 1);
      expect(i).toBeGreaterThan(0);
    });
    expect(r.rc).toBe(1);
    expect(r.out).toMatch(/FAILED \(gap\): host host-a seq 6: .*seq 6 is missing before seq 7/);
    // two lines swapped
    r = tampered((ls) => {
      const i = idx('host-a', 2);
      const j = idx('host-a', 3);
      [ls[i], ls[j]] = [ls[j], ls[i]];
    });
    expect(r.rc).toBe(1);
    expect(r.out).toMatch(/FAILED \(reordered\): host host-a seq 2:/);
    // an unflagged copy
    r = tampered((ls) => ls.push(ls[idx('host-b', 1)]));
    expect(r.rc).toBe(1);
    expect(r.out).toMatch(/FAILED \(duplicate\): host host-b seq 1:/);
    // the last line cut short
    r = tampered((ls) => {
      while (ls[ls.length - 1] === '') ls.pop();
      ls[ls.length - 1] = ls[ls.length - 1].slice(0, -20);
    });
    expect(r.rc).toBe(1);
    expect(r.out).toMatch(/FAILED \(malformed\): host host-[ab]/);
  });

  test('an intruder cannot add records: a client name the collector does not permit, a foreign CA, a wrong collector name', async () => {
    const read = (f: string): Buffer => fs.readFileSync(f);
    // a certificate from the fleet CA, but for a name not in permittedPeer
    const intruder = path.join(dir, 'pki', 'clients', 'intruder');
    pki(['client', '--dir', intruder, '--ca', path.join(dir, 'pki', 'ca'), '--cn', 'intruder']);
    // a whole other CA
    const other = path.join(dir, 'pki', 'other');
    pki(['init-ca', '--dir', path.join(other, 'ca')]);
    pki(['client', '--dir', path.join(other, 'c'), '--ca', path.join(other, 'ca'), '--cn', 'host-a']);
    const line = JSON.stringify({ v: 1, seq: 999999, ts: new Date().toISOString(), host: 'host-a', kind: 'event', key: 'k', prev: 'p', mac: 'm' });
    const msg = frame(formatRecord(line, { seq: 999999, ts: new Date().toISOString(), host: 'host-a', kind: 'event' }, { resent: false }));
    for (const c of [intruder, path.join(other, 'c')]) {
      const conn = await connectTls({
        host: '127.0.0.1',
        port: collector.port,
        ca: read(certs.ca),
        cert: read(path.join(c, 'clientcert.pem')),
        key: read(path.join(c, 'private', 'clientkey.pem')),
        name: 'collector',
      }).catch((e: Error) => e);
      if (!(conn instanceof Error)) {
        await conn.write(msg).catch(() => undefined);
        expect(await conn.closed).toBeDefined(); // the collector hangs up
      }
    }
    // The collector's certificate does not carry this name: the forwarder refuses it before sending anything.
    await expect(
      connectTls({
        host: '127.0.0.1',
        port: collector.port,
        ca: read(certs.ca),
        cert: read(path.join(certs.clients['host-a'], 'clientcert.pem')),
        key: read(path.join(certs.clients['host-a'], 'private', 'clientkey.pem')),
        name: 'not-the-collector',
      }),
    ).rejects.toThrow(/not-the-collector|altnames/i);
    await new Promise((r) => setTimeout(r, 1000));
    expect(fs.readFileSync(collector.file, 'utf8')).not.toContain('999999');
  }, 60_000);

  test('a daemon restart resumes from its cursor', async () => {
    const h = 'host-a';
    await daemons[h].stop();
    const cursor = JSON.parse(fs.readFileSync(path.join(homes[h], 'log', 'audit.log.forward-cursor'), 'utf8')) as { acked: number; reserved: number };
    const before = localSeq(homes[h]);
    expect(cursor.acked).toBeGreaterThan(0);
    expect(cursor.acked).toBeLessThanOrEqual(before);
    const copiesBefore = central(collector.file).get(h)!.length;
    await startHost(h);
    work(daemons[h], 3);
    await until('host-a records after the restart', allArrived);
    const arr = central(collector.file).get(h)!;
    const again = arr.slice(copiesBefore);
    // Only what the cursor did not cover is sent again, and flagged; nothing from before the cursor.
    expect(again.filter((a) => a.seq <= cursor.acked)).toEqual([]);
    for (const a of again) if (a.seq <= before) expect(a.resent).toBe(true);
    expect(arr.filter((a) => a.seq === 0)).toHaveLength(1);
    const v = cli(['audit', 'verify', '--collector', collector.file, ...keys()]);
    expect(v.rc).toBe(0);
  }, 180_000);
});
