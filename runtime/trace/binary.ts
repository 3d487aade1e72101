/**
 * The stored trace, binary (format version 4): what the engine writes while it runs, what the
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
 * A file: one JSON header line (as in version 1, with `"version": 4, "encoding": "binary"`),
 * then blocks. A block: a 16-byte head (magic `AIB1`, body length, records, strings) and a
 * body of operations, little-endian. The engine's hot records go in the aligned operations,
 * each at a multiple of 8 bytes from the start of its block (PAD bytes before it), its fields
 * in 32-bit words and doubles at their own alignment:
 *
 *   PAD       u8 0                                           one byte of padding
 *   TIME8     u8 11, 7 zero bytes, f64 t                     16 bytes; the simulated time of the aligned records after it
 *   COUNT8    u8 12, u8 0, u16 name, u32 value               8 bytes; a counter at a whole number, at the current TIME
 *   COUNT8_AT u8 13, u8 0, u16 name, u32 value, f64 t        16 bytes; the same at a new TIME (t), which holds from here on
 *   COUNTER8  u8 14, u8 0, u16 name, u32 0, f64 value        16 bytes; a counter at any value, at the current TIME
 *   ENTITY8   u8 15, u8 0, u16 name, u32 id, u16 subject, u16 0, u32 serial, f64 start, f64 wallStart
 *                                                            32 bytes; an entity's span, ending at the current TIME
 *   CHILD8    u8 16, u8 cat, u16 name, u32 id, u32 parent, u16 subject, u16 loc, u32 serial, u32 0, f64 start
 *                                                            32 bytes; a step's or queue's span, ending at the current
 *                                                            TIME, its wallStart and wallEnd the current WALL
 *   SERVED8   u8 17, u8 0, u16 name, u32 id, u32 parent, u16 subject, u16 busyName, u32 serial,
 *             u16 queueName, u16 0, f64 start, u32 busy, u32 queue
 *                                                            40 bytes, three records: a queue's span ending at the current
 *                                                            TIME (wall clock: the current WALL), then the two counters
 *   ENTITY_STEP8 u8 18, u8 0, u16 name, u32 id, u16 subject, u16 stepName, u32 serial, u32 stepId, u16 loc, u16 0,
 *             f64 start, f64 wallStart, f64 stepStart     48 bytes, two records: the entity's last step (its child, with its
 *                                                            subject), then the entity's span, both ending at the current TIME
 * and the others unaligned:
 *   STRING    u8 4, u32 length, UTF-8 bytes                  defines the next string id (0, 1, …)
 *   WALL      u8 5, f64 wall                                 the wall clock of the records after it
 *   COUNTER   u8 1, u32 name, f64 t, f64 value               21 bytes; wall: the current WALL
 *   SPAN      u8 2, u8 flags, u32 name, u32 id, u32 parent, u32 subject, u32 serial, u32 loc,
 *             f64 start, f64 end[, f64 wallStart]            42 or 50 bytes; wallEnd: the current WALL
 *   JSON      u8 3, u32 length, UTF-8 bytes                  any record, as its JSON text
 * Version 3 files hold, instead of the aligned operations, unaligned ones (TIME 6, COUNTER16 7,
 * ENTITY 8, CHILD 9, SERVED 10; docs/trace-format.md); version 2 files hold only the general
 * ones. Readers take all of them.
 *
 * Why aligned: the engine writes the aligned operations through a Uint32Array and a
 * Float64Array over its block, which costs the simulation's thread about two thirds of what the
 * same fields cost through a DataView (bank, 2 M customers, in one process: 79–80% of untraced
 * speed encoded against 74–75%; 81–82% with ENTITY_STEP, at 113 bytes a customer against 125). The records of one instant share a TIME,
 * string ids take 16 bits, and whole-number levels 32 bits. Past 65,535 strings, a span id
 * past 32 bits, a level that is not a whole number in a served wait, or on a big-endian machine
 * (typed arrays write in the machine's byte order), it writes the general ones.
 *
 * The engine reads the wall clock once every few dozen events, not per record (a read costs
 * about as much as a whole customer of the bank example): a WALL says what that reading was,
 * and the COUNTERs and SPANs after it, in the same block, carry it. A block restates it before
 * its first such record (and TIME before its first aligned record), so every block decodes on
 * its own strings table alone.
 * Span flags: the category (index in CATEGORIES) in the low bits; OWN_START when wallStart is
 * not the current WALL and follows. `parent` 0 is none; `subject` and `loc` NONE are none; a subject
 * is string `subject` followed by the decimal `serial` (`Customer#` + 17), or the string alone
 * when `serial` is NONE (in the aligned operations, a 16-bit subject or loc of 0xffff is none);
 * `loc` is the id of a string holding the location's JSON. Strings are
 * not records: a block's `records` counts the others, and `strings` tells a reader that skips
 * the block whether it must still read it for its strings.
 */
import type { SourceLocation, SpanCategory, SpanRecord, TraceRecord } from '../../protocol/index.js';

export const BLOCK_MAGIC = 0x31424941; // "AIB1"
export const BLOCK_HEAD = 16;
/**
 * The engine's block size: 1 MiB, about 9,000 customers of the bank example, or 3 ms of its
 * traced run. Written to the file from the simulation's thread, a 1 MiB block costs it about one
 * point of untraced speed less than a 256 KiB one (bank, 2 M customers in one process: 75.6–76.3%
 * against 74.9%), and a reader that wants a record in it reads it whole (the server's live
 * subscribers: a few tens of such reads a second).
 */
export const BLOCK_BYTES = 1024 * 1024;
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
/** One byte of padding (before an aligned operation). */
export const OP_PAD = 0;
export const OP_TIME8 = 11;
export const OP_COUNT8 = 12;
export const OP_COUNT8_AT = 13;
export const OP_COUNTER8 = 14;
export const OP_ENTITY8 = 15;
export const OP_CHILD8 = 16;
export const OP_SERVED8 = 17;
export const OP_ENTITY_STEP8 = 18;
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
const TIME8_BYTES = 16;
const COUNT8_BYTES = 8;
const COUNT8_AT_BYTES = 16;
const COUNTER8_BYTES = 16;
const ENTITY8_BYTES = 32;
const CHILD8_BYTES = 32;
const SERVED8_BYTES = 40;
const ENTITY_STEP8_BYTES = 48;
/**
 * The most one hot record takes in the block: an ENTITY_STEP8 and the TIME8 before it, or a
 * general SPAN (what room() makes room for; a fallback writing several goes through it for each).
 */
const HOT_MAX = Math.max(ENTITY_STEP8_BYTES + TIME8_BYTES, SPAN_BYTES);
/**
 * The aligned operations are written through typed arrays, whose byte order is the machine's:
 * on a big-endian one, the engine writes the general (DataView, little-endian) ones instead.
 */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
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
    /** Block capacity in bytes (default BLOCK_BYTES); a record larger than that gets a block of its own. */
    readonly blockBytes?: number;
    /** flushIfDue flushes when this many milliseconds have passed since the last flush (default 100). */
    readonly flushMs?: number;
    /** Milliseconds, monotonic (default performance.now). */
    readonly now?: () => number;
}

const utf8 = new TextEncoder();

/** `n` rounded up to a multiple of 8. */
function align8(n: number): number {
    return (n + 7) & ~7;
}

/**
 * Writes records into a block buffer, and hands each full block to its sink. The hot kinds
 * (counters, spans without attributes) take numbers and string ids (`intern`); any other
 * record goes through `record`, as JSON. Not thread-safe, not reentrant: one per replication.
 */
export class TraceEncoder {
    readonly enabled = true;
    private u8!: Uint8Array;
    private dv!: DataView;
    /** The same block as 32-bit words and as doubles: the aligned operations' fields. */
    private u32!: Uint32Array;
    private f64!: Float64Array;
    private pos = BLOCK_HEAD;
    private records = 0;
    private strings = 0;
    private readonly ids = new Map<string, number>();
    /** The current wall clock, and whether this block has yet to say it (a WALL before the next hot record). */
    private wallNow = 0;
    private wallDue = true;
    /**
     * A hot record at `pos` up to this needs no flush, no WALL and no padding first (-1: look, in
     * `room`); anything that leaves `pos` unaligned sets it to -1.
     */
    private limit = -1;
    /** The simulated time the block's last TIME said (NaN: none yet in this block). */
    private timeNow = NaN;
    /**
     * The largest span id the aligned spans take: MAX_U32 while every string id fits in 16 bits,
     * -1 after (every span then goes the general way, with 32-bit string ids), and on a
     * big-endian machine.
     */
    private compactIds = LITTLE_ENDIAN ? MAX_U32 : -1;
    /** The largest counter name the aligned counters take (-1 on a big-endian machine). */
    private readonly compactNames = LITTLE_ENDIAN ? MAX_U16 : -1;
    private lastFlush: number;
    private readonly flushMs: number;
    private readonly now: () => number;
    /** Records in the blocks flushed so far. */
    private total = 0;
    /** The buffer to go back to after a block made larger for one large record. */
    private home: Uint8Array | undefined;

    constructor(private readonly sink: TraceBlockSink, options: EncoderOptions = {}) {
        this.use(new Uint8Array(align8(Math.max(4096, options.blockBytes ?? BLOCK_BYTES))));
        this.flushMs = options.flushMs ?? 100;
        this.now = options.now ?? (() => performance.now());
        this.lastFlush = this.now();
    }

    /** Writes into `u8` (its length a multiple of 8, at offset 0 of its buffer) from now on. */
    private use(u8: Uint8Array): void {
        this.u8 = u8;
        this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
        this.u32 = new Uint32Array(u8.buffer, u8.byteOffset, u8.byteLength >> 2);
        this.f64 = new Float64Array(u8.buffer, u8.byteOffset, u8.byteLength >> 3);
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
            this.limit = -1;
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
        if (name > this.compactNames) {
            this.counterWide(name, t, value);
            return;
        }
        let p = this.pos;
        if (p > this.limit) p = this.room();
        const u32 = this.u32;
        const w = p >> 2;
        if (value === value >>> 0) {
            // A level in whole units (a queue's length, a resource's busy units): 8 bytes, or 16 with a new TIME.
            u32[w + 1] = value;
            if (t === this.timeNow) {
                u32[w] = OP_COUNT8 | name << 16;
                this.pos = p + COUNT8_BYTES;
            } else {
                u32[w] = OP_COUNT8_AT | name << 16;
                this.f64[(p >> 3) + 1] = t;
                this.timeNow = t;
                this.pos = p + COUNT8_AT_BYTES;
            }
        } else {
            if (t !== this.timeNow) p = this.time(p, t);
            this.u32[p >> 2] = OP_COUNTER8 | name << 16;
            this.u32[(p >> 2) + 1] = 0;
            this.f64[(p >> 3) + 1] = value;
            this.pos = p + COUNTER8_BYTES;
        }
        this.records++;
    }

    /** A counter the aligned operations cannot take (a name past 16 bits, a big-endian machine): COUNTER. */
    private counterWide(name: number, t: number, value: number): void {
        let p = this.pos;
        if (p > this.limit) p = this.room();
        const dv = this.dv;
        this.u8[p] = OP_COUNTER;
        dv.setUint32(p + 1, name, true);
        dv.setFloat64(p + 5, t, true);
        dv.setFloat64(p + 13, value, true);
        this.pos = p + COUNTER_BYTES;
        this.limit = -1;
        this.records++;
    }

    /** Where an aligned record ending at simulated time `end` goes: after room for it, and the TIME it needs. */
    private at(end: number): number {
        const p = this.pos > this.limit ? this.room() : this.pos;
        return end === this.timeNow ? p : this.time(p, end);
    }

    /** Writes TIME `t` at `p` (aligned; room was made for it); returns where the record goes. */
    private time(p: number, t: number): number {
        this.u32[p >> 2] = OP_TIME8;
        this.u32[(p >> 2) + 1] = 0;
        this.f64[(p >> 3) + 1] = t;
        this.timeNow = t;
        return p + TIME8_BYTES;
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
        const p = this.at(end);
        const u32 = this.u32;
        const w = p >> 2;
        const f = p >> 3;
        u32[w] = OP_ENTITY8 | name << 16;
        u32[w + 1] = id;
        // NONE (no subject) becomes 0xffff.
        u32[w + 2] = subject & 0xffff;
        u32[w + 3] = serial;
        this.f64[f + 2] = start;
        this.f64[f + 3] = wallStart;
        this.pos = p + ENTITY8_BYTES;
        this.records++;
    }

    /**
     * An entity's span and the span of the step it ended with, both ending now: the step (id
     * `stepId`, named `stepName`, at `loc`, from `stepStart`) is the entity's child, with its
     * subject, and its wall clock, start and end, the current one. Two records in one operation,
     * step first: what a discrete-event engine records when an entity leaves as its last delay
     * ends. Other fields as {@link entitySpan}'s.
     */
    entityStep(name: number, id: number, subject: number, serial: number, start: number, end: number, wallStart: number,
        stepName: number, stepId: number, loc: number, stepStart: number): void {
        if (stepId > this.compactIds || id > this.compactIds) {
            this.childSpan(CAT_STEP, stepName, stepId, id, subject, serial, loc, stepStart, end);
            this.entitySpan(name, id, subject, serial, start, end, wallStart);
            return;
        }
        const p = this.at(end);
        const u32 = this.u32;
        const w = p >> 2;
        const f = p >> 3;
        u32[w] = OP_ENTITY_STEP8 | name << 16;
        u32[w + 1] = id;
        u32[w + 2] = (subject & 0xffff) | stepName << 16;
        u32[w + 3] = serial;
        u32[w + 4] = stepId;
        u32[w + 5] = loc & 0xffff;
        this.f64[f + 3] = start;
        this.f64[f + 4] = wallStart;
        this.f64[f + 5] = stepStart;
        this.pos = p + ENTITY_STEP8_BYTES;
        this.records += 2;
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
        const p = this.at(end);
        const u32 = this.u32;
        const w = p >> 2;
        u32[w] = OP_CHILD8 | cat << 8 | name << 16;
        u32[w + 1] = id;
        u32[w + 2] = parent;
        u32[w + 3] = (subject & 0xffff) | loc << 16;
        u32[w + 4] = serial;
        u32[w + 5] = 0;
        this.f64[(p >> 3) + 3] = start;
        this.pos = p + CHILD8_BYTES;
        this.records++;
    }

    /**
     * A wait in a queue that ends now, as the resource takes the entity in, and the resource's
     * two counters after it (busy, queue length): three records in one operation, the three a
     * discrete-event engine makes whenever it serves an entity that waited.
     */
    served(name: number, id: number, parent: number, subject: number, serial: number, start: number, end: number,
        busyName: number, busy: number, queueName: number, queue: number): void {
        if (id > this.compactIds || busy !== busy >>> 0 || queue !== queue >>> 0 || busyName > MAX_U16 || queueName > MAX_U16) {
            this.span(CAT_QUEUE, name, id, parent, subject, serial, NONE, start, end, this.wallNow);
            this.counter(busyName, end, busy);
            this.counter(queueName, end, queue);
            return;
        }
        const p = this.at(end);
        const u32 = this.u32;
        const w = p >> 2;
        u32[w] = OP_SERVED8 | name << 16;
        u32[w + 1] = id;
        u32[w + 2] = parent;
        u32[w + 3] = (subject & 0xffff) | busyName << 16;
        u32[w + 4] = serial;
        u32[w + 5] = queueName;
        this.f64[(p >> 3) + 3] = start;
        u32[w + 8] = busy;
        u32[w + 9] = queue;
        this.pos = p + SERVED8_BYTES;
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
        // The general operations carry their own wall clock only from a WALL before them.
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
        this.limit = -1;
        this.records++;
    }

    /** Records encoded so far, in all blocks. */
    get count(): number {
        return this.total + this.records;
    }

    /**
     * The slow part of a hot record, out of line so that the hot methods stay small enough to be
     * inlined: room for the largest one (flushing), the WALL the block owes, and padding to the
     * next multiple of 8 bytes. Returns where the record goes, and sets `limit` so that the next
     * ones skip this while all three hold.
     */
    private room(): number {
        if (this.pos + WALL_BYTES + 7 + HOT_MAX > this.u8.length) this.flush();
        if (this.wallDue) {
            const p = this.pos;
            this.u8[p] = OP_WALL;
            this.dv.setFloat64(p + 1, this.wallNow, true);
            this.pos = p + WALL_BYTES;
            this.wallDue = false;
        }
        while ((this.pos & 7) !== 0) this.u8[this.pos++] = OP_PAD;
        this.limit = this.u8.length - HOT_MAX;
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
        this.limit = -1;
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
            this.use(this.home);
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
            this.use(new Uint8Array(align8(BLOCK_HEAD + bytes)));
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
            if (op === OP_TIME || op === OP_TIME8) {
                p = this.readTime(body, dv, p, op);
                continue;
            }
            if (op === OP_PAD) {
                p = this.pad(p);
                continue;
            }
            const next = this.next(body, dv, p, op);
            // Its time holds for the records after it, whether or not this one is wanted.
            if (op === OP_COUNT8_AT) this.setTime(dv.getFloat64(p + 8, true));
            const records = op === OP_SERVED || op === OP_SERVED8 ? 3 : op === OP_ENTITY_STEP8 ? 2 : 1;
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

    /** Reads a block body's strings only (a skipped block whose head says it has some); returns how many records it passed over. */
    skip(body: Uint8Array): number {
        const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
        let records = 0;
        for (let p = 0; p < body.byteLength;) {
            const op = body[p];
            if (op === OP_STRING) p = this.defineString(body, dv, p);
            else if (op === OP_WALL || op === OP_TIME) p = this.fixed(body, p, WALL_BYTES);
            else if (op === OP_TIME8) p = this.fixed(body, this.aligned(p, op), TIME8_BYTES);
            else if (op === OP_PAD) p = this.pad(p);
            else {
                p = this.next(body, dv, p, op);
                records += op === OP_SERVED || op === OP_SERVED8 ? 3 : op === OP_ENTITY_STEP8 ? 2 : 1;
            }
        }
        return records;
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

    /** A TIME (unaligned, version 3) or an aligned one. */
    private readTime(body: Uint8Array, dv: DataView, p: number, op: number): number {
        const bytes = op === OP_TIME ? TIME_BYTES : TIME8_BYTES;
        if (op === OP_TIME8) this.aligned(p, op);
        if (p + bytes > body.byteLength) throw new BlockFormatError(`a record at byte ${p} runs past the end of its block`);
        this.setTime(dv.getFloat64(p + bytes - 8, true));
        return p + bytes;
    }

    private setTime(t: number): void {
        this.timeNow = t;
        this.hasTime = true;
    }

    /**
     * Past a PAD at `p`. Padding only ever leads up to an aligned operation, so a zero at a
     * multiple of 8 is not padding: it is damage (a block whose body came back as zeros after a
     * crash would otherwise read as padding to its end, and hold fewer records than it says).
     */
    private pad(p: number): number {
        if ((p & 7) === 0) throw new BlockFormatError(`unknown operation 0 at byte ${p} of a block`);
        return p + 1;
    }

    /** `p`, where an aligned operation starts: a BlockFormatError unless at a multiple of 8 bytes (from the start of its block). */
    private aligned(p: number, op: number): number {
        if ((p & 7) !== 0) throw new BlockFormatError(`an aligned operation (${op}) at byte ${p} of a block is not at a multiple of 8`);
        return p;
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
        if (op >= OP_TIME8 && op <= OP_ENTITY_STEP8) this.aligned(p, op);
        if (op === OP_COUNT8) end = p + COUNT8_BYTES;
        else if (op === OP_SERVED8) end = p + SERVED8_BYTES;
        else if (op === OP_CHILD8) end = p + CHILD8_BYTES;
        else if (op === OP_ENTITY8) end = p + ENTITY8_BYTES;
        else if (op === OP_ENTITY_STEP8) end = p + ENTITY_STEP8_BYTES;
        else if (op === OP_COUNT8_AT) end = p + COUNT8_AT_BYTES;
        else if (op === OP_COUNTER8) end = p + COUNTER8_BYTES;
        else if (op === OP_COUNTER16) end = p + COUNTER16_BYTES;
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

    /**
     * A span record of the operation at `p`, its keys in the one order every encoding gives:
     * `parent` 0 is none, and `subject` and `loc` equal to `none` (0xffff in the compact
     * operations, NONE in SPAN) are none.
     */
    private spanOf(p: number, id: number, parent: number, name: string, cat: SpanCategory, start: number, end: number, wallStart: number, wallEnd: number,
        subject: number, serial: number, loc: number, none: number): SpanRecord {
        const r: { -readonly [K in keyof SpanRecord]?: SpanRecord[K] } = { kind: 'span', id };
        if (parent !== 0) r.parent = parent;
        r.name = name;
        r.cat = cat;
        r.start = start;
        r.end = end;
        r.wallStart = wallStart;
        r.wallEnd = wallEnd;
        if (subject !== none) r.subject = this.subject(subject, serial, p);
        if (loc !== none) r.loc = this.location(loc, p);
        return r as SpanRecord;
    }

    /** A counter record of the compact operation at `p`: at the current TIME and WALL. */
    private counterOf(p: number, name: number, value: number): TraceRecord {
        return { kind: 'counter', name: this.str(name, p), t: this.time(p), wall: this.wall(p), value };
    }

    /** Record `j` of the operation at `p` (SERVED holds three, ENTITY_STEP two). */
    private recordAt(body: Uint8Array, dv: DataView, p: number, op: number, j = 0): TraceRecord {
        const none = 0xffff;
        switch (op) {
            // Version 4: aligned.
            case OP_COUNT8:
            case OP_COUNT8_AT:
                return this.counterOf(p, dv.getUint16(p + 2, true), dv.getUint32(p + 4, true));
            case OP_COUNTER8:
                return this.counterOf(p, dv.getUint16(p + 2, true), dv.getFloat64(p + 8, true));
            case OP_SERVED8: {
                if (j > 0) return this.counterOf(p, dv.getUint16(p + (j === 1 ? 14 : 20), true), dv.getUint32(p + (j === 1 ? 32 : 36), true));
                const wall = this.wall(p);
                return this.spanOf(p, dv.getUint32(p + 4, true), dv.getUint32(p + 8, true), this.str(dv.getUint16(p + 2, true), p), 'queue',
                    dv.getFloat64(p + 24, true), this.time(p), wall, wall, dv.getUint16(p + 12, true), dv.getUint32(p + 16, true), none, none);
            }
            case OP_CHILD8: {
                const wall = this.wall(p);
                return this.spanOf(p, dv.getUint32(p + 4, true), dv.getUint32(p + 8, true), this.str(dv.getUint16(p + 2, true), p), this.category(body[p + 1], p),
                    dv.getFloat64(p + 24, true), this.time(p), wall, wall, dv.getUint16(p + 12, true), dv.getUint32(p + 16, true), dv.getUint16(p + 14, true), none);
            }
            case OP_ENTITY8:
                return this.spanOf(p, dv.getUint32(p + 4, true), 0, this.str(dv.getUint16(p + 2, true), p), 'entity',
                    dv.getFloat64(p + 16, true), this.time(p), dv.getFloat64(p + 24, true), this.wall(p), dv.getUint16(p + 8, true), dv.getUint32(p + 12, true), none, none);
            case OP_ENTITY_STEP8: {
                if (j === 1) {
                    return this.spanOf(p, dv.getUint32(p + 4, true), 0, this.str(dv.getUint16(p + 2, true), p), 'entity',
                        dv.getFloat64(p + 24, true), this.time(p), dv.getFloat64(p + 32, true), this.wall(p), dv.getUint16(p + 8, true), dv.getUint32(p + 12, true), none, none);
                }
                const wall = this.wall(p);
                return this.spanOf(p, dv.getUint32(p + 16, true), dv.getUint32(p + 4, true), this.str(dv.getUint16(p + 10, true), p), 'step',
                    dv.getFloat64(p + 40, true), this.time(p), wall, wall, dv.getUint16(p + 8, true), dv.getUint32(p + 12, true), dv.getUint16(p + 20, true), none);
            }
            // Version 3: compact, unaligned.
            case OP_COUNTER16:
                return this.counterOf(p, dv.getUint16(p + 1, true), dv.getFloat64(p + 3, true));
            case OP_SERVED: {
                if (j > 0) return this.counterOf(p, dv.getUint16(p + (j === 1 ? 25 : 35), true), dv.getFloat64(p + (j === 1 ? 27 : 37), true));
                const wall = this.wall(p);
                return this.spanOf(p, dv.getUint32(p + 3, true), dv.getUint32(p + 7, true), this.str(dv.getUint16(p + 1, true), p), 'queue',
                    dv.getFloat64(p + 17, true), this.time(p), wall, wall, dv.getUint16(p + 11, true), dv.getUint32(p + 13, true), none, none);
            }
            case OP_CHILD: {
                const cat = this.category(body[p + 1], p);
                const wall = this.wall(p);
                return this.spanOf(p, dv.getUint32(p + 4, true), dv.getUint32(p + 8, true), this.str(dv.getUint16(p + 2, true), p), cat,
                    dv.getFloat64(p + 20, true), this.time(p), wall, wall, dv.getUint16(p + 12, true), dv.getUint32(p + 14, true), dv.getUint16(p + 18, true), none);
            }
            case OP_ENTITY:
                return this.spanOf(p, dv.getUint32(p + 3, true), 0, this.str(dv.getUint16(p + 1, true), p), 'entity',
                    dv.getFloat64(p + 13, true), this.time(p), dv.getFloat64(p + 21, true), this.wall(p), dv.getUint16(p + 7, true), dv.getUint32(p + 9, true), none, none);
            // Every version: general.
            case OP_COUNTER:
                return { kind: 'counter', name: this.str(dv.getUint32(p + 1, true), p), t: dv.getFloat64(p + 5, true), wall: this.wall(p), value: dv.getFloat64(p + 13, true) };
            case OP_SPAN: {
                const flags = body[p + 1];
                const cat = this.category(flags, p);
                const wallEnd = this.wall(p);
                const wallStart = (flags & OWN_START) !== 0 ? dv.getFloat64(p + 42, true) : wallEnd;
                return this.spanOf(p, dv.getUint32(p + 6, true), dv.getUint32(p + 10, true), this.str(dv.getUint32(p + 2, true), p), cat,
                    dv.getFloat64(p + 26, true), dv.getFloat64(p + 34, true), wallStart, wallEnd, dv.getUint32(p + 14, true), dv.getUint32(p + 18, true), dv.getUint32(p + 22, true), NONE);
            }
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
