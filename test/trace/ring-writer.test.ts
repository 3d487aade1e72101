/**
 * The trace's ring and the process's writer thread (runtime/trace/ring-writer.ts): what it
 * writes is byte for byte what a synchronous writer writes, whatever the slot count and block
 * size, records larger than a slot included; a full ring makes the encoder wait rather than
 * lose or reorder blocks; several rings are written at once; and a write that fails is an
 * error on the simulation's side, not a hang.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TraceEncoder, type TraceBlockSink } from '../../runtime/trace/binary.js';
import { BlockFileWriter } from '../../runtime/trace/block-file.js';
import { createTraceRing, RingProducer, writeRing } from '../../runtime/trace/ring-writer.js';
import { readTrace, writeBinaryTraceHeader } from '../../runtime/trace/read.js';
import type { InstantRecord, TraceRecord } from '../../protocol/index.js';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-ring-')); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

/** A deterministic mix of hot records and, every `big`-th, a JSON record larger than any slot. */
function record(enc: TraceEncoder, n: number, big = 0): void {
    const name = enc.intern(`Res${n % 7}.busy`);
    const entity = enc.intern('Customer');
    const prefix = enc.intern('Customer#');
    for (let i = 0; i < n; i++) {
        const wall = Math.floor(i / 50) * 50 * 3.5;
        enc.wall(wall);
        enc.counter(name, i / 10, i % 5);
        // Every third span started at another wall time than the current one.
        enc.span(0, entity, i + 1, 0, prefix, i + 1, 0xffffffff, i / 20, i / 10, i % 3 === 0 ? i : wall);
        if (big > 0 && i % big === big - 1) {
            enc.record({ kind: 'instant', name: 'log', t: i, wall: i, attrs: { text: 'x'.repeat(300_000) + i } });
        }
    }
    enc.flush();
}

async function withRing(file: string, options: { slots?: number; slotBytes?: number }, body: (enc: TraceEncoder, ring: RingProducer) => void): Promise<void> {
    const fd = fs.openSync(file, 'a');
    const shared = createTraceRing(options);
    const writer = writeRing(shared, fd);
    const ring = new RingProducer(shared);
    try {
        body(new TraceEncoder(ring), ring);
        ring.close();
        await writer.done;
    } finally {
        fs.closeSync(fd);
    }
}

function withFile(file: string, body: (enc: TraceEncoder) => void): void {
    const fd = fs.openSync(file, 'a');
    try {
        body(new TraceEncoder(new BlockFileWriter(fd), { blockBytes: 4096 }));
    } finally {
        fs.closeSync(fd);
    }
}

const header = { kind: 'header' as const, format: 'aimatrix-trace' as const, runId: 'r', twin: 'T', experiment: null, files: [], point: 0, replication: 0, set: {}, seed: 1, clocks: { sim: 's' as const, wall: 'us' as const }, wallOrigin: 0 };

async function records(file: string): Promise<TraceRecord[]> {
    const out: TraceRecord[] = [];
    for await (const r of readTrace(file)) if (r.kind !== 'header') out.push(r);
    return out;
}

describe('RingBlockWriter', () => {
    it('writes what a synchronous writer writes, byte for byte, with slots of the block size', async () => {
        const a = path.join(dir, 'ring.aimtrace');
        const b = path.join(dir, 'sync.aimtrace');
        await withRing(a, { slots: 3, slotBytes: 4096 }, enc => record(enc, 20_000));
        withFile(b, enc => record(enc, 20_000));
        const ring = fs.readFileSync(a);
        expect(ring.length).toBeGreaterThan(20 * 4096);
        expect(ring.equals(fs.readFileSync(b))).toBe(true);
    });

    it('keeps records larger than a slot in order, and the encoder back in the ring after them', async () => {
        const file = path.join(dir, 'big.aimtrace');
        writeBinaryTraceHeader(file, header);
        await withRing(file, { slots: 2, slotBytes: 8192 }, enc => record(enc, 3_000, 700));
        const got = await records(file);
        expect(got).toHaveLength(3_000 * 2 + 4);
        const logs = got.filter(r => r.kind === 'instant');
        expect(logs.map(r => String((r as InstantRecord).attrs?.text).slice(300_000))).toEqual(['699', '1399', '2099', '2799']);
        // The log after record 699's span, and before record 700's counter.
        const at = got.indexOf(logs[0]);
        expect(got[at - 1]).toMatchObject({ kind: 'span', id: 700 });
        expect(got[at + 1]).toMatchObject({ kind: 'counter', t: 70 });
    });

    it('drain() leaves everything published in the file, and two rings are written at once', async () => {
        const files = [path.join(dir, 'drain-a.aimtrace'), path.join(dir, 'drain-b.aimtrace')];
        const fds = files.map(f => fs.openSync(f, 'w'));
        const shared = fds.map(() => createTraceRing({ slots: 4, slotBytes: 4096 }));
        const writers = shared.map((s, i) => writeRing(s, fds[i]));
        const rings = shared.map(s => new RingProducer(s));
        const encoders = rings.map(r => new TraceEncoder(r));
        // Interleaved, each far larger than its ring: both wait on the one writer thread in turn.
        for (let k = 0; k < 10; k++) for (const enc of encoders) record(enc, 500);
        for (let i = 0; i < 2; i++) {
            rings[i].drain();
            expect(fs.statSync(files[i]).size).toBe(rings[i].bytes);
            rings[i].close();
        }
        await Promise.all(writers.map(w => w.done));
        expect(fs.readFileSync(files[0]).equals(fs.readFileSync(files[1]))).toBe(true);
        fds.forEach(fd => fs.closeSync(fd));
    });

    it('gives a ring its producer closed back for the next run, which writes through it as through a new one', async () => {
        const first = createTraceRing();
        const a = path.join(dir, 'pool-a.aimtrace');
        const fd = fs.openSync(a, 'w');
        const writer = writeRing(first, fd);
        const producer = new RingProducer(first);
        record(new TraceEncoder(producer), 30_000);
        producer.close();
        await writer.done;
        fs.closeSync(fd);
        // Not before its run gives it back: the run may go on (other replications) and close it later.
        const meanwhile = createTraceRing();
        expect(meanwhile).not.toBe(first);
        writer.close(); // the run's end, once its ring would have been another's
        writer.release();
        const again = createTraceRing();
        expect(again).toBe(first);
        expect(new Int32Array(again.control)[2]).toBe(0);
        const b = path.join(dir, 'pool-b.aimtrace');
        const fdB = fs.openSync(b, 'w');
        const writerB = writeRing(again, fdB);
        const producerB = new RingProducer(again);
        record(new TraceEncoder(producerB), 30_000);
        producerB.close();
        await writerB.done;
        fs.closeSync(fdB);
        expect(fs.readFileSync(b).equals(fs.readFileSync(a))).toBe(true);
        // A ring the run closed (its worker may still write into it) is not reused.
        const c = createTraceRing();
        const fdC = fs.openSync(path.join(dir, 'pool-c.aimtrace'), 'w');
        const run = writeRing(c, fdC);
        run.close();
        await run.done;
        run.release();
        fs.closeSync(fdC);
        expect(createTraceRing()).not.toBe(c);
    });

    it('a write that fails is an error with its reason on the encoding side, and close() says it too', async () => {
        const file = path.join(dir, 'readonly.aimtrace');
        fs.writeFileSync(file, '');
        const fd = fs.openSync(file, 'r'); // writes fail: EBADF
        const shared = createTraceRing({ slots: 2, slotBytes: 4096 });
        const writer = writeRing(shared, fd);
        const ring = new RingProducer(shared);
        const enc = new TraceEncoder(ring);
        expect(() => record(enc, 10_000)).toThrow(expect.objectContaining({ name: 'TraceWriteError', message: expect.stringMatching(/EBADF/) }));
        expect(() => ring.close()).toThrow(expect.objectContaining({ name: 'TraceWriteError' }));
        await writer.done;
        fs.closeSync(fd);
    });

    it('a sink that owns no memory is not asked for a buffer', () => {
        const blocks: number[] = [];
        const sink: TraceBlockSink = { enabled: true, blocks: true, block: bytes => { blocks.push(bytes.length); } };
        const enc = new TraceEncoder(sink, { blockBytes: 4096 });
        record(enc, 1_000);
        expect(blocks.length).toBeGreaterThan(5);
        expect(blocks.every(n => n <= 4096)).toBe(true);
    });
});
