#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// virtgated: the unprivileged network-facing front end.
require('../build/src/unprivileged/main.js').main().catch((e) => {
  process.stderr.write(`virtgated: ${e.code ? e.code + ': ' : ''}${e.message}\n`);
  process.exit(1);
});
