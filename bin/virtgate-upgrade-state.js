#!/usr/bin/env node
require('../build/src/upgrade/main.js');
