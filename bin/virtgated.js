#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// virtgated: the unprivileged network-facing front end.
// First of all: a SIGHUP (reload) that arrives while the code is still loading must not kill the front end (the default
// action); the policy and TLS reloaders add their own handlers once they exist.
process.on('SIGHUP', () => undefined);
require('../build/src/unprivileged/main.js').main().catch((e) => {
  process.stderr.write(`virtgated: ${e.code ? e.code + ': ' : ''}${e.message}\n`);
  process.exit(1);
});
