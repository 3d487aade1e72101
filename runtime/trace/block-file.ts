/** Trace blocks to a file (the binary trace format of ./binary.ts). */
import * as fs from 'node:fs';
import type { TraceBlockSink } from './binary.js';

/**
 * A block sink that appends to a file descriptor, synchronously (the bytes are the
 * encoder's, reused after the call). A block cut short by a kill is left out by every reader.
 */
export class BlockFileWriter implements TraceBlockSink {
    readonly enabled = true;
    readonly blocks = true;
    bytes = 0;

    constructor(private readonly fd: number) {}

    block(bytes: Uint8Array): void {
        for (let at = 0; at < bytes.length;) at += fs.writeSync(this.fd, bytes, at, bytes.length - at);
        this.bytes += bytes.length;
    }
}
