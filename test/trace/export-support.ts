/**
 * Binary (version 2) trace files for the export tests, written the way the engine writes them:
 * spans without attributes and counters as SPAN and COUNTER operations on interned strings
 * (a subject `Job#3` as the string `Job#` and the serial 3) after a WALL of their wall clock,
 * every other record as JSON, in small blocks so that a trace spans many of them and later
 * blocks use strings of earlier ones.
 */
import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import type { TraceRecord } from '../../protocol/index.js';
import { CATEGORIES, NONE, TraceEncoder } from '../../runtime/trace/binary.js';
import { BlockFileWriter } from '../../runtime/trace/block-file.js';
import type { TraceHeader } from '../../runtime/trace/jsonl.js';
import { writeBinaryTraceHeader } from '../../runtime/trace/read.js';

export function writeBinaryTrace(file: string, header: TraceHeader, records: readonly TraceRecord[], blockBytes = 4096): void {
    const { version: _version, encoding: _encoding, ...rest } = header;
    writeBinaryTraceHeader(file, rest);
    const fd = fs.openSync(file, 'a');
    try {
        const enc = new TraceEncoder(new BlockFileWriter(fd), { blockBytes });
        for (const r of records) {
            if (r.kind === 'counter') {
                const name = enc.intern(r.name);
                enc.wall(r.wall);
                enc.counter(name, r.t, r.value);
            } else if (r.kind === 'span' && r.attrs === undefined) {
                const serial = r.subject === undefined ? undefined : /^(.*?)(\d+)$/.exec(r.subject);
                const subject = r.subject === undefined ? NONE : enc.intern(serial ? serial[1] : r.subject);
                const name = enc.intern(r.name);
                const loc = enc.loc(r.loc);
                enc.wall(r.wallEnd);
                enc.span(CATEGORIES.indexOf(r.cat), name, r.id, r.parent ?? 0, subject, serial ? Number(serial[2]) : NONE, loc, r.start, r.end, r.wallStart);
            } else {
                enc.record(r);
            }
        }
        enc.flush();
    } finally {
        fs.closeSync(fd);
    }
}

/**
 * A destination slower than the exporter (each chunk taken after `later` calls back, with a 16 KiB
 * high-water mark), and what it saw: the bytes written, and the most that ever waited in its buffer.
 */
export function slowDestination(later: (done: () => void) => void): { stream: Writable; seen: { bytes: number; maxPending: number } } {
    const seen = { bytes: 0, maxPending: 0 };
    const stream = new Writable({
        highWaterMark: 16 * 1024,
        write(chunk: Buffer, _encoding, callback) {
            seen.maxPending = Math.max(seen.maxPending, stream.writableLength);
            seen.bytes += chunk.length;
            later(() => callback());
        }
    });
    return { stream, seen };
}
