// SPDX-License-Identifier: Apache-2.0
// Debian's python3-libvirt (the binding virt-manager uses) against a started daemon.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, pyLibvirt } from '../helpers/skip';

const run = promisify(execFile);
const PY = '/usr/bin/python3'; // Debian's interpreter: python3-libvirt is installed for it, not for a pyenv one

describeIf(pyLibvirt(), 'python3-libvirt against virtgate', () => {
  let vg: RunningDaemon;
  beforeAll(async () => (vg = await startDaemon()));
  afterAll(async () => vg?.stop());

  test('listAllDomains, info, suspend/resume, defineXML/create/destroy/undefine, XML errors', async () => {
    const { stdout } = await run(PY, [path.join(__dirname, 'py', 'lifecycle.py'), vg.uri], { timeout: 30000 });
    const r = JSON.parse(stdout);
    expect(r.names).toEqual(['test']);
    expect(r.info[0]).toBe(1); // running
    expect(r.info.slice(1, 4)).toEqual([8388608, 2097152, 2]);
    expect(r.paused).toBe(true);
    expect(r.running).toBe(true);
    expect(r.defined_id).toBe(-1);
    expect(r.defined_persistent).toBe(1);
    expect(r.started_active).toBe(1);
    expect(r.after_undefine).toBe(42); // VIR_ERR_NO_DOMAIN
    expect(r.bad_xml_code).toBe(27); // VIR_ERR_XML_ERROR
    expect(r.bad_xml_msg).toMatch(/XML error/);
  });

  test('getFreeMemory, getCellsFreeMemory and getMaxVcpus answer as test:///default does', async () => {
    const facts = async (uri: string): Promise<unknown> =>
      JSON.parse((await run(PY, [path.join(__dirname, 'py', 'host_facts.py'), uri], { timeout: 30000 })).stdout);
    const ours = (await facts(vg.uri)) as Record<string, unknown>;
    expect(ours).toEqual(await facts('test:///default'));
    expect(ours.freeMemory).toBe(3145728); // it was 0: the call was unknown to virtgate
    expect(ours.outOfRange).toEqual([8, 'invalid argument: Range exceeds available cells']); // VIR_ERR_INVALID_ARG
  });
});
