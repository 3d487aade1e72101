/**
 * Trace blocks written by a thread of their own, so that the simulation's thread only fills
 * memory: the encoder writes each block straight into a slot of a ring in shared memory, and
 * a writer thread appends the full slots to the file. A traced bank run makes about 200 MB
 * of trace per million customers; copying that into the page cache costs the thread that
 * does it about as much again as encoding it (and more on a machine whose memory is cold),
 * which is the difference between tracing at most of the untraced speed or at half of it.
 *
 * Backpressure: when every slot is full, the simulation waits for the writer (memory stays at
 * slots × slotBytes whatever the disk does). A write error stops the writer and is thrown by
 * the next call on the simulation's side.
 */
import { Worker } from 'node:worker_threads';
import * as fs from 'node:fs';
import type { TraceBlockSink } from './binary.js';

/** Control words: blocks published, blocks written, closed, failed. */
const HEAD = 0, TAIL = 1, CLOSED = 2, FAILED = 3;
const CONTROL_WORDS = 4;
/** A writer that writes nothing for this long has stopped (a 256 KiB write does not take a minute). */
const STALL_MS = 60_000;

/** The writer thread, as source: a worker made from a string needs no file of its own in the bundles. */
const WRITER_SOURCE = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { control, data, lengths, errorText, fd, slots, slotBytes } = workerData;
const ctl = new Int32Array(control);
const lens = new Int32Array(lengths);
const bytes = new Uint8Array(data);
for (;;) {
    const head = Atomics.load(ctl, ${HEAD});
    const tail = Atomics.load(ctl, ${TAIL});
    if (tail === head) {
        if (Atomics.load(ctl, ${CLOSED}) !== 0) break;
        Atomics.wait(ctl, ${HEAD}, head, 1000);
        continue;
    }
    const slot = tail % slots;
    const length = lens[slot];
    try {
        for (let at = 0; at < length;) at += fs.writeSync(fd, bytes, slot * slotBytes + at, length - at);
    } catch (error) {
        new TextEncoder().encodeInto(String(error && error.message || error).slice(0, 200), new Uint8Array(errorText));
        Atomics.store(ctl, ${FAILED}, 1);
        Atomics.notify(ctl, ${TAIL});
        break;
    }
    Atomics.store(ctl, ${TAIL}, tail + 1);
    Atomics.notify(ctl, ${TAIL});
}
`;

/** The trace could not be written (a full disk, say): the replication fails with this reason. */
export class TraceWriteError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'TraceWriteError';
    }
}

export interface RingOptions {
    /** Slots in the ring (default 8: 2 MiB, about 5 ms of a fast traced run; 32 measured no faster). */
    readonly slots?: number;
    /** Bytes per slot: the block size (default 256 KiB). */
    readonly slotBytes?: number;
}

export class RingBlockWriter implements TraceBlockSink {
    readonly enabled = true;
    readonly blocks = true;
    /** Bytes handed to the writer. */
    bytes = 0;
    private readonly ctl: Int32Array;
    private readonly lens: Int32Array;
    private readonly data: Uint8Array;
    private readonly slots: number;
    private readonly slotBytes: number;
    private readonly worker: Worker;
    private readonly exited: Promise<void>;
    /** The writer's error message (UTF-8, NUL-padded), shared: this thread may be too busy for messages. */
    private readonly errorText: SharedArrayBuffer;
    /** The slot the encoder writes into now (published blocks: HEAD). */
    private published = 0;
    private closed = false;

    constructor(private readonly fd: number, options: RingOptions = {}) {
        this.slots = options.slots ?? 8;
        this.slotBytes = options.slotBytes ?? 256 * 1024;
        const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
        const lengths = new SharedArrayBuffer(this.slots * 4);
        const data = new SharedArrayBuffer(this.slots * this.slotBytes);
        this.errorText = new SharedArrayBuffer(1024);
        this.ctl = new Int32Array(control);
        this.lens = new Int32Array(lengths);
        this.data = new Uint8Array(data);
        this.worker = new Worker(WRITER_SOURCE, {
            eval: true, workerData: { control, data, lengths, errorText: this.errorText, fd, slots: this.slots, slotBytes: this.slotBytes },
            // A small thread: it only copies bytes to the kernel.
            resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 }
        });
        this.exited = new Promise(resolve => this.worker.once('exit', () => resolve()));
        this.worker.unref();
    }

    firstBuffer(): Uint8Array {
        return this.slot(0);
    }

    block(bytes: Uint8Array): Uint8Array {
        this.check();
        const current = this.published % this.slots;
        if (bytes.buffer === this.data.buffer && bytes.byteOffset === current * this.slotBytes) {
            this.lens[current] = bytes.length;
            this.published++;
            Atomics.store(this.ctl, HEAD, this.published);
            Atomics.notify(this.ctl, HEAD);
            this.bytes += bytes.length;
            // The next slot, once the writer has emptied it.
            this.waitFor(this.published - this.slots + 1);
            return this.slot(this.published % this.slots);
        }
        // A block larger than a slot (one large record): written here, after everything before it.
        this.drain();
        try {
            for (let at = 0; at < bytes.length;) at += fs.writeSync(this.fd, bytes, at, bytes.length - at);
        } catch (error) {
            throw new TraceWriteError(error instanceof Error ? error.message : String(error));
        }
        this.bytes += bytes.length;
        return this.slot(current);
    }

    /** Waits until everything published is in the file. */
    drain(): void {
        this.waitFor(this.published);
    }

    /** Drains, stops the writer thread, and throws the error it met, if any. The file descriptor stays the caller's. */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        // Unref'd so that a writer never closed (its thread died) does not keep the process alive; held while it finishes.
        this.worker.ref();
        Atomics.store(this.ctl, CLOSED, 1);
        Atomics.notify(this.ctl, HEAD);
        await this.exited;
        this.check();
    }

    private slot(i: number): Uint8Array {
        return this.data.subarray(i * this.slotBytes, (i + 1) * this.slotBytes);
    }

    /** Blocks this thread until `written` blocks are in the file. */
    private waitFor(written: number): void {
        let since = performance.now();
        let last = Atomics.load(this.ctl, TAIL);
        for (;;) {
            const tail = Atomics.load(this.ctl, TAIL);
            if (tail >= written) return;
            this.check();
            if (tail !== last) {
                last = tail;
                since = performance.now();
            } else if (performance.now() - since > STALL_MS) {
                throw new TraceWriteError(`its writer thread has written nothing for ${STALL_MS / 1000} s`);
            }
            Atomics.wait(this.ctl, TAIL, tail, 100);
        }
    }

    private check(): void {
        if (Atomics.load(this.ctl, FAILED) !== 0) {
            // The writer's message may not have been delivered yet (this thread is busy): say what is known.
            const text = new TextDecoder().decode(new Uint8Array(this.errorText)).replace(/\0+$/, '');
            throw new TraceWriteError(text || 'its writer thread failed');
        }
    }
}
