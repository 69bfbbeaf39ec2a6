#!/usr/bin/env node
require('../build/src/launcher/main.js');
