// SPDX-License-Identifier: Apache-2.0
// CLI command-line parsing, domain lookup order, exit codes and command output against a stub client.
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIo, main, parseCommandLine, usage } from '../../../src/cli/main';
import { COMMANDS, lookupOrder } from '../../../src/cli/commands';
import { DEFAULT_URI, RemoteCallError, type VirtgateClient, uuidFromString } from '../../../src/client';

const UUID = '6695eb01-f6a4-8304-79aa-97f2502e193f';
const TEST = { name: 'test', uuid: uuidFromString(UUID)!, id: 1 };
const remote = (message: string, code = 42) =>
  new RemoteCallError(23, { code, domain: 12, message, level: 2, str1: null, str2: null, str3: null, int1: -1, int2: -1 });

describe('parseCommandLine', () => {
  test('global options, then the command and its options', () => {
    const inv = parseCommandLine(['-c', 'test+tcp://h/default', '-r', 'list', '--all', '--name']);
    expect(inv).toMatchObject({ kind: 'run', uri: 'test+tcp://h/default', readonly: true, parsed: { values: { all: true, name: true }, positionals: [] } });
  });

  test('default URI: VIRTGATE_URI, else the unix socket', () => {
    expect(parseCommandLine(['hostname'], { VIRTGATE_URI: 'test+tcp://x/default' })).toMatchObject({ uri: 'test+tcp://x/default' });
    expect(parseCommandLine(['hostname'], {})).toMatchObject({ uri: DEFAULT_URI, readonly: false });
    expect(parseCommandLine(['--connect=u://', 'hostname'])).toMatchObject({ uri: 'u://' });
  });

  test('help and no command', () => {
    expect(parseCommandLine([])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['-h'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['help', 'list'])).toEqual({ kind: 'help', command: 'list' });
  });

  test('start DOM is the domain command; other start forms go to the daemon module', () => {
    expect(parseCommandLine(['start', 'test'])).toMatchObject({ kind: 'run', parsed: { positionals: ['test'] } });
    expect(parseCommandLine(['start'])).toEqual({ kind: 'daemon', args: [] });
    expect(parseCommandLine(['start', '--home', '/tmp/x'])).toEqual({ kind: 'daemon', args: ['--home', '/tmp/x'] });
    expect(parseCommandLine(['serve', 'x'])).toEqual({ kind: 'daemon', args: ['x'] });
  });

  test.each(['pki', 'user', 'policy', 'audit', 'vm'])('%s is an administration command', (name) => {
    expect(parseCommandLine([name, 'x'])).toEqual({ kind: 'admin', name, args: ['x'] });
  });

  test.each([
    [['nosuch'], /unknown command/],
    [['--bogus', 'list'], /Unknown option '--bogus'/],
    [['list', '--bogus'], /Unknown option '--bogus'/],
    [['list', '--all', '--inactive'], /mutually exclusive/],
    [['dominfo'], /expected DOM, got 0/],
    [['dominfo', 'a', 'b'], /expected DOM, got 2/],
    [['setmem', 'test'], /expected DOM KIB/],
    [['setvcpus', 'test', '2', '--current', '--live'], /--current excludes/],
    [['-c'], /argument missing|requires|'-c, --connect <value>'/],
    [['event', '--timeout'], /argument missing|requires|--timeout/],
  ])('usage error: %j', (argv, msg) => {
    expect(() => parseCommandLine(argv)).toThrow(msg);
  });
});

test.each([
  ['test', [{ by: 'name', name: 'test' }]],
  [
    '4',
    [
      { by: 'id', id: 4 },
      { by: 'name', name: '4' },
    ],
  ],
  ['-1', [{ by: 'name', name: '-1' }]],
  [
    UUID,
    [
      { by: 'uuid', uuid: uuidFromString(UUID) },
      { by: 'name', name: UUID },
    ],
  ],
])('lookupOrder(%s)', (arg, steps) => {
  expect(lookupOrder(arg)).toEqual(steps);
});

// A stub covering what the commands under test call; everything else throws.
function stubClient(over: Partial<Record<keyof VirtgateClient, unknown>>): VirtgateClient {
  const base = { closed: false, close: async () => undefined };
  return new Proxy({ ...base, ...over } as object, {
    // `then` stays undefined so that awaiting the stub does not take it for a promise.
    get: (t, k) => (k in t || k === 'then' ? (t as Record<string | symbol, unknown>)[k] : () => Promise.reject(new Error(`unexpected call ${String(k)}`))),
  }) as VirtgateClient;
}

function io(client: VirtgateClient | Error, files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const cli: CliIo = {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
    env: {},
    connect: async () => {
      if (client instanceof Error) throw client;
      return client;
    },
    readFile: (p) => {
      if (!(p in files)) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
      return files[p];
    },
    interrupted: () => new Promise(() => undefined),
  };
  return { cli, out: () => out.join(''), err: () => err.join('') };
}

describe('help and version', () => {
  const pkg = require('../../../package.json') as { version: string };

  test('--version and -V print the package version; they win over a command', async () => {
    for (const argv of [['--version'], ['-V'], ['--version', 'list']]) {
      const t = io(new Error('no connection for --version'));
      expect(await main(argv, t.cli)).toBe(EXIT_OK);
      expect([t.out(), t.err()]).toEqual([`virtgate ${pkg.version}\n`, '']);
    }
  });

  test('the overview has one line per global flag, and names the exit statuses', () => {
    const u = usage();
    for (const re of [/^ {2}-c, --connect URI {3}\S/m, /^ {2}-r, --readonly {6}\S/m, /^ {2}-h, --help {10}\S/m, /^ {2}-V, --version {7}\S/m])
      expect(u).toMatch(re);
    expect(u).toMatch(/exit status: 0 ok, 1 failed, 2 usage, 141 /);
  });

  test.each(COMMANDS.map((c) => [c.name]))('help %s explains each of its flags on a line of its own', (name) => {
    const spec = COMMANDS.find((c) => c.name === name)!;
    const text = usage(name);
    expect(text.startsWith(`usage: virtgate [-c URI] [-r] ${name}`)).toBe(true);
    for (const [flag, o] of Object.entries(spec.options)) {
      expect(o.help.length).toBeGreaterThan(8);
      const line = text.split('\n').find((l) => new RegExp(`^ {2}--${flag}( [A-Z]+)? +\\S`).test(l));
      expect(line).toBeDefined();
      expect(line!.endsWith(o.help)).toBe(true);
    }
  });

  test("COMMAND --help and -h are that command's help, not an unknown option", async () => {
    expect(parseCommandLine(['setmem', '--help'])).toEqual({ kind: 'help', command: 'setmem' });
    expect(parseCommandLine(['-c', 'x://', 'list', '-h'])).toEqual({ kind: 'help', command: 'list' });
    const t = io(new Error('not connected'));
    expect(await main(['event', '--help'], t.cli)).toBe(EXIT_OK);
    expect(t.out()).toContain('  --timeout SECONDS  stop waiting after this many seconds\n');
  });
});

describe('main', () => {
  test('usage errors exit 2 and print usage', async () => {
    const t = io(stubClient({}));
    expect(await main(['dominfo'], t.cli)).toBe(EXIT_USAGE);
    expect(t.err()).toMatch(/^error: dominfo: expected DOM, got 0 argument\(s\)\nusage: virtgate \[-c URI\] \[-r\] dominfo DOM/);
    const t2 = io(stubClient({}));
    expect(await main(['frobnicate'], t2.cli)).toBe(EXIT_USAGE);
    expect(t2.err()).toContain(usage());
  });

  test('an administration command without its verb exits 2 with its usage; help exits 0', async () => {
    const t = io(stubClient({}));
    expect(await main(['user'], t.cli)).toBe(EXIT_USAGE);
    expect(t.err()).toMatch(/usage: virtgate user add/);
    expect(await main(['help'], t.cli)).toBe(EXIT_OK);
    expect(t.out()).toContain('list [--all] [--inactive] [--name]');
  });

  test('a connect failure exits 1', async () => {
    const t = io(new Error('Failed to connect'));
    expect(await main(['hostname'], t.cli)).toBe(EXIT_FAILED);
    expect(t.err()).toBe('error: failed to connect to the hypervisor\nerror: Failed to connect\n');
  });

  test('list --all asks flags 3 and prints the table', async () => {
    let flags = -1;
    const c = stubClient({
      listAllDomains: async (f: number) => ((flags = f), [{ ...TEST, name: 'off', id: -1 }, TEST]),
      getState: async (d: typeof TEST) => ({ state: d.id === -1 ? 5 : 1, reason: 0 }),
    });
    const t = io(c);
    expect(await main(['list', '--all'], t.cli)).toBe(EXIT_OK);
    expect(flags).toBe(3);
    expect(t.out()).toBe(' Id   Name   State\n-----------------------\n 1    test   running\n -    off    shut off\n\n');
  });

  test('numeric DOM tries the id first and falls back to the name', async () => {
    const calls: string[] = [];
    const c = stubClient({
      lookupById: async () => (calls.push('id'), Promise.reject(remote('Domain not found'))),
      lookupByName: async (n: string) => (calls.push(`name:${n}`), { ...TEST, name: n }),
    });
    const t = io(c);
    expect(await main(['domuuid', '7'], t.cli)).toBe(EXIT_OK);
    expect(calls).toEqual(['id', 'name:7']);
    expect(t.out()).toBe(`${UUID}\n\n`);
  });

  test('an unknown domain exits 1 with virsh wording', async () => {
    const t = io(stubClient({ lookupByName: async () => Promise.reject(remote('Domain not found')) }));
    expect(await main(['dominfo', 'nosuch'], t.cli)).toBe(EXIT_FAILED);
    expect(t.err()).toBe("error: failed to get domain 'nosuch'\n");
  });

  test('a failed operation prints what failed and the server reason', async () => {
    const t = io(stubClient({ lookupByName: async () => TEST, resume: async () => Promise.reject(remote("internal error: domain 'test' not paused", 1)) }));
    expect(await main(['resume', 'test'], t.cli)).toBe(EXIT_FAILED);
    expect(t.err()).toBe("error: Failed to resume domain 'test'\nerror: internal error: domain 'test' not paused\n");
  });

  test('start refuses an active domain without calling the server', async () => {
    const t = io(stubClient({ lookupByName: async () => TEST }));
    expect(await main(['start', 'test'], t.cli)).toBe(EXIT_FAILED);
    expect(t.err()).toBe('error: Domain is already active\n');
  });

  test('define reads the file and reports', async () => {
    let sent = '';
    const t = io(stubClient({ defineXml: async (x: string) => ((sent = x), { ...TEST, name: 'newvm', id: -1 }) }), { 'newvm.xml': '<domain/>' });
    expect(await main(['define', 'newvm.xml'], t.cli)).toBe(EXIT_OK);
    expect(sent).toBe('<domain/>');
    expect(t.out()).toBe("Domain 'newvm' defined from newvm.xml\n\n");
    const t2 = io(stubClient({}));
    expect(await main(['create', 'missing.xml'], t2.cli)).toBe(EXIT_FAILED);
    expect(t2.err()).toBe("error: Failed to create domain from missing.xml\nerror: Failed to open file 'missing.xml': ENOENT\n");
  });

  test('setmem passes KiB and --live; a bad number is a usage error', async () => {
    let args: unknown[] = [];
    const t = io(stubClient({ lookupByName: async () => TEST, setMemory: async (...a: unknown[]) => void (args = a) }));
    expect(await main(['setmem', 'test', '1048576', '--live'], t.cli)).toBe(EXIT_OK);
    expect(args).toEqual([TEST, 1048576, 1]);
    expect(await main(['setvcpus', 'test', 'two'], io(stubClient({})).cli)).toBe(EXIT_USAGE);
  });

  test('domstate --reason', async () => {
    const t = io(stubClient({ lookupByName: async () => TEST, getState: async () => ({ state: 1, reason: 1 }) }));
    expect(await main(['domstate', 'test', '--reason'], t.cli)).toBe(EXIT_OK);
    expect(t.out()).toBe('running (booted)\n\n');
  });

  test('event prints lifecycle lines like virsh and deregisters', async () => {
    const events = [
      { callbackID: 3, dom: TEST, event: 3, detail: 0 },
      { callbackID: 3, dom: TEST, event: 4, detail: 0 },
    ];
    let deregistered = -1;
    const c = stubClient({
      registerLifecycleEvents: async () => 3,
      deregisterLifecycleEvents: async (id: number) => void (deregistered = id),
      events: () => {
        const it = events[Symbol.iterator]();
        return {
          next: async () => it.next(),
          return: async () => ({ done: true, value: undefined }),
          [Symbol.asyncIterator]() {
            return this;
          },
        };
      },
    });
    const t = io(c);
    expect(await main(['event', '--loop'], t.cli)).toBe(EXIT_OK);
    expect(t.out()).toBe("event 'lifecycle' for domain 'test': Suspended Paused\nevent 'lifecycle' for domain 'test': Resumed Unpaused\nevents received: 2\n");
    expect(deregistered).toBe(3);
  });

  test('event --timeout ends the loop', async () => {
    const c = stubClient({
      registerLifecycleEvents: async () => 0,
      deregisterLifecycleEvents: async () => undefined,
      events: () => ({
        next: () => new Promise(() => undefined),
        return: async () => ({ done: true, value: undefined }),
        [Symbol.asyncIterator]() {
          return this;
        },
      }),
    });
    const t = io(c);
    expect(await main(['event', '--loop', '--timeout', '1'], t.cli)).toBe(EXIT_OK);
    expect(t.out()).toBe('event loop timed out\nevents received: 0\n');
  });
});
