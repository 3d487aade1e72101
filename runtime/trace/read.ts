/**
 * Reading a stored trace, whatever its encoding: binary (versions 2 to 4, what runs store now, see
 * ./binary.ts) or JSON Lines (version 1: `aimatrix run --trace OUT.jsonl`, runs stored before
 * version 2). Both give the header, then `TraceRecord`s with their sequence numbers, never
 * holding the whole file; both leave out a cut last block or line (a run killed as it wrote)
 * and say so in `truncated`.
 */
import * as fs from 'node:fs';
import type { TraceRecord } from '../../protocol/index.js';
import { BLOCK_BYTES, BLOCK_HEAD, BlockFormatError, blockHead, TraceDecoder } from './binary.js';
import { TRACE_FORMAT, TraceFormatError, TraceReader as JsonlTraceReader, type SequencedRecord, type TraceHeader } from './jsonl.js';

export { TraceFormatError, type SequencedRecord, type TraceHeader } from './jsonl.js';

/**
 * The binary encoding's header version: 4 since the aligned operations (binary.ts), 3 with the
 * unaligned compact ones (TIME, and counters and spans that take the time from it, with 16-bit
 * string ids), 2 with only the general ones. The decoder takes every operation of every version,
 * so all three read the same way.
 */
export const BINARY_TRACE_VERSION = 4;
const BINARY_VERSIONS_READ: readonly unknown[] = [2, 3, 4];

/** The header of a new binary trace file: the header line alone (blocks are appended after it). */
export function writeBinaryTraceHeader(file: string, header: Omit<TraceHeader, 'version' | 'encoding'>): void {
    const { kind, format, ...rest } = header;
    fs.writeFileSync(file, JSON.stringify({ kind, format, version: BINARY_TRACE_VERSION, encoding: 'binary', ...rest }) + '\n');
}

const HEADER_MAX = 1 << 20;
const NEWLINE = 0x0a;

/**
 * Reads the header line of a trace file of either encoding (synchronously: the first MiB at
 * most). `bytes` is where the records start. A file without a complete header line is a
 * TraceFormatError.
 */
export function readTraceHeader(fd: number, file: string): { header: TraceHeader; bytes: number } {
    const buffer = Buffer.allocUnsafe(64 * 1024);
    let line = Buffer.alloc(0);
    for (let offset = 0; ;) {
        const n = fs.readSync(fd, buffer, 0, buffer.length, offset);
        if (n <= 0) {
            throw new TraceFormatError(file, 1, offset === 0 ? 'the trace file is empty' : 'the header line is incomplete (the run was stopped as it started)');
        }
        const nl = buffer.subarray(0, n).indexOf(NEWLINE);
        line = Buffer.concat([line, buffer.subarray(0, nl < 0 ? n : nl)]);
        if (nl >= 0) return { header: parseHeader(line.toString('utf8'), file), bytes: offset + nl + 1 };
        offset += n;
        if (offset > HEADER_MAX) throw new TraceFormatError(file, 1, 'the header line is longer than 1 MiB');
    }
}

function parseHeader(text: string, file: string): TraceHeader {
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch {
        throw new TraceFormatError(file, 1, 'not a JSON line (the trace is damaged)');
    }
    const h = value as Partial<TraceHeader> | null;
    if (typeof h !== 'object' || h === null || h.kind !== 'header') throw new TraceFormatError(file, 1, 'the first line must be the header');
    if (h.format !== TRACE_FORMAT) throw new TraceFormatError(file, 1, 'not an AIMatrix trace');
    if (h.encoding === 'binary' && !BINARY_VERSIONS_READ.includes(h.version)) {
        throw new TraceFormatError(file, 1, `binary trace version ${String(h.version)} is not one this reader knows (${BINARY_VERSIONS_READ.slice(0, -1).join(', ')} or ${String(BINARY_VERSIONS_READ.at(-1))})`);
    }
    return h as TraceHeader;
}

/** Whether a trace file is binary (by its header); false for JSON Lines. */
export function isBinaryTrace(file: string): boolean {
    const fd = fs.openSync(file, 'r');
    try {
        return readTraceHeader(fd, file).header.encoding === 'binary';
    } finally {
        fs.closeSync(fd);
    }
}

/**
 * A trace file of either encoding, read once: iterate it (the header, then every record) or
 * take `from(seq)`. `header`, `records` and `truncated` tell what was read.
 */
export class TraceFileReader implements AsyncIterable<TraceHeader | TraceRecord> {
    header: TraceHeader | undefined;
    /** Records read so far (skipped ones included). */
    records = 0;
    /** True once the end was reached and the file ended in a cut block or line, which was left out. */
    truncated = false;

    constructor(readonly file: string) {}

    [Symbol.asyncIterator](): AsyncGenerator<TraceHeader | TraceRecord> {
        return this.all();
    }

    async* all(): AsyncGenerator<TraceHeader | TraceRecord> {
        let first = true;
        for await (const item of this.read(0)) {
            if (first) {
                first = false;
                yield this.header!;
            }
            if (item !== undefined) yield item.record;
        }
    }

    /** The records whose sequence number is `fromSeq` or more, with their numbers. */
    async* from(fromSeq: number): AsyncGenerator<SequencedRecord> {
        for await (const item of this.read(Math.max(0, Math.floor(fromSeq)))) if (item !== undefined) yield item;
    }

    /** Yields undefined once the header is read, then the records from `skip` on. */
    private async* read(skip: number): AsyncGenerator<SequencedRecord | undefined> {
        const fd = fs.openSync(this.file, 'r');
        let binary: boolean;
        let offset: number;
        try {
            const { header, bytes } = readTraceHeader(fd, this.file);
            this.header = header;
            binary = header.encoding === 'binary';
            offset = bytes;
        } catch (error) {
            fs.closeSync(fd);
            throw error;
        }
        if (!binary) {
            fs.closeSync(fd);
            const jsonl = new JsonlTraceReader(this.file);
            try {
                yield undefined;
                for await (const item of jsonl.from(skip)) {
                    this.records = item.seq + 1;
                    yield item;
                }
            } finally {
                this.records = jsonl.records;
                this.truncated = jsonl.truncated;
            }
            return;
        }
        try {
            yield undefined;
            const decoder = new TraceDecoder();
            const head = Buffer.allocUnsafe(BLOCK_HEAD);
            let body = Buffer.allocUnsafe(BLOCK_BYTES);
            let block = 0;
            const out: TraceRecord[] = [];
            for (;;) {
                const h = await readAt(fd, head, BLOCK_HEAD, offset);
                if (h === 0) break;
                if (h < BLOCK_HEAD) {
                    this.truncated = true;
                    break;
                }
                let info;
                try {
                    info = blockHead(head);
                } catch (error) {
                    throw new TraceFormatError(this.file, 0, `block ${block} at byte ${offset}: ${(error as Error).message} (the trace is damaged)`);
                }
                // A block that ends past the end of the file was cut (or its head is damaged): it is left
                // out before its body is read, which a damaged length could make gigabytes long.
                if (offset + BLOCK_HEAD + info.bodyBytes > fs.fstatSync(fd).size) {
                    this.truncated = true;
                    break;
                }
                // (From 0, nothing is skipped: a block whose head says it has no records is read, and
                // damage there found, like anywhere else.)
                const skipAll = this.records < skip && this.records + info.records <= skip;
                // Nothing wanted and nothing to learn: the block is passed over unread.
                if (!skipAll || info.strings > 0) {
                    if (body.length < info.bodyBytes) body = Buffer.allocUnsafe(info.bodyBytes);
                    const got = await readAt(fd, body, info.bodyBytes, offset + BLOCK_HEAD);
                    if (got < info.bodyBytes) {
                        this.truncated = true;
                        break;
                    }
                    const bytes = body.subarray(0, info.bodyBytes);
                    try {
                        if (skipAll) {
                            const held = decoder.skip(bytes);
                            if (held !== info.records) throw new BlockFormatError(`its head says ${info.records} records, its body holds ${held}`);
                        } else {
                            const from = Math.max(0, skip - this.records);
                            decoder.decode(bytes, r => { out.push(r); }, from);
                            // The head's count numbers every record after this block: it must be the body's.
                            if (from + out.length !== info.records) {
                                throw new BlockFormatError(`its head says ${info.records} records, its body holds ${out.length > 0 || from === 0 ? from + out.length : 'fewer'}`);
                            }
                        }
                    } catch (error) {
                        if (error instanceof BlockFormatError) {
                            throw new TraceFormatError(this.file, 0, `block ${block} at byte ${offset}: ${error.message} (the trace is damaged)`);
                        }
                        throw error;
                    }
                }
                const first = this.records;
                this.records += info.records;
                offset += BLOCK_HEAD + info.bodyBytes;
                block++;
                if (out.length > 0) {
                    const seq0 = Math.max(first, skip);
                    for (let i = 0; i < out.length; i++) yield { seq: seq0 + i, record: out[i] };
                    out.length = 0;
                }
            }
        } finally {
            fs.closeSync(fd);
        }
    }
}

/** One read takes under 2 GiB. */
const READ_MAX = 1 << 30;

/** Reads `length` bytes at `position` (fewer at the end of the file). */
function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
        let got = 0;
        const step = (): void => {
            fs.read(fd, buffer, got, Math.min(length - got, READ_MAX), position + got, (error, n) => {
                if (error) reject(error);
                else if (n === 0 || got + n >= length) resolve(got + n);
                else {
                    got += n;
                    step();
                }
            });
        };
        step();
    });
}

/** Reads a trace file of either encoding: the header, then its records. */
export function readTrace(file: string): TraceFileReader {
    return new TraceFileReader(file);
}

/** The records of a trace file from sequence number `fromSeq` on (0-based, after the header). */
export function readTraceFrom(file: string, fromSeq: number): AsyncGenerator<SequencedRecord> {
    return new TraceFileReader(file).from(fromSeq);
}
