// SPDX-License-Identifier: Apache-2.0
// Domain snapshots and checkpoints: real virsh and python3-libvirt against virtgate and against libvirt's own
// test:///default, compared line for line (creation times masked), plus persistence across a helper restart.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { describeIf, virshTool } from '../helpers/skip';

const run = promisify(execFile);

interface Result {
  rc: number;
  out: string;
  err: string;
}

async function virsh(uri: string, ...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run('virsh', ['-c', uri, ...args], { timeout: 30000 });
    return { rc: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { rc: typeof x.code === 'number' ? x.code : -1, out: x.stdout, err: x.stderr };
  }
}

// Creation times (epoch seconds, list dates, and names made from them) differ between the two runs.
const mask = (s: string): string =>
  s
    .replace(/<creationTime>[0-9]+<\/creationTime>/g, '<creationTime>T</creationTime>')
    .replace(/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}/g, 'DATE')
    .replace(/\b1[0-9]{9}\b/g, 'EPOCH');

describeIf(virshTool(), 'virsh: snapshots and checkpoints against test:///default', () => {
  let vg: RunningDaemon;
  const cmp = async (script: string): Promise<void> => {
    const ours = await virsh(vg.uri, script);
    const theirs = await virsh('test:///default', script);
    expect({ script, rc: ours.rc, out: mask(ours.out), err: mask(ours.err) }).toEqual({
      script,
      rc: theirs.rc,
      out: mask(theirs.out),
      err: mask(theirs.err),
    });
  };

  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
  });
  afterAll(async () => vg?.stop());

  // Each script runs in one virsh session and removes what it made, so both sides start from the same state.
  const CLEAN = 'snapshot-delete test s1 --children';
  test.each([
    `snapshot-create-as test s1 --description 'hello <b> & "q"'; snapshot-create-as test s2; snapshot-list test; snapshot-list test --tree; snapshot-info test s1; snapshot-info test s2; snapshot-dumpxml test s1; snapshot-dumpxml test s2; snapshot-parent test s2; snapshot-current test --name; ${CLEAN}`,
    `snapshot-create-as test s1; snapshot-create-as test s2; snapshot-create-as test s3; snapshot-list test --parent; snapshot-list test --roots; snapshot-list test --leaves; snapshot-list test --no-leaves; snapshot-list test --from s1; snapshot-list test --from s1 --descendants; snapshot-list test --current; snapshot-list test --name; snapshot-list test --topological; snapshot-list test --inactive; snapshot-list test --active; snapshot-list test --internal; snapshot-list test --external; snapshot-list test --disk-only; ${CLEAN}`,
    `snapshot-create-as test s1; snapshot-create-as test s2; snapshot-current test s1; snapshot-current test --name; snapshot-delete test s1; snapshot-list test --parent; snapshot-current test --name; snapshot-delete test s2; snapshot-list test`,
    `snapshot-create-as test s1; snapshot-create-as test s2; snapshot-create-as test s3; snapshot-delete test s1 --children-only; snapshot-list test --parent; snapshot-current test --name; ${CLEAN}`,
    `snapshot-create-as test s1; suspend test; snapshot-create-as test s2; snapshot-revert test s1; domstate test --reason; snapshot-revert test s2; domstate test --reason; resume test; domstate test --reason; snapshot-current test --name; ${CLEAN}`,
    `destroy test; snapshot-create-as test s1; snapshot-info test s1; snapshot-dumpxml test s1; start test; snapshot-revert test s1; domstate test --reason; snapshot-revert test s1 --running; domstate test --reason; undefine test; snapshot-list test; ${CLEAN}; start test`,
    `destroy test; snapshot-create-as test s1; undefine test; ${CLEAN}; start test`,
    `snapshot-create-as test s1 --halt; domstate test --reason; start test; ${CLEAN}`,
    `snapshot-create-as test s1; snapshot-dumpxml test s1 > /dev/null; snapshot-create-as test s1; ${CLEAN}`,
    'snapshot-info test nope',
    'snapshot-current test',
    'snapshot-revert test nope',
    'snapshot-delete test nope',
    'snapshot-create-as test s1 --disk-only',
    'snapshot-create-as test s1 --no-metadata',
    'snapshot-create-as nodom s1',
    `snapshot-create-as test s1; snapshot-delete test s1 --metadata; ${CLEAN}`,
    `snapshot-create-as test s1; snapshot-delete test s1; snapshot-revert test s1`,
    `snapshot-create-as test s1; snapshot-parent test s1; ${CLEAN}`,
    `snapshot-create-as test s1 --memspec file=/tmp/m1; ${CLEAN}`,
    `snapshot-create-as test s1 --diskspec vdz,snapshot=internal; snapshot-create-as test s1 --diskspec vda,snapshot=no; snapshot-dumpxml test s1; ${CLEAN}`,
    `checkpoint-create-as test c1; checkpoint-list test; checkpoint-info test c1; checkpoint-dumpxml test c1; checkpoint-create-as test c2 --description hi; checkpoint-list test --parent; checkpoint-list test --tree; checkpoint-parent test c2; checkpoint-dumpxml test c2 --no-domain; snapshot-create-as test s9; checkpoint-delete test c1; checkpoint-list test --parent; checkpoint-delete test c2; checkpoint-list test`,
    `checkpoint-create-as test c1; checkpoint-create-as test c2; checkpoint-create-as test c3; checkpoint-list test --roots; checkpoint-list test --leaves; checkpoint-list test --from c1 --descendants; checkpoint-delete test c1 --children; checkpoint-list test`,
    'checkpoint-info test nope',
    'checkpoint-parent test nope',
    `destroy test; checkpoint-create-as test c1; start test`,
    `snapshot-create-as test s1; checkpoint-create-as test c1; ${CLEAN}`,
  ])('%s', async (script) => cmp(script));
});
