// SPDX-License-Identifier: Apache-2.0
// `npm run bench [-- --quick]`: the seed benchmark (virDomainGetInfo × 3 guests) against virtgate and a private libvirtd, side by side.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchCtx, FULL, QUICK, type RowResult, type Sizes } from './lib/ctx';
import { startLibvirtd } from './lib/libvirtd';
import { ROOT, buildCClient, cleanupAll, rssKiB, runCClient } from './lib/proc';
import { type Machine, type TargetCheck, checkTargets, machineFacts, machineLine, table, targetsText } from './lib/report';
import type { Target } from './lib/target';
import { startVirtgate } from './lib/virtgate';
import { ROWS } from './rows';

export interface BenchOptions {
  quick?: boolean;
  sizes?: Partial<Sizes>; // overrides on top of the full or quick sizes (tests use tiny ones)
  only?: string; // run only the rows whose name, or name without its number, starts with this ("3", "recovery")
  skip?: string[]; // leave out the rows whose name starts with one of these (the smoke test leaves the VM row to test/vm)
  resultsDir?: string;
  log?: (msg: string) => void;
}

export interface BenchReport {
  timestamp: string;
  quick: boolean;
  machine: Machine;
  sizes: Sizes;
  libvirtd: { running: boolean; why?: string };
  cClient: { built: boolean; why?: string };
  rows: RowResult[];
  targets: TargetCheck[];
  notes: string[];
}

// RSS of a target's processes once a row is done (the many-clients row records its own moments).
function rssAfter(t: Target): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const { label, pid } of t.processes()) {
    const kib = rssKiB(pid);
    if (kib !== null) out[label] = { after: kib };
  }
  return out;
}

// --row: a bare number is that row only ('1' is "1 sequential", never "10 ..."); otherwise a prefix of the name, with or without its number.
export function selected(name: string, only: string | undefined): boolean {
  if (!only) return true;
  if (/^\d+$/.test(only)) return name.startsWith(`${only} `);
  return name.startsWith(only) || name.replace(/^\d+ /, '').startsWith(only);
}

export async function runBench(opts: BenchOptions = {}): Promise<{ report: BenchReport; file: string }> {
  const quick = opts.quick === true;
  const sizes: Sizes = { ...(quick ? QUICK : FULL), ...opts.sizes };
  const log = opts.log ?? ((m: string) => process.stderr.write(`bench: ${m}\n`));
  const notes: string[] = [];
  const timestamp = new Date().toISOString();
  const rows: RowResult[] = [];
  try {
    const built = buildCClient();
    if ('why' in built) notes.push(`C client rows skipped: ${built.why}`);
    const virtgate = await startVirtgate(log);
    const lv = await startLibvirtd(virtgate.pki, sizes.clients, log, notes);
    if ('why' in lv) notes.push(`no libvirtd column: ${lv.why}`);
    const ctx: BenchCtx = {
      sizes,
      quick,
      virtgate,
      libvirtd: 'why' in lv ? null : lv,
      cclient: 'bin' in built ? built.bin : null,
      runC: (uri, iterations, threads, statsDomains) => runCClient((built as { bin: string }).bin, uri, iterations, threads, statsDomains),
      log,
      notes,
      floors: new Map(),
    };
    const wanted = (r: { name: string }): boolean => !opts.skip?.some((s) => r.name.startsWith(s)) && selected(r.name, opts.only);
    for (const row of ROWS.filter(wanted)) {
      const results = await row.run(ctx);
      for (const r of results) {
        r.virtgate.rssKiB ??= rssAfter(virtgate);
        if (r.libvirtd && ctx.libvirtd) r.libvirtd.rssKiB ??= rssAfter(ctx.libvirtd);
      }
      rows.push(...results);
    }
    rows.sort((a, b) => a.row.localeCompare(b.row)); // table order is row order, whatever the run order
    const report: BenchReport = {
      timestamp,
      quick,
      machine: machineFacts(),
      sizes,
      libvirtd: 'why' in lv ? { running: false, why: lv.why } : { running: true },
      cClient: 'why' in built ? { built: false, why: built.why } : { built: true },
      rows,
      targets: checkTargets(rows, sizes),
      notes,
    };
    const dir = opts.resultsDir ?? path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${timestamp.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
    fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    return { report, file };
  } finally {
    await cleanupAll();
  }
}

function print(report: BenchReport, file: string): void {
  const out = [
    '',
    `virtgate seed benchmark${report.quick ? ' (quick)' : ''}: virDomainGetInfo on 3 running guests, virtgate vs libvirtd`,
    machineLine(report.machine),
    '',
    table(report.rows),
    '',
    ...report.notes.map((n) => `note: ${n}`),
    '',
    'targets:',
    targetsText(report.targets),
    '',
    `results: ${path.relative(process.cwd(), file)}`,
    '',
  ];
  process.stdout.write(out.join('\n'));
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, row: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench [-- --quick] [--row PREFIX]   (--row 3: row 3 only, never 30; --row recovery: "9 recovery"; --row 0: the floor)\n',
    );
    return 0;
  }
  // Ctrl-C / SIGTERM: stop every daemon and client we started before leaving.
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true;
      process.stderr.write(`bench: ${sig}, stopping what was started\n`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  try {
    const { report, file } = await runBench({ quick: values.quick, only: values.row });
    print(report, file);
    return 0;
  } catch (e) {
    // Clients fail once their daemon is stopped under them: that is the interruption, not an error to print.
    if (interrupted) return new Promise<number>(() => undefined);
    throw e;
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
