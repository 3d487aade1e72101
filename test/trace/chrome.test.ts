/**
 * The JSON Lines trace writer and reader, and the Chrome export: every record kind mapped
 * (spans, counters, message flows linked send → receive, decisions, instants), named tracks,
 * both clocks, back-pressure respected, and damaged files reported with their line; a binary
 * trace exports to the same events as its JSON Lines, a damaged one is reported with its block
 * and byte, and a cut last block is left out.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../protocol/index.js';
import { BLOCK_HEAD, blockHead } from '../../runtime/trace/binary.js';
import { exportChrome } from '../../runtime/trace/chrome.js';
import { readTrace as readStoredTrace } from '../../runtime/trace/read.js';
import { JsonlTraceWriter, readTrace, TRACE_FORMAT, TRACE_VERSION, writeTraceHeader, type TraceHeader } from '../../runtime/trace/jsonl.js';
import { createFakeModel } from '../experiment/fake-model.js';
import { slowDestination, writeBinaryTrace } from './export-support.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-trace-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const HEADER: TraceHeader = {
    kind: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, runId: '20250101-000000-000-abcdef', twin: 'Fake', experiment: null,
    files: ['fake.twin'], point: 0, replication: 0, set: {}, seed: 1, clocks: { sim: 's', wall: 'us' }, wallOrigin: 0
};

/** Runs the fake model with a JSON Lines sink; returns the file and the records it was given. */
function traceFile(steps: number): { file: string; records: TraceRecord[] } {
    const file = path.join(dir, 'trace.jsonl');
    writeTraceHeader(file, HEADER);
    const writer = new JsonlTraceWriter(fs.openSync(file, 'a'));
    const records: TraceRecord[] = [];
    let wall = 0;
    createFakeModel({ steps }).runReplication({
        seed: 1, replication: 0, horizon: Infinity, warmup: 0, wallClock: () => (wall += 10),
        trace: { enabled: true, record: r => { records.push(r); writer.record(r); } }
    });
    writer.close();
    return { file, records };
}

interface ChromeEvent { ph: string; name: string; pid: number; tid?: number; ts?: number; dur?: number; id?: number; bp?: string; s?: string; args?: Record<string, unknown> }

async function exported(file: string, clock: 'sim' | 'wall' = 'sim'): Promise<{ traceEvents: ChromeEvent[]; otherData: Record<string, unknown>; displayTimeUnit: string }> {
    const chunks: string[] = [];
    const out = new PassThrough();
    out.setEncoding('utf8').on('data', (s: string) => chunks.push(s));
    await exportChrome(file, out, clock);
    out.end();
    return JSON.parse(chunks.join('')) as { traceEvents: ChromeEvent[]; otherData: Record<string, unknown>; displayTimeUnit: string };
}

describe('JSON Lines traces', () => {
    it('round-trips every record, header first', async () => {
        const { file, records } = traceFile(60);
        const read: unknown[] = [];
        for await (const item of readTrace(file)) read.push(item);
        expect(read[0]).toEqual(HEADER);
        expect(read.slice(1)).toEqual(records);
        expect(new Set(records.map(r => r.kind))).toEqual(new Set(['span', 'counter', 'message', 'decision', 'instant']));
    });

    it('reports a damaged or foreign file with its line', async () => {
        const file = path.join(dir, 'bad.jsonl');
        fs.writeFileSync(file, JSON.stringify(HEADER) + '\n{"kind":"span","id":1\n');
        await expect(async () => { for await (const _ of readTrace(file)) { /* read */ } }).rejects.toThrow(/bad\.jsonl:2: not a JSON line/);
        fs.writeFileSync(file, '{"kind":"span"}\n');
        await expect(async () => { for await (const _ of readTrace(file)) { /* read */ } }).rejects.toThrow(/bad\.jsonl:1: the first line must be the header/);
        fs.writeFileSync(file, '');
        await expect(async () => { for await (const _ of readTrace(file)) { /* read */ } }).rejects.toThrow(/empty/);
    });
});

describe('exportChrome', () => {
    it('maps every record kind, on named tracks, in simulated microseconds', async () => {
        const { file, records } = traceFile(40);
        const chrome = await exported(file);
        expect(chrome.displayTimeUnit).toBe('ms');
        expect(chrome.otherData).toMatchObject({ producer: 'aimatrix', runId: HEADER.runId, twin: 'Fake' });
        const events = chrome.traceEvents;

        const spans = records.filter((r): r is Extract<TraceRecord, { kind: 'span' }> => r.kind === 'span');
        const complete = new Map(events.filter(e => e.ph === 'X' && e.args?.id !== undefined && e.name !== undefined).map(e => [`${e.name}/${String(e.args!.id)}`, e]));
        for (const s of spans) {
            const e = complete.get(`${s.name}/${s.id}`)!;
            expect(e.ts).toBeCloseTo(s.start * 1e6, 6);
            expect(e.dur).toBeCloseTo((s.end - s.start) * 1e6, 6);
            if (s.parent !== undefined) expect(e.args!.parent).toBe(s.parent);
            if (s.loc) expect(e.args!.loc).toBe('fake.twin:4:3');
        }
        // Each subject is a named thread of the process its records belong to.
        const threads = new Map(events.filter(e => e.ph === 'M' && e.name === 'thread_name').map(e => [`${e.pid}/${e.tid}`, e.args!.name]));
        const processes = new Map(events.filter(e => e.ph === 'M' && e.name === 'process_name').map(e => [e.pid, e.args!.name]));
        const job0 = complete.get(`Job/${spans[0].id}`)!;
        expect(threads.get(`${job0.pid}/${job0.tid}`)).toBe('Job#0');
        expect(processes.get(job0.pid)).toBe('Entities');

        const counters = events.filter(e => e.ph === 'C');
        expect(counters.length).toBe(records.filter(r => r.kind === 'counter').length);
        expect(processes.get(counters[0].pid)).toBe('Resources and stocks');
        expect(counters[1]).toMatchObject({ name: 'Server.busy', args: { value: 1 } });

        // Messages: a flow starts at each send and finishes at its receive, with the send's id.
        const sends = records.filter(r => r.kind === 'message' && r.phase === 'send');
        const starts = events.filter(e => e.ph === 's');
        const finishes = events.filter(e => e.ph === 'f');
        expect(starts.length).toBe(sends.length);
        expect(finishes.map(f => f.id)).toEqual(starts.map(s => s.id));
        expect(finishes.every(f => f.bp === 'e')).toBe(true);
        // Each flow end sits on a slice of its own track at the same time (Perfetto binds flows to slices).
        for (const f of [...starts, ...finishes]) {
            expect(events.some(e => e.ph === 'X' && e.pid === f.pid && e.tid === f.tid && e.ts === f.ts)).toBe(true);
        }
        expect(threads.get(`${starts[0].pid}/${starts[0].tid}`)).toBe('Planner#0');
        expect(threads.get(`${finishes[0].pid}/${finishes[0].tid}`)).toBe('Worker#1');

        const decisions = events.filter(e => e.ph === 'i' && e.name === 'decide pick');
        expect(decisions.length).toBe(records.filter(r => r.kind === 'decision').length);
        expect(decisions[0].args).toMatchObject({ chosen: 'a', weights: { cost: 1 }, scores: [{ option: 'a', score: 0.7, criteria: { cost: 0.7 } }] });
        const logs = events.filter(e => e.ph === 'i' && e.name === 'log');
        expect(logs[0]).toMatchObject({ s: 't', args: { text: 'step 0' } });
    });

    it('uses wall microseconds with the wall clock', async () => {
        const { file, records } = traceFile(5);
        const chrome = await exported(file, 'wall');
        const span = records.find((r): r is Extract<TraceRecord, { kind: 'span' }> => r.kind === 'span')!;
        const e = chrome.traceEvents.find(x => x.ph === 'X' && x.name === span.name && x.args?.id === span.id)!;
        expect(e.ts).toBe(span.wallStart);
        expect(e.dur).toBe(span.wallEnd - span.wallStart);
    });

    it('waits for a slow destination instead of buffering the whole trace', async () => {
        const { file } = traceFile(3000);
        const { stream: slow, seen } = slowDestination(done => setImmediate(done));
        const stats = await exportChrome(file, slow, 'sim');
        expect(stats.records).toBeGreaterThan(6000);
        expect(seen.bytes).toBeGreaterThan(1_000_000);
        // What waited in the stream's buffer stayed near its high-water mark, far below the output size.
        expect(seen.maxPending).toBeLessThan(64 * 1024);
    });

    it('exports a binary trace to the same events as the same records in JSON Lines', async () => {
        const { file, records } = traceFile(200);
        const bin = path.join(dir, 'trace.aimtrace');
        writeBinaryTrace(bin, HEADER, records);
        expect(blocks(bin).length).toBeGreaterThan(2);
        expect(await exported(bin)).toEqual(await exported(file));
        expect(await exported(bin, 'wall')).toEqual(await exported(file, 'wall'));
    });

    it('reports a damaged binary trace with its file, block and byte', async () => {
        const { records } = traceFile(200);
        const bin = path.join(dir, 'damaged.aimtrace');
        writeBinaryTrace(bin, HEADER, records);
        const at = blocks(bin)[2];
        const bytes = fs.readFileSync(bin);
        bytes.write('XXXX', at, 'latin1');
        fs.writeFileSync(bin, bytes);
        await expect(exportChrome(bin, new PassThrough().resume(), 'sim')).rejects.toThrow(`${bin}: block 2 at byte ${at}: not a trace block (wrong magic) (the trace is damaged)`);
        // An unknown operation inside a block's body.
        const body = fs.readFileSync(bin);
        body.write('AIB1', at, 'latin1');
        body[at + BLOCK_HEAD] = 99;
        fs.writeFileSync(bin, body);
        await expect(exportChrome(bin, new PassThrough().resume(), 'sim')).rejects.toThrow(new RegExp(`damaged\\.aimtrace: block 2 at byte ${at}: unknown operation 99 at byte 0 of a block`));
    });

    it('leaves out a cut last block (a killed run) and says so', async () => {
        const { file, records } = traceFile(200);
        const bin = path.join(dir, 'cut.aimtrace');
        writeBinaryTrace(bin, HEADER, records);
        const starts = blocks(bin);
        const last = starts[starts.length - 1];
        fs.truncateSync(bin, last + BLOCK_HEAD + 7);
        const kept: TraceRecord[] = [];
        for await (const item of readStoredTrace(bin)) if (item.kind !== 'header') kept.push(item);
        expect(kept.length).toBeLessThan(records.length);
        expect(kept).toEqual(records.slice(0, kept.length));
        const stats = await exportChrome(bin, new PassThrough().resume(), 'sim');
        expect(stats).toMatchObject({ records: kept.length, truncated: true });
        expect((await exportChrome(file, new PassThrough().resume(), 'sim')).truncated).toBe(false);
    });
});

/** The byte offsets of a binary trace's blocks. */
function blocks(file: string): number[] {
    const bytes = fs.readFileSync(file);
    const starts: number[] = [];
    for (let at = bytes.indexOf(0x0a) + 1; at < bytes.length; at += BLOCK_HEAD + blockHead(bytes, at).bodyBytes) starts.push(at);
    return starts;
}
