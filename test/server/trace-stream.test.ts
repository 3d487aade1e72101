/**
 * Live traces through the runtime server: batches in order with contiguous sequence
 * numbers equal to the stored trace; a subscriber that stops reading gets a gap notice
 * (counts and range) and nothing twice, while another subscriber gets everything; a
 * reconnecting subscriber resumes from a sequence number. A subscriber paced by `maxRate`
 * is sent less than a live run makes and told what it missed. The stored trace is binary
 * and reads back as exactly what an unpaced subscriber was sent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcErrorCode, RunProgress, RunStart, RunStateChanged, RunStop, TraceBatch, TraceEnd, TraceGap, TraceSubscribe, TraceUnsubscribe, type TraceRecord } from '../../protocol/index.js';
import { readTrace } from '../../runtime/trace/read.js';
import { ensureBuilt } from '../support/build.js';
import { Client, serve, workspace, type Notification, type Served } from './support.js';

const BLOCK_MAGIC = 'AIB1';

const BUFFER = 2000;
let dir: string;
let server: Served;

beforeAll(async () => {
    await ensureBuilt();
    dir = workspace();
    fs.appendFileSync(path.join(dir, 'shop.twin'), '\nexperiment Medium for Shop {\n  horizon 1000 h\n  replications 1\n  seed 9\n}\n');
    server = await serve(dir, ['--subscriber-buffer', String(BUFFER)]);
}, 120_000);

afterAll(async () => {
    server?.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
});

function traceFile(runId: string): string {
    return path.join(dir, '.aimatrix', 'runs', runId, 'trace.aimtrace');
}

/** The run's stored trace (binary: what runs store), every record at its sequence number. */
async function storedRecords(runId: string): Promise<TraceRecord[]> {
    const reader = readTrace(traceFile(runId));
    const records: TraceRecord[] = [];
    let order = true;
    for await (const { seq, record } of reader.from(0)) {
        order &&= seq === records.length;
        records.push(record);
    }
    expect(order).toBe(true);
    expect(reader.truncated).toBe(false);
    return records;
}

/** Checks that batches and gaps cover 0…end exactly once, in order; returns the records received by seq. */
function coverage(notifications: readonly Notification[], runId: string, from = 0): { received: Map<number, TraceRecord>; missed: number; end: number } {
    let next = from;
    let missed = 0;
    const received = new Map<number, TraceRecord>();
    let end = -1;
    for (const n of notifications) {
        if (n.params.runId !== runId) continue;
        if (n.method === TraceBatch.method) {
            const p = n.params as { seq: number; records: TraceRecord[] };
            expect(p.seq).toBe(next);
            p.records.forEach((r, i) => received.set(p.seq + i, r));
            next = p.seq + p.records.length;
        } else if (n.method === TraceGap.method) {
            const p = n.params as { missed: number; fromSeq: number; toSeq: number };
            expect(p.fromSeq).toBe(next);
            expect(p.toSeq - p.fromSeq + 1).toBe(p.missed);
            missed += p.missed;
            next = p.toSeq + 1;
        } else if (n.method === TraceEnd.method) {
            end = (n.params as { seq: number }).seq;
            expect(next).toBe(end);
        }
    }
    return { received, missed, end };
}

describe('live trace subscriptions', () => {
    it('streams a live run in order; a stalled subscriber is told what it missed, a reading one misses nothing', async () => {
        const control = await Client.connect(server.port, { token: server.file.token });
        const reader = await Client.connect(server.port, { token: server.file.token });
        const stalled = await Client.connect(server.port, { token: server.file.token });
        // A run that never ends by itself, stopped below: it is live while the stalled client lags, however
        // busy the machine (a run that ended first would replay everything to it, none dropped).
        const { runId } = await control.request(RunStart, { file: 'shop.twin', experiment: 'Endless', workers: 1 });
        // The reader asks for a buffer larger than the trace and no pacing: it may lag, it never loses a record.
        expect(await reader.request(TraceSubscribe, { runId, buffer: 1e9, maxRate: 0 })).toMatchObject({ runId, fromSeq: 0, live: true, buffer: 1e9, maxRate: 0 });
        expect(await stalled.request(TraceSubscribe, { runId })).toMatchObject({ live: true, buffer: BUFFER });
        // The stalled client stops reading its socket until the run has ended.
        stalled.socket.pause();
        await reader.until(n => n.method === TraceBatch.method && (n.params.seq as number) > 20 * BUFFER);
        await control.request(RunStop, { runId });
        await control.until(n => n.method === RunStateChanged.method && n.params.runId === runId && n.params.state === 'stopped');
        await reader.until(n => n.method === TraceEnd.method);
        stalled.socket.resume();
        await stalled.until(n => n.method === TraceEnd.method);

        const all = coverage(reader.notifications, runId);
        const slow = coverage(stalled.notifications, runId);
        // What the stalled client did receive is the stored records, at their sequence numbers. (How much it
        // reads after its last gap depends on timing: while its socket is full nothing is sent or skipped,
        // and once the run has ended the rest waits in the file and is all sent, none dropped, since a2d7ab0.)
        const lastOfSlow = new Set([...slow.received.keys()].slice(-3));
        // The stored trace, streamed (a million records or more): its length, and records both were sent.
        const stored = readTrace(traceFile(runId));
        let total = 0;
        let order = true;
        let compared = 0;
        for await (const { seq, record } of stored.from(0)) {
            order &&= seq === total++;
            if (seq === 0 || seq === 1 || seq % 9973 === 0) {
                expect(all.received.get(seq)).toEqual(record);
                compared++;
            }
            if (lastOfSlow.has(seq)) expect(slow.received.get(seq)).toEqual(record);
        }
        expect(order).toBe(true);
        expect(stored.truncated).toBe(false);
        expect(total).toBeGreaterThan(20 * BUFFER);
        expect(compared).toBeGreaterThan(2);
        expect(all.missed).toBe(0);
        expect(all.end).toBe(total);
        expect(all.received.size).toBe(total);
        expect(all.received.get(total - 1)).toBeDefined();

        expect(slow.end).toBe(total);
        expect(slow.missed).toBeGreaterThan(0);
        expect(slow.missed + slow.received.size).toBe(total);
        expect(stalled.of(TraceGap).length).toBeGreaterThan(0);
        for (const c of [control, reader, stalled]) c.close();
    });

    it('resumes after a reconnect from a sequence number, and unsubscribes', async () => {
        const control = await Client.connect(server.port, { token: server.file.token });
        const { runId } = await control.request(RunStart, { file: 'shop.twin', experiment: 'Short', replications: 1 });
        const first = await Client.connect(server.port, { token: server.file.token });
        await first.request(TraceSubscribe, { runId });
        const firstBatch = await first.until(n => n.method === TraceBatch.method);
        const resumeAt = (firstBatch.params.seq as number) + (firstBatch.params.records as unknown[]).length;
        first.socket.terminate();

        const again = await Client.connect(server.port, { token: server.file.token });
        expect(await again.request(TraceSubscribe, { runId, fromSeq: resumeAt })).toMatchObject({ fromSeq: resumeAt });
        await again.until(n => n.method === TraceEnd.method);
        const stored = await storedRecords(runId);
        const resumed = coverage(again.notifications, runId, resumeAt);
        expect(resumed.missed).toBe(0);
        expect(resumed.received.size).toBe(stored.length - resumeAt);
        expect(resumed.received.get(resumeAt)).toEqual(stored[resumeAt]);

        // A stored run replays the same way; unsubscribing ends the stream.
        const replay = await Client.connect(server.port, { token: server.file.token });
        expect(await replay.request(TraceSubscribe, { runId: runId.slice(0, 22), fromSeq: stored.length - 5 })).toMatchObject({ runId, live: false });
        await replay.until(n => n.method === TraceEnd.method);
        expect(coverage(replay.notifications, runId, stored.length - 5).received.size).toBe(5);
        expect(await replay.request(TraceUnsubscribe, { runId })).toEqual({ unsubscribed: false });
        for (const c of [control, again, replay]) c.close();
    });

    it('paces a live subscriber at its maxRate: it is sent less than the run makes, told what it missed, nothing twice', async () => {
        const RATE = 1000;
        const control = await Client.connect(server.port, { token: server.file.token });
        const paced = await Client.connect(server.port, { token: server.file.token });
        const patient = await Client.connect(server.port, { token: server.file.token });
        // A run that never ends by itself: it is live for as long as the test needs, whatever the machine's speed.
        const { runId } = await control.request(RunStart, { file: 'shop.twin', experiment: 'Endless', workers: 1 });
        const asked = performance.now();
        // 1,000 records a second against a run that makes them by the million: it falls past its buffer.
        expect(await paced.request(TraceSubscribe, { runId, maxRate: RATE })).toMatchObject({ runId, fromSeq: 0, live: true, buffer: BUFFER, maxRate: RATE });
        // Paced too, with a buffer it never fills: it lags, and is sent at most RATE a second meanwhile.
        expect(await patient.request(TraceSubscribe, { runId, maxRate: RATE, buffer: 1e9 })).toMatchObject({ live: true, buffer: 1e9, maxRate: RATE });
        await paced.until(n => n.method === TraceGap.method);
        await control.until(n => n.method === RunProgress.method && n.params.runId === runId && (n.params.events as number) > 100_000);
        // The patient one leaves before the stop: everything it was sent, it was sent while the run was live.
        const stopped = performance.now();
        patient.socket.terminate();
        await control.request(RunStop, { runId });
        await paced.until(n => n.method === TraceEnd.method);

        // coverage() checks that every batch starts where the last batch or gap ended: strictly increasing, nothing twice.
        const got = coverage(paced.notifications, runId);
        const live = coverage(patient.notifications, runId);
        // The stored trace, streamed (it holds a million records or more): its length, and the records both were sent.
        const reader = readTrace(traceFile(runId));
        let total = 0;
        let order = true;
        for await (const { seq, record } of reader.from(0)) {
            order &&= seq === total++;
            if (got.received.has(seq)) expect(got.received.get(seq)).toEqual(record);
            if (live.received.has(seq)) expect(live.received.get(seq)).toEqual(record);
        }
        expect(order).toBe(true);
        expect(total).toBeGreaterThan(100_000);
        expect(got.end).toBe(total);
        expect(paced.of(TraceGap).length).toBeGreaterThan(0);
        expect(got.missed).toBeGreaterThan(0);
        expect(got.received.size).toBeLessThan(total);
        expect(got.received.size + got.missed).toBe(total);

        // The patient one missed nothing while it lagged. Live, it was paced: at most RATE a second since
        // it subscribed, plus a burst (a second's worth here, more than the server allows). The time
        // measured here is longer than the server's, so a slow machine loosens this bound, never breaks
        // it; unpaced, it would have been sent a good part of the 100,000 records and more made by then.
        expect(live.missed).toBe(0);
        expect(patient.of(TraceGap)).toEqual([]);
        expect(live.received.size).toBeLessThanOrEqual(RATE * (1 + (stopped - asked) / 1000));
        for (const c of [control, paced]) c.close();
    });

    it('answers a subscription with its maxRate (the server\'s --subscriber-rate by default) and refuses one that is not a whole number ≥ 0', async () => {
        const control = await Client.connect(server.port, { token: server.file.token });
        const { runId } = await control.request(RunStart, { file: 'shop.twin', experiment: 'Short', replications: 1 });
        await control.until(n => n.method === RunStateChanged.method && n.params.runId === runId && n.params.state === 'completed');
        const subscriber = await Client.connect(server.port, { token: server.file.token });
        expect(await subscriber.request(TraceSubscribe, { runId })).toMatchObject({ runId, maxRate: 20_000 });
        expect(await subscriber.request(TraceSubscribe, { runId, maxRate: 0 })).toMatchObject({ runId, maxRate: 0 });
        expect(await subscriber.request(TraceSubscribe, { runId, maxRate: 2000 })).toMatchObject({ runId, maxRate: 2000 });
        for (const maxRate of [-1, 'x', 1.5, null]) {
            await expect(subscriber.call(TraceSubscribe.method, { runId, maxRate }), String(maxRate)).rejects.toMatchObject({ code: RpcErrorCode.InvalidParams });
        }
        expect(RpcErrorCode.InvalidParams).toBe(-32602);
        for (const c of [control, subscriber]) c.close();

        // Another server, whose subscribers get its own default.
        const other = workspace();
        const slow = await serve(other, ['--subscriber-rate', '500']);
        try {
            const client = await Client.connect(slow.port, { token: slow.file.token });
            const run = await client.request(RunStart, { file: 'shop.twin', experiment: 'Short', replications: 1 });
            expect(await client.request(TraceSubscribe, { runId: run.runId })).toMatchObject({ runId: run.runId, maxRate: 500 });
            client.close();
        } finally {
            slow.child.kill('SIGKILL');
            await slow.exited;
            fs.rmSync(other, { recursive: true, force: true });
        }
    });

    it('stores the trace binary, and it reads back as exactly what an unpaced subscriber was sent', async () => {
        const control = await Client.connect(server.port, { token: server.file.token });
        const reader = await Client.connect(server.port, { token: server.file.token });
        const { runId } = await control.request(RunStart, { file: 'shop.twin', experiment: 'Medium', workers: 1 });
        expect(await reader.request(TraceSubscribe, { runId, buffer: 1e9, maxRate: 0 })).toMatchObject({ live: true, buffer: 1e9, maxRate: 0 });
        await reader.until(n => n.method === TraceEnd.method);

        const bytes = fs.readFileSync(traceFile(runId));
        const newline = bytes.indexOf(0x0a);
        expect(JSON.parse(bytes.subarray(0, newline).toString('utf8'))).toMatchObject({ kind: 'header', format: 'aimatrix-trace', version: 4, encoding: 'binary', runId });
        // Blocks, not JSON lines, follow the header.
        expect(bytes.subarray(newline + 1, newline + 5).toString('latin1')).toBe(BLOCK_MAGIC);
        expect(fs.existsSync(path.join(dir, '.aimatrix', 'runs', runId, 'trace.jsonl'))).toBe(false);

        const stored = await storedRecords(runId);
        const got = coverage(reader.notifications, runId);
        expect(got.missed).toBe(0);
        expect(got.end).toBe(stored.length);
        expect([...got.received.values()]).toEqual(stored);
        for (const c of [control, reader]) c.close();
    });
});
