/**
 * Live traces from the run's own trace file. The worker appends blocks of the binary trace
 * (runtime/trace/binary.ts) to `.aimatrix/runs/<id>/trace.aimtrace`; the server follows that
 * file ({@link TraceTail}: indexes its complete blocks and learns their strings) and each
 * subscriber reads it at its own pace ({@link TraceSubscription}), as JSON made from the blocks
 * only for the records it is sent. Streaming therefore never slows the simulation by more
 * than the CPU the server spends on what it sends (the worker only writes a file), a
 * reconnecting subscriber resumes from any sequence number the file still has, and memory
 * does not grow with a slow subscriber:
 *
 * - a subscriber is sent a batch only while its socket holds less than `highWater` bytes
 *   (WebSocket backpressure: `bufferedAmount`);
 * - a subscriber more than `maxLag` records behind the live end (its buffer is full) skips
 *   ahead: those records are dropped for it alone and it gets a `trace.gap` notice with
 *   their count and range.
 *
 * Sequence numbers are record indices in the trace, header excluded. A block being written,
 * or cut by a kill, holds no records until it is complete. Runs stored before the binary
 * format have `trace.jsonl`, which {@link JsonlTraceTail} follows the same way.
 */
import * as fs from 'node:fs';
import { TraceBatch, TraceEnd, TraceGap, type RunState } from '../../protocol/index.js';
import { BLOCK_BYTES, BLOCK_HEAD, BlockFormatError, blockHead, TraceDecoder } from '../trace/binary.js';
import { readTraceHeader } from '../trace/read.js';
import { TraceFormatError } from '../trace/jsonl.js';

/** Records as JSON texts joined by commas (the inside of a JSON array), and how many. */
export interface RecordBatch {
    readonly text: string;
    readonly count: number;
}

/** A followed trace file, of either encoding: what a subscription reads. */
export abstract class TraceTail {
    /** Complete records seen so far. */
    count = 0;
    private ended = false;
    private endState: RunState = 'completed';
    private readonly subscriptions = new Set<TraceSubscription>();
    private timer: NodeJS.Timeout | undefined;
    /** Why the trace ends before the file does: a damaged block, or the file could not be read. Records before it are kept. */
    damaged: string | undefined;
    /**
     * The file, open while the run is live; once it has ended, only during a read. A subscriber
     * that stops reading keeps the tail of every run it subscribed to: held open, those were a
     * descriptor each (a server would run out of them after about a thousand such runs) and kept
     * the disk space of traces whose runs were deleted.
     */
    protected fd: number | undefined;
    private closed = false;

    /** `fd`: the file, opened (by openTraceTail) to read its header. */
    constructor(readonly runId: string, readonly file: string, fd: number, private readonly pollMs = 20) {
        this.fd = fd;
    }

    /** The open file, for a read (an ended run's is opened again). */
    protected open(): number {
        this.fd ??= fs.openSync(this.file, 'r');
        return this.fd;
    }

    /** After a read: an ended run's file is let go. */
    protected letGo(): void {
        if (this.ended && this.fd !== undefined) this.closeFd();
    }

    private closeFd(): void {
        const fd = this.fd;
        this.fd = undefined;
        if (fd !== undefined) fs.closeSync(fd);
    }

    /** Closed by `close`: it reads nothing more. */
    protected get isClosed(): boolean {
        return this.closed;
    }

    /** Looks at what was appended since the last call; true when new records appeared. */
    abstract poll(): boolean;

    /** Records from `seq` (below `count`) on, as JSON: at most `maxRecords`, and none more once the text has about `maxChars` characters (at least one). */
    abstract batch(seq: number, maxRecords: number, maxChars: number): RecordBatch;

    /** Closes the file for good. */
    protected closeFile(): void {
        this.closed = true;
        this.closeFd();
    }

    get isEnded(): boolean {
        return this.ended;
    }

    get state(): RunState {
        return this.endState;
    }

    /** Polls the file while subscribers wait, and wakes them when records arrive; `pump` false: the caller pumps it later. */
    add(subscription: TraceSubscription, pump = true): void {
        this.subscriptions.add(subscription);
        if (this.count === 0) this.readSafely();
        this.schedule();
        if (pump) subscription.pump();
    }

    remove(subscription: TraceSubscription): void {
        this.subscriptions.delete(subscription);
        if (this.subscriptions.size === 0 && this.timer) {
            clearInterval(this.timer);
            this.timer = undefined;
        }
    }

    get subscriberCount(): number {
        return this.subscriptions.size;
    }

    private schedule(): void {
        if (this.timer || this.ended || this.subscriptions.size === 0) return;
        this.timer = setInterval(() => {
            if (this.readSafely()) for (const s of this.subscriptions) s.pump();
        }, this.pollMs);
        this.timer.unref();
    }

    /**
     * `poll`, with a failure to read the file (an I/O error) kept as the reason the trace ends
     * where it does: it is not thrown in a timer, and subscribers get what was read, then
     * `trace.end` saying why.
     */
    protected readSafely(): boolean {
        const before = this.count;
        try {
            return this.poll();
        } catch (error) {
            this.damaged ??= `cannot read ${this.file}: ${error instanceof Error ? error.message : String(error)}`;
            // The blocks indexed before the failing read are records all the same: subscribers are woken for them.
            return this.count > before;
        } finally {
            this.letGo();
        }
    }

    /** The run ended: a last scan, then every subscriber gets what is left and `trace.end`. */
    end(state: RunState): void {
        if (this.ended) return;
        this.readSafely();
        this.ended = true;
        this.endState = state;
        // Its index is all a stored run's tail keeps: the file is opened again for each read.
        this.letGo();
        if (this.timer) clearInterval(this.timer);
        this.timer = undefined;
        for (const s of this.subscriptions) s.pump();
    }

    close(): void {
        if (this.timer) clearInterval(this.timer);
        this.timer = undefined;
        this.closeFile();
        for (const s of [...this.subscriptions]) s.close();
    }
}

/** Follows a trace file of either encoding (told by its header, which is written before the run starts). */
export function openTraceTail(runId: string, file: string, pollMs = 20): TraceTail {
    const fd = fs.openSync(file, 'r');
    let binary = true;
    try {
        binary = readTraceHeader(fd, file).header.encoding === 'binary';
    } catch (error) {
        // A header not written yet is a live binary trace about to start; a damaged one is the reader's error.
        if (!(error instanceof TraceFormatError && /empty|incomplete/.test(error.message))) {
            fs.closeSync(fd);
            throw error;
        }
    }
    return binary ? new BinaryTraceTail(runId, file, fd, pollMs) : new JsonlTraceTail(runId, file, fd, pollMs);
}

/**
 * Read buffers shared by every tail of the server: reads are synchronous and never nested,
 * so a server following many runs, or one whose stalled subscriber keeps ended runs' tails
 * open, holds one block's buffer (1 MiB, or the largest block read) in all rather than one per tail.
 */
const head = Buffer.allocUnsafe(BLOCK_HEAD);
let bodyBuffer = Buffer.allocUnsafe(BLOCK_BYTES);
/** Which tail's (by number) block the shared body buffer holds (a block, once complete, never changes). */
let bodyOwner = 0;
let bodyBlock = -1;
let tails = 0;

export class BinaryTraceTail extends TraceTail {
    /** This tail's number, for the shared body buffer. */
    private readonly serial = ++tails;
    /** Where the next block starts; -1 until the header is complete. */
    private scanned = -1;
    /** Per complete block: its byte offset, the sequence number of its first record, and its record count. */
    private readonly offsets: number[] = [];
    private readonly firsts: number[] = [];
    private readonly counts: number[] = [];
    private readonly bodies: number[] = [];
    /** The strings of every block indexed so far; ids never change, so any block decodes with it. */
    private readonly decoder = new TraceDecoder();

    poll(): boolean {
        if (this.isClosed || this.damaged !== undefined) return false;
        const fd = this.open();
        if (this.scanned < 0) {
            try {
                this.scanned = readTraceHeader(fd, this.file).bytes;
            } catch {
                return false;
            }
        }
        const before = this.count;
        const size = fs.fstatSync(fd).size;
        while (this.scanned + BLOCK_HEAD <= size) {
            fs.readSync(fd, head, 0, BLOCK_HEAD, this.scanned);
            let info;
            try {
                info = blockHead(head);
            } catch (error) {
                this.damaged = `block at byte ${this.scanned}: ${(error as Error).message}`;
                break;
            }
            if (this.scanned + BLOCK_HEAD + info.bodyBytes > size) break;
            const k = this.offsets.length;
            if (info.strings > 0) {
                try {
                    const held = this.decoder.skip(this.body(k, this.scanned + BLOCK_HEAD, info.bodyBytes));
                    if (held !== info.records) throw new BlockFormatError(`its head says ${info.records} records, its body holds ${held}`);
                } catch (error) {
                    this.damaged = `block at byte ${this.scanned}: ${(error as Error).message}`;
                    break;
                }
            }
            this.offsets.push(this.scanned + BLOCK_HEAD);
            this.bodies.push(info.bodyBytes);
            this.firsts.push(this.count);
            this.counts.push(info.records);
            this.count += info.records;
            this.scanned += BLOCK_HEAD + info.bodyBytes;
        }
        return this.count > before;
    }

    batch(seq: number, maxRecords: number, maxChars: number): RecordBatch {
        if (seq >= this.count || this.isClosed) return { text: '', count: 0 };
        const k = this.blockOf(seq);
        try {
            const body = this.body(k, this.offsets[k], this.bodies[k]);
            const made = this.decoder.json(body, seq - this.firsts[k], maxRecords, ',', false, maxChars);
            // The head counts a record there that the body does not hold.
            if (made.count === 0) throw new BlockFormatError(`its head says ${this.counts[k]} records, its body holds ${seq - this.firsts[k]} or fewer`);
            return made;
        } catch (error) {
            // A damaged block (poll reads only strings), or one that cannot be read (an I/O error):
            // the trace ends before it for every subscriber.
            const reason = error instanceof BlockFormatError ? error.message : `cannot read it: ${error instanceof Error ? error.message : String(error)}`;
            this.damaged = `block at byte ${this.offsets[k] - BLOCK_HEAD}: ${reason}`;
            this.count = this.firsts[k];
            for (const a of [this.offsets, this.bodies, this.firsts, this.counts]) a.length = k;
            return { text: '', count: 0 };
        } finally {
            this.letGo();
        }
    }

    /** The block holding record `seq` (< count): the last one starting at or before it that has records. */
    private blockOf(seq: number): number {
        let lo = 0;
        let hi = this.firsts.length - 1;
        while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if (this.firsts[mid] <= seq) lo = mid;
            else hi = mid - 1;
        }
        while (lo > 0 && this.counts[lo] === 0) lo--;
        while (seq >= this.firsts[lo] + this.counts[lo]) lo++;
        return lo;
    }

    private body(k: number, offset: number, bytes: number): Uint8Array {
        if (bodyOwner === this.serial && bodyBlock === k) return bodyBuffer.subarray(0, bytes);
        if (bodyBuffer.length < bytes) bodyBuffer = Buffer.allocUnsafe(bytes);
        fs.readSync(this.open(), bodyBuffer, 0, bytes, offset);
        bodyOwner = this.serial;
        bodyBlock = k;
        return bodyBuffer.subarray(0, bytes);
    }

    protected override closeFile(): void {
        super.closeFile();
        if (bodyOwner === this.serial) bodyOwner = 0;
    }
}

/** Every STRIDE-th record's byte offset is kept: a subscriber can start anywhere after one short scan. */
const STRIDE = 1024;
const SCAN_CHUNK = 1 << 20;
const NEWLINE = 10;
const scratch = Buffer.allocUnsafe(SCAN_CHUNK);
const seekBuffer = Buffer.allocUnsafe(SCAN_CHUNK);

/** A JSON Lines trace (version 1: runs stored before the binary format). */
export class JsonlTraceTail extends TraceTail {
    /** Bytes scanned: always just after a newline. */
    private scanned = 0;
    /** Where the records start (after the header line); -1 until the header is complete. */
    private recordsStart = -1;
    private readonly index: number[] = [];

    poll(): boolean {
        if (this.isClosed || this.damaged !== undefined) return false;
        const fd = this.open();
        const before = this.count;
        for (;;) {
            const n = fs.readSync(fd, scratch, 0, SCAN_CHUNK, this.scanned);
            if (n <= 0) break;
            let lineStart = 0;
            let at = scratch.indexOf(NEWLINE, 0);
            if (at < 0 || at >= n) {
                // A line longer than the chunk, or an incomplete last line: wait for more (long lines: read past).
                if (n === SCAN_CHUNK) this.scanLongLine();
                break;
            }
            while (at >= 0 && at < n) {
                const lineOffset = this.scanned + lineStart;
                if (this.recordsStart < 0) {
                    this.recordsStart = this.scanned + at + 1;
                } else if (at > lineStart) {
                    if (this.count % STRIDE === 0) this.index.push(lineOffset);
                    this.count++;
                }
                lineStart = at + 1;
                at = scratch.indexOf(NEWLINE, lineStart);
            }
            this.scanned += lineStart;
            if (n < SCAN_CHUNK) break;
        }
        return this.count > before;
    }

    /** A single line longer than the scan chunk (a huge record): find its end by reading on. */
    private scanLongLine(): void {
        let offset = this.scanned + SCAN_CHUNK;
        const buffer = seekBuffer;
        for (;;) {
            const n = fs.readSync(this.open(), buffer, 0, SCAN_CHUNK, offset);
            if (n <= 0) return;
            const at = buffer.indexOf(NEWLINE);
            if (at >= 0 && at < n) {
                if (this.recordsStart < 0) {
                    this.recordsStart = offset + at + 1;
                } else {
                    if (this.count % STRIDE === 0) this.index.push(this.scanned);
                    this.count++;
                }
                this.scanned = offset + at + 1;
                return;
            }
            offset += n;
        }
    }

    /** Byte offset of record `seq` (≤ count). */
    offsetOf(seq: number): number {
        if (seq >= this.count) return this.scanned;
        const k = Math.floor(seq / STRIDE);
        let offset = this.index[k];
        let at = k * STRIDE;
        const buffer = seekBuffer;
        while (at < seq) {
            const n = fs.readSync(this.open(), buffer, 0, SCAN_CHUNK, offset);
            let i = 0;
            while (at < seq) {
                const nl = buffer.indexOf(NEWLINE, i);
                if (nl < 0 || nl >= n) break;
                i = nl + 1;
                at++;
            }
            offset += i;
            if (n <= 0 || i === 0) break;
        }
        return offset;
    }

    /** The records' bytes from `offset`, at most about `max` bytes and never past the last complete record: whole lines only. */
    read(offset: number, max: number): { text: string; lines: number; bytes: number } {
        const end = Math.min(this.scanned, offset + max);
        let length = end - offset;
        if (length <= 0) return { text: '', lines: 0, bytes: 0 };
        let buffer = Buffer.allocUnsafe(length);
        fs.readSync(this.open(), buffer, 0, length, offset);
        let last = buffer.lastIndexOf(NEWLINE);
        if (last < 0) {
            // One line longer than max: read up to its end (the scan knows it is complete).
            length = this.scanned - offset;
            buffer = Buffer.allocUnsafe(length);
            fs.readSync(this.open(), buffer, 0, length, offset);
            last = buffer.indexOf(NEWLINE);
        }
        const slice = buffer.subarray(0, last);
        let lines = 1;
        for (let i = slice.indexOf(NEWLINE); i >= 0; i = slice.indexOf(NEWLINE, i + 1)) lines++;
        return { text: slice.toString('utf8'), lines, bytes: last + 1 };
    }

    batch(seq: number, maxRecords: number, maxChars: number): RecordBatch {
        if (seq >= this.count || this.isClosed) return { text: '', count: 0 };
        let read;
        try {
            read = this.read(this.offsetOf(seq), maxChars);
        } catch (error) {
            // The file cannot be read any more (an I/O error): the trace ends here for every subscriber.
            this.damaged ??= `cannot read ${this.file}: ${error instanceof Error ? error.message : String(error)}`;
            this.count = seq;
            return { text: '', count: 0 };
        } finally {
            this.letGo();
        }
        const { text, lines } = read;
        if (lines <= maxRecords) return { text: text.replace(/\n/g, ','), count: lines };
        const parts = text.split('\n', maxRecords);
        return { text: parts.join(','), count: parts.length };
    }

}

/** Where a subscription sends: a WebSocket, seen through what backpressure needs. */
export interface SubscriberSocket {
    readonly bufferedAmount: number;
    send(text: string): void;
}

export interface SubscriptionLimits {
    /** Records a subscriber may fall behind the live end before it skips ahead (its buffer). */
    readonly maxLag: number;
    /** Bytes waiting in the socket above which nothing more is sent to it for now. */
    readonly highWater: number;
    /** About how many bytes of records go in one batch. */
    readonly batchBytes: number;
    /** Records per second sent at most while the run is live (0: no limit); an ended run is replayed at the reader's pace. */
    readonly maxRate: number;
}

export const DEFAULT_LIMITS: SubscriptionLimits = { maxLag: 50_000, highWater: 1 << 20, batchBytes: 64 * 1024, maxRate: 20_000 };

/** A paced subscriber may take up this many seconds' worth of records at once (after a quiet spell). */
const BURST_S = 0.05;
/**
 * A paced subscriber out of allowance is looked at again after at least this many ms, and is
 * sent at least this many ms' worth of records at once: a frame costs the server a socket write
 * whatever its size, and at 10 ms the two live subscribers of bench:server cost its event loop
 * 0.27–0.30 s of CPU a run, at 50 ms 0.22–0.23 s.
 */
const PACE_MS = 50;

export class TraceSubscription {
    private seq: number;
    /** Where what it was sent or told it missed ends (0: nothing yet; a resumed subscriber's earlier records do not count). */
    private reached = 0;
    private closed = false;
    private retry: NodeJS.Timeout | undefined;
    /** What was sent and dropped, for the log. */
    sent = 0;
    missed = 0;
    /** Records it may be sent now while the run is live (a token bucket filled at maxRate), and when it was last filled. */
    private allowance: number;
    private filledAt = performance.now();
    /** A paced subscriber is sent no batch smaller than this (a pace's worth, PACE_MS): not a frame per few records. */
    private readonly minBatch: number;
    /** The most it may be sent at once, after a quiet spell. */
    private readonly burst: number;
    /** Subscribed while the run was live. */
    private readonly live: boolean;

    constructor(
        readonly tail: TraceTail,
        private readonly socket: SubscriberSocket,
        fromSeq: number,
        private readonly limits: SubscriptionLimits,
        private readonly onEnd: () => void
    ) {
        this.seq = fromSeq;
        // A burst of at least one record: below 20 records/s, a twentieth of a second holds less than one.
        this.burst = Math.max(1, limits.maxRate * BURST_S);
        this.allowance = this.burst;
        this.minBatch = Math.max(1, Math.min(this.burst, (limits.maxRate * PACE_MS) / 1000));
        this.live = !tail.isEnded;
    }

    get runId(): string {
        return this.tail.runId;
    }

    /** Sends what the socket has room for; called when records arrive and when the socket drains. */
    pump(): void {
        if (this.closed) return;
        if (this.retry) {
            clearTimeout(this.retry);
            this.retry = undefined;
        }
        const tail = this.tail;
        for (let batches = 0; ; batches++) {
            if (this.socket.bufferedAmount > this.limits.highWater || batches >= 64) {
                // Backpressure (or a long catch-up): look again shortly, letting the event loop breathe.
                this.retry = setTimeout(() => this.pump(), batches >= 64 ? 0 : 10);
                return;
            }
            // Only a live run has an end to keep up with: an ended run's records all wait in its
            // file, and a replay of it (from 0, or resumed) gets every one at the reader's pace.
            // A subscription made while the run was live keeps its buffer's bound past the end (else
            // it would get the whole of the last stretch it fell behind by, which can be millions).
            const lag = tail.count - this.seq;
            if (lag > this.limits.maxLag && (!tail.isEnded || this.live)) this.skipAhead();
            if (this.seq < tail.count) {
                const paced = this.limits.maxRate > 0 && !tail.isEnded;
                if (paced && this.refill() < this.minBatch) {
                    // Its share of this second is sent: what the run makes meanwhile waits in the file (and past the buffer, is dropped for it).
                    this.retry = setTimeout(() => this.pump(), Math.max(PACE_MS, Math.ceil((1000 * (this.minBatch - this.allowance)) / this.limits.maxRate)));
                    return;
                }
                const { text, count } = tail.batch(this.seq, paced ? Math.floor(this.allowance) : Infinity, this.limits.batchBytes);
                // None: the block there is damaged, and the tail now ends before it (an ended one: say so now).
                if (count === 0) {
                    if (this.seq < tail.count || !tail.isEnded) return;
                    continue;
                }
                if (paced) this.allowance -= count;
                this.socket.send(`{"jsonrpc":"2.0","method":"${TraceBatch.method}","params":{"runId":${JSON.stringify(tail.runId)},"seq":${this.seq},"records":[${text}]}}`);
                this.seq += count;
                this.reached = this.seq;
                this.sent += count;
                continue;
            }
            if (tail.isEnded) {
                const damaged = tail.damaged;
                // A subscriber sent records past a block that another then found damaged is past the
                // trace's end as it now stands: its end is where it got to, so that seq never goes back.
                const seq = Math.max(tail.count, this.reached);
                this.socket.send(JSON.stringify({ jsonrpc: '2.0', method: TraceEnd.method, params: { runId: tail.runId, seq, state: tail.state, ...(damaged ? { damaged } : {}) } }));
                this.close();
                this.onEnd();
            }
            return;
        }
    }

    /** Fills the allowance for the time since it was last filled (up to a burst's worth); returns it. */
    private refill(): number {
        const now = performance.now();
        const rate = this.limits.maxRate;
        this.allowance = Math.min(this.burst, this.allowance + ((now - this.filledAt) * rate) / 1000);
        this.filledAt = now;
        return this.allowance;
    }

    /** The subscriber's buffer is full: drop what it has not read, down to half the buffer behind the live end. */
    private skipAhead(): void {
        const tail = this.tail;
        const target = tail.count - Math.floor(this.limits.maxLag / 2);
        if (target <= this.seq) return;
        const missed = target - this.seq;
        this.socket.send(JSON.stringify({ jsonrpc: '2.0', method: TraceGap.method, params: { runId: tail.runId, missed, fromSeq: this.seq, toSeq: target - 1 } }));
        this.missed += missed;
        this.seq = target;
        this.reached = target;
    }

    close(): void {
        if (this.closed) return;
        this.closed = true;
        if (this.retry) clearTimeout(this.retry);
        this.retry = undefined;
        this.tail.remove(this);
    }
}
