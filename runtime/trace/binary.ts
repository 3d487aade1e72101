/**
 * The stored trace, binary (format version 3): what the engine writes while it runs, what the
 * server tails for live subscribers, and what every reader and exporter decodes into
 * `TraceRecord`s. The layout is documented in docs/trace-format.md; keep the two in step.
 *
 * Why binary: a traced discrete-event run makes about six records per customer, and the engine
 * spends about 0.3 µs on a whole customer. A JSON line costs ~0.9 µs to stringify, and an
 * object costs an allocation; written as a few fixed-size fields into one buffer, with names
 * as string ids and the wall clock read once per batch of events, a record costs a few
 * nanoseconds. JSON is made later, off the simulation's thread, and only for what a reader
 * asks for.
 *
 * A file: one JSON header line (as in version 1, with `"version": 3, "encoding": "binary"`),
 * then blocks. A block: a 16-byte head (magic `AIB1`, body length, records, strings) and a
 * body of operations, little-endian, unaligned:
 *
 *   STRING    u8 4, u32 length, UTF-8 bytes                  defines the next string id (0, 1, …)
 *   WALL      u8 5, f64 wall                                 the wall clock of the records after it
 *   TIME      u8 6, f64 t                                    the simulated time of the compact records after it
 *   COUNTER16 u8 7, u16 name, f64 value                      11 bytes; t: the current TIME
 *   ENTITY    u8 8, u16 name, u32 id, u16 subject, u32 serial, f64 start, f64 wallStart
 *                                                            29 bytes; an entity's span, ending at the current TIME
 *   CHILD     u8 9, u8 cat, u16 name, u32 id, u32 parent, u16 subject, u32 serial, u16 loc, f64 start
 *                                                            28 bytes; a step's or queue's span, ending at the current
 *                                                            TIME, its wallStart and wallEnd the current WALL
 *   SERVED    u8 10, u16 name, u32 id, u32 parent, u16 subject, u32 serial, f64 start,
 *             u16 busyName, f64 busy, u16 queueName, f64 queue
 *                                                            45 bytes, three records: a queue's span ending at the current
 *                                                            TIME (wall clock: the current WALL), then the two counters
 *   COUNTER   u8 1, u32 name, f64 t, f64 value               21 bytes; wall: the current WALL
 *   SPAN      u8 2, u8 flags, u32 name, u32 id, u32 parent, u32 subject, u32 serial, u32 loc,
 *             f64 start, f64 end[, f64 wallStart]            42 or 50 bytes; wallEnd: the current WALL
 *   JSON      u8 3, u32 length, UTF-8 bytes                  any record, as its JSON text
 *
 * The engine writes the compact operations (TIME, COUNTER16, ENTITY, CHILD, SERVED): the records of one
 * instant share a TIME, and string ids take 16 bits, which makes a traced run's file a third
 * smaller than with COUNTER and SPAN (and writing it, which costs the simulation's thread about
 * a quarter of a nanosecond a byte, that much cheaper). Past 65,535 strings, or a span id past
 * 32 bits, it writes the general ones. Version 2 files hold only the general ones.
 *
 * The engine reads the wall clock once every few dozen events, not per record (a read costs
 * about as much as a whole customer of the bank example): a WALL says what that reading was,
 * and the COUNTERs and SPANs after it, in the same block, carry it. A block restates it before
 * its first such record (and TIME before its first compact record), so every block decodes on
 * its own strings table alone.
 * Span flags: the category (index in CATEGORIES) in the low bits; OWN_START when wallStart is
 * not the current WALL and follows. `parent` 0 is none; `subject` and `loc` NONE are none; a subject
 * is string `subject` followed by the decimal `serial` (`Customer#` + 17), or the string alone
 * when `serial` is NONE (in the compact operations, a 16-bit subject or loc of 0xffff is none);
 * `loc` is the id of a string holding the location's JSON. Strings are
 * not records: a block's `records` counts the others, and `strings` tells a reader that skips
 * the block whether it must still read it for its strings.
 */
import type { SourceLocation, SpanCategory, SpanRecord, TraceRecord } from '../../protocol/index.js';

export const BLOCK_MAGIC = 0x31424941; // "AIB1"
export const BLOCK_HEAD = 16;
export const OP_COUNTER = 1;
export const OP_SPAN = 2;
export const OP_JSON = 3;
export const OP_STRING = 4;
export const OP_WALL = 5;
export const OP_TIME = 6;
export const OP_COUNTER16 = 7;
export const OP_ENTITY = 8;
export const OP_CHILD = 9;
export const OP_SERVED = 10;
/** An absent subject or location. */
export const NONE = 0xffffffff;
/** The largest id, parent or serial a SPAN holds; records past it go as JSON. */
const MAX_U32 = 0xfffffffe;
export const CATEGORIES: readonly SpanCategory[] = ['entity', 'step', 'queue', 'agent', 'inference'];
export const CAT_ENTITY = 0;
export const CAT_STEP = 1;
export const CAT_QUEUE = 2;
const OWN_START = 0x80;
const COUNTER_BYTES = 21;
const SPAN_BYTES = 50;
const WALL_BYTES = 9;
const TIME_BYTES = 9;
const COUNTER16_BYTES = 11;
const ENTITY_BYTES = 29;
const CHILD_BYTES = 28;
const SERVED_BYTES = 45;
/** The largest string id the compact operations hold (u16; 0xffff is none). */
const MAX_U16 = 0xfffe;

/** Where an encoder's blocks go. */
export interface TraceBlockSink {
    readonly enabled: boolean;
    /** Tells a TraceSink from a block sink. */
    readonly blocks: true;
    /** One whole block (head and body); the bytes are the encoder's, valid only during the call (the encoder reuses them). */
    block(bytes: Uint8Array): void;
}

export interface EncoderOptions {
    /** Block capacity in bytes (default 256 KiB); a record larger than that gets a block of its own. */
    readonly blockBytes?: number;
    /** flushIfDue flushes when this many milliseconds have passed since the last flush (default 100). */
    readonly flushMs?: number;
    /** Milliseconds, monotonic (default performance.now). */
    readonly now?: () => number;
}

const utf8 = new TextEncoder();

/**
 * Writes records into a block buffer, and hands each full block to its sink. The hot kinds
 * (counters, spans without attributes) take numbers and string ids (`intern`); any other
 * record goes through `record`, as JSON. Not thread-safe, not reentrant: one per replication.
 */
export class TraceEncoder {
    readonly enabled = true;
    private u8: Uint8Array;
    private dv: DataView;
    private pos = BLOCK_HEAD;
    private records = 0;
    private strings = 0;
    private readonly ids = new Map<string, number>();
    /** The current wall clock, and whether this block has yet to say it (a WALL before the next hot record). */
    private wallNow = 0;
    private wallDue = true;
    /** A hot record at `pos` up to this needs no flush and no WALL first (-1: look, in `room`). */
    private limit = -1;
    /** The simulated time the block's last TIME said (NaN: none yet in this block). */
    private timeNow = NaN;
    /**
     * The largest span id the compact spans take: MAX_U32 while every string id fits in 16 bits,
     * -1 after (every span then goes the general way, with 32-bit string ids).
     */
    private compactIds = MAX_U32;
    private lastFlush: number;
    private readonly flushMs: number;
    private readonly now: () => number;
    /** Records in the blocks flushed so far. */
    private total = 0;
    /** The buffer to go back to after a block made larger for one large record. */
    private home: Uint8Array | undefined;

    constructor(private readonly sink: TraceBlockSink, options: EncoderOptions = {}) {
        this.u8 = new Uint8Array(Math.max(4096, options.blockBytes ?? 256 * 1024));
        this.dv = new DataView(this.u8.buffer, this.u8.byteOffset, this.u8.byteLength);
        this.flushMs = options.flushMs ?? 100;
        this.now = options.now ?? (() => performance.now());
        this.lastFlush = this.now();
    }

    /** The id of a string, defined in the stream the first time it is asked for. */
    intern(s: string): number {
        let id = this.ids.get(s);
        if (id === undefined) {
            id = this.ids.size;
            this.ids.set(s, id);
            if (id > MAX_U16) this.compactIds = -1;
            const room = 5 + 3 * s.length;
            this.reserve(room);
            const { written } = utf8.encodeInto(s, this.u8.subarray(this.pos + 5));
            this.u8[this.pos] = OP_STRING;
            this.dv.setUint32(this.pos + 1, written, true);
            this.pos += 5 + written;
            this.strings++;
            if (this.home !== undefined) this.flush();
        }
        return id;
    }

    /** The id of a source location (NONE for none). */
    loc(loc: SourceLocation | undefined): number {
        return loc === undefined ? NONE : this.intern(JSON.stringify({ file: loc.file, line: loc.line, column: loc.column }));
    }

    /** The wall clock of the counters and spans recorded from now on (µs since the run started). */
    wall(w: number): void {
        if (w !== this.wallNow) {
            this.wallNow = w;
            this.wallDue = true;
            this.limit = -1;
        }
    }

    /** A counter at simulated time `t`, at the current wall clock. */
    counter(name: number, t: number, value: number): void {
        if (name > MAX_U16) {
            this.counterWide(name, t, value);
            return;
        }
        let p = this.pos;
        if (p > this.limit) p = this.room();
        if (t !== this.timeNow) p = this.time(p, t);
        const dv = this.dv;
        this.u8[p] = OP_COUNTER16;
        dv.setUint16(p + 1, name, true);
        dv.setFloat64(p + 3, value, true);
        this.pos = p + COUNTER16_BYTES;
        this.records++;
    }

    /** A counter whose name has a string id past 16 bits (a trace of more than 65,535 strings). */
    private counterWide(name: number, t: number, value: number): void {
        let p = this.pos;
        if (p > this.limit) p = this.room();
        const dv = this.dv;
        this.u8[p] = OP_COUNTER;
        dv.setUint32(p + 1, name, true);
        dv.setFloat64(p + 5, t, true);
        dv.setFloat64(p + 13, value, true);
        this.pos = p + COUNTER_BYTES;
        this.records++;
    }

    /** Writes TIME `t` at `p` (room was made for it); returns where the record goes. */
    private time(p: number, t: number): number {
        this.u8[p] = OP_TIME;
        this.dv.setFloat64(p + 1, t, true);
        this.timeNow = t;
        return p + TIME_BYTES;
    }

    /**
     * An entity's span, ending now (at simulated time `end`, and the current wall clock): no
     * parent, no location, subject `subject` with `serial` appended (see {@link span}).
     */
    entitySpan(name: number, id: number, subject: number, serial: number, start: number, end: number, wallStart: number): void {
        if (id > this.compactIds) {
            this.span(CAT_ENTITY, name, id, 0, subject, serial, NONE, start, end, wallStart);
            return;
        }
        let p = this.pos;
        if (p > this.limit) p = this.room();
        if (end !== this.timeNow) p = this.time(p, end);
        const dv = this.dv;
        this.u8[p] = OP_ENTITY;
        dv.setUint16(p + 1, name, true);
        dv.setUint32(p + 3, id, true);
        // NONE (no subject) becomes 0xffff, as a 16-bit store keeps the low bits.
        dv.setUint16(p + 7, subject, true);
        dv.setUint32(p + 9, serial, true);
        dv.setFloat64(p + 13, start, true);
        dv.setFloat64(p + 21, wallStart, true);
        this.pos = p + ENTITY_BYTES;
        this.records++;
    }

    /**
     * A span inside an entity's (a step, a wait in a queue), ending now: its wall clock, start and
     * end, is the current one. Fields as {@link span}'s.
     */
    childSpan(cat: number, name: number, id: number, parent: number, subject: number, serial: number, loc: number, start: number, end: number): void {
        if (id > this.compactIds) {
            this.span(cat, name, id, parent, subject, serial, loc, start, end, this.wallNow);
            return;
        }
        let p = this.pos;
        if (p > this.limit) p = this.room();
        if (end !== this.timeNow) p = this.time(p, end);
        const dv = this.dv;
        this.u8[p] = OP_CHILD;
        this.u8[p + 1] = cat;
        dv.setUint16(p + 2, name, true);
        dv.setUint32(p + 4, id, true);
        dv.setUint32(p + 8, parent, true);
        dv.setUint16(p + 12, subject, true);
        dv.setUint32(p + 14, serial, true);
        dv.setUint16(p + 18, loc, true);
        dv.setFloat64(p + 20, start, true);
        this.pos = p + CHILD_BYTES;
        this.records++;
    }

    /**
     * A wait in a queue that ends now, as the resource takes the entity in, and the resource's
     * two counters after it (busy, queue length): three records in one operation, the three a
     * discrete-event engine makes whenever it serves an entity that waited.
     */
    served(name: number, id: number, parent: number, subject: number, serial: number, start: number, end: number,
        busyName: number, busy: number, queueName: number, queue: number): void {
        if (id > this.compactIds) {
            this.span(CAT_QUEUE, name, id, parent, subject, serial, NONE, start, end, this.wallNow);
            this.counter(busyName, end, busy);
            this.counter(queueName, end, queue);
            return;
        }
        let p = this.pos;
        if (p > this.limit) p = this.room();
        if (end !== this.timeNow) p = this.time(p, end);
        const dv = this.dv;
        this.u8[p] = OP_SERVED;
        dv.setUint16(p + 1, name, true);
        dv.setUint32(p + 3, id, true);
        dv.setUint32(p + 7, parent, true);
        dv.setUint16(p + 11, subject, true);
        dv.setUint32(p + 13, serial, true);
        dv.setFloat64(p + 17, start, true);
        dv.setUint16(p + 25, busyName, true);
        dv.setFloat64(p + 27, busy, true);
        dv.setUint16(p + 35, queueName, true);
        dv.setFloat64(p + 37, queue, true);
        this.pos = p + SERVED_BYTES;
        this.records += 3;
    }

    /**
     * A span without attributes, ending now: its wallEnd is the current wall clock. `parent` 0:
     * none; `subject` NONE: none, else a string id with `serial` appended (NONE: nothing
     * appended); `loc` from {@link loc}. `parent` and `serial` must be at most `id` (a parent is
     * older, and a subject's number counts fewer things than the spans), as the engine's are: so
     * `serial` is never NONE by accident once `id` fits.
     */
    span(cat: number, name: number, id: number, parent: number, subject: number, serial: number, loc: number,
        start: number, end: number, wallStart: number): void {
        if (id > MAX_U32 || serial > NONE) {
            this.record(this.spanRecord(cat, name, id, parent, subject, serial, loc, start, end, wallStart));
            return;
        }
        let p = this.pos;
        if (p > this.limit) p = this.room();
        const dv = this.dv;
        this.u8[p] = OP_SPAN;
        dv.setUint32(p + 2, name, true);
        dv.setUint32(p + 6, id, true);
        dv.setUint32(p + 10, parent, true);
        dv.setUint32(p + 14, subject, true);
        dv.setUint32(p + 18, serial, true);
        dv.setUint32(p + 22, loc, true);
        dv.setFloat64(p + 26, start, true);
        dv.setFloat64(p + 34, end, true);
        if (wallStart === this.wallNow) {
            this.u8[p + 1] = cat;
            this.pos = p + 42;
        } else {
            this.u8[p + 1] = cat | OWN_START;
            dv.setFloat64(p + 42, wallStart, true);
            this.pos = p + 50;
        }
        this.records++;
    }

    /** Records encoded so far, in all blocks. */
    get count(): number {
        return this.total + this.records;
    }

    /**
     * The slow part of a hot record, out of line so that the hot methods stay small enough to be
     * inlined: room for the largest one (flushing), and the WALL the block owes. Returns where
     * the record goes, and sets `limit` so that the next ones skip this while both hold.
     */
    private room(): number {
        if (this.pos + SPAN_BYTES + WALL_BYTES + TIME_BYTES > this.u8.length) this.flush();
        if (this.wallDue) {
            const p = this.pos;
            this.u8[p] = OP_WALL;
            this.dv.setFloat64(p + 1, this.wallNow, true);
            this.pos = p + WALL_BYTES;
            this.wallDue = false;
        }
        this.limit = this.u8.length - SPAN_BYTES - TIME_BYTES;
        return this.pos;
    }

    /** Any record, as its JSON text. */
    record(r: TraceRecord): void {
        const text = JSON.stringify(r);
        this.reserve(5 + 3 * text.length);
        const { written } = utf8.encodeInto(text, this.u8.subarray(this.pos + 5));
        this.u8[this.pos] = OP_JSON;
        this.dv.setUint32(this.pos + 1, written, true);
        this.pos += 5 + written;
        this.records++;
        if (this.home !== undefined) this.flush();
    }

    /** Flushes when records wait and the time since the last flush has passed the limit. */
    flushIfDue(): void {
        if (this.pos > BLOCK_HEAD && this.now() - this.lastFlush >= this.flushMs) this.flush();
    }

    /** Hands what was recorded to the sink, as one block. */
    flush(): void {
        this.lastFlush = this.now();
        if (this.pos === BLOCK_HEAD) return;
        const dv = this.dv;
        dv.setUint32(0, BLOCK_MAGIC, true);
        dv.setUint32(4, this.pos - BLOCK_HEAD, true);
        dv.setUint32(8, this.records, true);
        dv.setUint32(12, this.strings, true);
        const bytes = this.u8.subarray(0, this.pos);
        this.pos = BLOCK_HEAD;
        this.total += this.records;
        this.records = 0;
        this.strings = 0;
        this.wallDue = true;
        this.timeNow = NaN;
        this.limit = -1;
        this.sink.block(bytes);
        if (this.home !== undefined) {
            // The block of a large record is out: back to the sink's own buffer.
            this.u8 = this.home;
            this.dv = new DataView(this.u8.buffer, this.u8.byteOffset, this.u8.byteLength);
        }
        this.home = undefined;
    }

    /** Room for `bytes` more: flushes, and grows the buffer for a record larger than a block. */
    private reserve(bytes: number): void {
        if (this.pos + bytes <= this.u8.length) return;
        this.flush();
        if (BLOCK_HEAD + bytes > this.u8.length) {
            this.limit = -1;
            this.home ??= this.u8;
            this.u8 = new Uint8Array(BLOCK_HEAD + bytes);
            this.dv = new DataView(this.u8.buffer);
        }
    }

    private spanRecord(cat: number, name: number, id: number, parent: number, subject: number, serial: number, loc: number,
        start: number, end: number, wallStart: number): SpanRecord {
        const names = [...this.ids.keys()];
        return {
            kind: 'span', id, ...(parent !== 0 ? { parent } : {}), name: names[name], cat: CATEGORIES[cat], start, end, wallStart, wallEnd: this.wallNow,
            ...(subject !== NONE ? { subject: serial === NONE ? names[subject] : names[subject] + serial } : {}),
            ...(loc !== NONE ? { loc: JSON.parse(names[loc]) as SourceLocation } : {})
        };
    }
}

// ---------------------------------------------------------------------------------------
// Decoding

export class BlockFormatError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'BlockFormatError';
    }
}

const text = new TextDecoder('utf-8', { fatal: false });

/** What one block head says. */
export interface BlockHead {
    readonly bodyBytes: number;
    readonly records: number;
    readonly strings: number;
}

/** Reads a block head at `at` (BLOCK_HEAD bytes must be there); a wrong magic is a BlockFormatError. */
export function blockHead(bytes: Uint8Array, at = 0): BlockHead {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + at, BLOCK_HEAD);
    if (dv.getUint32(0, true) !== BLOCK_MAGIC) throw new BlockFormatError('not a trace block (wrong magic)');
    return { bodyBytes: dv.getUint32(4, true), records: dv.getUint32(8, true), strings: dv.getUint32(12, true) };
}

/**
 * Turns blocks back into records. Keeps the string table of everything read so far, so it must
 * see every block of a trace, in order: `decode` the ones wanted, `skip` the others (which reads
 * only their strings).
 */
export class TraceDecoder {
    readonly strings: string[] = [];
    private readonly locs = new Map<number, SourceLocation>();
    /** Characters a record's JSON took on average in the last batch: how many records `maxChars` is. */
    private charsPerRecord = 160;
    /** The current WALL of the block being read, and whether the block has had one (a WALL may hold any double, NaN too). */
    private wallNow = 0;
    private hasWall = false;
    /** The current TIME of the block being read, and whether the block has had one. */
    private timeNow = 0;
    private hasTime = false;

    /**
     * Decodes a block body (the bytes after its head), calling `emit` for its records from the
     * `from`-th on (0-based within the block), and for at most `max` of them. `learn` false: the
     * block's strings were read before (by `skip`), and are passed over.
     */
    decode(body: Uint8Array, emit: (r: TraceRecord) => void, from = 0, max = Infinity, learn = true): void {
        const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
        this.hasWall = false;
        this.hasTime = false;
        const end = body.byteLength;
        let n = 0;
        let emitted = 0;
        for (let p = 0; p < end;) {
            const op = body[p];
            if (op === OP_STRING) {
                p = learn ? this.defineString(body, dv, p) : p + 5 + this.u32(dv, p + 1, body);
                continue;
            }
            if (op === OP_WALL) {
                p = this.readWall(body, dv, p);
                continue;
            }
            if (op === OP_TIME) {
                p = this.readTime(body, dv, p);
                continue;
            }
            const next = this.next(body, dv, p, op);
            const records = op === OP_SERVED ? 3 : 1;
            for (let j = 0; j < records; j++) {
                if (n++ < from) continue;
                // Past the last one wanted, a block is read on only for strings it defines further on.
                if (emitted >= max) {
                    if (!learn) return;
                } else {
                    emitted++;
                    emit(this.recordAt(body, dv, p, op, j));
                }
            }
            p = next;
        }
    }

    /**
     * The JSON texts of a block's records from the `from`-th on, joined by `sep` (a subscriber's
     * batch: commas; JSON Lines: newlines), as JSON.stringify writes each decoded record: at most
     * `max` of them, and about `maxChars` characters at most (at least one record).
     *
     * The records are decoded, then stringified in one call: V8 writes an array of like objects
     * about twice as fast as text built from their fields (0.7 against 1.3 µs a record, mostly
     * numbers into text), and a subscriber's batch is the server's main cost of a live trace.
     */
    json(body: Uint8Array, from = 0, max = Infinity, sep = ',', learn = true, maxChars = Infinity): { text: string; count: number } {
        const records: TraceRecord[] = [];
        const limit = Number.isFinite(maxChars) ? Math.min(max, Math.max(1, Math.ceil(maxChars / this.charsPerRecord))) : max;
        this.decode(body, r => { records.push(r); }, from, limit, learn);
        if (records.length === 0) return { text: '', count: 0 };
        const text = sep === ',' ? JSON.stringify(records).slice(1, -1) : records.map(r => JSON.stringify(r)).join(sep);
        this.charsPerRecord = Math.max(16, text.length / records.length);
        return { text, count: records.length };
    }

    /** Reads a block body's strings only (a skipped block whose head says it has some). */
    skip(body: Uint8Array): void {
        const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
        for (let p = 0; p < body.byteLength;) {
            const op = body[p];
            p = op === OP_STRING ? this.defineString(body, dv, p) : op === OP_WALL || op === OP_TIME ? this.fixed(body, p, WALL_BYTES) : this.next(body, dv, p, op);
        }
    }

    private defineString(body: Uint8Array, dv: DataView, p: number): number {
        const length = this.u32(dv, p + 1, body);
        const end = p + 5 + length;
        if (end > body.byteLength) throw new BlockFormatError(`a string at byte ${p} runs past the end of its block`);
        this.strings.push(text.decode(body.subarray(p + 5, end)));
        return end;
    }

    private readWall(body: Uint8Array, dv: DataView, p: number): number {
        if (p + WALL_BYTES > body.byteLength) throw new BlockFormatError(`a record at byte ${p} runs past the end of its block`);
        this.wallNow = dv.getFloat64(p + 1, true);
        this.hasWall = true;
        return p + WALL_BYTES;
    }

    private readTime(body: Uint8Array, dv: DataView, p: number): number {
        if (p + TIME_BYTES > body.byteLength) throw new BlockFormatError(`a record at byte ${p} runs past the end of its block`);
        this.timeNow = dv.getFloat64(p + 1, true);
        this.hasTime = true;
        return p + TIME_BYTES;
    }

    /** The end of a fixed-size operation at `p`. */
    private fixed(body: Uint8Array, p: number, bytes: number): number {
        if (p + bytes > body.byteLength) throw new BlockFormatError(`a record at byte ${p} runs past the end of its block`);
        return p + bytes;
    }

    /** The current TIME, for a compact record at byte `p`: one must have come before it in the block. */
    private time(p: number): number {
        if (!this.hasTime) throw new BlockFormatError(`a record at byte ${p} of its block has no simulated time before it`);
        return this.timeNow;
    }

    /** The current WALL, for a hot record at byte `p`: one must have come before it in the block. */
    private wall(p: number): number {
        if (!this.hasWall) throw new BlockFormatError(`a record at byte ${p} of its block has no wall clock before it`);
        return this.wallNow;
    }

    /** Where the operation at `p` ends. */
    private next(body: Uint8Array, dv: DataView, p: number, op: number): number {
        let end: number;
        if (op === OP_COUNTER16) end = p + COUNTER16_BYTES;
        else if (op === OP_SERVED) end = p + SERVED_BYTES;
        else if (op === OP_CHILD) end = p + CHILD_BYTES;
        else if (op === OP_ENTITY) end = p + ENTITY_BYTES;
        else if (op === OP_COUNTER) end = p + COUNTER_BYTES;
        else if (op === OP_SPAN) end = p + ((body[p + 1] & OWN_START) !== 0 ? 50 : 42);
        else if (op === OP_JSON) end = p + 5 + this.u32(dv, p + 1, body);
        else throw new BlockFormatError(`unknown operation ${op} at byte ${p} of a block`);
        if (end > body.byteLength) throw new BlockFormatError(`a record at byte ${p} runs past the end of its block`);
        return end;
    }

    /** The length field of the operation at `at - 1`. */
    private u32(dv: DataView, at: number, body: Uint8Array): number {
        if (at + 4 > body.byteLength) throw new BlockFormatError(`a record at byte ${at - 1} runs past the end of its block`);
        return dv.getUint32(at, true);
    }

    /** String `id`, for the record at byte `p`. */
    private str(id: number, p: number): string {
        const s = this.strings[id];
        if (s === undefined) throw new BlockFormatError(`string ${id} is used before it is defined (by the record at byte ${p})`);
        return s;
    }

    /** A span's subject: string `id`, with `serial` appended unless it is NONE. */
    private subject(id: number, serial: number, p: number): string {
        return serial === NONE ? this.str(id, p) : this.str(id, p) + serial;
    }

    /** The location in string `id`, for the span at byte `p`. */
    private location(id: number, p: number): SourceLocation {
        let loc = this.locs.get(id);
        if (loc === undefined) {
            loc = parseJson(this.str(id, p), `the location of the span at byte ${p}`) as SourceLocation;
            this.locs.set(id, loc);
        }
        return loc;
    }

    private category(flags: number, p: number): SpanCategory {
        const cat = CATEGORIES[flags & 0x7f];
        if (cat === undefined) throw new BlockFormatError(`unknown span category ${flags & 0x7f} at byte ${p}`);
        return cat;
    }

    /** Record `j` of the operation at `p` (only SERVED holds more than one). */
    private recordAt(body: Uint8Array, dv: DataView, p: number, op: number, j = 0): TraceRecord {
        if (op === OP_SERVED) {
            if (j > 0) {
                const at = j === 1 ? p + 25 : p + 35;
                return { kind: 'counter', name: this.str(dv.getUint16(at, true), p), t: this.time(p), wall: this.wall(p), value: dv.getFloat64(at + 2, true) };
            }
            const parent = dv.getUint32(p + 7, true);
            const subject = dv.getUint16(p + 11, true);
            const serial = dv.getUint32(p + 13, true);
            const wall = this.wall(p);
            const r: { -readonly [K in keyof SpanRecord]?: SpanRecord[K] } = { kind: 'span', id: dv.getUint32(p + 3, true) };
            if (parent !== 0) r.parent = parent;
            r.name = this.str(dv.getUint16(p + 1, true), p);
            r.cat = 'queue';
            r.start = dv.getFloat64(p + 17, true);
            r.end = this.time(p);
            r.wallStart = wall;
            r.wallEnd = wall;
            if (subject !== 0xffff) r.subject = this.subject(subject, serial, p);
            return r as SpanRecord;
        }
        if (op === OP_COUNTER16) {
            return { kind: 'counter', name: this.str(dv.getUint16(p + 1, true), p), t: this.time(p), wall: this.wall(p), value: dv.getFloat64(p + 3, true) };
        }
        if (op === OP_CHILD) {
            const cat = this.category(body[p + 1], p);
            const parent = dv.getUint32(p + 8, true);
            const subject = dv.getUint16(p + 12, true);
            const serial = dv.getUint32(p + 14, true);
            const loc = dv.getUint16(p + 18, true);
            const wall = this.wall(p);
            const r: { -readonly [K in keyof SpanRecord]?: SpanRecord[K] } = { kind: 'span', id: dv.getUint32(p + 4, true) };
            if (parent !== 0) r.parent = parent;
            r.name = this.str(dv.getUint16(p + 2, true), p);
            r.cat = cat;
            r.start = dv.getFloat64(p + 20, true);
            r.end = this.time(p);
            r.wallStart = wall;
            r.wallEnd = wall;
            if (subject !== 0xffff) r.subject = this.subject(subject, serial, p);
            if (loc !== 0xffff) r.loc = this.location(loc, p);
            return r as SpanRecord;
        }
        if (op === OP_ENTITY) {
            const subject = dv.getUint16(p + 7, true);
            const serial = dv.getUint32(p + 9, true);
            const r: { -readonly [K in keyof SpanRecord]?: SpanRecord[K] } = { kind: 'span', id: dv.getUint32(p + 3, true) };
            r.name = this.str(dv.getUint16(p + 1, true), p);
            r.cat = 'entity';
            r.start = dv.getFloat64(p + 13, true);
            r.end = this.time(p);
            r.wallStart = dv.getFloat64(p + 21, true);
            r.wallEnd = this.wall(p);
            if (subject !== 0xffff) r.subject = this.subject(subject, serial, p);
            return r as SpanRecord;
        }
        if (op === OP_COUNTER) {
            return { kind: 'counter', name: this.str(dv.getUint32(p + 1, true), p), t: dv.getFloat64(p + 5, true), wall: this.wall(p), value: dv.getFloat64(p + 13, true) };
        }
        if (op === OP_SPAN) {
            const flags = body[p + 1];
            const cat = this.category(flags, p);
            const parent = dv.getUint32(p + 10, true);
            const subject = dv.getUint32(p + 14, true);
            const serial = dv.getUint32(p + 18, true);
            const loc = dv.getUint32(p + 22, true);
            const wallEnd = this.wall(p);
            const r: { -readonly [K in keyof SpanRecord]?: SpanRecord[K] } = { kind: 'span', id: dv.getUint32(p + 6, true) };
            if (parent !== 0) r.parent = parent;
            r.name = this.str(dv.getUint32(p + 2, true), p);
            r.cat = cat;
            r.start = dv.getFloat64(p + 26, true);
            r.end = dv.getFloat64(p + 34, true);
            r.wallStart = (flags & OWN_START) !== 0 ? dv.getFloat64(p + 42, true) : wallEnd;
            r.wallEnd = wallEnd;
            if (subject !== NONE) r.subject = this.subject(subject, serial, p);
            if (loc !== NONE) r.loc = this.location(loc, p);
            return r as SpanRecord;
        }
        const length = dv.getUint32(p + 1, true);
        const value = parseJson(text.decode(body.subarray(p + 5, p + 5 + length)), `the JSON record at byte ${p}`);
        if (typeof value !== 'object' || value === null || typeof (value as { kind?: unknown }).kind !== 'string') {
            throw new BlockFormatError(`the JSON record at byte ${p} is not an object with a "kind"`);
        }
        return value as TraceRecord;
    }
}

/** JSON.parse, its SyntaxError told as a BlockFormatError saying what was being read. */
function parseJson(json: string, what: string): unknown {
    try {
        return JSON.parse(json) as unknown;
    } catch (error) {
        throw new BlockFormatError(`${what} is not JSON (${(error as Error).message})`);
    }
}
