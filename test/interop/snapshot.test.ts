// SPDX-License-Identifier: Apache-2.0
// Domain snapshots and checkpoints: real virsh and python3-libvirt against virtgate and against libvirt's own
// test:///default, compared line for line (creation times masked), plus persistence across a helper restart.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, exec, referenceVirsh } from '../helpers/users';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const PY = '/usr/bin/python3';

const virsh = (uri: string, ...args: string[]): Promise<Result> => exec(['virsh', '-c', uri, ...args]);

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
    const theirs = await referenceVirsh(script);
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

  // --redefine: the snapshot's own XML (with its <domain>) back in, as a backup tool restores metadata.
  test('snapshot-create --redefine and checkpoint-create --redefine', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-snap-redefine-'));
    const dom = (await referenceVirsh('dumpxml test --inactive')).out.replace(/^/gm, '  ').trimEnd();
    const f = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const snap = (name: string, parent: string, state: string, extra = '') =>
      `<domainsnapshot>\n  <name>${name}</name>\n  <description>restored ${name}</description>\n  <state>${state}</state>\n` +
      (parent ? `  <parent>\n    <name>${parent}</name>\n  </parent>\n` : '') +
      `  <creationTime>1700000000</creationTime>\n${extra}${dom}\n</domainsnapshot>\n`;
    const r1 = f('r1.xml', snap('r1', '', 'running', "  <memory snapshot='internal'/>\n"));
    const r2 = f('r2.xml', snap('r2', 'r1', 'shutoff'));
    const r3 = f('r3.xml', snap('r3', 'r9', 'running'));
    const self = f('self.xml', snap('r4', 'r4', 'running'));
    const noname = f('noname.xml', '<domainsnapshot><state>running</state><creationTime>1</creationTime></domainsnapshot>');
    const notime = f('notime.xml', '<domainsnapshot><name>r5</name><state>running</state></domainsnapshot>');
    const badstate = f('badstate.xml', '<domainsnapshot><name>r5</name><state>flying</state><creationTime>1</creationTime></domainsnapshot>');
    const other = f('other.xml', snap('r6', '', 'running').replace(/<uuid>[^<]*<\/uuid>/, '<uuid>11111111-2222-3333-4444-555555555555</uuid>'));
    const c1 = f('c1.xml', `<domaincheckpoint>\n  <name>k1</name>\n  <creationTime>1700000000</creationTime>\n${dom}\n</domaincheckpoint>\n`);
    try {
      await cmp(
        `snapshot-create test ${r1} --redefine; snapshot-create test ${r2} --redefine --current; snapshot-list test --parent; ` +
          `snapshot-current test --name; snapshot-dumpxml test r1; snapshot-dumpxml test r2; snapshot-info test r2; ` +
          `snapshot-create test ${r1} --redefine; snapshot-list test --tree; ` +
          `snapshot-create test ${r3} --redefine; snapshot-create test ${self} --redefine; snapshot-create test ${noname} --redefine; ` +
          `snapshot-create test ${notime} --redefine; snapshot-create test ${badstate} --redefine; snapshot-create test ${other} --redefine; ` +
          `snapshot-revert test r2; domstate test --reason; start test; snapshot-delete test r1 --children`,
      );
      await cmp(`checkpoint-create test ${c1} --redefine; checkpoint-list test; checkpoint-dumpxml test k1; checkpoint-delete test k1`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeIf([virshTool(), pyLibvirt()], 'python3-libvirt: snapshots and checkpoints against test:///default', () => {
  let vg: RunningDaemon;
  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
  });
  afterAll(async () => vg?.stop());

  // The same script through the Python binding: object methods, lists with flags, XML, revert, errors.
  const SCRIPT = String.raw`
import sys, libvirt, re
c = libvirt.open(sys.argv[1])
d = c.lookupByName('test')
out = []
s1 = d.snapshotCreateXML('<domainsnapshot><name>p1</name><description>py</description></domainsnapshot>')
s2 = d.snapshotCreateXML('<domainsnapshot><name>p2</name></domainsnapshot>')
# libvirt lists in hash-table order: compared sorted
out.append(sorted(s.getName() for s in d.listAllSnapshots()))
out.append(sorted(s.getName() for s in d.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_ROOTS)))
out.append([s.getName() for s in s1.listAllChildren()])
out.append((d.snapshotNum(), s1.numChildren(), s2.getParent().getName(), d.hasCurrentSnapshot(), d.snapshotCurrent().getName()))
out.append((s1.isCurrent(), s2.isCurrent(), s2.hasMetadata(), d.snapshotLookupByName('p1').getName(), sorted(d.snapshotListNames())))
out.append(re.sub('<creationTime>[0-9]+</creationTime>', 'T', s1.getXMLDesc()))
d.revertToSnapshot(s1)
out.append((d.state(), d.snapshotCurrent().getName()))
for f in [lambda: d.snapshotLookupByName('nope'), lambda: s1.getParent(), lambda: d.snapshotCreateXML('<domainsnapshot>', 0), lambda: s1.delete(2)]:
    try:
        f(); out.append('no error')
    except libvirt.libvirtError as e:
        # libxml2's wording of a parse error is its own: compared up to the document name
        out.append((e.get_error_code(), e.get_error_domain(), re.sub(r'^(\(domain_snapshot\)):.*', r'\1', e.get_error_message(), flags=re.S)))
s1.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)
out.append(d.listAllSnapshots())
k = d.checkpointCreateXML('<domaincheckpoint><name>k1</name></domaincheckpoint>')
out.append(([x.getName() for x in d.listAllCheckpoints()], re.sub('<creationTime>[0-9]+</creationTime>', 'T', k.getXMLDesc(libvirt.VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN))))
try:
    k.getParent()
except libvirt.libvirtError as e:
    out.append((e.get_error_code(), e.get_error_message()))
k.delete()
out.append(d.listAllCheckpoints())
print(repr(out))
`;

  test('the same answers as test:///default', async () => {
    const py = async (uri: string) => (await run(PY, ['-c', SCRIPT, uri], { timeout: 30000 })).stdout;
    const ours = await py(vg.uri);
    expect(ours).toBe(await py('test:///default'));
    expect(ours).toContain("['p1', 'p2']");
  });
});
