// SPDX-License-Identifier: Apache-2.0
// The argv policy: which QEMU options a spawn may carry (launcher boundary). Pure. Every file QEMU touches is a
// descriptor the helper opened (fd=N, /dev/fdset/N, /proc/self/fd/N); any other path, and any option that opens,
// executes, loads or changes privileges, is refused with a message naming it.

export class ArgvRefused extends Error {
  constructor(
    readonly kind: 'argv' | 'fd',
    message: string,
  ) {
    super(message);
    this.name = 'ArgvRefused';
  }
}

export const SANDBOX_VALUE = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

// What each passed descriptor is used as; the server checks the descriptor really is that kind of file.
export type FdUse = 'chardev-listener' | 'add-fd' | 'tap' | 'kernel' | 'initrd';

export interface ArgvCheck {
  fdUses: Map<number, FdUse>; // QEMU fd number (3 + index) -> use
}

const DEVICES = new Set([
  'virtio-blk-pci',
  'ide-cd',
  'ide-hd',
  'scsi-hd',
  'virtio-scsi-pci',
  'virtio-net-pci',
  'e1000',
  'virtio-balloon-pci',
  'virtio-rng-pci',
  'usb-tablet',
  'qemu-xhci',
  'usb-ehci',
  'isa-serial',
  'virtio-serial-pci',
  'virtconsole',
  'virtserialport',
  'pcie-root-port',
  'VGA',
  'virtio-vga',
  'cirrus-vga',
]);

const FLAGS = new Set(['-nodefaults', '-no-user-config', '-S', '-no-shutdown']);
const REFUSED: Record<string, string> = {
  '-runas': 'changes uid inside QEMU; the jail sets the uid',
  '-chroot': 'the jail provides the file system view',
  '-plugin': 'loads a shared object',
  '-daemonize': 'would detach from the jail bookkeeping',
  '-pidfile': 'writes a file',
  '-D': 'writes a log file',
  '-trace': 'opens trace files',
  '-incoming': 'reads migration state from a path or a socket address',
  '-readconfig': 'reads a file',
  '-writeconfig': 'writes a file',
  '-loadvm': 'reads a snapshot',
  '-drive': 'takes a path; use -blockdev with /dev/fdset/N',
  '-hda': 'takes a path',
  '-hdb': 'takes a path',
  '-hdc': 'takes a path',
  '-hdd': 'takes a path',
  '-fda': 'takes a path',
  '-fdb': 'takes a path',
  '-cdrom': 'takes a path',
  '-mtdblock': 'takes a path',
  '-sd': 'takes a path',
  '-pflash': 'takes a path',
  '-bios': 'loads firmware from a path',
  '-L': 'sets the firmware search path',
  '-monitor': 'use -chardev socket,fd=N plus -mon',
  '-qmp': 'use -chardev socket,fd=N plus -mon',
  '-qmp-pretty': 'use -chardev socket,fd=N plus -mon',
  '-dtb': 'takes a path',
  '-option-rom': 'takes a path',
  '-net': 'use -netdev',
  '-usbdevice': 'use -device',
  '-enable-kvm': 'use -accel kvm',
  '-mem-path': 'takes a path',
  '-fsdev': 'shares a host directory',
  '-virtfs': 'shares a host directory',
  '-semihosting': 'host file access for the guest',
  '-semihosting-config': 'host file access for the guest',
  '-gdb': 'opens a debug server',
  '-s': 'opens a debug server',
  '-spice': 'opens a network listener',
  '-watchdog-action': 'use -action',
  '-icount': 'can record and replay to files',
  '-k': 'reads keymap files',
  '-parallel': 'takes a device path',
  '-smbios': 'reads a file',
  '-acpitable': 'reads a file',
  '-fw_cfg': 'reads a file',
};

// QEMU option lists: key=value pairs split on ','; ',,' (QEMU's escaped comma) is refused outright so that no value can
// smuggle a second key past this parser.
function optlist(opt: string, v: string, implied?: string): Map<string, string> {
  if (v.includes(',,')) throw new ArgvRefused('argv', `${opt} ${v}: escaped commas (',,') are not accepted`);
  const m = new Map<string, string>();
  v.split(',').forEach((part, i) => {
    const eq = part.indexOf('=');
    let k: string;
    let val: string;
    if (eq < 0) {
      if (i === 0 && implied) [k, val] = [implied, part];
      else [k, val] = [part, 'on'];
    } else [k, val] = [part.slice(0, eq), part.slice(eq + 1)];
    if (!/^[A-Za-z0-9_.-]+$/.test(k)) throw new ArgvRefused('argv', `${opt}: bad key '${k}'`);
    if (m.has(k)) throw new ArgvRefused('argv', `${opt}: key '${k}' given twice`);
    m.set(k, val);
  });
  return m;
}

function onlyKeys(opt: string, m: Map<string, string>, allowed: readonly string[]): void {
  for (const k of m.keys()) if (!allowed.includes(k)) throw new ArgvRefused('argv', `${opt}: key '${k}' is not allowed (allowed: ${allowed.join(', ')})`);
}

// A value with no path in it: no '/', nothing but the characters option values of this policy need.
const PLAIN = /^[A-Za-z0-9_.:+@-]*$/;
function plain(opt: string, k: string, v: string): void {
  if (!PLAIN.test(v)) throw new ArgvRefused('argv', `${opt}: value of '${k}' (${v.slice(0, 60)}) has characters outside [A-Za-z0-9_.:+@-] (no paths)`);
}
function allPlain(opt: string, m: Map<string, string>): void {
  for (const [k, v] of m) plain(opt, k, v);
}

export class ArgvPolicy {
  readonly #k: number;
  readonly #fdUses = new Map<number, FdUse>();
  readonly #fdsets = new Set<number>();
  readonly #fdsetRefs: number[] = [];
  #sandbox = 0;

  constructor(fdCount: number) {
    this.#k = fdCount;
  }

  #fd(opt: string, text: string, use: FdUse): number {
    if (!/^[0-9]{1,4}$/.test(text)) throw new ArgvRefused('fd', `${opt}: descriptor '${text}' is not a number`);
    const n = Number(text);
    if (n < 3 || n >= 3 + this.#k)
      throw new ArgvRefused('fd', `${opt}: descriptor ${n} out of range: ${this.#k} passed, so QEMU has fds 3..${3 + this.#k - 1}${this.#k ? '' : ' (none)'}`);
    if (this.#fdUses.has(n)) throw new ArgvRefused('fd', `${opt}: descriptor ${n} is already used as ${this.#fdUses.get(n)}`);
    this.#fdUses.set(n, use);
    return n;
  }

  check(argv: readonly string[]): ArgvCheck {
    for (let i = 0; i < argv.length; i++) {
      const opt = argv[i];
      if (!/^-[A-Za-z]/.test(opt))
        throw new ArgvRefused('argv', `argument ${i} '${opt.slice(0, 60)}' is not an option (a positional argument is a disk image path)`);
      if (FLAGS.has(opt)) continue;
      const handler = this.#handlers[opt];
      if (!handler) {
        const why = REFUSED[opt];
        throw new ArgvRefused('argv', why ? `option ${opt} is refused: ${why}` : `option ${opt} is not allowed`);
      }
      if (i + 1 >= argv.length) throw new ArgvRefused('argv', `option ${opt} needs a value`);
      handler(opt, argv[++i]);
    }
    if (this.#sandbox !== 1) throw new ArgvRefused('argv', `-sandbox ${SANDBOX_VALUE} is required exactly once`);
    for (const s of this.#fdsetRefs) if (!this.#fdsets.has(s)) throw new ArgvRefused('fd', `-blockdev: /dev/fdset/${s} names no -add-fd set`);
    return { fdUses: this.#fdUses };
  }

  readonly #handlers: Record<string, (opt: string, v: string) => void> = {
    '-name': (o, v) => {
      const m = optlist(o, v, 'guest');
      onlyKeys(o, m, ['guest', 'debug-threads']);
      allPlain(o, m);
    },
    '-uuid': (o, v) => {
      if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(v)) throw new ArgvRefused('argv', `${o}: not a UUID`);
    },
    '-machine': (o, v) => {
      const m = optlist(o, v, 'type');
      onlyKeys(o, m, [
        'type',
        'accel',
        'usb',
        'vmport',
        'dump-guest-core',
        'mem-merge',
        'smm',
        'graphics',
        'acpi',
        'kernel-irqchip',
        'hpet',
        'pic',
        'pit',
        'sata',
        'smbus',
        'i8042',
        'suppress-vmdesc',
      ]);
      allPlain(o, m);
    },
    '-accel': (o, v) => {
      const m = optlist(o, v, 'accel');
      onlyKeys(o, m, ['accel', 'thread', 'tb-size']);
      if (!['tcg', 'kvm'].includes(m.get('accel')!)) throw new ArgvRefused('argv', `${o}: only tcg or kvm`);
      allPlain(o, m);
    },
    '-cpu': (o, v) => {
      if (!/^[A-Za-z0-9_.+=,-]{1,512}$/.test(v) || v.includes(',,')) throw new ArgvRefused('argv', `${o}: not a CPU model with features`);
    },
    '-m': (o, v) => {
      const m = optlist(o, v, 'size');
      onlyKeys(o, m, ['size', 'slots', 'maxmem']);
      allPlain(o, m);
    },
    '-smp': (o, v) => {
      const m = optlist(o, v, 'cpus');
      onlyKeys(o, m, ['cpus', 'maxcpus', 'sockets', 'dies', 'clusters', 'cores', 'threads']);
      for (const [k, n] of m) if (!/^[0-9]{1,4}$/.test(n)) throw new ArgvRefused('argv', `${o}: ${k} is not a number`);
    },
    '-display': (o, v) => this.#only(o, v, 'none'),
    '-vga': (o, v) => this.#only(o, v, 'none'),
    '-vnc': (o, v) => this.#only(o, v, 'none'),
    '-sandbox': (o, v) => {
      if (v !== SANDBOX_VALUE) throw new ArgvRefused('argv', `-sandbox must be exactly ${SANDBOX_VALUE}, not '${v.slice(0, 100)}'`);
      this.#sandbox++;
      void o;
    },
    '-chardev': (o, v) => {
      const backend = v.split(',')[0];
      if (backend === 'null') {
        const m = optlist(o, v, 'backend');
        onlyKeys(o, m, ['backend', 'id']);
        allPlain(o, m);
        return;
      }
      if (backend !== 'socket') throw new ArgvRefused('argv', `${o}: backend '${backend}' refused (only socket with fd=N, or null)`);
      const m = optlist(o, v, 'backend');
      onlyKeys(o, m, ['backend', 'id', 'fd', 'server', 'wait']);
      allPlain(o, m);
      if (!m.has('id')) throw new ArgvRefused('argv', `${o}: id= is required`);
      if (!m.has('fd')) throw new ArgvRefused('fd', `${o}: socket chardevs take a listening descriptor (fd=N), never a path or address`);
      if (m.get('server') !== 'on') throw new ArgvRefused('argv', `${o}: server=on is required (the helper connects to QEMU)`);
      if (m.has('wait') && m.get('wait') !== 'off') throw new ArgvRefused('argv', `${o}: wait=off is required`);
      this.#fd(o, m.get('fd')!, 'chardev-listener');
    },
    '-mon': (o, v) => {
      const m = optlist(o, v, 'chardev');
      onlyKeys(o, m, ['chardev', 'mode', 'pretty']);
      allPlain(o, m);
      if (m.get('mode') !== undefined && m.get('mode') !== 'control') throw new ArgvRefused('argv', `${o}: only mode=control`);
    },
    '-serial': (o, v) => {
      if (!/^chardev:[A-Za-z0-9_.-]{1,64}$/.test(v)) throw new ArgvRefused('argv', `${o}: only chardev:ID, not '${v.slice(0, 60)}'`);
    },
    '-device': (o, v) => {
      const m = optlist(o, v, 'driver');
      const d = m.get('driver')!;
      if (/^vfio/.test(d)) throw new ArgvRefused('argv', `${o}: ${d} is refused: host device passthrough`);
      if (!DEVICES.has(d)) throw new ArgvRefused('argv', `${o}: device '${d}' is not allowed`);
      // An option ROM is read from a path: only the empty value (no ROM) passes.
      if (m.has('romfile') && m.get('romfile') !== '') throw new ArgvRefused('argv', `${o}: romfile= reads a file; only romfile= (empty) is accepted`);
      for (const [k, val] of m) if (k !== 'romfile') plain(o, k, val);
    },
    '-blockdev': (o, v) => {
      let j: unknown;
      if (!v.startsWith('{')) throw new ArgvRefused('argv', `${o}: JSON form only`);
      try {
        j = JSON.parse(v);
      } catch {
        throw new ArgvRefused('argv', `${o}: not valid JSON`);
      }
      this.#blockdev(o, j, 0);
    },
    '-add-fd': (o, v) => {
      const m = optlist(o, v);
      onlyKeys(o, m, ['fd', 'set', 'opaque']);
      allPlain(o, m);
      if (!m.has('fd') || !m.has('set')) throw new ArgvRefused('argv', `${o}: fd= and set= are required`);
      this.#fd(o, m.get('fd')!, 'add-fd');
      if (!/^[0-9]{1,4}$/.test(m.get('set')!)) throw new ArgvRefused('argv', `${o}: set= is not a number`);
      this.#fdsets.add(Number(m.get('set')));
    },
    '-netdev': (o, v) => {
      const m = optlist(o, v, 'type');
      const t = m.get('type');
      if (t === 'user') {
        for (const k of ['smb', 'tftp', 'bootfile', 'guestfwd'])
          if (m.has(k)) throw new ArgvRefused('argv', `${o}: user networking with ${k}= is refused (host files or host sockets)`);
        onlyKeys(o, m, ['type', 'id', 'net', 'host', 'restrict', 'hostname', 'dhcpstart', 'dns', 'ipv4', 'ipv6', 'domainname']);
        allPlain(o, m);
        return;
      }
      if (t === 'tap') {
        onlyKeys(o, m, ['type', 'id', 'fd', 'vhost']);
        allPlain(o, m);
        if (m.get('vhost') !== undefined && m.get('vhost') !== 'off') throw new ArgvRefused('argv', `${o}: vhost opens /dev/vhost-net; only vhost=off`);
        if (!m.has('fd')) throw new ArgvRefused('fd', `${o}: a tap netdev takes a descriptor (fd=N): no ifname, script or helper`);
        this.#fd(o, m.get('fd')!, 'tap');
        return;
      }
      throw new ArgvRefused('argv', `${o}: type '${t}' refused (only user or tap with fd=N)`);
    },
    '-object': (o, v) => {
      const m = optlist(o, v, 'qom-type');
      const t = m.get('qom-type');
      if (t === 'rng-builtin') onlyKeys(o, m, ['qom-type', 'id']);
      else if (t === 'iothread') onlyKeys(o, m, ['qom-type', 'id', 'poll-max-ns', 'poll-grow', 'poll-shrink']);
      else throw new ArgvRefused('argv', `${o}: object type '${t}' refused (only rng-builtin, iothread)`);
      allPlain(o, m);
    },
    '-kernel': (o, v) => this.#procFd(o, v, 'kernel'),
    '-initrd': (o, v) => this.#procFd(o, v, 'initrd'),
    '-append': (o, v) => {
      if (v.length > 4096) throw new ArgvRefused('argv', `${o}: kernel command line over 4096 bytes`);
    },
    '-boot': (o, v) => {
      const m = optlist(o, v, 'order');
      onlyKeys(o, m, ['order', 'once', 'menu', 'strict', 'reboot-timeout', 'splash-time']);
      allPlain(o, m);
    },
    '-rtc': (o, v) => {
      const m = optlist(o, v);
      onlyKeys(o, m, ['base', 'clock', 'driftfix']);
      allPlain(o, m);
    },
    '-global': (o, v) => {
      const m = optlist(o, v);
      for (const k of m.keys()) if (/romfile|file|path/i.test(k)) throw new ArgvRefused('argv', `${o}: ${k} takes a path`);
      allPlain(o, m);
    },
    '-msg': (o, v) => {
      const m = optlist(o, v);
      onlyKeys(o, m, ['timestamp', 'guest-name']);
      allPlain(o, m);
    },
    '-overcommit': (o, v) => {
      const m = optlist(o, v);
      onlyKeys(o, m, ['mem-lock', 'cpu-pm']);
      allPlain(o, m);
    },
    '-action': (o, v) => {
      const m = optlist(o, v);
      onlyKeys(o, m, ['reboot', 'shutdown', 'panic', 'watchdog']);
      allPlain(o, m);
    },
  };

  #only(o: string, v: string, want: string): void {
    if (v !== want) throw new ArgvRefused('argv', `${o}: only '${want}', not '${v.slice(0, 60)}'`);
  }

  #procFd(o: string, v: string, use: 'kernel' | 'initrd'): void {
    const m = /^\/proc\/self\/fd\/([0-9]{1,4})$/.exec(v);
    if (!m) throw new ArgvRefused('fd', `${o}: '${v.slice(0, 60)}' is a path; only /proc/self/fd/N of a passed descriptor`);
    this.#fd(o, m[1], use);
  }

  // -blockdev JSON: drivers file/raw/qcow2, every key known, a file node only on /dev/fdset/N.
  #blockdev(o: string, j: unknown, depth: number): void {
    if (depth > 16) throw new ArgvRefused('argv', `${o}: nesting too deep`);
    if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new ArgvRefused('argv', `${o}: a node must be a JSON object`);
    const n = j as Record<string, unknown>;
    const common = ['driver', 'node-name', 'read-only', 'auto-read-only', 'discard', 'cache', 'detect-zeroes', 'force-share'];
    const allowed: Record<string, string[]> = {
      file: [...common, 'filename', 'locking', 'aio'],
      raw: [...common, 'file', 'offset', 'size'],
      qcow2: [
        ...common,
        'file',
        'backing',
        'lazy-refcounts',
        'pass-discard-request',
        'pass-discard-unmap',
        'pass-discard-other',
        'cache-size',
        'l2-cache-size',
        'refcount-cache-size',
      ],
    };
    const d = n.driver;
    if (typeof d !== 'string' || !allowed[d]) throw new ArgvRefused('argv', `${o}: driver ${JSON.stringify(d)} refused (only file, raw, qcow2)`);
    for (const k of Object.keys(n)) if (!allowed[d].includes(k)) throw new ArgvRefused('argv', `${o}: key '${k}' is not allowed for driver ${d}`);
    for (const [k, v] of Object.entries(n)) {
      if (k === 'file' || k === 'backing') {
        if (v === null && k === 'backing') continue;
        if (typeof v === 'string') {
          if (!/^[A-Za-z][A-Za-z0-9_.-]{0,31}$/.test(v)) throw new ArgvRefused('argv', `${o}: ${k} must be a node name or a node`);
          continue;
        }
        this.#blockdev(o, v, depth + 1);
      } else if (k === 'filename') {
        const m = typeof v === 'string' ? /^\/dev\/fdset\/([0-9]{1,4})$/.exec(v) : null;
        if (!m) throw new ArgvRefused('fd', `${o}: filename ${JSON.stringify(v)?.slice(0, 60)} is a path; only /dev/fdset/N`);
        this.#fdsetRefs.push(Number(m[1]));
      } else if (k === 'cache') {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ArgvRefused('argv', `${o}: cache must be an object`);
        for (const [ck, cv] of Object.entries(v)) {
          if (!['direct', 'no-flush'].includes(ck) || typeof cv !== 'boolean') throw new ArgvRefused('argv', `${o}: cache.${ck} refused`);
        }
      } else if (typeof v === 'string') {
        if (!PLAIN.test(v)) throw new ArgvRefused('argv', `${o}: value of '${k}' has characters outside [A-Za-z0-9_.:+@-]`);
      } else if (typeof v !== 'boolean' && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
        throw new ArgvRefused('argv', `${o}: value of '${k}' must be a string, boolean or non-negative integer`);
      }
    }
  }
}

// Throws ArgvRefused naming the first argument the policy refuses.
export function checkArgv(argv: readonly string[], fdCount: number): ArgvCheck {
  return new ArgvPolicy(fdCount).check(argv);
}
