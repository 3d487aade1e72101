#!/usr/bin/env node
// The `aimatrix` command: runs the bundled CLI (built by `npm run build`).
'use strict';
const { main } = require('../dist/cli.cjs');
main(process.argv.slice(2)).then(
    code => { process.exitCode = code; },
    error => {
        process.stderr.write(`aimatrix: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
    }
);
