/**
 * Trace blocks written by another thread, so that the simulation's thread only fills memory:
 * the encoder writes each block straight into a slot of a ring in shared memory
 * ({@link RingProducer}, in the experiment worker), and one writer thread per process appends
 * the full slots of every traced run to their files ({@link writeRing}). A traced bank run makes
 * about 180 MB of trace per million customers; copying that into the page cache on the
 * simulation's thread costs it about as much again as encoding it. The writer is one
 * long-lived thread, not one per run (a server running traced runs back to back would make
 * and drop a thread and an isolate per run), and not the main thread, whose event loop a
 * client reading a live trace as fast as it can keeps busy (the run then waited on its ring:
 * 4% of its untraced speed, measured).
 *
 * Backpressure: when every slot is full, the simulation waits for the writer (memory stays at
 * slots × slotBytes whatever the disk does). A write error stops that ring's writing and is
 * thrown, as a TraceWriteError, by the producer's next call.
 */
import { Worker } from 'node:worker_threads';
import type { TraceBlockSink } from './binary.js';

/** Control words: blocks published, blocks written, closed (no more blocks), failed. */
const HEAD = 0, TAIL = 1, CLOSED = 2, FAILED = 3;
const CONTROL_WORDS = 4;
/** CLOSED: 1 when the producer closed the ring after its last block, 2 when the run did (its worker may have died). */
const CLOSED_BY_PRODUCER = 1, CLOSED_BY_RUN = 2;
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
    /** The process's doorbell (one Int32, bumped on every publish and close): the writer thread sleeps on it. */
    readonly doorbell: SharedArrayBuffer;
}

export interface RingOptions {
    /** Slots in the ring (default 8: 2 MiB, about 5 ms of a fast traced run; 32 measured no faster). */
    readonly slots?: number;
    /** Bytes per slot: the block size (default 256 KiB). */
    readonly slotBytes?: number;
}

/**
 * Rings of the default size that a finished run gave back. Shared memory is freed only once
 * every thread that saw it has collected it, and the writer thread allocates so little that it
 * almost never collects: a server making a ring per traced run kept every one (2 MiB each;
 * 276 MB after 86 runs, measured). Reused, they are as many as the traced runs at once.
 */
const pool: TraceRing[] = [];
const POOL_MAX = 4;

export function createTraceRing(options: RingOptions = {}): TraceRing {
    const slots = options.slots ?? 8;
    const slotBytes = options.slotBytes ?? 256 * 1024;
    if (slots === 8 && slotBytes === 256 * 1024 && pool.length > 0) {
        const reused = pool.pop()!;
        new Int32Array(reused.control).fill(0);
        new Uint8Array(reused.errorText).fill(0);
        return reused;
    }
    return {
        control: new SharedArrayBuffer(CONTROL_WORDS * 4), lengths: new SharedArrayBuffer(slots * 4),
        data: new SharedArrayBuffer(slots * slotBytes), errorText: new SharedArrayBuffer(1024), slots, slotBytes, doorbell: doorbell()
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
    private readonly bell: Int32Array;
    /** Blocks published so far; the encoder writes into slot `published % slots`. */
    private published = 0;
    private closed = false;

    constructor(private readonly ring: TraceRing) {
        this.ctl = new Int32Array(ring.control);
        this.lens = new Int32Array(ring.lengths);
        this.data = new Uint8Array(ring.data);
        this.bell = new Int32Array(ring.doorbell);
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
        Atomics.compareExchange(this.ctl, CLOSED, 0, CLOSED_BY_PRODUCER);
        ring(this.bell);
        this.drain();
        this.check();
    }

    private publish(slot: number, length: number): void {
        this.lens[slot] = length;
        this.published++;
        this.bytes += length;
        Atomics.store(this.ctl, HEAD, this.published);
        ring(this.bell);
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

/** Wakes the writer thread. */
function ring(bell: Int32Array): void {
    Atomics.add(bell, 0, 1);
    Atomics.notify(bell, 0);
}

/** A traced run's side of the writer: its file is complete once `done` settles. */
export interface RingConsumer {
    /** Settles once the ring is closed and everything published is written (or a write failed, which it does not throw: the producer does). */
    readonly done: Promise<void>;
    /** No more blocks will come (the run ended, or its worker died): finish what was published. */
    close(): void;
    /**
     * The run is over (every worker of it has ended) and `done` has settled: the ring may serve
     * another run. Only then: a ring given back while its run went on would be another run's
     * when this one closes it. After it, `close` does nothing.
     */
    release(): void;
}

/** The writer thread, as source: a worker made from a string needs no file of its own in the bundles. */
const WRITER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const fs = require('node:fs');
const bell = new Int32Array(workerData.doorbell);
const rings = new Map();
for (;;) {
    for (let m = receiveMessageOnPort(parentPort); m !== undefined; m = receiveMessageOnPort(parentPort)) {
        const { id, ring, fd } = m.message;
        rings.set(id, { ctl: new Int32Array(ring.control), lens: new Int32Array(ring.lengths), data: new Uint8Array(ring.data),
            errorText: ring.errorText, slots: ring.slots, slotBytes: ring.slotBytes, fd, tail: 0, failed: false });
    }
    const seen = Atomics.load(bell, 0);
    let wrote = false;
    for (const [id, r] of rings) {
        while (!r.failed && r.tail < Atomics.load(r.ctl, ${HEAD})) {
            const slot = r.tail % r.slots;
            const length = r.lens[slot];
            try {
                for (let at = 0; at < length;) at += fs.writeSync(r.fd, r.data, slot * r.slotBytes + at, length - at);
            } catch (error) {
                new TextEncoder().encodeInto(String((error && error.message) || error).slice(0, 300), new Uint8Array(r.errorText));
                r.failed = true;
                Atomics.store(r.ctl, ${FAILED}, 1);
                Atomics.notify(r.ctl, ${TAIL});
                break;
            }
            r.tail++;
            Atomics.store(r.ctl, ${TAIL}, r.tail);
            Atomics.notify(r.ctl, ${TAIL});
            wrote = true;
        }
        // Closed, and nothing published after the last write: this ring is done.
        if (Atomics.load(r.ctl, ${CLOSED}) !== 0 && (r.failed || r.tail === Atomics.load(r.ctl, ${HEAD}))) {
            rings.delete(id);
            parentPort.postMessage(id);
        }
    }
    if (!wrote) Atomics.wait(bell, 0, seen, rings.size > 0 ? 50 : 1000);
}
`;

let bellBuffer: SharedArrayBuffer | undefined;
let writer: Worker | undefined;
let nextRing = 1;
/** The rings being written, by id: what settles each one's `done`, and the ring (to fail it if the thread dies). */
const active = new Map<number, { readonly resolve: () => void; readonly ring: TraceRing }>();

/** The process's doorbell. */
function doorbell(): SharedArrayBuffer {
    bellBuffer ??= new SharedArrayBuffer(4);
    return bellBuffer;
}

/** The process's writer thread, made on first use; it never keeps the process alive. */
function writerThread(): Worker {
    if (writer === undefined) {
        const w = new Worker(WRITER_SOURCE, {
            eval: true, workerData: { doorbell: doorbell() },
            // A small thread: it only copies bytes to the kernel.
            resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 }
        });
        w.on('message', (id: number) => {
            const entry = active.get(id);
            active.delete(id);
            entry?.resolve();
        });
        // Cannot happen but by a crash of the thread (out of memory, say): every ring it was writing
        // fails (its producer throws the reason at its next block), what waits is let go, and the
        // next run makes another thread. Handled, so that it does not take the server down with it.
        const died = (reason: string): void => {
            if (writer === w) writer = undefined;
            for (const { resolve, ring: r } of active.values()) {
                new TextEncoder().encodeInto(`the trace writer thread stopped: ${reason}`.slice(0, 300), new Uint8Array(r.errorText));
                const control = new Int32Array(r.control);
                Atomics.store(control, FAILED, 1);
                Atomics.notify(control, TAIL);
                resolve();
            }
            active.clear();
        };
        w.on('error', error => died(error.message));
        w.on('exit', code => died(`exit code ${code}`));
        w.unref();
        writer = w;
    }
    return writer;
}

/** Appends the ring's blocks to `fd` (on the process's writer thread) until it is closed and drained. The fd stays the caller's. */
export function writeRing(r: TraceRing, fd: number): RingConsumer {
    const id = nextRing++;
    const thread = writerThread();
    const done = new Promise<void>(resolve => active.set(id, { resolve, ring: r }));
    // Held while a ring is being written, so that the process waits for its trace.
    thread.ref();
    const control = new Int32Array(r.control);
    let settledDone = false;
    let released = false;
    const settled = done.then(() => {
        settledDone = true;
        if (active.size === 0) writer?.unref();
    });
    thread.postMessage({ id, ring: r, fd });
    ring(new Int32Array(r.doorbell));
    return {
        done: settled,
        close() {
            if (released) return;
            Atomics.compareExchange(control, CLOSED, 0, CLOSED_BY_RUN);
            ring(new Int32Array(r.doorbell));
        },
        release() {
            if (released || !settledDone) return;
            released = true;
            // Reused only when its producer closed it itself: a worker being terminated might still write into it.
            const own = Atomics.load(control, CLOSED) === CLOSED_BY_PRODUCER && Atomics.load(control, FAILED) === 0;
            if (own && r.slots === 8 && r.slotBytes === 256 * 1024 && pool.length < POOL_MAX) pool.push(r);
        }
    };
}
