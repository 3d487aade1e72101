/**
 * The trace tail and subscriptions in process, on a real file and a socket stand-in whose
 * backlog the test controls: only complete lines are records (a line being written or cut
 * is not), any start sequence number resolves to the right record across index strides,
 * a socket that does not drain receives no more than the high-water mark plus one batch,
 * and a subscriber past its buffer gets one gap notice and then the records after it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TraceSubscription, TraceTail, type SubscriberSocket } from '../../runtime/server/trace-tail.js';

const dirs: string[] = [];
afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function traceFile(records: number, extra = ''): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-tail-'));
    dirs.push(dir);
    const file = path.join(dir, 'trace.jsonl');
    const lines = [JSON.stringify({ kind: 'header', format: 'aimatrix-trace', version: 1 })];
    for (let i = 0; i < records; i++) lines.push(JSON.stringify({ kind: 'counter', name: 'q', t: i, wall: i, value: i % 7 }));
    fs.writeFileSync(file, lines.join('\n') + '\n' + extra);
    return file;
}

/** A socket whose backlog only grows unless the test drains it. */
class StalledSocket implements SubscriberSocket {
    bufferedAmount = 0;
    sentBytes = 0;
    readonly messages: Array<{ method: string; params: { seq?: number; records?: Array<{ t: number }>; missed?: number; fromSeq?: number; toSeq?: number } }> = [];
    send(text: string): void {
        this.bufferedAmount += text.length;
        this.sentBytes += text.length;
        this.messages.push(JSON.parse(text) as StalledSocket['messages'][number]);
    }
}

describe('TraceTail', () => {
    it('counts complete lines only: a last line without its newline is not a record until it is finished', () => {
        const file = traceFile(3000, '{"kind":"counter","name":"q","t":3000,');
        const tail = new TraceTail('r', file);
        tail.poll();
        expect(tail.count).toBe(3000);
        fs.appendFileSync(file, '"wall":1,"value":1}\n');
        expect(tail.poll()).toBe(true);
        expect(tail.count).toBe(3001);
        for (const seq of [0, 1, 1023, 1024, 1025, 2047, 2048, 3000]) {
            const { text, lines } = tail.read(tail.offsetOf(seq), 10);
            expect(lines).toBe(1);
            expect((JSON.parse(text) as { t: number }).t).toBe(seq);
        }
        tail.close();
    });

    it('sends a stalled socket no more than its high-water mark and one batch, however long the trace', () => {
        const tail = new TraceTail('r', traceFile(50_000));
        tail.poll();
        const socket = new StalledSocket();
        const sub = new TraceSubscription(tail, socket, 0, { maxLag: 1e9, highWater: 100_000, batchBytes: 16_384 }, () => undefined);
        tail.add(sub);
        expect(socket.sentBytes).toBeLessThanOrEqual(100_000 + 16_384 + 200);
        const received = socket.messages.reduce((n, m) => n + (m.params.records?.length ?? 0), 0);
        expect(received).toBeGreaterThan(0);
        expect(received).toBeLessThan(50_000);
        sub.close();
        tail.close();
    });

    it('drops what a subscriber of a live run past its buffer has not read, says so once, then goes on from there', () => {
        const tail = new TraceTail('r', traceFile(20_000));
        tail.poll();
        const socket = new StalledSocket();
        let ended = false;
        const sub = new TraceSubscription(tail, socket, 100, { maxLag: 4000, highWater: 1e9, batchBytes: 65_536 }, () => { ended = true; });
        tail.add(sub);
        tail.end('completed');
        const gap = socket.messages.filter(m => m.method === 'trace.gap');
        expect(gap).toEqual([{ jsonrpc: '2.0', method: 'trace.gap', params: { runId: 'r', missed: 17_900, fromSeq: 100, toSeq: 17_999 } }]);
        const batches = socket.messages.filter(m => m.method === 'trace.batch');
        expect(batches[0].params.seq).toBe(18_000);
        const ts = batches.flatMap(b => b.params.records!.map(r => r.t));
        expect(ts).toEqual(Array.from({ length: 2000 }, (_, i) => 18_000 + i));
        expect(socket.messages[socket.messages.length - 1]).toEqual({ jsonrpc: '2.0', method: 'trace.end', params: { runId: 'r', seq: 20_000, state: 'completed' } });
        expect(ended).toBe(true);
        tail.close();
    });

    it('replays an ended run whole, however far behind the reader starts: nothing is dropped', () => {
        const tail = new TraceTail('r', traceFile(20_000));
        tail.poll();
        tail.end('completed');
        const socket = new StalledSocket();
        const sub = new TraceSubscription(tail, socket, 100, { maxLag: 4000, highWater: 1e9, batchBytes: 65_536 }, () => undefined);
        tail.add(sub);
        expect(socket.messages.filter(m => m.method === 'trace.gap')).toEqual([]);
        const ts = socket.messages.filter(m => m.method === 'trace.batch').flatMap(b => b.params.records!.map(r => r.t));
        expect(ts).toEqual(Array.from({ length: 19_900 }, (_, i) => 100 + i));
        expect(socket.messages[socket.messages.length - 1].method).toBe('trace.end');
        tail.close();
    });
});
