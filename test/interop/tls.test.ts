// SPDX-License-Identifier: Apache-2.0
// Real libvirt clients over TLS with the development PKI `npm start` creates: virsh and python3-libvirt, 100 connections in a row each.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { pyLibvirt, testIf, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const PY = '/usr/bin/python3'; // Debian's interpreter: python3-libvirt is installed for it, not for a pyenv one
const ROUNDS = 100; // the TLS 1.3 session-ticket race (libvirt-wire.md §8.4) shows up as an occasional EAGAIN, so count failures

describe('libvirt clients over TLS', () => {
  let vg: RunningDaemon;
  let uri: string;

  beforeAll(async () => {
    vg = await startDaemon({ extraArgs: ['--tls', '127.0.0.1:0'] });
    // The supervisor prints the URI; host localhost must match the server certificate's SAN as libvirt checks it.
    uri = /virsh -c '(test\+tls:\/\/localhost:\d+\/default\?pkipath=[^']+)'/.exec(vg.output())![1];
    expect(uri).toContain(path.join(vg.home, 'pki', 'admin'));
  });
  afterAll(() => vg?.stop());

  testIf(
    virshTool(),
    `virsh list --all works, ${ROUNDS} connections in a row without a failure`,
    async () => {
      const failures: string[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        try {
          const { stdout } = await run('virsh', ['-c', uri, 'list', '--all'], { timeout: 30000 });
          if (!/\btest\s+running/.test(stdout)) failures.push(`#${i}: ${stdout}`);
        } catch (e) {
          failures.push(`#${i}: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
        }
      }
      process.stdout.write(`virsh over TLS: ${ROUNDS - failures.length}/${ROUNDS} connections succeeded\n`);
      expect(failures).toEqual([]);
    },
    120000,
  );

  testIf(
    pyLibvirt(),
    `python3-libvirt: ${ROUNDS} open/listAllDomains/close over TLS without a failure`,
    async () => {
      const script = [
        'import sys, libvirt',
        'libvirt.registerErrorHandler(lambda *a: None, None)',
        'ok, errs = 0, []',
        `for i in range(${ROUNDS}):`,
        '    try:',
        '        c = libvirt.open(sys.argv[1])',
        '        ok += [d.name() for d in c.listAllDomains()] == ["test"]',
        '        c.close()',
        '    except libvirt.libvirtError as e:',
        '        errs.append(str(e))',
        'print(ok, errs)',
      ].join('\n');
      const { stdout } = await run(PY, ['-c', script, uri], { timeout: 60000 });
      expect(stdout.trim()).toBe(`${ROUNDS} []`);
    },
    120000,
  );
});
