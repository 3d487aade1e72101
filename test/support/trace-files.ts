/** Helpers for tests that look inside binary trace files (runtime/trace/binary.ts). */
import * as fs from 'node:fs';
import { BLOCK_HEAD, blockHead } from '../../runtime/trace/binary.js';
import { readTraceHeader } from '../../runtime/trace/read.js';

/** Where the last complete block of a binary trace file ends (its size when no block is cut). */
export function completeBlocksEnd(file: string): number {
    const bytes = fs.readFileSync(file);
    const fd = fs.openSync(file, 'r');
    let at: number;
    try {
        at = readTraceHeader(fd, file).bytes;
    } finally {
        fs.closeSync(fd);
    }
    while (at + BLOCK_HEAD <= bytes.length) {
        const next = at + BLOCK_HEAD + blockHead(bytes, at).bodyBytes;
        if (next > bytes.length) break;
        at = next;
    }
    return at;
}
