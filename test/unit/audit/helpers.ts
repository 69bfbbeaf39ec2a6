// SPDX-License-Identifier: Apache-2.0
// Shared fixtures for audit tests: temp dirs, a counting/faulting fs layer, record factories.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type AuditFs, nodeFs } from '../../../src/audit/fs-layer';
import type { AuditInput } from '../../../src/audit/schema';

export function tempDir(prefix = 'vg-audit-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CountingFs extends AuditFs {
  syncs: number;
  writes: number;
  fail: { write?: string; fdatasync?: string }; // errno code to inject
  onSync?: () => Promise<void>; // runs before the real fdatasync (a gate for ordering tests)
  durableSyncs: number; // fdatasync calls that returned
}

export function countingFs(): CountingFs {
  const c: CountingFs = {
    ...nodeFs,
    syncs: 0,
    writes: 0,
    durableSyncs: 0,
    fail: {},
    async write(fd, buf, pos) {
      c.writes++;
      if (c.fail.write) {
        // A partial write, then the error: what a filling disk does.
        await nodeFs.write(fd, buf.subarray(0, Math.min(10, buf.length)), pos);
        throw Object.assign(new Error(`injected ${c.fail.write}`), { code: c.fail.write });
      }
      return nodeFs.write(fd, buf, pos);
    },
    async fdatasync(fd) {
      c.syncs++;
      if (c.onSync) await c.onSync();
      if (c.fail.fdatasync) throw Object.assign(new Error(`injected ${c.fail.fdatasync}`), { code: c.fail.fdatasync });
      await nodeFs.fdatasync(fd);
      c.durableSyncs++;
    },
  };
  return c;
}

export function write(i: number, extra: Partial<AuditInput> = {}): AuditInput {
  return {
    kind: 'intent',
    requestId: `r-${i}`,
    who: { user: i % 2 ? 'alice' : 'bob', tenant: i % 3 ? 'tenantA' : 'tenantB', method: 'x509', fingerprint: 'ab'.repeat(32) },
    source: `203.0.113.7:${50000 + (i % 1000)}`,
    what: {
      procedure: 'domainSetMemory',
      permission: 'domain:write',
      object: { name: `vm-${i % 5}`, uuid: `00000000-0000-0000-0000-00000000000${i % 5}` },
      args: { memory: 1024 * (i + 1) },
    },
    decision: { result: 'allow', rule: 'p, alice, tenantA, domain, write' },
    ...extra,
  };
}

export function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

export const quiet = (): ((m: string) => void) => () => undefined;
