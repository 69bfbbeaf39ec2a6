// SPDX-License-Identifier: Apache-2.0
// Machine facts, the targets (issues 3, 5, 16) judged from the rows, and the aligned text table.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import type { Figures, RowResult, Sizes } from './ctx';
import { libvirtdVersion } from './libvirtd';

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  kernel: string;
  libvirtLibrary: string | null; // libvirt-dev the C client was built against
  libvirtd: string | null;
}

export function machineFacts(): Machine {
  let lib: string | null = null;
  try {
    lib = execFileSync('pkg-config', ['--modversion', 'libvirt'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    // no libvirt-dev: the C client rows are skipped and say so
  }
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: os.release(),
    libvirtLibrary: lib,
    libvirtd: libvirtdVersion(),
  };
}

export function machineLine(m: Machine): string {
  return `machine: ${m.cores} cores, ${m.cpu}, Node ${m.node}, Linux ${m.kernel}, libvirt ${m.libvirtLibrary ?? 'n/a'} (client library), libvirtd ${m.libvirtd ?? 'n/a'}`;
}

export interface TargetCheck {
  target: string;
  value: string;
  met: boolean | null; // null: not measured in this run
}

// `row` is a row's number, or its number and the start of its name ('1' is row 1, never row 10).
const find = (rows: RowResult[], row: string, client: string, transport: RegExp): RowResult | undefined =>
  rows.find((r) => (r.row === row || r.row.startsWith(row.includes(' ') ? row : `${row} `)) && r.client === client && transport.test(r.transport));

// virtgate / floor as a cost (> 1 is slower than the floor) whichever way the row's ratio runs.
const floorCost = (r: RowResult): number | null => (r.floorRatio == null ? null : r.ratioOf === 'calls/s' ? 1 / r.floorRatio : r.floorRatio);

// The targets of issues 3, 5 and 16. Quick runs use fewer calls, so the 300,000-call time is projected from the rate.
export function checkTargets(rows: RowResult[], sizes: Sizes): TargetCheck[] {
  const out: TargetCheck[] = [];
  const vsLibvirtd = (target: string, r: RowResult | undefined, ok: (x: number) => boolean): void => {
    out.push({ target, value: r?.ratio != null ? `${r.ratio.toFixed(2)}×` : 'no libvirtd figure', met: r?.ratio != null ? ok(r.ratio) : null });
  };
  vsLibvirtd('sequential C, unix: virtgate time ≤ 0.8 × libvirtd', find(rows, '1', 'C', /^unix/), (x) => x <= 0.8);
  vsLibvirtd('sequential C, tls: virtgate time ≤ 0.8 × libvirtd', find(rows, '1', 'C', /^tls/), (x) => x <= 0.8);
  const ts = find(rows, '2', 'TS', /./);
  const projected = ts ? 300000 / ts.virtgate.callsPerSec : NaN;
  out.push({
    target: 'pipelined TS: 300,000 calls ≤ 9 s',
    value: ts ? `${projected.toFixed(2)} s${ts.virtgate.calls === 300000 ? '' : ' (projected)'}` : 'not run',
    met: ts ? projected <= 9 : null,
  });
  vsLibvirtd(`pipelined C, ${sizes.cThreads} threads: calls/s ≥ 1.5 × libvirtd`, find(rows, '2', 'C', /./), (x) => x >= 1.5);
  const many = find(rows, '3', 'TS', /./)?.virtgate;
  const clients = many ? `, ${find(rows, '3', 'TS', /./)!.transport}` : '';
  out.push({
    target: `many clients: p99 ≤ 10 ms${clients}`,
    value: many?.p99Ms !== undefined ? `${many.p99Ms.toFixed(2)} ms` : 'not run',
    met: many?.p99Ms !== undefined ? many.p99Ms <= 10 : null,
  });
  const kib = many?.kibPerIdleConn;
  out.push({
    target: 'front-end memory per idle connection ≤ 50 KiB',
    value: kib !== undefined ? `${kib.toFixed(1)} KiB` : 'not run',
    met: kib !== undefined ? kib <= 50 : null,
  });
  // Issue 5: decision cost and the price of RBAC on GetInfo.
  const dec = rows.find((r) => r.row.startsWith('5 decision') && /uncached/.test(r.transport))?.virtgate;
  out.push({
    target: 'uncached policy decision p99 ≤ 50 µs',
    value: dec?.p99Ms !== undefined ? `${(dec.p99Ms * 1000).toFixed(1)} µs (p50 ${(dec.p50Ms! * 1000).toFixed(1)} µs)` : 'not run',
    met: dec?.p99Ms !== undefined ? dec.p99Ms <= 0.05 : null,
  });
  for (const client of ['C', 'TS']) {
    const off = find(rows, '6 rbac', client, /RBAC off/)?.virtgate;
    const on = find(rows, '6 rbac', client, /RBAC on/)?.virtgate;
    if (!off || !on) continue;
    const x = on.callsPerSec / off.callsPerSec;
    out.push({ target: `GetInfo ${client} calls/s with RBAC on ≥ 0.9 × off`, value: `${x.toFixed(3)}×`, met: x >= 0.9 });
  }
  // Issue 16: the floor, and the audit's price.
  for (const t of ['unix', 'tls']) {
    const r = find(rows, '1', 'C', new RegExp(`^${t}$`));
    const x = r ? floorCost(r) : null;
    out.push({
      target: `sequential C, ${t}: virtgate time ≤ 1.15 × Node floor`,
      value: x !== null ? `${x.toFixed(2)}×` : 'no floor figure',
      met: x !== null ? x <= 1.15 : null,
    });
  }
  const costs = rows.map((r) => ({ r, x: floorCost(r) })).filter((c): c is { r: RowResult; x: number } => c.x !== null);
  const worst = costs.reduce<{ r: RowResult; x: number } | null>((w, c) => (!w || c.x > w.x ? c : w), null);
  out.push({
    target: 'every row ≤ 1.15 × its floor (time, or floor calls/s ÷ calls/s)',
    value: worst ? `worst ${worst.x.toFixed(2)}×: ${worst.r.row} ${worst.r.client} ${worst.r.transport}` : 'no floor figure',
    met: worst ? worst.x <= 1.15 : null,
  });
  const on = find(rows, '4', 'TS', /audit on/)?.virtgate;
  const off = find(rows, '4', 'TS', /audit off/)?.virtgate;
  const audited = on && off ? on.callsPerSec / off.callsPerSec : null;
  out.push({
    target: 'audited writes/s ≥ 0.8 × audit off',
    value: audited !== null ? `${audited.toFixed(2)}× (${num(on!.callsPerSec)}/s vs ${num(off!.callsPerSec)}/s)` : 'not run',
    met: audited !== null ? audited >= 0.8 : null,
  });
  return out;
}

const num = (x: number, digits = 0): string => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mib = (kib: number | undefined): string => (kib === undefined ? '?' : (kib / 1024).toFixed(1));

// "front end 52.1 MiB", or for the many-clients row "front end 52.1→66.0 MiB idle (+14.2 KiB/conn)".
function rssText(f: Figures | null): string {
  if (!f?.rssKiB) return '';
  return Object.entries(f.rssKiB)
    .map(([label, m], i) => {
      if (m.idle === undefined) return `${label} ${mib(m.after)} MiB`;
      const per = i === 0 && f.kibPerIdleConn !== undefined ? ` (+${f.kibPerIdleConn.toFixed(1)} KiB/conn)` : '';
      return `${label} ${mib(m.before)}→${mib(m.idle)} MiB idle${per}, ${mib(m.polled)} polled, ${mib(m.closed)} closed`;
    })
    .join('; ');
}

const ratioText = (x: number | null | undefined, of: RowResult['ratioOf']): string => (x == null ? '-' : `${x.toFixed(2)}× ${of}`);

// The floor's figure in the row's own measure: µs per call for time rows, calls/s for throughput rows.
function floorText(r: RowResult): string {
  if (!r.floor) return '-';
  return r.ratioOf === 'calls/s' ? `${num(r.floor.figures.callsPerSec)}/s` : `${num(r.floor.figures.usPerCall, 1)} µs`;
}

export function table(rows: RowResult[]): string {
  const head = [
    'row',
    'client',
    'transport',
    'calls',
    'seconds',
    'µs/call',
    'calls/s',
    'libvirtd µs/call',
    'libvirtd calls/s',
    'ratio',
    'floor µs/call|calls/s',
    '×floor',
    'RSS (virtgate)',
  ];
  const body = rows.map((r) => {
    const v = r.virtgate;
    const l = r.libvirtd;
    return [
      r.row,
      r.client,
      r.transport,
      num(v.calls),
      v.seconds.toFixed(2),
      num(v.usPerCall, 1),
      num(v.callsPerSec),
      l ? num(l.usPerCall, 1) : '-',
      l ? num(l.callsPerSec) : '-',
      ratioText(r.ratio, r.ratioOf),
      floorText(r),
      ratioText(r.floorRatio, r.ratioOf),
      rssText(v),
    ];
  });
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const right = new Set([3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(width[i]) : c.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  const lines = [line(head), line(width.map((w) => '-'.repeat(w))), ...body.map(line)];
  for (const r of rows.filter((x) => x.virtgate.p50Ms !== undefined)) {
    const t = (ms: number): string => (ms < 0.1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`); // decisions are µs
    const lat = (f: Figures): string => `p50 ${t(f.p50Ms!)}, p99 ${t(f.p99Ms!)}, ${f.failures} failures`;
    lines.push('', `${r.row} (${r.transport}): virtgate ${lat(r.virtgate)}`);
    if (r.libvirtd) lines.push(`${' '.repeat(r.row.length + r.transport.length + 4)}libvirtd ${lat(r.libvirtd)}; RSS ${rssText(r.libvirtd)}`);
  }
  return lines.join('\n');
}

export function targetsText(checks: TargetCheck[]): string {
  const w = Math.max(...checks.map((c) => c.target.length));
  return checks.map((c) => `  ${c.met === null ? 'n/a   ' : c.met ? 'MET   ' : 'MISSED'}  ${c.target.padEnd(w)}  ${c.value}`).join('\n');
}
