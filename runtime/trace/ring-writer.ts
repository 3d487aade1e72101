/**
 * Trace blocks written by another thread, so that the simulation's thread only fills memory:
 * the encoder writes each block straight into a slot of a ring in shared memory
 * ({@link RingProducer}, in the experiment worker), and the run's main thread appends the full
 * slots to the file with asynchronous writes ({@link consumeRing}: libuv's own threads do the
 * copying, and no thread or isolate is made per run). A traced bank run makes about 180 MB of
 * trace per million customers; copying that into the page cache on the simulation's thread
 * costs it about as much again as encoding it.
 *
 * Backpressure: when every slot is full, the simulation waits for the writer (memory stays at
 * slots × slotBytes whatever the disk does). A write error stops the writer and is thrown, as a
 * TraceWriteError, by the producer's next call.
 */
import * as fs from 'node:fs';
import type { TraceBlockSink } from './binary.js';

/** Control words: blocks published, blocks written, closed (no more blocks), failed. */
const HEAD = 0, TAIL = 1, CLOSED = 2, FAILED = 3;
const CONTROL_WORDS = 4;
/** A writer that writes nothing for this long has stopped (a 256 KiB write does not take a minute). */
const STALL_MS = 60_000;

/** The trace could not be written (a full disk, say): the replication fails with this reason. */
export class TraceWriteError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'TraceWriteError';
    }
}

/** The shared memory of a ring: made by the main thread, handed to the worker in its workerData. */
export interface TraceRing {
    readonly control: SharedArrayBuffer;
    readonly lengths: SharedArrayBuffer;
    readonly data: SharedArrayBuffer;
    /** The writer's error message (UTF-8, NUL-padded): the producer may be too busy for messages. */
    readonly errorText: SharedArrayBuffer;
    readonly slots: number;
    readonly slotBytes: number;
}

export interface RingOptions {
    /** Slots in the ring (default 8: 2 MiB, about 5 ms of a fast traced run; 32 measured no faster). */
    readonly slots?: number;
    /** Bytes per slot: the block size (default 256 KiB). */
    readonly slotBytes?: number;
}

export function createTraceRing(options: RingOptions = {}): TraceRing {
    const slots = options.slots ?? 8;
    const slotBytes = options.slotBytes ?? 256 * 1024;
    return {
        control: new SharedArrayBuffer(CONTROL_WORDS * 4), lengths: new SharedArrayBuffer(slots * 4),
        data: new SharedArrayBuffer(slots * slotBytes), errorText: new SharedArrayBuffer(1024), slots, slotBytes
    };
}

/** The encoder's side of a ring: a block sink whose blocks are the ring's slots. */
export class RingProducer implements TraceBlockSink {
    readonly enabled = true;
    readonly blocks = true;
    /** Bytes published. */
    bytes = 0;
    private readonly ctl: Int32Array;
    private readonly lens: Int32Array;
    private readonly data: Uint8Array;
    /** Blocks published so far; the encoder writes into slot `published % slots`. */
    private published = 0;
    private closed = false;

    constructor(private readonly ring: TraceRing) {
        this.ctl = new Int32Array(ring.control);
        this.lens = new Int32Array(ring.lengths);
        this.data = new Uint8Array(ring.data);
    }

    firstBuffer(): Uint8Array {
        return this.slot(0);
    }

    block(bytes: Uint8Array): Uint8Array {
        this.check();
        const { slots } = this.ring;
        const current = this.published % slots;
        if (bytes.buffer === this.data.buffer && bytes.byteOffset === current * this.ring.slotBytes) {
            this.publish(current, bytes.length);
            // The next slot, once the writer has emptied it.
            this.waitFor(this.published - slots + 1);
            return this.slot(this.published % slots);
        }
        // A block larger than a slot (one large record): copied through the ring in slot-sized pieces
        // (a reader sees one block: the pieces are appended back to back).
        for (let at = 0; at < bytes.length; at += this.ring.slotBytes) {
            const slot = this.published % slots;
            const piece = bytes.subarray(at, Math.min(bytes.length, at + this.ring.slotBytes));
            this.slot(slot).set(piece);
            this.publish(slot, piece.length);
            this.waitFor(this.published - slots + 1);
        }
        return this.slot(this.published % slots);
    }

    /** Waits until everything published is in the file. */
    drain(): void {
        this.waitFor(this.published);
    }

    /** No more blocks: waits until the writer has written them all; throws the error it met, if any. */
    close(): void {
        if (this.closed) return;
        this.closed = true;
        Atomics.store(this.ctl, CLOSED, 1);
        Atomics.notify(this.ctl, HEAD);
        this.drain();
        this.check();
    }

    private publish(slot: number, length: number): void {
        this.lens[slot] = length;
        this.published++;
        this.bytes += length;
        Atomics.store(this.ctl, HEAD, this.published);
        Atomics.notify(this.ctl, HEAD);
    }

    private slot(i: number): Uint8Array {
        return this.data.subarray(i * this.ring.slotBytes, (i + 1) * this.ring.slotBytes);
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
                throw new TraceWriteError(`its writer has written nothing for ${STALL_MS / 1000} s`);
            }
            Atomics.wait(this.ctl, TAIL, tail, 100);
        }
    }

    private check(): void {
        if (Atomics.load(this.ctl, FAILED) !== 0) {
            const text = new TextDecoder().decode(new Uint8Array(this.ring.errorText)).replace(/\0+$/, '');
            throw new TraceWriteError(text || 'its writer failed');
        }
    }
}

/** The writer's side, on the main thread: appends each published slot to `fd`, in order, until closed and drained. */
export interface RingConsumer {
    /** Settles once the ring is closed and everything published is written (or a write failed, which it does not throw: the producer does). */
    readonly done: Promise<void>;
    /** No more blocks will come (the producer died, or the run ended): finish what was published. */
    close(): void;
}

/** Atomics.waitAsync (Node 16 on; not in this project's TypeScript lib). */
interface AtomicsWaitAsync {
    waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: Promise<string> | string };
}

export function consumeRing(ring: TraceRing, fd: number): RingConsumer {
    const ctl = new Int32Array(ring.control);
    const lens = new Int32Array(ring.lengths);
    const data = new Uint8Array(ring.data);
    const write = (offset: number, length: number): Promise<void> => new Promise((resolve, reject) => {
        const step = (at: number): void => {
            if (at >= length) return resolve();
            fs.write(fd, data, offset + at, length - at, null, (error, n) => (error ? reject(error) : step(at + n)));
        };
        step(0);
    });
    const loop = async (): Promise<void> => {
        let tail = 0;
        for (;;) {
            const head = Atomics.load(ctl, HEAD);
            if (tail < head) {
                const slot = tail % ring.slots;
                try {
                    await write(slot * ring.slotBytes, lens[slot]);
                } catch (error) {
                    new TextEncoder().encodeInto(String((error as Error).message ?? error).slice(0, 300), new Uint8Array(ring.errorText));
                    Atomics.store(ctl, FAILED, 1);
                    Atomics.notify(ctl, TAIL);
                    return;
                }
                tail++;
                Atomics.store(ctl, TAIL, tail);
                Atomics.notify(ctl, TAIL);
                continue;
            }
            // Closed after its last block was published: that block may have come after `head` was read.
            if (Atomics.load(ctl, CLOSED) !== 0) {
                if (Atomics.load(ctl, HEAD) > tail) continue;
                return;
            }
            const waited = (Atomics as unknown as AtomicsWaitAsync).waitAsync(ctl, HEAD, head, 1000);
            if (waited.async) await waited.value;
        }
    };
    return {
        done: loop(),
        close() {
            Atomics.store(ctl, CLOSED, 1);
            Atomics.notify(ctl, HEAD);
        }
    };
}
