/**
 * The JSON Lines writer and reader: every record kind round-trips through a file (fast-check,
 * with strings that need escapes, line and paragraph separators, lone surrogates and
 * non-finite numbers), the writer flushes on time as well as on size, the reader leaves out a truncated last line
 * and says so, and reading from a sequence number gives exactly the records from there on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../protocol/index.js';
import { JsonlTraceWriter, readTrace, readTraceFrom, TRACE_FORMAT, TRACE_VERSION, TraceReader, writeTraceHeader, type SequencedRecord, type TraceHeader } from '../../runtime/trace/jsonl.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-jsonl-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const HEADER: TraceHeader = {
    kind: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, runId: '20250101-000000-000-abcdef', twin: 'Fake', experiment: null,
    files: ['fake.twin'], point: 0, replication: 0, set: {}, seed: 1, clocks: { sim: 's', wall: 'us' }, wallOrigin: 0
};

// Arbitraries: every record kind, with optional fields present or absent, strings over all of
// Unicode (quotes, backslashes, control characters, lone surrogates) and doubles including
// NaN, ±Infinity and -0.
const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', minLength: 33, maxLength: 80 }), fc.constantFrom('Customer#17', 'a"b', 'back\\slash', 'line\nbreak', '\u0000\u001f\u007f', '\ud800', '\udc00x', '😀', '\u2028\u2029'));
const number = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 1e21, 1e-7, 5e-324, Number.MAX_VALUE));
const scalar = fc.oneof(text, number, fc.boolean());
const dict = fc.dictionary(text, scalar, { maxKeys: 5 });
const loc = fc.record({ file: text, line: number, column: number });
const span = fc.record({
    kind: fc.constant('span' as const), id: number, parent: number, name: text, cat: fc.constantFrom('entity', 'step', 'queue', 'agent', 'inference') as fc.Arbitrary<'entity'>,
    start: number, end: number, wallStart: number, wallEnd: number, subject: text, attrs: dict, loc
}, { requiredKeys: ['kind', 'id', 'name', 'cat', 'start', 'end', 'wallStart', 'wallEnd'] });
const counter = fc.record({ kind: fc.constant('counter' as const), name: text, t: number, wall: number, value: number });
const message = fc.record({
    kind: fc.constant('message' as const), id: number, phase: fc.constantFrom('send', 'receive') as fc.Arbitrary<'send'>, channel: text, from: text, to: text, link: number, t: number, wall: number, payload: dict
}, { requiredKeys: ['kind', 'id', 'phase', 'channel', 'from', 't', 'wall'] });
const decision = fc.record({
    kind: fc.constant('decision' as const), id: number, decision: text, agent: text, t: number, wall: number, chosen: text,
    scores: fc.array(fc.record({ option: text, score: number, criteria: fc.dictionary(text, number, { maxKeys: 4 }) }), { maxLength: 4 }),
    weights: fc.dictionary(text, number, { maxKeys: 4 })
});
const instant = fc.record({ kind: fc.constant('instant' as const), name: text, t: number, wall: number, subject: text, attrs: dict, loc }, { requiredKeys: ['kind', 'name', 't', 'wall'] });
const record: fc.Arbitrary<TraceRecord> = fc.oneof(span, counter, message, decision, instant);

describe('JSON Lines round trip', () => {
    it('reads back every record as JSON.stringify wrote it, for every kind, escapes and non-finite numbers included', async () => {
        const file = path.join(dir, 'fuzz.jsonl');
        await fc.assert(fc.asyncProperty(fc.array(record, { maxLength: 40 }), async records => {
            writeTraceHeader(file, HEADER);
            const w = new JsonlTraceWriter(fs.openSync(file, 'a'));
            for (const r of records) w.record(r);
            w.close();
            const reader = new TraceReader(file);
            const read: unknown[] = [];
            for await (const { record: r } of reader.from(0)) read.push(r);
            expect(read).toEqual(records.map(r => JSON.parse(JSON.stringify(r)) as unknown));
            expect(reader.records).toBe(records.length);
            expect(reader.truncated).toBe(false);
        }), { numRuns: 150 });
    });
});

function writeFile(records: readonly TraceRecord[]): string {
    const file = path.join(dir, 'trace.jsonl');
    writeTraceHeader(file, HEADER);
    const w = new JsonlTraceWriter(fs.openSync(file, 'a'));
    for (const r of records) w.record(r);
    w.close();
    return file;
}

function counters(n: number, from = 0): TraceRecord[] {
    return Array.from({ length: n }, (_, i) => ({ kind: 'counter', name: 'Q.length', t: (from + i) / 7, wall: from + i, value: from + i }));
}

describe('JsonlTraceWriter', () => {
    it('flushes once the flush interval has passed (clock read every 256 records), well before a block is full', () => {
        const file = path.join(dir, 'timed.jsonl');
        let now = 0;
        const fd = fs.openSync(file, 'w');
        const w = new JsonlTraceWriter(fd, { now: () => now, flushMs: 100 });
        for (const r of counters(300)) w.record(r);
        expect(fs.statSync(file).size).toBe(0); // < 64 KiB and no time passed
        now = 150;
        for (const r of counters(300, 300)) w.record(r); // record 512 reads the clock
        const lines = fs.readFileSync(file, 'utf8').split('\n').filter(l => l !== '');
        expect(lines.length).toBe(512);
        expect(JSON.parse(lines[511])).toMatchObject({ value: 511 });
        // flushIfDue: nothing before the interval, everything after it.
        w.flushIfDue();
        expect(fs.readFileSync(file, 'utf8').split('\n').filter(l => l !== '').length).toBe(512);
        now = 260;
        w.flushIfDue();
        expect(fs.readFileSync(file, 'utf8').split('\n').filter(l => l !== '').length).toBe(600);
        w.close();
    });

    it('flushes a full block without the clock', () => {
        const file = path.join(dir, 'block.jsonl');
        const w = new JsonlTraceWriter(fs.openSync(file, 'w'), { now: () => 0 });
        const many = counters(2000);
        for (const r of many) w.record(r);
        const size = fs.statSync(file).size;
        expect(size).toBeGreaterThanOrEqual(64 * 1024);
        expect(fs.readFileSync(file, 'utf8').endsWith('\n')).toBe(true);
        w.close();
        expect(fs.readFileSync(file, 'utf8').split('\n').filter(l => l !== '').length).toBe(2000);
    });
});

describe('reading', () => {
    it('reads every record back and counts them', async () => {
        const records = counters(5000);
        const reader = readTrace(writeFile(records));
        const read: unknown[] = [];
        for await (const item of reader) read.push(item);
        expect(read[0]).toEqual(HEADER);
        expect(read.slice(1)).toEqual(records);
        expect(reader.records).toBe(5000);
        expect(reader.truncated).toBe(false);
        expect(reader.offset).toBe(fs.statSync(reader.file).size);
    });

    it('leaves out a truncated last line wherever it was cut, and reports the complete records', async () => {
        const records = counters(40);
        const file = writeFile(records);
        const full = fs.readFileSync(file);
        const headerEnd = full.indexOf(0x0a) + 1;
        for (let cut = headerEnd; cut <= full.length; cut += 7) {
            fs.writeFileSync(file, full.subarray(0, cut));
            const reader = new TraceReader(file);
            const read: unknown[] = [];
            for await (const item of reader) read.push(item);
            const complete = full.subarray(headerEnd, cut).toString('utf8').split('\n').length - 1;
            expect(reader.records).toBe(complete);
            expect(read.slice(1)).toEqual(records.slice(0, complete));
            expect(reader.truncated).toBe(full[cut - 1] !== 0x0a);
            expect(reader.offset).toBe(full.lastIndexOf(0x0a, cut - 1) + 1);
        }
    });

    it('still reports a damaged line that is not the last', async () => {
        const file = path.join(dir, 'bad.jsonl');
        fs.writeFileSync(file, JSON.stringify(HEADER) + '\n{"kind":"counter"\n{"kind":"counter","name":"x","t":0,"wall":0,"value":1}\n');
        await expect(async () => { for await (const _ of readTrace(file)) { /* read */ } }).rejects.toThrow(/bad\.jsonl:2: not a JSON line/);
        fs.writeFileSync(file, JSON.stringify(HEADER).slice(0, 30));
        await expect(async () => { for await (const _ of readTrace(file)) { /* read */ } }).rejects.toThrow(/bad\.jsonl:1: the header line is incomplete/);
    });

    it('readTraceFrom gives the records from a sequence number on, with their numbers, across read chunks', async () => {
        // Long lines so that lines straddle the reader's 256 KiB chunks.
        const records: TraceRecord[] = Array.from({ length: 3000 }, (_, i) => ({ kind: 'instant', name: 'log', t: i, wall: i, attrs: { text: `é${'x'.repeat(i % 400)}😀` } }));
        const file = writeFile(records);
        for (const from of [0, 1, 1234, 2999, 3000, 5000]) {
            const got: SequencedRecord[] = [];
            for await (const item of readTraceFrom(file, from)) got.push(item);
            expect(got.map(g => g.seq)).toEqual(records.slice(from).map((_, i) => from + i));
            expect(got.map(g => g.record)).toEqual(records.slice(from));
        }
    });

    it('reads a file while it is being written: only what is complete', async () => {
        const file = path.join(dir, 'live.jsonl');
        writeTraceHeader(file, HEADER);
        const fd = fs.openSync(file, 'a');
        const w = new JsonlTraceWriter(fd);
        for (const r of counters(10)) w.record(r);
        w.flush();
        fs.writeSync(fd, '{"kind":"counter","na'); // a writer caught mid-line
        const got: SequencedRecord[] = [];
        const reader = new TraceReader(file);
        for await (const item of reader.from(4)) got.push(item);
        expect(got.map(g => g.seq)).toEqual([4, 5, 6, 7, 8, 9]);
        expect(reader.truncated).toBe(true);
        expect(reader.records).toBe(10);
        fs.closeSync(fd);
    });
});
