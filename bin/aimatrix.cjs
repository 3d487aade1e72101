#!/usr/bin/env node
// The `aimatrix` command: runs the bundled CLI (built by `npm run build`).
'use strict';
// A reader that goes away (`aimatrix check --json | head`) is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', error => {
        if (error && error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
        throw error;
    });
}
const { main } = require('../dist/cli.cjs');
main(process.argv.slice(2)).then(
    code => { process.exitCode = code; },
    error => {
        process.stderr.write(`aimatrix: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
    }
);
