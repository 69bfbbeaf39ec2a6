// SPDX-License-Identifier: Apache-2.0
// Preloaded (`node -r`) into a spare front end or helper by `virtgate start`: loads that process's code (nothing runs:
// no file, socket or state is touched), then waits until the supervisor writes a byte on stdin (take over: the main
// script, bin/virtgated.js or bin/virtgate-helper.js, then starts with its modules already loaded) or closes it (the
// supervisor is gone: exit, a spare never starts by itself). Node's own start and loading the modules are a large
// part of a start-up (the front end's modules alone take about 250 ms on an idle 2-core machine, several times that
// under load), so a crashed process is replaced that much sooner.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const main = path.basename(process.argv[1] || '');
if (main === 'virtgated.js') require('../build/src/unprivileged/main.js');
else if (main === 'virtgate-helper.js') require('../build/src/privileged/helper.js');
else if (main === 'virtgate-launcher.js') require('../build/src/launcher/launcher.js'); // its main binds on load: only the core
else throw new Error(`virtgate-spare: not a virtgate process: ${main}`);

const byte = Buffer.alloc(1);
const nap = new Int32Array(new SharedArrayBuffer(4));
for (;;) {
  let n;
  try {
    n = fs.readSync(0, byte, 0, 1, null);
  } catch (e) {
    if (e.code === 'EAGAIN') {
      Atomics.wait(nap, 0, 0, 5); // a non-blocking pipe: look again shortly
      continue;
    }
    throw e;
  }
  if (n === 0) process.exit(0);
  break;
}
