// SPDX-License-Identifier: Apache-2.0
// Lint, and the import-direction rules of design.md as zones: a stray import across a boundary fails CI.
import tseslint from 'typescript-eslint';

const net = ['node:net', 'net', 'node:tls', 'tls', 'node:http', 'http', 'node:https', 'https', 'node:http2', 'http2'];
const io = ['node:fs', 'fs', 'node:fs/promises', 'fs/promises', 'node:child_process', 'child_process'];
const heavy = ['casbin', 'winston', 'node-forge'];
// XML parsing is the front end's (src/unprivileged/xml/); what the helper loads never parses XML text.
const xml = ['fast-xml-parser'];
const folder = (f) => [`**/${f}`, `**/${f}/**`, `../${f}/*`, `../../${f}/*`];

// Each zone: the files it covers and the imports they must never use.
const zones = [
  {
    files: ['src/common/**/*.ts'],
    paths: [...net, ...io, ...heavy, ...xml],
    patterns: ['protocol', 'ipc', 'privileged', 'unprivileged', 'policy', 'audit', 'sandbox', 'client', 'cli'].flatMap(folder),
    why: 'common/ is the pure base layer: bytes in, values out',
  },
  {
    files: ['src/protocol/**/*.ts'],
    paths: [...net, ...io, ...heavy],
    patterns: ['ipc', 'privileged', 'unprivileged', 'policy', 'audit', 'sandbox', 'client', 'cli'].flatMap(folder),
    why: 'protocol/ is a pure codec over common/',
  },
  {
    files: ['src/ipc/**/*.ts'],
    paths: [...net, ...io, ...heavy, ...xml],
    patterns: ['protocol', 'privileged', 'unprivileged', 'policy', 'audit', 'sandbox', 'client', 'cli'].flatMap(folder),
    why: 'ipc/ is a pure codec over common/; the helper speaks no libvirt protocol',
  },
  {
    files: ['src/privileged/**/*.ts'],
    paths: ['node:tls', 'tls', 'node:http', 'http', 'node:https', 'https', 'node:http2', 'http2', ...heavy, ...xml],
    patterns: [
      ...['protocol', 'unprivileged', 'policy', 'client', 'cli', 'accounts', 'pki'].flatMap(folder),
      // Of audit/, only the winston-free journal and the pure record schema.
      ...['../audit/*', '../../audit/*', '**/audit/*'],
      ...['!../audit/journal', '!../../audit/journal', '!../audit/schema', '!../../audit/schema'],
    ],
    why: 'the root helper imports only ipc/, common/, sandbox/, audit/journal, audit/schema and its drivers',
  },
  {
    files: ['src/launcher/**/*.ts'],
    paths: ['node:tls', 'tls', 'node:http', 'http', 'node:https', 'https', 'node:http2', 'http2', 'node:net', 'net', ...heavy, ...xml],
    patterns: [
      ...['protocol', 'privileged', 'unprivileged', 'policy', 'audit', 'client', 'cli', 'accounts', 'pki'].flatMap(folder),
      // Of ipc/, only the launcher's own codec.
      ...['../ipc/*', '../../ipc/*', '**/ipc/*', '!../ipc/launcher', '!../../ipc/launcher'],
    ],
    why: 'the launcher imports only its codec (ipc/launcher), common/ and sandbox/: it speaks no helper or libvirt protocol',
  },
  {
    files: ['src/sandbox/**/*.ts'],
    paths: ['node:tls', 'tls', 'node:http', 'http', 'node:https', 'https', 'node:http2', 'http2', 'node:child_process', 'child_process', ...heavy],
    patterns: ['protocol', 'ipc', 'privileged', 'unprivileged', 'policy', 'audit', 'client', 'cli'].flatMap(folder),
    why: 'sandbox/ holds confinement primitives over common/ and koffi; both processes import it, so it imports neither',
  },
  {
    files: ['src/unprivileged/**/*.ts'],
    paths: [],
    patterns: folder('privileged'),
    why: 'the front end reaches the helper only through ipc/ over the socket',
  },
  {
    files: ['src/policy/**/*.ts', 'src/audit/**/*.ts'],
    paths: [...net],
    patterns: ['protocol', 'ipc', 'privileged', 'unprivileged', 'client', 'cli', 'sandbox'].flatMap(folder),
    why: 'policy/ and audit/ import common/ only',
  },
  {
    files: ['src/accounts/**/*.ts', 'src/pki/**/*.ts'],
    paths: [...net],
    patterns: ['protocol', 'ipc', 'privileged', 'unprivileged', 'policy', 'audit', 'sandbox', 'client', 'cli'].flatMap(folder),
    why: 'accounts/ (SASL users) and pki/ (certificates) are file tools over common/, shared by the daemon and the CLI',
  },
  {
    files: ['src/client/**/*.ts'],
    paths: heavy,
    patterns: ['ipc', 'privileged', 'unprivileged', 'policy', 'audit', 'sandbox', 'cli'].flatMap(folder),
    why: 'client/ imports protocol/ and common/',
  },
  {
    files: ['src/upgrade/**/*.ts'],
    paths: [...net, ...heavy],
    patterns: ['protocol', 'policy', 'audit', 'sandbox', 'client', 'cli'].flatMap(folder),
    why: 'upgrade/ is a one-shot state converter run before the helper: it reads our own files with the front end\'s parser and writes typed ones; it serves nothing',
  },
  {
    files: ['src/cli/**/*.ts'],
    paths: [],
    patterns: ['protocol', 'ipc', 'privileged', 'unprivileged', 'sandbox'].flatMap(folder),
    why: 'cli/ imports client/, policy/ (`virtgate policy check|lint` run the daemon\'s engine offline) and audit/pki tooling through their public modules',
  },
];

export default tseslint.config(
  { ignores: ['build/**', 'dist-all/**', 'node_modules/**', 'bench/results/**', 'bench/c/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration[const=true]', message: 'use `as const` objects: wire constants must exist at run time' }],
    },
  },
  ...zones.map((z) => ({
    files: z.files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: z.paths.map((name) => ({ name, message: z.why })),
          patterns: [
            ...(z.patterns.length ? [{ group: z.patterns, message: z.why }] : []),
            // upgrade/ is a program of its own (bin/virtgate-upgrade-state): no layer imports it.
            ...(z.files[0] === 'src/upgrade/**/*.ts' ? [] : [{ group: folder('upgrade'), message: 'upgrade/ is a separate one-shot program' }]),
          ],
        },
      ],
    },
  })),
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
);
