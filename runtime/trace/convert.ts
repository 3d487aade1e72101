/**
 * A stored trace as JSON Lines (version 1, docs/trace-format.md): what `aimatrix run --trace
 * OUT` and `aimatrix trace export --format jsonl` write. The records are those of the binary
 * trace, decoded block by block; the file is written to a temporary name and renamed, so the
 * target holds the whole trace or its old content.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BLOCK_BYTES, BLOCK_HEAD, BlockFormatError, blockHead, TraceDecoder } from './binary.js';
import { readTraceHeader, TraceFormatError } from './read.js';
import { TRACE_VERSION } from './jsonl.js';

/** One read takes under 2 GiB. */
const READ_MAX = 1 << 30;

export interface ConvertStats {
    /** Records written; -1 for a JSON Lines source, which is copied as it is, uncounted. */
    readonly records: number;
    /** The source ended in a cut block (a killed run), which was left out. */
    readonly truncated: boolean;
}

/** Writes `traceFile` (binary or JSON Lines) to `out` as JSON Lines. */
export function writeJsonl(traceFile: string, out: string): ConvertStats {
    const temp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.tmp`);
    const fd = fs.openSync(traceFile, 'r');
    let outFd: number | undefined;
    try {
        const { header, bytes } = readTraceHeader(fd, traceFile);
        if (header.encoding !== 'binary') {
            fs.copyFileSync(traceFile, temp);
            fs.renameSync(temp, out);
            return { records: -1, truncated: false };
        }
        outFd = fs.openSync(temp, 'w');
        const { encoding: _binary, kind, format, version: _version, ...rest } = header;
        fs.writeSync(outFd, JSON.stringify({ kind, format, version: TRACE_VERSION, ...rest }) + '\n');
        const decoder = new TraceDecoder();
        const head = Buffer.allocUnsafe(BLOCK_HEAD);
        let body = Buffer.allocUnsafe(BLOCK_BYTES);
        let offset = bytes;
        let records = 0;
        let truncated = false;
        for (let block = 0; ; block++) {
            const h = fs.readSync(fd, head, 0, BLOCK_HEAD, offset);
            if (h === 0) break;
            if (h < BLOCK_HEAD) { truncated = true; break; }
            let info;
            try {
                info = blockHead(head);
            } catch (error) {
                throw new TraceFormatError(traceFile, 0, `block ${block} at byte ${offset}: ${(error as Error).message} (the trace is damaged)`);
            }
            // A block ending past the end of the file was cut (or its head is damaged): left out unread.
            if (offset + BLOCK_HEAD + info.bodyBytes > fs.fstatSync(fd).size) { truncated = true; break; }
            if (body.length < info.bodyBytes) body = Buffer.allocUnsafe(info.bodyBytes);
            if (readFully(fd, body, info.bodyBytes, offset + BLOCK_HEAD) < info.bodyBytes) { truncated = true; break; }
            let text: string;
            try {
                const made = decoder.json(body.subarray(0, info.bodyBytes), 0, Infinity, '\n');
                if (made.count !== info.records) throw new BlockFormatError(`its head says ${info.records} records, its body holds ${made.count}`);
                text = made.text;
            } catch (error) {
                if (error instanceof BlockFormatError) throw new TraceFormatError(traceFile, 0, `block ${block} at byte ${offset}: ${error.message} (the trace is damaged)`);
                throw error;
            }
            if (info.records > 0) fs.writeSync(outFd, text + '\n');
            records += info.records;
            offset += BLOCK_HEAD + info.bodyBytes;
        }
        fs.fsyncSync(outFd);
        fs.closeSync(outFd);
        outFd = undefined;
        fs.renameSync(temp, out);
        return { records, truncated };
    } catch (error) {
        if (outFd !== undefined) fs.closeSync(outFd);
        fs.rmSync(temp, { force: true });
        throw error;
    } finally {
        fs.closeSync(fd);
    }
}

/** Reads `length` bytes at `position` (fewer at the end of the file), in reads of at most 1 GiB (one read takes under 2 GiB). */
function readFully(fd: number, buffer: Buffer, length: number, position: number): number {
    let got = 0;
    while (got < length) {
        const n = fs.readSync(fd, buffer, got, Math.min(length - got, READ_MAX), position + got);
        if (n === 0) break;
        got += n;
    }
    return got;
}
