/**
 * The trace's ring (runtime/trace/ring-writer.ts), both ends in this thread: the producer never
 * has to wait here (the ring has a slot for every block the test makes), so the consumer, which
 * runs on this thread's event loop, is awaited instead. What it writes is byte for byte what a
 * synchronous writer writes; a record larger than a slot goes through in pieces and reads back
 * as one block; a write that fails reaches the producer as a TraceWriteError. Backpressure
 * across threads (a full ring, a worker that waits) is tested through the runner
 * (test/experiment/runner.test.ts), where the two ends are two threads as in a run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TraceEncoder } from '../../runtime/trace/binary.js';
import { BlockFileWriter } from '../../runtime/trace/block-file.js';
import { consumeRing, createTraceRing, RingProducer } from '../../runtime/trace/ring-writer.js';
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
            enc.record({ kind: 'instant', name: 'log', t: i, wall: i, attrs: { text: 'x'.repeat(30_000) + i } });
        }
    }
    enc.flush();
}

const header = { kind: 'header' as const, format: 'aimatrix-trace' as const, runId: 'r', twin: 'T', experiment: null, files: [], point: 0, replication: 0, set: {}, seed: 1, clocks: { sim: 's' as const, wall: 'us' as const }, wallOrigin: 0 };

/** Encodes through a ring of `slots` × `slotBytes` into `file`, and waits for the consumer to write it all. */
async function throughRing(file: string, slots: number, slotBytes: number, body: (enc: TraceEncoder) => void): Promise<RingProducer> {
    const fd = fs.openSync(file, 'a');
    const start = fs.statSync(file).size;
    const ring = createTraceRing({ slots, slotBytes });
    const consumer = consumeRing(ring, fd);
    const producer = new RingProducer(ring);
    try {
        body(new TraceEncoder(producer));
        // Written on this thread's event loop: wait for it before close(), which would block this thread.
        await vi.waitFor(() => { expect(fs.statSync(file).size - start).toBe(producer.bytes); }, { timeout: 10_000, interval: 5 });
        producer.close();
        await consumer.done;
        return producer;
    } finally {
        fs.closeSync(fd);
    }
}

async function records(file: string): Promise<TraceRecord[]> {
    const out: TraceRecord[] = [];
    for await (const r of readTrace(file)) if (r.kind !== 'header') out.push(r);
    return out;
}

describe('the trace ring', () => {
    it('writes what a synchronous writer writes, byte for byte, with slots of the block size', async () => {
        const a = path.join(dir, 'ring.aimtrace');
        const b = path.join(dir, 'sync.aimtrace');
        await throughRing(a, 64, 4096, enc => record(enc, 1_500));
        const fd = fs.openSync(b, 'a');
        record(new TraceEncoder(new BlockFileWriter(fd), { blockBytes: 4096 }), 1_500);
        fs.closeSync(fd);
        const ring = fs.readFileSync(a);
        expect(ring.length).toBeGreaterThan(20 * 4096);
        expect(ring.equals(fs.readFileSync(b))).toBe(true);
    });

    it('passes a record larger than a slot in pieces that read back as one block, in order', async () => {
        const file = path.join(dir, 'big.aimtrace');
        writeBinaryTraceHeader(file, header);
        await throughRing(file, 64, 8192, enc => record(enc, 600, 250));
        const got = await records(file);
        expect(got).toHaveLength(600 * 2 + 2);
        const logs = got.filter(r => r.kind === 'instant');
        expect(logs.map(r => String((r as InstantRecord).attrs?.text).slice(30_000))).toEqual(['249', '499']);
        // The log after record 249's span, and before record 250's counter.
        const at = got.indexOf(logs[0]);
        expect(got[at - 1]).toMatchObject({ kind: 'span', id: 250 });
        expect(got[at + 1]).toMatchObject({ kind: 'counter', t: 25 });
    });

    it('a write that fails reaches the producer as a TraceWriteError with its reason', async () => {
        const file = path.join(dir, 'readonly.aimtrace');
        fs.writeFileSync(file, '');
        const fd = fs.openSync(file, 'r'); // writes fail: EBADF
        const ring = createTraceRing({ slots: 8, slotBytes: 4096 });
        const consumer = consumeRing(ring, fd);
        const producer = new RingProducer(ring);
        const enc = new TraceEncoder(producer);
        record(enc, 20);
        await consumer.done;
        const failure = expect.objectContaining({ name: 'TraceWriteError', message: expect.stringMatching(/EBADF/) });
        expect(() => record(enc, 20)).toThrow(failure);
        expect(() => producer.close()).toThrow(failure);
        fs.closeSync(fd);
    });

    it('the consumer ends when closed, having written what was published before', async () => {
        const file = path.join(dir, 'closed.aimtrace');
        const fd = fs.openSync(file, 'w');
        const ring = createTraceRing({ slots: 8, slotBytes: 4096 });
        const consumer = consumeRing(ring, fd);
        const producer = new RingProducer(ring);
        record(new TraceEncoder(producer), 100);
        // The run's side closes it (its worker died before closing): what was published is written.
        consumer.close();
        await consumer.done;
        expect(fs.statSync(file).size).toBe(producer.bytes);
        fs.closeSync(fd);
    });
});
