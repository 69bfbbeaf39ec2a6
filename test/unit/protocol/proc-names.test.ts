// SPDX-License-Identifier: Apache-2.0
// The procedure-number -> libvirt API name table (src/protocol/proc-names.ts), its generator, and the unknown-procedure
// answer that uses it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROC_NAMES } from '../../../src/protocol/proc-names';
import { P } from '../../../src/protocol/procs/remote';
import { unknownProcError } from '../../../src/unprivileged/session';

const ROOT = path.join(__dirname, '..', '..', '..');
const GEN = path.join(ROOT, 'src', 'protocol', 'gen-proc-names.mjs');

test.each([
  [1, 'virConnectOpen'],
  [14, 'virDomainGetXMLDesc'],
  [22, 'virDomainLookupByID'],
  [61, 'virDomainMigratePrepare'],
  [182, 'virDomainManagedSave'],
  [273, 'virConnectListAllDomains'],
  [301, 'virNodeDeviceDetachFlags'],
  [316, 'virConnectDomainEventRegisterAny'],
  [349, 'virDomainGetFSInfo'],
  [443, 'virDomainFDAssociate'],
  [66, 'REMOTE_PROC_AUTH_LIST'],
  [318, 'REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE'],
])('procedure %d is %s', (n, name) => {
  expect(PROC_NAMES.get(n)).toBe(name);
});

test('the table covers libvirt 9.0 without gaps: 1..443', () => {
  expect([...PROC_NAMES.keys()]).toEqual(Array.from({ length: 443 }, (_, i) => i + 1));
});

// remote.ts is written by hand from the same spec: the two agree on every procedure virtgate serves.
test('every served procedure has its own API name in the table', () => {
  const renamed: Record<string, string> = {
    connectDomainEventCallbackRegisterAny: 'virConnectDomainEventRegisterAny',
    connectDomainEventCallbackDeregisterAny: 'virConnectDomainEventDeregisterAny',
  };
  const checked = Object.entries(P).filter(([key, def]) => {
    const got = PROC_NAMES.get(def.proc);
    if (def.message || key.startsWith('AUTH_')) expect(got).toBe(`REMOTE_PROC_${key}`);
    else expect(got?.toLowerCase()).toBe((renamed[def.name] ?? `vir${def.name}`).toLowerCase());
    return got !== undefined;
  });
  expect(checked.length).toBeGreaterThan(30);
});

describe('unknown procedure answer', () => {
  test('names the API and keeps libvirtd code, domain and the prefix clients match on', () => {
    expect(unknownProcError(182)).toMatchObject({
      code: 39,
      domain: 7,
      level: 2,
      message: 'unknown procedure: 182 (virDomainManagedSave)',
      str1: '%s',
      str2: 'unknown procedure: 182 (virDomainManagedSave)',
      int1: -1,
    });
  });

  test('a number libvirt never defined gets exactly libvirtd text', () => {
    expect(unknownProcError(9999).message).toBe('unknown procedure: 9999');
    expect(unknownProcError(0).message).toBe('unknown procedure: 0');
  });
});

describe('generator', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-procnames-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = (text: string): string => {
    const f = path.join(dir, 'remote_protocol.x');
    fs.writeFileSync(f, text);
    return execFileSync(process.execPath, [GEN, f, '--stdout'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };

  test('derives API names from procedure names, with the capitalised words and the exceptions', () => {
    const out = run(
      [
        'enum remote_procedure {',
        '    /** @generate: both */',
        '    REMOTE_PROC_CONNECT_GET_URI = 2,',
        '    REMOTE_PROC_NWFILTER_DEFINE_XML = 3,',
        '    REMOTE_PROC_DOMAIN_PM_SUSPEND_FOR_DURATION = 4,',
        '    REMOTE_PROC_DOMAIN_AUTHORIZED_SSH_KEYS_GET = 5,',
        '    REMOTE_PROC_NODE_GET_SEV_INFO = 6,',
        '    REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY = 7,',
        '    REMOTE_PROC_DOMAIN_GET_PERF_EVENTS = 8,',
        '    REMOTE_PROC_NETWORK_EVENT_LIFECYCLE = 9,',
        '    REMOTE_PROC_AUTH_SASL_STEP = 10,',
        '    REMOTE_PROC_DOMAIN_FSTRIM = 1',
        '};',
      ].join('\n'),
    );
    expect(out).toMatch(/^\/\/ Generated: do not edit; regenerate with/m);
    const rows = [...out.matchAll(/^ {2}\[(\d+), '([^']+)'\],$/gm)].map((m) => [Number(m[1]), m[2]]);
    expect(rows).toEqual([
      [1, 'virDomainFSTrim'],
      [2, 'virConnectGetURI'],
      [3, 'virNWFilterDefineXML'],
      [4, 'virDomainPMSuspendForDuration'],
      [5, 'virDomainAuthorizedSSHKeysGet'],
      [6, 'virNodeGetSEVInfo'],
      [7, 'virConnectDomainEventRegisterAny'],
      [8, 'virDomainGetPerfEvents'],
      [9, 'REMOTE_PROC_NETWORK_EVENT_LIFECYCLE'],
      [10, 'REMOTE_PROC_AUTH_SASL_STEP'],
    ]);
  });

  test('refuses a file without procedures, and a number defined twice', () => {
    expect(() => run('struct x { int a; };')).toThrow(/no REMOTE_PROC_/);
    expect(() => run('REMOTE_PROC_A_B = 1,\nREMOTE_PROC_C_D = 1\n')).toThrow(/defined twice/);
  });
});

// Measured against the real library when it is installed: every API name the table gives is a symbol libvirt exports.
const LIBVIRT = '/usr/lib/x86_64-linux-gnu/libvirt.so.0';
const haveLib = fs.existsSync(LIBVIRT) && spawnable('nm');
function spawnable(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
if (!haveLib && process.env.CI !== 'true') {
  test.skip(`API names are libvirt.so.0 symbols (needs package libvirt0 and binutils: ${LIBVIRT}, nm)`, () => undefined);
} else {
  test('every API name in the table is a symbol the installed libvirt exports', () => {
    expect(haveLib).toBe(true); // under CI a missing libvirt0/binutils is a failure, not a skip
    const syms = new Set(
      execFileSync('nm', ['-D', '--defined-only', LIBVIRT], { encoding: 'utf8', maxBuffer: 64 << 20 })
        .split('\n')
        .map((l) => l.split(' ')[2]?.replace(/@.*/, '')),
    );
    const missing = [...PROC_NAMES.values()].filter((n) => n.startsWith('vir') && !syms.has(n));
    expect(missing).toEqual([]);
  });
}
