/**
 * The trace tail and subscriptions in process, on a real file and a socket stand-in whose
 * backlog the test controls. A binary trace (what runs store): only complete blocks hold
 * records (a block being written or cut is not counted until it is whole), any start sequence
 * number resolves to the right record across blocks, names defined in blocks a subscriber
 * never reads still decode; a legacy JSON Lines trace: only complete lines are records. A
 * socket that does not drain receives no more than the high-water mark plus one batch, and a
 * subscriber past its buffer gets one gap notice and then the records after it.
 */
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CounterRecord } from '../../protocol/index.js';
import { BinaryTraceTail, JsonlTraceTail, openTraceTail, TraceSubscription, type SubscriberSocket } from '../../runtime/server/trace-tail.js';
import { blockHead, TraceEncoder } from '../../runtime/trace/binary.js';
import { BlockFileWriter } from '../../runtime/trace/block-file.js';
import { writeBinaryTraceHeader } from '../../runtime/trace/read.js';

const dirs: string[] = [];
afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-tail-'));
    dirs.push(dir);
    return dir;
}

const HEADER = {
    kind: 'header', format: 'aimatrix-trace', runId: 'r', twin: 'T', experiment: null, files: [], point: 0, replication: 0,
    set: {}, seed: 1, clocks: { sim: 's', wall: 'us' }, wallOrigin: 0
} as const;

/** Counter `i` of the test traces: its name cycles through 50 names, each defined where it is first used. */
function counter(i: number): CounterRecord {
    return { kind: 'counter', name: `q${i % 50}`, t: i, wall: i, value: i % 7 };
}

/** A binary trace of `records` counters in 4 KiB blocks (about 140 records each), as the worker writes it. */
function binaryTrace(records: number): string {
    const file = path.join(tempDir(), 'trace.aimtrace');
    writeBinaryTraceHeader(file, HEADER);
    const fd = fs.openSync(file, 'a');
    try {
        encode(new TraceEncoder(new BlockFileWriter(fd), { blockBytes: 4096 }), 0, records);
    } finally {
        fs.closeSync(fd);
    }
    return file;
}

function encode(encoder: TraceEncoder, from: number, to: number): void {
    for (let i = from; i < to; i++) {
        const r = counter(i);
        encoder.wall(r.wall);
        encoder.counter(encoder.intern(r.name), r.t, r.value);
    }
    encoder.flush();
}

/** The blocks an encoder makes of counters [0, records), each as its own bytes. */
function blocks(records: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    encode(new TraceEncoder({ enabled: true, blocks: true, block: b => { out.push(b.slice()); } }, { blockBytes: 4096 }), 0, records);
    return out;
}

function jsonlTrace(records: number, extra = ''): string {
    const file = path.join(tempDir(), 'trace.jsonl');
    const lines = [JSON.stringify({ kind: 'header', format: 'aimatrix-trace', version: 1 })];
    for (let i = 0; i < records; i++) lines.push(JSON.stringify({ kind: 'counter', name: 'q', t: i, wall: i, value: i % 7 }));
    fs.writeFileSync(file, lines.join('\n') + '\n' + extra);
    return file;
}

/**
 * A binary trace of 3,000 counters whose block 10 (it defines no strings: poll counts it
 * without reading it) has its first operation made unknown; `before`: the records ahead of it,
 * `after`: the records up to its end.
 */
function damagedTrace(): { file: string; before: number; after: number } {
    const file = binaryTrace(3000);
    const bytes = fs.readFileSync(file);
    let at = bytes.indexOf(0x0a) + 1;
    let before = 0;
    for (let k = 0; k < 10; k++) {
        const head = blockHead(bytes, at);
        before += head.records;
        at += 16 + head.bodyBytes;
    }
    expect(blockHead(bytes, at).strings).toBe(0);
    const after = before + blockHead(bytes, at).records;
    bytes[at + 16] = 200;
    fs.writeFileSync(file, bytes);
    return { file, before, after };
}

/** The `t` of each record of a batch's text. */
function ts(text: string): number[] {
    return (JSON.parse(`[${text}]`) as CounterRecord[]).map(r => r.t);
}

/** A socket whose backlog only grows unless the test drains it. */
class StalledSocket implements SubscriberSocket {
    bufferedAmount = 0;
    sentBytes = 0;
    readonly messages: Array<{ method: string; params: { seq?: number; records?: CounterRecord[]; missed?: number; fromSeq?: number; toSeq?: number } }> = [];
    send(text: string): void {
        this.bufferedAmount += text.length;
        this.sentBytes += text.length;
        this.messages.push(JSON.parse(text) as StalledSocket['messages'][number]);
    }
}

describe('TraceTail of a binary trace', () => {
    it('counts complete blocks only: a block cut as it is written holds no records until it is whole', () => {
        const all = blocks(3000);
        expect(all.length).toBeGreaterThan(10);
        const counts = all.map(b => blockHead(b).records);
        const file = path.join(tempDir(), 'trace.aimtrace');
        writeBinaryTraceHeader(file, HEADER);
        const last = all[all.length - 1];
        for (const b of all.slice(0, -1)) fs.appendFileSync(file, b);
        // The last block's head and part of its body: written, not yet complete.
        fs.appendFileSync(file, last.subarray(0, 40));
        const tail = openTraceTail('r', file);
        expect(tail).toBeInstanceOf(BinaryTraceTail);
        tail.poll();
        const before = 3000 - counts[counts.length - 1];
        expect(tail.count).toBe(before);
        expect(tail.batch(before - 1, 10, 1e6)).toEqual({ text: JSON.stringify(counter(before - 1)), count: 1 });
        expect(tail.batch(before, 10, 1e6)).toEqual({ text: '', count: 0 });
        expect(tail.poll()).toBe(false);
        fs.appendFileSync(file, last.subarray(40));
        expect(tail.poll()).toBe(true);
        expect(tail.count).toBe(3000);
        // Every block boundary and a record inside each block: the right record, whole, with its name
        // (defined in the first blocks, which these reads never decode).
        const starts = counts.map((_, k) => counts.slice(0, k).reduce((a, b) => a + b, 0));
        for (const seq of [...starts, ...starts.map(s => s + 1), ...starts.map(s => s - 1).filter(s => s >= 0), 2999]) {
            // A batch comes from one block: it stops at the block's end.
            const { text, count } = tail.batch(seq, 3, 1e6);
            expect(count).toBe(Math.min(3, (starts.find(s => s > seq) ?? 3000) - seq));
            expect(JSON.parse(`[${text}]`)).toEqual(Array.from({ length: count }, (_, i) => counter(seq + i)));
        }
        tail.close();
    });

    it('stops a batch once its text reaches maxChars, but always sends one record', () => {
        const tail = openTraceTail('r', binaryTrace(1000));
        tail.poll();
        const one = JSON.stringify(counter(10)).length;
        expect(tail.batch(10, Infinity, 1)).toEqual({ text: JSON.stringify(counter(10)), count: 1 });
        const some = tail.batch(10, Infinity, 5 * one);
        expect(some.count).toBeGreaterThanOrEqual(4);
        expect(some.count).toBeLessThanOrEqual(6);
        expect(ts(some.text)).toEqual(Array.from({ length: some.count }, (_, i) => 10 + i));
        tail.close();
    });

    it('follows a live run from before its header is written: nothing, then the records as their blocks complete', () => {
        const file = path.join(tempDir(), 'trace.aimtrace');
        fs.writeFileSync(file, '');
        const tail = openTraceTail('r', file);
        expect(tail).toBeInstanceOf(BinaryTraceTail);
        expect(tail.poll()).toBe(false);
        writeBinaryTraceHeader(file, HEADER);
        expect(tail.poll()).toBe(false);
        const fd = fs.openSync(file, 'a');
        const encoder = new TraceEncoder(new BlockFileWriter(fd), { blockBytes: 4096 });
        encode(encoder, 0, 500);
        expect(tail.poll()).toBe(true);
        expect(tail.count).toBe(500);
        encode(encoder, 500, 700);
        fs.closeSync(fd);
        expect(tail.poll()).toBe(true);
        expect(tail.count).toBe(700);
        expect(ts(tail.batch(495, 10, 1e6).text)).toEqual([495, 496, 497, 498, 499]);
        expect(JSON.parse(tail.batch(699, 10, 1e6).text)).toEqual(counter(699));
        tail.close();
    });

    it('sends a stalled socket no more than its high-water mark and one batch, however long the trace', () => {
        const tail = openTraceTail('r', binaryTrace(50_000));
        tail.poll();
        const socket = new StalledSocket();
        const sub = new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 100_000, batchBytes: 16_384, maxRate: 0 }, () => undefined);
        tail.add(sub);
        expect(socket.sentBytes).toBeLessThanOrEqual(100_000 + 16_384 + 200);
        const received = socket.messages.reduce((n, m) => n + (m.params.records?.length ?? 0), 0);
        expect(received).toBeGreaterThan(0);
        expect(received).toBeLessThan(50_000);
        sub.close();
        tail.close();
    });

    it('drops what a subscriber of a live run past its buffer has not read, says so once, then goes on from there', () => {
        const tail = openTraceTail('r', binaryTrace(20_000));
        tail.poll();
        const socket = new StalledSocket();
        let ended = false;
        const sub = new TraceSubscription(tail, socket, 100, { maxLag: 4000, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => { ended = true; });
        tail.add(sub);
        tail.end('completed');
        const gap = socket.messages.filter(m => m.method === 'trace.gap');
        expect(gap).toEqual([{ jsonrpc: '2.0', method: 'trace.gap', params: { runId: 'r', missed: 17_900, fromSeq: 100, toSeq: 17_999 } }]);
        const batches = socket.messages.filter(m => m.method === 'trace.batch');
        expect(batches[0].params.seq).toBe(18_000);
        const records = batches.flatMap(b => b.params.records!);
        expect(records).toEqual(Array.from({ length: 2000 }, (_, i) => counter(18_000 + i)));
        expect(socket.messages[socket.messages.length - 1]).toEqual({ jsonrpc: '2.0', method: 'trace.end', params: { runId: 'r', seq: 20_000, state: 'completed' } });
        expect(ended).toBe(true);
        tail.close();
    });

    it('keeps the buffer bound of a subscription made while live when the run ends as it lags: one gap, then at most half its buffer', () => {
        const tail = openTraceTail('r', binaryTrace(20_000));
        tail.poll();
        const socket = new StalledSocket();
        const sub = new TraceSubscription(tail, socket, 0, { maxLag: 4000, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => undefined);
        // Subscribed while live, first pumped once the run has ended 20,000 records ahead of it.
        tail.add(sub, false);
        tail.end('completed');
        expect(socket.messages.filter(m => m.method === 'trace.gap')).toEqual([{ jsonrpc: '2.0', method: 'trace.gap', params: { runId: 'r', missed: 18_000, fromSeq: 0, toSeq: 17_999 } }]);
        const records = socket.messages.filter(m => m.method === 'trace.batch').flatMap(b => b.params.records!);
        expect(records).toEqual(Array.from({ length: 2000 }, (_, i) => counter(18_000 + i)));
        tail.close();
    });

    it('ends the trace before a damaged block for every subscriber, and does not throw from the pump', () => {
        const { file, before } = damagedTrace();
        const tail = openTraceTail('r', file) as BinaryTraceTail;
        tail.poll();
        expect(tail.count).toBe(3000);
        const socket = new StalledSocket();
        const sub = new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => undefined);
        tail.add(sub);
        tail.end('completed');
        const records = socket.messages.filter(m => m.method === 'trace.batch').flatMap(b => b.params.records!);
        expect(records).toEqual(Array.from({ length: before }, (_, i) => counter(i)));
        expect(socket.messages[socket.messages.length - 1]).toMatchObject({ method: 'trace.end', params: { seq: before } });
        expect(tail.damaged).toMatch(/unknown operation 200/);
        tail.close();
    });

    it('ends the trace where its file could no longer be read, with trace.end saying why, and throws nothing from its timer', async () => {
        const file = binaryTrace(0);
        const tail = openTraceTail('r', file, 5) as BinaryTraceTail;
        const socket = new StalledSocket();
        tail.add(new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => undefined));
        // An I/O error on the next read: the tail's descriptor now names a folder (reads fail with EISDIR).
        const own = tail as unknown as { fd: number };
        fs.closeSync(own.fd);
        own.fd = fs.openSync(tempDir(), 'r');
        await new Promise(resolve => setTimeout(resolve, 60));
        expect(tail.damaged).toMatch(/^cannot read .*trace\.aimtrace: EISDIR/);
        tail.end('completed');
        expect(socket.messages[socket.messages.length - 1]).toMatchObject({ method: 'trace.end', params: { seq: 0, damaged: expect.stringMatching(/EISDIR/) } });
        tail.close();
    });

    it('sends the blocks a poll indexed before a read of it failed, while the run goes on', async () => {
        const file = binaryTrace(0);
        const tail = openTraceTail('r', file, 5) as BinaryTraceTail;
        const socket = new StalledSocket();
        tail.add(new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => undefined));
        // Three blocks of about 140 records appear at once; the poll's third read (the third block's head) fails.
        const fd = fs.openSync(file, 'a');
        try {
            encode(new TraceEncoder(new BlockFileWriter(fd), { blockBytes: 4096 }), 0, 400);
        } finally {
            fs.closeSync(fd);
        }
        const cjs = createRequire(__filename)('node:fs') as typeof fs;
        const readSync = cjs.readSync;
        let reads = 0;
        cjs.readSync = ((...args: Parameters<typeof fs.readSync>) => {
            if (++reads === 3) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
            return readSync(...args);
        }) as typeof fs.readSync;
        syncBuiltinESMExports();
        try {
            await vi.waitFor(() => expect(reads).toBeGreaterThanOrEqual(3), { timeout: 1000, interval: 5 });
        } finally {
            cjs.readSync = readSync;
            syncBuiltinESMExports();
        }
        expect(tail.damaged).toMatch(/cannot read .*EIO/);
        // The run has not ended: what was indexed before the failure is sent now, not at the end.
        const indexed = tail.count;
        expect(indexed).toBeGreaterThan(0);
        await vi.waitFor(() => expect(socket.messages.filter(m => m.method === 'trace.batch').flatMap(b => b.params.records!)).toHaveLength(indexed), { timeout: 1000, interval: 5 });
        tail.end('completed');
        expect(socket.messages[socket.messages.length - 1]).toMatchObject({ method: 'trace.end', params: { seq: indexed, damaged: expect.stringMatching(/EIO/) } });
        tail.close();
    });

    it('a subscriber sent records past a block another then finds damaged ends where it is: its seq never goes back', () => {
        const { file, before, after } = damagedTrace();
        const tail = openTraceTail('r', file) as BinaryTraceTail;
        tail.poll();
        const limits = { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 0 };
        // Resumed past the damaged block: sent everything after it.
        const ahead = new StalledSocket();
        tail.add(new TraceSubscription(tail, ahead, after + 10, limits, () => undefined));
        const sentAhead = ahead.messages.filter(m => m.method === 'trace.batch').flatMap(b => b.params.records!);
        expect(sentAhead).toEqual(Array.from({ length: 3000 - after - 10 }, (_, i) => counter(after + 10 + i)));
        // From the start: meets the damage, and the trace now ends before it.
        const behind = new StalledSocket();
        tail.add(new TraceSubscription(tail, behind, 0, limits, () => undefined));
        expect(tail.count).toBe(before);
        tail.end('completed');
        const end = (socket: StalledSocket): unknown => socket.messages.find(m => m.method === 'trace.end')?.params;
        expect(end(behind)).toMatchObject({ seq: before, damaged: expect.stringMatching(/unknown operation 200/) });
        expect(end(ahead)).toMatchObject({ seq: 3000, damaged: expect.stringMatching(/unknown operation 200/) });
        tail.close();
    });

    it('a block whose head counts more records than its body holds ends the trace there, rather than leaving subscribers waiting', () => {
        const { file, before, after } = damagedTrace();
        // Block 10 whole again, but its head says five more records than it holds.
        const bytes = fs.readFileSync(file);
        const pristine = fs.readFileSync(binaryTrace(3000));
        pristine.copy(bytes);
        let at = bytes.indexOf(0x0a) + 1;
        for (let k = 0; k < 10; k++) at += 16 + blockHead(bytes, at).bodyBytes;
        bytes.writeUInt32LE(after - before + 5, at + 8);
        fs.writeFileSync(file, bytes);
        const tail = openTraceTail('r', file) as BinaryTraceTail;
        tail.end('completed');
        const socket = new StalledSocket();
        let ended = false;
        tail.add(new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => { ended = true; }));
        expect(ended).toBe(true);
        const records = socket.messages.filter(m => m.method === 'trace.batch').flatMap(b => b.params.records!);
        expect(records).toEqual(Array.from({ length: after }, (_, i) => counter(i)));
        expect(socket.messages[socket.messages.length - 1]).toMatchObject({ method: 'trace.end', params: { seq: after, damaged: expect.stringMatching(/its head says \d+ records, its body holds/) } });
        // Subscribed past the end of a stored trace: its end is the trace's, not where it asked to start.
        const late = new StalledSocket();
        tail.add(new TraceSubscription(tail, late, 5000, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => undefined));
        expect(late.messages).toMatchObject([{ method: 'trace.end', params: { seq: before } }]);
        tail.close();
    });

    it('ends a replay of a stored trace at a damaged block with trace.end saying so, rather than leaving it waiting', () => {
        const { file, before } = damagedTrace();
        const tail = openTraceTail('r', file);
        // A stored run: ended before anyone subscribes.
        tail.end('completed');
        const socket = new StalledSocket();
        let ended = false;
        const sub = new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => { ended = true; });
        tail.add(sub);
        const records = socket.messages.filter(m => m.method === 'trace.batch').flatMap(b => b.params.records!);
        expect(records).toHaveLength(before);
        expect(ended).toBe(true);
        expect(socket.messages[socket.messages.length - 1]).toMatchObject({ method: 'trace.end', params: { seq: before, damaged: expect.stringMatching(/unknown operation 200/) } });
        tail.close();
    });

    it('sends a subscriber paced below 20 records a second something while the run is live', () => {
        const tail = openTraceTail('r', binaryTrace(1000));
        tail.poll();
        const socket = new StalledSocket();
        const sub = new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 5 }, () => undefined);
        tail.add(sub);
        const sent = socket.messages.reduce((n, m) => n + (m.params.records?.length ?? 0), 0);
        expect(sent).toBe(1);
        sub.close();
        tail.close();
    });

    it('paces a subscriber of a live run (a burst of maxRate / 20 at first), and not the replay of an ended one', async () => {
        const tail = openTraceTail('r', binaryTrace(20_000));
        tail.poll();
        const socket = new StalledSocket();
        const sub = new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 20_000 }, () => undefined);
        tail.add(sub);
        const sent = (): number => socket.messages.reduce((n, m) => n + (m.params.records?.length ?? 0), 0);
        expect(sent()).toBeGreaterThan(0);
        // The burst, and what the allowance grew by in the milliseconds the test took (20 a millisecond).
        expect(sent()).toBeLessThanOrEqual(2000);
        tail.end('completed');
        // The replay goes on in turns of the event loop (64 batches each), at the reader's pace: all of it.
        await vi.waitFor(() => { expect(sent()).toBe(20_000); }, { timeout: 10_000, interval: 5 });
        sub.close();
        tail.close();
    });

    it('replays an ended run whole, however far behind the reader starts: nothing is dropped', async () => {
        const tail = openTraceTail('r', binaryTrace(20_000));
        tail.poll();
        tail.end('completed');
        const socket = new StalledSocket();
        // A batch is one block at most (here ~140 records): the replay takes many pumps, spread over turns of the event loop.
        const ended = new Promise<void>(resolve => {
            tail.add(new TraceSubscription(tail, socket, 100, { maxLag: 4000, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, resolve));
        });
        await ended;
        expect(socket.messages.filter(m => m.method === 'trace.gap')).toEqual([]);
        const batches = socket.messages.filter(m => m.method === 'trace.batch');
        // Each batch starts where the one before ended.
        let seq = 100;
        for (const b of batches) {
            expect(b.params.seq).toBe(seq);
            seq += b.params.records!.length;
        }
        expect(batches.flatMap(b => b.params.records!)).toEqual(Array.from({ length: 19_900 }, (_, i) => counter(100 + i)));
        expect(socket.messages[socket.messages.length - 1].method).toBe('trace.end');
        tail.close();
    });

    it.skipIf(!fs.existsSync('/proc/self/fd'))('holds no descriptor for an ended run, even for a subscriber that stopped reading: its file is opened for each read', () => {
        const file = binaryTrace(3000);
        const open = (): number => fs.readdirSync('/proc/self/fd').length;
        const before = open();
        const tails = Array.from({ length: 20 }, () => openTraceTail('r', file));
        expect(open()).toBe(before + 20);
        const sockets = tails.map(tail => {
            tail.end('completed');
            // A subscriber whose socket is full: it is sent nothing, and its subscription stays.
            const socket = new StalledSocket();
            socket.bufferedAmount = 1e9;
            tail.add(new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 1 << 20, batchBytes: 65_536, maxRate: 0 }, () => undefined));
            return socket;
        });
        expect(tails.every(t => t.subscriberCount === 1)).toBe(true);
        expect(open()).toBe(before);
        // Read again, it is the same trace, and the file is let go after the read.
        const reader = new StalledSocket();
        tails[0].add(new TraceSubscription(tails[0], reader, 2990, { maxLag: 1e9, highWater: 1e9, batchBytes: 65_536, maxRate: 0 }, () => undefined));
        expect(reader.messages.filter(m => m.method === 'trace.batch').flatMap(b => b.params.records!)).toEqual(Array.from({ length: 10 }, (_, i) => counter(2990 + i)));
        expect(open()).toBe(before);
        expect(sockets.every(sk => sk.messages.length === 0)).toBe(true);
        for (const tail of tails) tail.close();
    });
});

describe('TraceTail of a legacy JSON Lines trace', () => {
    it('counts complete lines only: a last line without its newline is not a record until it is finished', () => {
        const file = jsonlTrace(3000, '{"kind":"counter","name":"q","t":3000,');
        const tail = openTraceTail('r', file);
        expect(tail).toBeInstanceOf(JsonlTraceTail);
        tail.poll();
        expect(tail.count).toBe(3000);
        fs.appendFileSync(file, '"wall":1,"value":1}\n');
        expect(tail.poll()).toBe(true);
        expect(tail.count).toBe(3001);
        for (const seq of [0, 1, 1023, 1024, 1025, 2047, 2048, 3000]) {
            const { text, count } = tail.batch(seq, 1, 1e6);
            expect(count).toBe(1);
            expect((JSON.parse(text) as { t: number }).t).toBe(seq);
        }
        expect(ts(tail.batch(2998, 10, 1e6).text)).toEqual([2998, 2999, 3000]);
        tail.close();
    });

    it('replays an ended run whole to a subscriber', () => {
        const tail = openTraceTail('r', jsonlTrace(5000));
        tail.end('completed');
        const socket = new StalledSocket();
        tail.add(new TraceSubscription(tail, socket, 10, { maxLag: 100, highWater: 1e9, batchBytes: 8192, maxRate: 0 }, () => undefined));
        const batches = socket.messages.filter(m => m.method === 'trace.batch');
        expect(batches.flatMap(b => b.params.records!.map(r => r.t))).toEqual(Array.from({ length: 4990 }, (_, i) => 10 + i));
        expect(socket.messages[socket.messages.length - 1].method).toBe('trace.end');
        tail.close();
    });
});
