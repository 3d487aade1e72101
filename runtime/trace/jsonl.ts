/**
 * Trace files as JSON Lines: one header line, then one `TraceRecord` per line, in the
 * order the engine recorded them. Written in blocks through a file descriptor (bounded
 * memory whatever the length of the run), flushed at least every ~100 ms while records come
 * so a live reader of the file sees them promptly, and read back line by line.
 * The layout is documented in docs/trace-format.md.
 */
import * as fs from 'node:fs';
import type { TraceRecord, TraceSink } from '../../protocol/index.js';

export const TRACE_FORMAT = 'aimatrix-trace';
export const TRACE_VERSION = 1;

/** The first line of a trace file. */
export interface TraceHeader {
    readonly kind: 'header';
    readonly format: typeof TRACE_FORMAT;
    readonly version: number;
    readonly runId: string;
    readonly twin: string;
    readonly experiment: string | null;
    /** The model files, relative to the workspace. */
    readonly files: readonly string[];
    /** Which replication of which point the trace is of, and that point's parameters. */
    readonly point: number;
    readonly replication: number;
    readonly set: Readonly<Record<string, number | boolean | string>>;
    readonly seed: number;
    /** Units of the two clocks: simulated time in seconds since the start of the run, wall time in microseconds since `wallOrigin`. */
    readonly clocks: { readonly sim: 's'; readonly wall: 'us' };
    /** Wall clock origin, microseconds since the Unix epoch. */
    readonly wallOrigin: number;
    /** `binary` for versions 2 to 4 (the stored trace of runs); absent in JSON Lines (version 1). */
    readonly encoding?: 'binary';
}

/** Writes the header as the whole content of a new file (truncating it). */
export function writeTraceHeader(file: string, header: TraceHeader): void {
    fs.writeFileSync(file, JSON.stringify(header) + '\n');
}

// ---------------------------------------------------------------------------------------
// Writing

const BLOCK = 64 * 1024;
/** The clock is looked at once every this many records (a power of two, minus one). */
const CLOCK_MASK = 255;

export interface JsonlWriterOptions {
    /** Flush when this many milliseconds have passed since the last flush (default 100). */
    readonly flushMs?: number;
    /** Milliseconds, monotonic (default performance.now); injected by tests. */
    readonly now?: () => number;
}

/**
 * A TraceSink that appends JSON Lines to a file descriptor: in blocks of about 64 KiB, and
 * whenever ~100 ms have passed since the last flush (the clock is read every 256 records, and
 * by flushIfDue, which a caller with a progress hook calls now and then), so that a live
 * reader of the file sees records promptly.
 *
 * Records are serialised by JSON.stringify; the lines of a block are joined by newline and
 * written in one call. Measured on Node 20 (the bank example's trace, 2.09M records):
 * - JSON.stringify returns cons strings (one-byte when every string in the record is), which
 *   the join flattens cheaply: the join and the write cost ~0.1 µs a record, stringify ~0.9.
 * - A record holding one two-byte string (V8 keeps a string two-byte as soon as it has a
 *   character above U+00FF, and so is every string sliced from it: a model source with a `λ`
 *   in a comment made every name two-byte) turns its whole line two-byte, and joining such
 *   lines cost ~1.9 µs a record (4.0 s of the bank run's 7.3 s). Engines
 *   therefore record flat one-byte copies of their names (runtime/engine/runtime.ts); text
 *   that really has such characters still works, only slower.
 * - Hand-written per-kind serialisers (constant keys, cached quoted names and locations) and
 *   writing lines into a Buffer were no faster than this; stringifying a whole block as one
 *   array is faster only for small blocks and much slower past ~128 KiB (V8's large-object
 *   space), so it was not kept. Blocks stay under that size too.
 */
export class JsonlTraceWriter implements TraceSink {
    readonly enabled = true;
    private lines: string[] = [];
    private size = 0;
    private count = 0;
    private closed = false;
    private lastFlush: number;
    private readonly flushMs: number;
    private readonly now: () => number;

    constructor(private readonly fd: number, options: JsonlWriterOptions = {}) {
        this.flushMs = options.flushMs ?? 100;
        this.now = options.now ?? (() => performance.now());
        this.lastFlush = this.now();
    }

    record(r: TraceRecord): void {
        const line = JSON.stringify(r);
        this.lines.push(line);
        this.size += line.length + 1;
        if (this.size >= BLOCK) this.flush();
        else if ((++this.count & CLOCK_MASK) === 0) this.flushIfDue();
    }

    /** Flushes when the time since the last flush has passed the limit. */
    flushIfDue(): void {
        if (this.size > 0 && this.now() - this.lastFlush >= this.flushMs) this.flush();
    }

    flush(): void {
        this.lastFlush = this.now();
        if (this.size === 0) return;
        this.lines.push('');
        const data = this.lines.join('\n');
        this.lines = [];
        this.size = 0;
        const written = fs.writeSync(this.fd, data);
        if (written !== data.length && written < Buffer.byteLength(data, 'utf8')) {
            // A short write (not seen on regular files, but allowed): the rest, by bytes.
            const bytes = Buffer.from(data, 'utf8');
            for (let at = written; at < bytes.length;) at += fs.writeSync(this.fd, bytes, at, bytes.length - at);
        }
    }

    /** Flushes, syncs and closes the file. */
    close(): void {
        if (this.closed) return;
        this.closed = true;
        try {
            this.flush();
            fs.fsyncSync(this.fd);
        } finally {
            fs.closeSync(this.fd);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading

export class TraceFormatError extends Error {
    /** `line` 0: a binary trace, whose message says where (block and byte). */
    constructor(file: string, line: number, message: string) {
        super(line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`);
        this.name = 'TraceFormatError';
    }
}

/** A record with its sequence number: the 0-based index of the records after the header. */
export interface SequencedRecord {
    readonly seq: number;
    readonly record: TraceRecord;
}

const NEWLINE = 0x0a;

/**
 * Reads a trace file line by line, never holding the whole file: the header first, then
 * the records. Only complete lines count: a last line without its newline (a run killed
 * as it wrote) is left out and reported by `truncated`; a damaged line before it is an
 * error with its line number (TraceFormatError). Iterate it once.
 */
export class TraceReader implements AsyncIterable<TraceHeader | TraceRecord> {
    /** The header, once read. */
    header: TraceHeader | undefined;
    /** Complete records read so far (skipped ones included, the header not). */
    records = 0;
    /** True once the end was reached and the file ended in an incomplete line, which was left out. */
    truncated = false;
    /** Byte offset just after the last complete line read: where a follower of a live file goes on from. */
    offset = 0;

    constructor(readonly file: string) {}

    [Symbol.asyncIterator](): AsyncGenerator<TraceHeader | TraceRecord> {
        return this.all();
    }

    /** The header, then every record. */
    async* all(): AsyncGenerator<TraceHeader | TraceRecord> {
        for await (const item of this.read(0)) yield item === undefined ? this.header! : item.record;
    }

    /** The records whose sequence number is `fromSeq` or more, with their numbers (the lines before are counted, not parsed). */
    async* from(fromSeq: number): AsyncGenerator<SequencedRecord> {
        for await (const item of this.read(Math.max(0, Math.floor(fromSeq)))) if (item !== undefined) yield item;
    }

    /** Yields undefined for the header, then the records from `skip` on. */
    private async* read(skip: number): AsyncGenerator<SequencedRecord | undefined> {
        const stream = fs.createReadStream(this.file, { highWaterMark: 256 * 1024 });
        let rest: Buffer | undefined; // the start of a line whose end is in a later chunk
        let line = 0;
        try {
            for await (const chunk of stream as AsyncIterable<Buffer>) {
                let buf = chunk;
                let start = 0;
                if (rest !== undefined) {
                    const nl = chunk.indexOf(NEWLINE);
                    if (nl < 0) {
                        rest = Buffer.concat([rest, chunk]);
                        continue;
                    }
                    buf = Buffer.concat([rest, chunk.subarray(0, nl + 1)]);
                    rest = undefined;
                    const item = this.line(buf, 0, buf.length - 1, ++line, skip);
                    this.offset += buf.length;
                    if (item !== null) yield item;
                    buf = chunk;
                    start = nl + 1;
                }
                for (;;) {
                    const nl = buf.indexOf(NEWLINE, start);
                    if (nl < 0) break;
                    const item = this.line(buf, start, nl, ++line, skip);
                    this.offset += nl + 1 - start;
                    start = nl + 1;
                    if (item !== null) yield item;
                }
                if (start < buf.length) rest = buf.subarray(start);
            }
        } finally {
            stream.destroy();
        }
        if (rest !== undefined && rest.toString('utf8').trim() !== '') {
            if (line === 0) throw new TraceFormatError(this.file, 1, 'the header line is incomplete (the run was stopped as it started)');
            this.truncated = true;
        }
        if (line === 0) throw new TraceFormatError(this.file, 1, 'the trace file is empty');
    }

    /** Parses line `n` (buf[start, end)); null for a blank or a skipped line. */
    private line(buf: Buffer, start: number, end: number, n: number, skip: number): SequencedRecord | undefined | null {
        if (n > 1 && this.records < skip) {
            // Skipped without parsing, but blank lines do not count as records.
            if (isBlank(buf, start, end)) return null;
            this.records++;
            return null;
        }
        const text = buf.toString('utf8', start, end);
        if (text.trim() === '') return null;
        let value: unknown;
        try {
            value = JSON.parse(text);
        } catch {
            throw new TraceFormatError(this.file, n, 'not a JSON line (the trace is damaged)');
        }
        if (typeof value !== 'object' || value === null || typeof (value as { kind?: unknown }).kind !== 'string') {
            throw new TraceFormatError(this.file, n, 'a trace line must be an object with a "kind"');
        }
        const kind = (value as { kind: string }).kind;
        if (n === 1) {
            if (kind !== 'header') throw new TraceFormatError(this.file, n, `the first line must be the header, found a '${kind}' record`);
            if ((value as TraceHeader).format !== TRACE_FORMAT) throw new TraceFormatError(this.file, n, 'not an AIMatrix trace');
            this.header = value as TraceHeader;
            return undefined;
        }
        if (kind === 'header') throw new TraceFormatError(this.file, n, 'a second header (two traces in one file?)');
        return { seq: this.records++, record: value as TraceRecord };
    }
}

function isBlank(buf: Buffer, start: number, end: number): boolean {
    for (let i = start; i < end; i++) {
        const c = buf[i];
        if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
    }
    return true;
}

/** Reads a trace file: the header, then its records; `records` and `truncated` say what was read once it is done. */
export function readTrace(file: string): TraceReader {
    return new TraceReader(file);
}

/** The records of a trace file from sequence number `fromSeq` on (0-based, after the header): for a subscriber that resumes. */
export function readTraceFrom(file: string, fromSeq: number): AsyncGenerator<SequencedRecord> {
    return new TraceReader(file).from(fromSeq);
}
