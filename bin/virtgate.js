#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The `virtgate` command: runs the compiled CLI (npm run build first).
'use strict';
require('../build/src/cli/main.js').run(process.argv.slice(2));
