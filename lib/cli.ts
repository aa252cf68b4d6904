#!/usr/bin/env node
// The torch-moe command (package.json "bin"): the program lives in cli/main.ts.
import './cli/main.js';
