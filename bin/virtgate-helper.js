#!/usr/bin/env node
require('../build/src/privileged/main.js');
