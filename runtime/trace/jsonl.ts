/**
 * Trace files as JSON Lines: one header line, then one `TraceRecord` per line, in the
 * order the engine recorded them. Written in blocks through a file descriptor (bounded
 * memory whatever the length of the run) and read back line by line.
 * The layout is documented in docs/trace-format.md.
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
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
}

/** Writes the header as the whole content of a new file (truncating it). */
export function writeTraceHeader(file: string, header: TraceHeader): void {
    fs.writeFileSync(file, JSON.stringify(header) + '\n');
}

const BLOCK = 64 * 1024;

/** A TraceSink that appends JSON Lines to a file descriptor, in blocks of about 64 KiB. */
export class JsonlTraceWriter implements TraceSink {
    readonly enabled = true;
    private chunks: string[] = [];
    private size = 0;
    private closed = false;

    constructor(private readonly fd: number) {}

    record(r: TraceRecord): void {
        const line = JSON.stringify(r) + '\n';
        this.chunks.push(line);
        this.size += line.length;
        if (this.size >= BLOCK) this.flush();
    }

    flush(): void {
        if (this.chunks.length === 0) return;
        const data = this.chunks.join('');
        this.chunks = [];
        this.size = 0;
        fs.writeSync(this.fd, data);
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

export class TraceFormatError extends Error {
    constructor(file: string, line: number, message: string) {
        super(`${file}:${line}: ${message}`);
        this.name = 'TraceFormatError';
    }
}

/** Reads a trace file line by line: the header first, then the records. Never holds the whole file. */
export async function* readTrace(file: string): AsyncGenerator<TraceHeader | TraceRecord> {
    const lines = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    let n = 0;
    for await (const line of lines) {
        n++;
        if (line.trim() === '') continue;
        let value: unknown;
        try {
            value = JSON.parse(line);
        } catch {
            throw new TraceFormatError(file, n, 'not a JSON line (the trace is damaged or was cut short)');
        }
        if (typeof value !== 'object' || value === null || typeof (value as { kind?: unknown }).kind !== 'string') {
            throw new TraceFormatError(file, n, 'a trace line must be an object with a "kind"');
        }
        const kind = (value as { kind: string }).kind;
        if (n === 1 && kind !== 'header') throw new TraceFormatError(file, n, `the first line must be the header, found a '${kind}' record`);
        if (n === 1 && (value as TraceHeader).format !== TRACE_FORMAT) throw new TraceFormatError(file, n, 'not an AIMatrix trace');
        yield value as TraceHeader | TraceRecord;
    }
    if (n === 0) throw new TraceFormatError(file, 1, 'the trace file is empty');
}
