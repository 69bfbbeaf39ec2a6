// SPDX-License-Identifier: Apache-2.0
// Issue 12 part B: the rest of the test driver's hypervisor table (setmaxmem, lifecycle actions, memstats period,
// domtime, iothreads, perf, domiftune, fsfreeze/thaw/trim, NMI, signals, cpu-stats, send-key, user password, launch
// security): real virsh against virtgate and against libvirt's own test:///default, compared line for line.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RunningDaemon, startDaemon } from '../helpers/daemon';
import { type Result, exec, referenceVirsh } from '../helpers/users';
import { describeIf, pyLibvirt, virshTool } from '../helpers/skip';

const run = promisify(execFile);
const PY = '/usr/bin/python3';

const virsh = (uri: string, ...args: string[]): Promise<Result> => exec(['virsh', '-c', uri, ...args]);

const mask = (s: string): string => s.replace(/<uuid>[^<]*<\/uuid>/g, '<uuid/>');

describeIf(virshTool(), 'virsh: the rest of the hypervisor table against test:///default', () => {
  let vg: RunningDaemon;
  const cmp = async (script: string): Promise<void> => {
    const ours = await virsh(vg.uri, script);
    const theirs = await referenceVirsh(script);
    expect({ script, rc: ours.rc, out: mask(ours.out), err: ours.err }).toEqual({ script, rc: theirs.rc, out: mask(theirs.out), err: theirs.err });
  };

  beforeAll(async () => {
    vg = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
  });
  afterAll(async () => vg?.stop());

  // One virsh session per script (a fresh test:///default sees the same sequence); state-changing scripts restore it.
  test.each([
    'setmaxmem test 1000000; setmaxmem test 9000000 --config; dumpxml test --inactive; setmaxmem test 8388608 --config; setmaxmem test 0',
    'set-lifecycle-action test crash coredump-restart; set-lifecycle-action test poweroff coredump-destroy; set-lifecycle-action test reboot preserve --config; dumpxml test; dumpxml test --inactive; set-lifecycle-action test crash destroy; set-lifecycle-action test reboot restart --config',
    'dommemstat test --period 10; dumpxml test; dommemstat test --period 10 --config; dumpxml test --inactive; dommemstat test --period 0; dommemstat test --period 0 --config; dommemstat test --period -1; dumpxml test',
    'domtime test; domtime test --time 1000; domtime test; domtime test --pretty; domtime test --sync; domtime test --time 627319920',
    'iothreadinfo test; iothreadadd test 3; iothreadadd test 3; iothreadadd test 1 --config; iothreadinfo test; iothreadinfo test --config; dumpxml test; dumpxml test --inactive; iothreaddel test 3; iothreaddel test 1 --config',
    'iothreadadd test 3; iothreadpin test 3 1; iothreadpin test 3 0-1 --config; iothreadpin test 9 1; iothreadinfo test; dumpxml test; iothreadset test 3 --poll-max-ns 100 --poll-grow 2 --poll-shrink 3; iothreadset test 9 --poll-max-ns 1; iothreadset test 3 --poll-max-ns 1 --config; iothreaddel test 3',
    'domstats --iothread; iothreadadd test 6; iothreadadd test 7 --config; iothreadset test 6 --poll-max-ns 100 --poll-grow 2 --poll-shrink 4294967295; domstats --iothread; domstats; domstats --iothread --state test; iothreaddel test 6; iothreaddel test 7 --config; domstats --iothread',
    'iothreadadd test 2; iothreadadd test 5; iothreaddel test 2; iothreaddel test 2; iothreaddel test 0; iothreadinfo test; dumpxml test; iothreaddel test 5; iothreadinfo test; dumpxml test',
    // libvirt then keeps an empty <bandwidth> (no inbound, no outbound) when the last rate is cleared; we drop it, so
    // the script ends before that.
    'domiftune test testnet0; domiftune test testnet0 --inbound 100,200,300,50 --outbound 60,70,80; domiftune test testnet0; dumpxml test; domiftune test testnet0 --outbound 0; domiftune test testnet0; dumpxml test; domiftune test eth9; domiftune test aa:bb:cc:dd:ee:ff --config; domiftune test testnet0 --inbound 0',
    'domfsfreeze test; domfsfreeze test; domfsthaw test --mountpoint /; domfsfreeze test --mountpoint / --mountpoint /boot; domfsthaw test; domfsthaw test; domfsfreeze test --mountpoint /x; domfstrim test; domfstrim test --mountpoint /boot; domfstrim test --mountpoint /x --minimum 4096',
    'inject-nmi test; send-process-signal test 1 kill; send-process-signal test 1 sigterm; send-process-signal test 2 kill; send-process-signal test 1 nosuchsig',
    'cpu-stats test; cpu-stats test --total; cpu-stats test --start 1 --count 1; cpu-stats test --start 0 --count 5; cpu-stats test --start 5',
    'send-key test KEY_A; send-key test --codeset xt 0x1e 0x9e; send-key test --codeset usb 4 5 6; send-key test --codeset usb 9999; send-key test --codeset win32 --holdtime 50 0x41; send-key test KEY_BOGUS; send-key test --codeset linux 999',
    'set-user-password test root s3cret; set-user-password test --encrypted root $6$x; domlaunchsecinfo test',
  ])('%s', async (script) => cmp(script));

  // Settings that cannot be taken back to "absent" with virsh (perf events only go to disabled; virsh refuses an empty
  // throttle group name): each on a daemon of its own, so no later script sees them.
  test.each([
    'perf test; perf test --enable cmt,cpu_cycles; perf test; dumpxml test; perf test --disable cmt --config; dumpxml test --inactive; perf test --enable bogus; perf test --disable cpu_cycles; perf test --config --enable cmt; dumpxml test',
    'blkdeviotune test vda; blkdeviotune test vda --total-bytes-sec 1000 --read-iops-sec 20 --group-name g1 --total-bytes-sec-max 2000; blkdeviotune test vda --total-bytes-sec 1000 --read-iops-sec 20 --read-iops-sec-max 30 --group-name g1 --total-bytes-sec-max 2000 --size-iops-sec 4; blkdeviotune test vda; dumpxml test; blkdeviotune test vda --read-bytes-sec 5; blkdeviotune test vda --total-bytes-sec 3000; blkdeviotune test vdz; blkdeviotune test /guest/diskimage1 --config --write-iops-sec 7 --write-iops-sec-max 8; dumpxml test --inactive; blkdeviotune test vda --total-bytes-sec 0 --read-iops-sec 0 --read-iops-sec-max 0 --total-bytes-sec-max 0 --size-iops-sec 0; blkdeviotune test vda --config --write-iops-sec 0 --write-iops-sec-max 0; blkdeviotune test vda --total-bytes-sec 9999999999999999; dumpxml test',
  ])('%s', async (script) => {
    const own = await startDaemon({ tcp: true, policy: 'g, unix:root, host-admin, *\ng, tcp:anonymous, host-admin, *\n' });
    try {
      const ours = await virsh(own.uri, script);
      const theirs = await referenceVirsh(script);
      expect({ rc: ours.rc, out: mask(ours.out), err: ours.err }).toEqual({ rc: theirs.rc, out: mask(theirs.out), err: theirs.err });
    } finally {
      await own.stop();
    }
  });

  // Last: these stop `test` (and start it again), so its id differs from a fresh test:///default afterwards.
  test.each([
    'suspend test; domtime test; domtime test --time 5; domfsfreeze test; domfsthaw test; cpu-stats test --total; inject-nmi test; resume test; domtime test --time 627319920',
    'destroy test; domtime test; domtime test --time 5; domfsfreeze test; inject-nmi test; send-key test KEY_A; cpu-stats test; set-user-password test root x; send-process-signal test 1 kill; start test',
  ])('%s', async (script) => cmp(script));
});

describeIf(pyLibvirt(), 'python3-libvirt: the rest of the hypervisor table against test:///default', () => {
  let vg: RunningDaemon;
  beforeAll(async () => (vg = await startDaemon()));
  afterAll(async () => vg?.stop());

  const facts = async (uri: string): Promise<Record<string, unknown>> =>
    JSON.parse((await run(PY, [path.join(__dirname, 'py', 'domain_extra_b.py'), uri], { timeout: 60000 })).stdout);

  test('memory peek, cpu stats, legacy lifecycle callbacks, create-with-files without descriptors answer as test:///default does', async () => {
    const ours = await facts(vg.uri);
    const theirs = await facts('test:///default');
    const { withFds: oursFds, ...oursRest } = ours;
    const { withFds: theirsFds, ...theirsRest } = theirs;
    expect(oursRest).toEqual(theirsRest);
    expect(oursRest.legacyEvents).toEqual([
      ['test', 3, 0],
      ['test', 4, 0],
    ]); // suspended/resumed, as test:///default sends them
    // The one deliberate difference: descriptors are not taken (test:///default takes them). virtgate offers
    // VIR_DRV_FEATURE_FD_PASSING on unix sockets (for openGraphicsFD's reply), so libvirt's client sends the call with
    // its descriptor; the session skips the descriptor's byte, refuses the call by name and nothing is created.
    expect(theirsFds).toEqual(['ok', 'fdvm']);
    expect(oursFds).toEqual([
      3,
      'this function is not supported by the connection driver: virDomainCreateXMLWithFiles: virtgate does not accept file descriptors from clients',
      'absent',
    ]);
  });
});
