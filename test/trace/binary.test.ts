/**
 * The binary trace (runtime/trace/binary.ts) and its readers: whatever the
 * encoder is given comes back from the decoder as the record JSON.stringify would have written
 * (fast-check, in 4 KiB blocks so that records span many blocks and strings are defined in
 * blocks before the ones that use them), and `json` makes exactly JSON.stringify of that record
 * (the text the server sends). Selections within a block, a record larger than a block, ids too
 * large for the binary layout, damaged blocks (a located error, never another kind of error or
 * a hang), and the files: read whole or from a sequence number, cut by a kill, empty or with a
 * cut header; and their conversion to JSON Lines version 1.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SourceLocation, SpanCategory, TraceRecord } from '../../protocol/index.js';
import {
    BLOCK_HEAD, BLOCK_MAGIC, BlockFormatError, blockHead, CATEGORIES, NONE, OP_CHILD, OP_CHILD8, OP_COUNT8, OP_COUNT8_AT, OP_COUNTER, OP_COUNTER16,
    OP_COUNTER8, OP_ENTITY, OP_ENTITY8, OP_ENTITY_STEP8, OP_JSON, OP_PAD, OP_SERVED, OP_SERVED8, OP_SPAN, OP_STRING, OP_TIME, OP_TIME8, OP_WALL, TraceDecoder, TraceEncoder
} from '../../runtime/trace/binary.js';
import { BlockFileWriter } from '../../runtime/trace/block-file.js';
import { writeJsonl } from '../../runtime/trace/convert.js';
import { JsonlTraceWriter, TRACE_FORMAT, TRACE_VERSION, writeTraceHeader, type TraceHeader } from '../../runtime/trace/jsonl.js';
import { BINARY_TRACE_VERSION, readTrace, readTraceFrom, TraceFormatError, writeBinaryTraceHeader } from '../../runtime/trace/read.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-binary-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const HEADER = {
    kind: 'header', format: TRACE_FORMAT, runId: '20250101-000000-000-abcdef', twin: 'Fake', experiment: null,
    files: ['fake.twin'], point: 0, replication: 0, set: { n: 3 }, seed: 1, clocks: { sim: 's', wall: 'us' }, wallOrigin: 0
} as const;

// ---------------------------------------------------------------------------------------
// What the encoder is asked to write, and the records that must come back.

type Op =
    | { readonly op: 'wall'; readonly w: number }
    | { readonly op: 'counter'; readonly name: string; readonly t: number; readonly value: number }
    | {
        readonly op: 'span'; readonly cat: number; readonly name: string; readonly id: number; readonly parent: number;
        readonly subject?: string; readonly serial?: number; readonly loc?: SourceLocation;
        readonly start: number; readonly end: number; readonly wallStart: number | 'now';
    }
    /** An entity's span (the compact layout; the general one past 16-bit string ids or 32-bit ids). */
    | {
        readonly op: 'entity'; readonly name: string; readonly id: number; readonly subject?: string; readonly serial?: number;
        readonly start: number; readonly end: number; readonly wallStart: number;
    }
    /** An entity's span and its last step's (its child, with its subject; the step's wall clock the current one). */
    | {
        readonly op: 'entityStep'; readonly name: string; readonly id: number; readonly subject?: string; readonly serial?: number;
        readonly start: number; readonly end: number; readonly wallStart: number;
        readonly stepName: string; readonly stepId: number; readonly loc?: SourceLocation; readonly stepStart: number;
    }
    /** A step's or a queue's span inside an entity's, its wall clock the current one. */
    | {
        readonly op: 'child'; readonly cat: number; readonly name: string; readonly id: number; readonly parent: number;
        readonly subject?: string; readonly serial?: number; readonly loc?: SourceLocation; readonly start: number; readonly end: number;
    }
    /** A wait in a queue that ends as the resource takes the entity in, and the resource's two counters after it. */
    | {
        readonly op: 'served'; readonly name: string; readonly id: number; readonly parent: number; readonly subject?: string; readonly serial?: number;
        readonly start: number; readonly end: number; readonly busyName: string; readonly busy: number; readonly queueName: string; readonly queue: number;
    }
    | { readonly op: 'record'; readonly r: TraceRecord };

/** Feeds the ops to an encoder, and returns the records they stand for, as given. */
function play(encoder: TraceEncoder, ops: readonly Op[]): TraceRecord[] {
    let wall = 0;
    const out: TraceRecord[] = [];
    for (const o of ops) {
        if (o.op === 'wall') {
            encoder.wall(o.w);
            wall = o.w;
        } else if (o.op === 'counter') {
            encoder.counter(encoder.intern(o.name), o.t, o.value);
            out.push({ kind: 'counter', name: o.name, t: o.t, wall, value: o.value });
        } else if (o.op === 'span') {
            const wallStart = o.wallStart === 'now' ? wall : o.wallStart;
            encoder.span(o.cat, encoder.intern(o.name), o.id, o.parent, o.subject === undefined ? NONE : encoder.intern(o.subject),
                o.serial ?? NONE, encoder.loc(o.loc), o.start, o.end, wallStart);
            out.push({
                kind: 'span', id: o.id, ...(o.parent !== 0 ? { parent: o.parent } : {}), name: o.name, cat: CATEGORIES[o.cat], start: o.start, end: o.end,
                wallStart, wallEnd: wall,
                ...(o.subject !== undefined ? { subject: o.serial === undefined ? o.subject : o.subject + String(o.serial) } : {}),
                ...(o.loc !== undefined ? { loc: o.loc } : {})
            });
        } else if (o.op === 'entity') {
            encoder.entitySpan(encoder.intern(o.name), o.id, o.subject === undefined ? NONE : encoder.intern(o.subject), o.serial ?? NONE, o.start, o.end, o.wallStart);
            out.push({
                kind: 'span', id: o.id, name: o.name, cat: 'entity', start: o.start, end: o.end, wallStart: o.wallStart, wallEnd: wall,
                ...(o.subject !== undefined ? { subject: o.serial === undefined ? o.subject : o.subject + String(o.serial) } : {})
            });
        } else if (o.op === 'entityStep') {
            const subject = o.subject === undefined ? NONE : encoder.intern(o.subject);
            encoder.entityStep(encoder.intern(o.name), o.id, subject, o.serial ?? NONE, o.start, o.end, o.wallStart,
                encoder.intern(o.stepName), o.stepId, encoder.loc(o.loc), o.stepStart);
            const who = o.subject !== undefined ? { subject: o.serial === undefined ? o.subject : o.subject + String(o.serial) } : {};
            out.push({
                kind: 'span', id: o.stepId, ...(o.id !== 0 ? { parent: o.id } : {}), name: o.stepName, cat: 'step', start: o.stepStart, end: o.end,
                wallStart: wall, wallEnd: wall, ...who, ...(o.loc !== undefined ? { loc: o.loc } : {})
            });
            out.push({ kind: 'span', id: o.id, name: o.name, cat: 'entity', start: o.start, end: o.end, wallStart: o.wallStart, wallEnd: wall, ...who });
        } else if (o.op === 'child') {
            encoder.childSpan(o.cat, encoder.intern(o.name), o.id, o.parent, o.subject === undefined ? NONE : encoder.intern(o.subject),
                o.serial ?? NONE, encoder.loc(o.loc), o.start, o.end);
            out.push({
                kind: 'span', id: o.id, ...(o.parent !== 0 ? { parent: o.parent } : {}), name: o.name, cat: CATEGORIES[o.cat], start: o.start, end: o.end,
                wallStart: wall, wallEnd: wall,
                ...(o.subject !== undefined ? { subject: o.serial === undefined ? o.subject : o.subject + String(o.serial) } : {}),
                ...(o.loc !== undefined ? { loc: o.loc } : {})
            });
        } else if (o.op === 'served') {
            encoder.served(encoder.intern(o.name), o.id, o.parent, o.subject === undefined ? NONE : encoder.intern(o.subject), o.serial ?? NONE,
                o.start, o.end, encoder.intern(o.busyName), o.busy, encoder.intern(o.queueName), o.queue);
            out.push({
                kind: 'span', id: o.id, ...(o.parent !== 0 ? { parent: o.parent } : {}), name: o.name, cat: 'queue', start: o.start, end: o.end,
                wallStart: wall, wallEnd: wall,
                ...(o.subject !== undefined ? { subject: o.serial === undefined ? o.subject : o.subject + String(o.serial) } : {})
            });
            out.push({ kind: 'counter', name: o.busyName, t: o.end, wall, value: o.busy });
            out.push({ kind: 'counter', name: o.queueName, t: o.end, wall, value: o.queue });
        } else {
            encoder.record(o.r);
            out.push(o.r);
        }
    }
    return out;
}

/** What JSON.stringify makes of a record and JSON.parse gives back (non-finite numbers: null). */
function plain(r: unknown): unknown {
    return JSON.parse(JSON.stringify(r));
}

/** Encodes, and returns the blocks (each its own copy) and the records as given. */
function encodeAll(ops: readonly Op[], blockBytes = 4096): { blocks: Uint8Array[]; records: TraceRecord[] } {
    const blocks: Uint8Array[] = [];
    const encoder = new TraceEncoder({ enabled: true, blocks: true, block: b => { blocks.push(b.slice()); } }, { blockBytes, now: () => 0 });
    const records = play(encoder, ops);
    expect(encoder.count).toBe(records.length);
    encoder.flush();
    return { blocks, records };
}

function bodyOf(block: Uint8Array): Uint8Array {
    const head = blockHead(block);
    expect(BLOCK_HEAD + head.bodyBytes).toBe(block.length);
    return block.subarray(BLOCK_HEAD);
}

// Names over all of Unicode that UTF-8 can hold (no lone surrogates: see the note in the report
// of the encoder); JSON records carry any string, lone surrogates included.
const name = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.constantFrom('Teller.busy', 'queue Teller', 'Customer', 'a"b', 'back\\slash', 'line\nbreak', '\u0000\u001f\u007f', '😀', '\u2028\u2029', 'λμ', 'é'),
    // A few names that recur, so that most records use strings defined blocks before.
    fc.constantFrom('n0', 'n1', 'n2', 'n3')
);
const anyText = fc.oneof(name, fc.constantFrom('\ud800', '\udc00x'));
const number = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 1e21, 1e-7, 5e-324, Number.MAX_VALUE));
const u32 = fc.oneof(fc.integer({ min: 0, max: 0xfffffffe }), fc.constantFrom(1, 2, 0xfffffffe));
const loc: fc.Arbitrary<SourceLocation> = fc.record({ file: name, line: number, column: number });
const scalar = fc.oneof(anyText, number, fc.boolean());
const dict = fc.dictionary(anyText, scalar, { maxKeys: 4 });

const anyRecord: fc.Arbitrary<TraceRecord> = fc.oneof(
    fc.record({
        kind: fc.constant('span' as const), id: number, parent: number, name: anyText, cat: fc.constantFrom(...CATEGORIES) as fc.Arbitrary<SpanCategory>,
        start: number, end: number, wallStart: number, wallEnd: number, subject: anyText, attrs: dict, loc
    }, { requiredKeys: ['kind', 'id', 'name', 'cat', 'start', 'end', 'wallStart', 'wallEnd'] }),
    fc.record({ kind: fc.constant('counter' as const), name: anyText, t: number, wall: number, value: number }),
    fc.record({
        kind: fc.constant('message' as const), id: number, phase: fc.constantFrom('send', 'receive') as fc.Arbitrary<'send'>, channel: anyText, from: anyText,
        to: anyText, link: number, t: number, wall: number, payload: dict
    }, { requiredKeys: ['kind', 'id', 'phase', 'channel', 'from', 't', 'wall'] }),
    fc.record({
        kind: fc.constant('decision' as const), id: number, decision: anyText, agent: anyText, t: number, wall: number, chosen: anyText,
        scores: fc.array(fc.record({ option: anyText, score: number, criteria: fc.dictionary(anyText, number, { maxKeys: 3 }) }), { maxLength: 3 }),
        weights: fc.dictionary(anyText, number, { maxKeys: 3 })
    }),
    fc.record({ kind: fc.constant('instant' as const), name: anyText, t: number, wall: number, subject: anyText, attrs: dict, loc }, { requiredKeys: ['kind', 'name', 't', 'wall'] })
);

const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 2, arbitrary: fc.record({ op: fc.constant('wall' as const), w: number }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('counter' as const), name, t: number, value: number }) },
    {
        weight: 6, arbitrary: fc.record({
            op: fc.constant('span' as const), cat: fc.integer({ min: 0, max: CATEGORIES.length - 1 }), name, id: u32,
            parent: fc.oneof(fc.constant(0), u32), subject: name, serial: u32, loc,
            start: number, end: number, wallStart: fc.oneof(fc.constant('now' as const), number)
        }, { requiredKeys: ['op', 'cat', 'name', 'id', 'parent', 'start', 'end', 'wallStart'] })
    },
    {
        weight: 4, arbitrary: fc.record({
            op: fc.constant('entity' as const), name, id: u32, subject: name, serial: u32, start: number, end: number, wallStart: number
        }, { requiredKeys: ['op', 'name', 'id', 'start', 'end', 'wallStart'] })
    },
    {
        weight: 4, arbitrary: fc.record({
            op: fc.constant('entityStep' as const), name, id: u32, subject: name, serial: u32, start: number, end: number, wallStart: number,
            stepName: name, stepId: u32, loc, stepStart: number
        }, { requiredKeys: ['op', 'name', 'id', 'start', 'end', 'wallStart', 'stepName', 'stepId', 'stepStart'] })
    },
    {
        weight: 6, arbitrary: fc.record({
            op: fc.constant('child' as const), cat: fc.integer({ min: 0, max: CATEGORIES.length - 1 }), name, id: u32,
            parent: fc.oneof(fc.constant(0), u32), subject: name, serial: u32, loc, start: number, end: number
        }, { requiredKeys: ['op', 'cat', 'name', 'id', 'parent', 'start', 'end'] })
    },
    {
        weight: 4, arbitrary: fc.record({
            op: fc.constant('served' as const), name, id: u32, parent: fc.oneof(fc.constant(0), u32), subject: name, serial: u32,
            start: number, end: number, busyName: name, busy: number, queueName: name, queue: number
        }, { requiredKeys: ['op', 'name', 'id', 'parent', 'start', 'end', 'busyName', 'busy', 'queueName', 'queue'] })
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('record' as const), r: anyRecord }) }
);

/** Many short ops: enough to fill several 4 KiB blocks. */
const ops = fc.array(op, { minLength: 0, maxLength: 400 });

describe('binary trace round trip', () => {
    it('decodes every block back to the records as JSON.stringify would write them, and json() is exactly that text', () => {
        fc.assert(fc.property(ops, script => {
            const { blocks, records } = encodeAll(script);
            const decoder = new TraceDecoder();
            const texts = new TraceDecoder();
            const decoded: TraceRecord[] = [];
            for (const block of blocks) {
                const body = bodyOf(block);
                const before = decoded.length;
                decoder.decode(body, r => { decoded.push(r); });
                expect(decoded.length - before).toBe(blockHead(block).records);
                // The server's text: JSON.stringify of each decoded record, exactly.
                const { text, count } = texts.json(body, 0, Infinity, '\n');
                expect(count).toBe(decoded.length - before);
                if (count > 0) expect(text.split('\n')).toEqual(decoded.slice(before).map(r => JSON.stringify(r)));
            }
            expect(decoded.map(plain)).toEqual(records.map(plain));
        }), { numRuns: 150 });
    });

    it('decodes a block whose strings were read by skip with learn=false, and any from/max/maxChars selects the same records', () => {
        fc.assert(fc.property(ops, fc.array(fc.tuple(fc.nat(200), fc.nat(200), fc.integer({ min: 1, max: 3000 })), { minLength: 1, maxLength: 8 }), (script, picks) => {
            const { blocks } = encodeAll(script);
            const reference = new TraceDecoder();
            const skipper = new TraceDecoder();
            blocks.forEach((block, k) => {
                const body = bodyOf(block);
                const all: TraceRecord[] = [];
                reference.decode(body, r => { all.push(r); });
                skipper.skip(body);
                const again: TraceRecord[] = [];
                skipper.decode(body, r => { again.push(r); }, 0, Infinity, false);
                expect(again).toEqual(all);
                const [from, max, maxChars] = picks[k % picks.length];
                const some: TraceRecord[] = [];
                skipper.decode(body, r => { some.push(r); }, from, max, false);
                expect(some).toEqual(all.slice(from, from + max));
                const { text, count } = skipper.json(body, from, max, '\n', false, maxChars);
                const wanted = all.slice(from, from + max).map(r => JSON.stringify(r));
                // maxChars is met through an estimate of a record's length (the records are stringified in one
                // call): at least one record if any is left, never more than asked for, each exactly as JSON.stringify writes it.
                expect(count).toBeLessThanOrEqual(wanted.length);
                if (wanted.length > 0) expect(count).toBeGreaterThanOrEqual(1);
                expect(count === 0 ? '' : text).toBe(wanted.slice(0, count).join('\n'));
            });
        }), { numRuns: 60 });
    });
});

describe('binary blocks', () => {
    it('defines strings a block uses, even past the last record a selection wants, so the next block decodes', () => {
        const { blocks } = encodeAll([
            { op: 'wall', w: 7 },
            { op: 'counter', name: 'a', t: 1, value: 1 },
            { op: 'counter', name: 'b', t: 2, value: 2 },
            { op: 'counter', name: 'c', t: 3, value: 3 }
        ]);
        const more = encodeAll([{ op: 'wall', w: 8 }, { op: 'counter', name: 'c', t: 4, value: 4 }]);
        expect(blocks).toHaveLength(1);
        const decoder = new TraceDecoder();
        const got: TraceRecord[] = [];
        decoder.decode(bodyOf(blocks[0]), r => { got.push(r); }, 0, 1);
        expect(got).toEqual([{ kind: 'counter', name: 'a', t: 1, wall: 7, value: 1 }]);
        expect(decoder.strings).toEqual(['a', 'b', 'c']);
        // The second trace's block defines its own 'c' as string 0; what matters is that string 2 of the first is known here.
        expect(decoder.json(bodyOf(blocks[0]), 2, 1, ',', false).text).toBe('{"kind":"counter","name":"c","t":3,"wall":7,"value":3}');
        expect(more.blocks).toHaveLength(1);
    });

    it('puts a record larger than a block in a larger block, and goes on in blocks of the usual size', () => {
        const big = 'x'.repeat(20_000) + 'λ';
        const script: Op[] = [
            { op: 'wall', w: 1 },
            { op: 'counter', name: 'before', t: 0, value: 0 },
            { op: 'record', r: { kind: 'instant', name: 'big', t: 1, wall: 1, attrs: { text: big } } },
            // More than the large block has room for after it: the blocks after it are of the usual size.
            ...Array.from({ length: 4000 }, (_, i): Op => ({ op: 'counter', name: 'after', t: i, value: i }))
        ];
        const { blocks, records } = encodeAll(script);
        const sizes = blocks.map(b => b.length);
        expect(sizes.filter(s => s > 4096)).toHaveLength(1);
        expect(blocks.length).toBeGreaterThan(2);
        const decoder = new TraceDecoder();
        const decoded: TraceRecord[] = [];
        for (const b of blocks) decoder.decode(bodyOf(b), r => { decoded.push(r); });
        expect(decoded).toEqual(records);
    });

    it('a name longer than a block is defined in a block of its own', () => {
        const long = 'é'.repeat(5000);
        const { blocks, records } = encodeAll([{ op: 'wall', w: 3 }, { op: 'counter', name: long, t: 1, value: 2 }, { op: 'counter', name: long, t: 2, value: 3 }]);
        const decoder = new TraceDecoder();
        const decoded: TraceRecord[] = [];
        for (const b of blocks) decoder.decode(bodyOf(b), r => { decoded.push(r); });
        expect(decoded).toEqual(records);
    });

    it('writes spans with ids or serials past 2^32-2 as JSON, and they decode the same', () => {
        const span = (id: number, parent: number, serial: number | undefined): Op => ({
            op: 'span', cat: 1, name: 'delay', id, parent, subject: 'Customer#', serial, loc: { file: 'bank.twin', line: 3, column: 5 }, start: 1, end: 2, wallStart: 'now'
        });
        const script: Op[] = [
            { op: 'wall', w: 5 },
            span(0xfffffffe, 0xfffffffe, 0xfffffffe),
            span(0xffffffff, 1, 1),
            span(2 ** 32, 0, undefined),
            // A parent is older than its child (a lower id), as the engine's are.
            span(2 ** 41, 2 ** 40, 3),
            span(8, 1, 2 ** 33),
            span(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER)
        ];
        const { blocks, records } = encodeAll(script);
        expect(blocks).toHaveLength(1);
        const body = bodyOf(blocks[0]);
        const decoded: TraceRecord[] = [];
        new TraceDecoder().decode(body, r => { decoded.push(r); });
        expect(decoded).toEqual(records);
        expect(decoded[4]).toMatchObject({ id: 8, subject: 'Customer#8589934592' });
        expect(new TraceDecoder().json(body, 0, Infinity, '\n').text.split('\n')).toEqual(records.map(r => JSON.stringify(r)));
        // The first fits the binary layout; the others went as JSON (their text is in the block).
        const ascii = Buffer.from(body).toString('latin1');
        expect(ascii).not.toContain('"id":4294967294');
        for (const id of ['4294967295', '4294967296', '"id":2199023255552,', '"id":8,', String(Number.MAX_SAFE_INTEGER)]) expect(ascii).toContain(id);
    });
});

// ---------------------------------------------------------------------------------------
// Damaged blocks

/** A block body made by hand. */
class Body {
    private readonly bytes: number[] = [];
    u8(v: number): this { this.bytes.push(v & 0xff); return this; }
    u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.bytes.push(...b); return this; }
    f64(v: number): this { const b = Buffer.alloc(8); b.writeDoubleLE(v); this.bytes.push(...b); return this; }
    str(s: string): this { const b = Buffer.from(s, 'utf8'); return this.u8(OP_STRING).u32(b.length).raw(b); }
    json(s: string): this { const b = Buffer.from(s, 'utf8'); return this.u8(OP_JSON).u32(b.length).raw(b); }
    wall(w: number): this { return this.u8(OP_WALL).f64(w); }
    u16(v: number): this { return this.u8(v).u8(v >>> 8); }
    counter(name: number, t: number, value: number): this { return this.u8(OP_COUNTER).u32(name).f64(t).f64(value); }
    time(t: number): this { return this.u8(OP_TIME).f64(t); }
    counter16(name: number, value: number): this { return this.u8(OP_COUNTER16).u16(name).f64(value); }
    raw(b: Iterable<number>): this { this.bytes.push(...b); return this; }
    /** Padding to the next multiple of 8 bytes (a block's body starts at one). */
    pad(): this { while (this.bytes.length % 8 !== 0) this.u8(OP_PAD); return this; }
    time8(t: number): this { return this.pad().u32(OP_TIME8).u32(0).f64(t); }
    get(): Uint8Array { return Uint8Array.from(this.bytes); }
}

/** Runs a decoder over a body in every way a reader does, expecting a BlockFormatError matching `message` from each. */
function expectDamaged(body: Uint8Array, message: RegExp): void {
    const ways: Array<[string, (d: TraceDecoder) => void]> = [
        ['decode', d => d.decode(body, () => undefined)],
        ['json', d => d.json(body)]
    ];
    for (const [way, run] of ways) {
        let error: unknown;
        try {
            run(new TraceDecoder());
        } catch (e) {
            error = e;
        }
        expect(error, way).toBeInstanceOf(BlockFormatError);
        expect((error as Error).message, way).toMatch(message);
    }
}

describe('damaged blocks', () => {
    it('a wrong magic is a BlockFormatError', () => {
        const block = new Uint8Array(BLOCK_HEAD);
        expect(() => blockHead(block)).toThrow(BlockFormatError);
        new DataView(block.buffer).setUint32(0, BLOCK_MAGIC, true);
        expect(blockHead(block)).toEqual({ bodyBytes: 0, records: 0, strings: 0 });
    });

    it('an unknown operation is named with its byte', () => {
        expectDamaged(new Body().str('a').wall(1).counter(0, 1, 1).u8(200).raw(new Uint8Array(40)).get(), /unknown operation 200 at byte 36/);
        let error: unknown;
        try { new TraceDecoder().skip(new Body().u8(99).get()); } catch (e) { error = e; }
        expect(error).toBeInstanceOf(BlockFormatError);
    });

    it('a string used before it is defined', () => {
        expectDamaged(new Body().wall(1).counter(5, 1, 1).get(), /^string 5 is used before it is defined \(by the record at byte 9\)$/);
    });

    it('a hot record with no wall clock before it in its block', () => {
        expectDamaged(new Body().str('a').counter(0, 1, 1).get(), /no wall clock/);
    });

    it('a record, a string or a JSON text running past the end of its block', () => {
        const whole = new Body().str('name').wall(1).counter(0, 1, 1).get();
        for (const [cut, at] of [[whole.length - 1, 18], [whole.length - 8, 18], [15, 9], [14, 9], [7, 0], [3, 0]]) {
            expectDamaged(whole.subarray(0, cut), new RegExp(`^a (record|string) at byte ${at} runs past the end of its block$`));
        }
        expectDamaged(new Body().str('a').u8(OP_JSON).u32(1000).raw(Buffer.from('{"kind":"x"}')).get(), /runs past the end/);
        expectDamaged(new Body().u8(OP_STRING).u32(0xffffffff).get(), /runs past the end/);
    });

    it('a compact record with no simulated time before it in its block, or cut short', () => {
        expectDamaged(new Body().str('a').wall(1).counter16(0, 1).get(), /^a record at byte 15 of its block has no simulated time before it$/);
        const entity = new Body().str('a').wall(1).time(2).u8(OP_ENTITY).u16(0).u32(1).u16(0xffff).u32(NONE).f64(0).f64(0).get();
        expect(() => new TraceDecoder().decode(entity, () => undefined)).not.toThrow();
        expectDamaged(entity.subarray(0, entity.length - 1), /^a record at byte 24 runs past the end of its block$/);
        const child = new Body().str('a').wall(1).u8(OP_CHILD).u8(1).u16(0).u32(2).u32(1).u16(0xffff).u32(NONE).u16(0xffff).f64(0).get();
        expectDamaged(child, /^a record at byte 15 of its block has no simulated time before it$/);
        expectDamaged(new Body().str('a').wall(1).time(2).u8(OP_CHILD).u8(9).u16(0).u32(2).u32(1).u16(0xffff).u32(NONE).u16(0xffff).f64(0).get(), /^unknown span category 9 at byte 24$/);
        expectDamaged(new Body().str('a').wall(1).time(2).counter16(3, 1).get(), /^string 3 is used before it is defined/);
        expectDamaged(new Body().str('a').wall(1).u8(OP_TIME).f64(1).get().subarray(0, 20), /runs past the end/);
    });

    it('writes aligned records while string ids fit 16 bits, and the general ones after: both decode the same', () => {
        const script: Op[] = [{ op: 'wall', w: 5 }];
        const span = (i: number): Op => ({ op: 'child', cat: 1, name: 'delay', id: 10 + i, parent: 1, subject: 'Customer#', serial: i, loc: { file: 'a.twin', line: 2, column: 3 }, start: i, end: i + 1 });
        const served = (i: number, busy = 3): Op => ({ op: 'served', name: 'queue Teller', id: 20 + i, parent: 1, subject: 'Customer#', serial: i, start: 0, end: i + 1, busyName: 'Teller.busy', busy, queueName: 'Teller.queue', queue: i });
        const leaves = (i: number): Op => ({
            op: 'entityStep', name: 'Customer', id: 30 + i, subject: 'Customer#', serial: i, start: 0, end: i + 1, wallStart: 2, stepName: 'delay', stepId: 40 + i,
            loc: { file: 'a.twin', line: 4, column: 5 }, stepStart: 0.5
        });
        script.push(span(0), served(0), { op: 'entity', name: 'Customer', id: 1, subject: 'Customer#', serial: 7, start: 0, end: 1, wallStart: 2 }, leaves(0), { op: 'counter', name: 'q', t: 1, value: 3 });
        // A counter at a new time; levels that are not whole numbers (a served wait whose busy level is not one goes as a span and two counters).
        script.push({ op: 'counter', name: 'q', t: 1.5, value: 4 }, { op: 'counter', name: 'level', t: 1.5, value: 3.25 }, served(9, 2.5), { op: 'counter', name: 'level', t: 1.75, value: -1 });
        // 70,000 more strings: past 65,535, every hot record takes the general layout.
        for (let i = 0; i < 70_000; i++) script.push({ op: 'counter', name: `c${i}`, t: 2, value: i });
        script.push(span(1), served(1), { op: 'entity', name: 'Customer', id: 2, subject: 'Customer#', serial: 8, start: 0, end: 3, wallStart: 2 }, leaves(1), { op: 'counter', name: 'q', t: 4, value: 5 });
        const { blocks, records } = encodeAll(script, 256 * 1024);
        const decoder = new TraceDecoder();
        const decoded: TraceRecord[] = [];
        const ops = new Set<number>();
        const aligned = new Set([OP_TIME8, OP_COUNT8, OP_COUNT8_AT, OP_COUNTER8, OP_ENTITY8, OP_CHILD8, OP_SERVED8, OP_ENTITY_STEP8]);
        const fixed: Record<number, number> = {
            [OP_PAD]: 1, [OP_WALL]: 9, [OP_COUNTER]: 21, [OP_TIME8]: 16, [OP_COUNT8]: 8, [OP_COUNT8_AT]: 16, [OP_COUNTER8]: 16, [OP_ENTITY8]: 32, [OP_CHILD8]: 32, [OP_SERVED8]: 40, [OP_ENTITY_STEP8]: 48
        };
        for (const b of blocks) {
            decoder.decode(bodyOf(b), r => { decoded.push(r); });
            const dv = new DataView(b.buffer, b.byteOffset);
            for (let p = BLOCK_HEAD; p < b.length;) {
                const o = b[p];
                ops.add(o);
                // Written through typed arrays: each at a multiple of 8 bytes from the start of its block.
                if (aligned.has(o)) expect(p % 8, `operation ${o} at byte ${p}`).toBe(0);
                const size = o === OP_STRING ? 5 + dv.getUint32(p + 1, true) : o === OP_SPAN ? ((b[p + 1] & 0x80) !== 0 ? 50 : 42) : fixed[o];
                expect(size, `operation ${o}`).toBeGreaterThan(0);
                p += size;
            }
        }
        expect(decoded).toEqual(records);
        for (const o of [...aligned, OP_SPAN, OP_COUNTER, OP_PAD]) expect(ops.has(o), String(o)).toBe(true);
        for (const o of [OP_TIME, OP_COUNTER16, OP_ENTITY, OP_CHILD, OP_SERVED]) expect(ops.has(o), String(o)).toBe(false);
    });

    it('reads the unaligned compact operations of version 3 files (TIME, COUNTER16, ENTITY, CHILD, SERVED)', () => {
        const loc = { file: 'a.twin', line: 2, column: 3 };
        // Strings 0–6: Customer, Customer#, delay, queue Teller, Teller.busy, Teller.queue, the location.
        const body = new Body().str('Customer').str('Customer#').str('delay').str('queue Teller').str('Teller.busy').str('Teller.queue').str(JSON.stringify(loc))
            .wall(5).time(2).counter16(5, 1.5)
            .u8(OP_CHILD).u8(1).u16(2).u32(11).u32(1).u16(1).u32(7).u16(6).f64(1)
            .u8(OP_SERVED).u16(3).u32(12).u32(1).u16(1).u32(8).f64(0.5).u16(4).f64(3).u16(5).f64(0)
            .u8(OP_ENTITY).u16(0).u32(1).u16(1).u32(7).f64(0.25).f64(4)
            .u8(OP_ENTITY).u16(0).u32(2).u16(0xffff).u32(NONE).f64(0.25).f64(4)
            .get();
        const got: TraceRecord[] = [];
        new TraceDecoder().decode(body, r => { got.push(r); });
        expect(got).toEqual([
            { kind: 'counter', name: 'Teller.queue', t: 2, wall: 5, value: 1.5 },
            { kind: 'span', id: 11, parent: 1, name: 'delay', cat: 'step', start: 1, end: 2, wallStart: 5, wallEnd: 5, subject: 'Customer#7', loc },
            { kind: 'span', id: 12, parent: 1, name: 'queue Teller', cat: 'queue', start: 0.5, end: 2, wallStart: 5, wallEnd: 5, subject: 'Customer#8' },
            { kind: 'counter', name: 'Teller.busy', t: 2, wall: 5, value: 3 },
            { kind: 'counter', name: 'Teller.queue', t: 2, wall: 5, value: 0 },
            { kind: 'span', id: 1, name: 'Customer', cat: 'entity', start: 0.25, end: 2, wallStart: 4, wallEnd: 5, subject: 'Customer#7' },
            { kind: 'span', id: 2, name: 'Customer', cat: 'entity', start: 0.25, end: 2, wallStart: 4, wallEnd: 5 }
        ]);
    });

    it('an aligned record with no simulated time before it in its block, cut short, or of an unknown category', () => {
        const head = (): Body => new Body().str('a').wall(1);
        expectDamaged(head().pad().u32(OP_COUNT8).u32(3).get(), /^a record at byte 16 of its block has no simulated time before it$/);
        const counted = head().pad().u32(OP_COUNT8_AT).u32(3).f64(2).u32(OP_COUNT8).u32(4).get();
        const got: TraceRecord[] = [];
        new TraceDecoder().decode(counted, r => { got.push(r); });
        expect(got).toEqual([{ kind: 'counter', name: 'a', t: 2, wall: 1, value: 3 }, { kind: 'counter', name: 'a', t: 2, wall: 1, value: 4 }]);
        // The time of a COUNT8_AT holds for the records after it even when a reader starts past it.
        const after: TraceRecord[] = [];
        new TraceDecoder().decode(counted, r => { after.push(r); }, 1);
        expect(after).toEqual([got[1]]);
        const entity = head().time8(2).u32(OP_ENTITY8).u32(1).u32(0xffff).u32(NONE).f64(0).f64(0).get();
        expect(() => new TraceDecoder().decode(entity, () => undefined)).not.toThrow();
        expectDamaged(entity.subarray(0, entity.length - 1), /^a record at byte 32 runs past the end of its block$/);
        expectDamaged(head().time8(2).u32(OP_CHILD8 | 9 << 8).u32(2).u32(1).u32(0xffffffff).u32(NONE).u32(0).f64(0).get(), /^unknown span category 9 at byte 32$/);
        expectDamaged(head().pad().u8(OP_TIME8).get(), /runs past the end/);
        // Aligned operations sit at multiples of 8, and padding only leads up to one: a zero at a
        // multiple of 8 (a body that came back as zeros) is damage, not padding to the end.
        expectDamaged(head().u8(OP_TIME8).u32(0).f64(2).get(), /^an aligned operation \(11\) at byte 15 of a block is not at a multiple of 8$/);
        expectDamaged(head().time8(2).wall(3).u8(OP_COUNT8).u8(0).u16(0).u32(1).get(), /^an aligned operation \(12\) at byte 41 of a block is not at a multiple of 8$/);
        expectDamaged(head().time8(2).u32(OP_COUNT8).u32(3).raw(new Uint8Array(24)).get(), /^unknown operation 0 at byte 40 of a block$/);
        for (const body of [head().pad().raw(new Uint8Array(64)).get(), new Uint8Array(64)]) {
            let error: unknown;
            try { new TraceDecoder().skip(body); } catch (e) { error = e; }
            expect((error as Error).message).toMatch(/^unknown operation 0 at byte (0|16) of a block$/);
        }
    });

    it('a span of an unknown category', () => {
        expectDamaged(new Body().str('s').wall(1).u8(OP_SPAN).u8(9).u32(0).u32(1).u32(0).u32(NONE).u32(NONE).u32(NONE).f64(0).f64(1).get(), /^unknown span category 9 at byte 15$/);
    });

    it('a JSON record that is not JSON, or not an object with a kind, is named with its byte', () => {
        for (const bad of ['{"kind":', '[1,2]', 'null', '{"name":"x"}', '"kind"', '']) {
            let error: unknown;
            try { new TraceDecoder().decode(new Body().str('a').json(bad).get(), () => undefined); } catch (e) { error = e; }
            expect(error, bad).toBeInstanceOf(BlockFormatError);
            expect((error as Error).message, bad).toMatch(/^the JSON record at byte 6 (is not JSON \(.+\)|is not an object with a "kind")$/);
        }
    });

    it('a span whose location is not JSON fails in decode and json alike; any JSON location is sent as JSON.stringify of it', () => {
        const span = (locId: number): Body => new Body().u8(OP_SPAN).u8(1).u32(0).u32(1).u32(0).u32(NONE).u32(NONE).u32(locId).f64(0).f64(1);
        const notJson = new Body().str('delay').str('bank.twin:3:5').wall(2).raw(span(1).get()).get();
        expectDamaged(notJson, /^the location of the span at byte \d+ is not JSON/);
        const spaced = new Body().str('delay').str('{ "line": 3,\n "file": "bank.twin", "column": 5 }').wall(2).raw(span(1).get()).get();
        const decoded: TraceRecord[] = [];
        new TraceDecoder().decode(spaced, r => { decoded.push(r); });
        expect(decoded).toEqual([{ kind: 'span', id: 1, name: 'delay', cat: 'step', start: 0, end: 1, wallStart: 2, wallEnd: 2, loc: { line: 3, file: 'bank.twin', column: 5 } }]);
        expect(new TraceDecoder().json(spaced).text).toBe(JSON.stringify(decoded[0]));
    });

    it('a JSON record stored with line breaks as its whitespace is sent on one line', () => {
        const body = new Body().json('{"kind":"instant",\r\n"name":"x","t":\n1,"wall":2}').get();
        const decoded: TraceRecord[] = [];
        new TraceDecoder().decode(body, r => { decoded.push(r); });
        expect(new TraceDecoder().json(body).text).toBe(JSON.stringify(decoded[0]));
        expect(JSON.stringify(decoded[0])).toBe('{"kind":"instant","name":"x","t":1,"wall":2}');
        expectDamaged(new Body().json('{"kind":\n').get(), /^the JSON record at byte 0 is not JSON/);
    });

    it('a WALL holding NaN is a wall clock like any other (not a missing one)', () => {
        const body = new Body().str('q').wall(NaN).counter(0, 1, 2).get();
        const decoded: TraceRecord[] = [];
        new TraceDecoder().decode(body, r => { decoded.push(r); });
        expect(decoded).toEqual([{ kind: 'counter', name: 'q', t: 1, wall: NaN, value: 2 }]);
        expect(new TraceDecoder().json(body).text).toBe('{"kind":"counter","name":"q","t":1,"wall":null,"value":2}');
    });

    it('random damage to a trace file is read as records or a TraceFormatError naming the block, never another error', async () => {
        const file = path.join(dir, 'trace.aimtrace');
        const script: Op[] = [];
        for (let i = 0; i < 400; i++) {
            script.push({ op: 'wall', w: i });
            // The general operations, the aligned ones (the engine's) and JSON, in turn.
            const loc = { file: 'f.twin', line: i, column: 1 };
            const kind = i % 6;
            script.push(kind === 0
                ? { op: 'span', cat: i % 5, name: `s${i % 7}`, id: i + 1, parent: i % 4, subject: 'Customer#', serial: i, loc, start: i, end: i + 1, wallStart: i % 2 === 0 ? 'now' : i - 1 }
                : kind === 1 ? { op: 'counter', name: `c${i % 5}`, t: i, value: i % 4 === 1 ? i + 0.5 : i }
                    : kind === 2 ? { op: 'record', r: { kind: 'instant', name: `log ${i}`, t: i, wall: i, attrs: { k: i } } }
                        : kind === 3 ? { op: 'served', name: 'queue R', id: i + 1, parent: i, subject: 'Customer#', serial: i, start: i - 1, end: i, busyName: 'R.busy', busy: 1, queueName: 'R.queue', queue: i % 3 }
                            : kind === 4 ? { op: 'entityStep', name: 'Customer', id: i, subject: 'Customer#', serial: i, start: 0, end: i, wallStart: 1, stepName: 'delay', stepId: i + 1, loc, stepStart: i - 1 }
                                : { op: 'child', cat: 1, name: 'delay', id: i + 1, parent: i, subject: 'Customer#', serial: i, loc, start: i - 1, end: i });
        }
        writeBinaryTraceHeader(file, HEADER);
        const start = fs.statSync(file).size;
        const fd = fs.openSync(file, 'a');
        play(new TraceEncoder(new BlockFileWriter(fd), { blockBytes: 4096 }), script);
        fs.closeSync(fd);
        const pristine = fs.readFileSync(file);
        await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: start, max: pristine.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async flips => {
            const damaged = Buffer.from(pristine);
            for (const [at, value] of flips) damaged[at] = value;
            fs.writeFileSync(file, damaged);
            const located = (error: unknown): void => {
                expect(error).toBeInstanceOf(TraceFormatError);
                expect((error as Error).message).toMatch(/^.*trace\.aimtrace: block \d+ at byte \d+: /);
            };
            let read: unknown[] | undefined;
            try {
                read = (await collect(readTrace(file))).slice(1);
            } catch (error) {
                located(error);
            }
            try {
                await collect(readTraceFrom(file, 200));
            } catch (error) {
                located(error);
            }
            const out = path.join(dir, 'out.jsonl');
            try {
                writeJsonl(file, out);
                // What reads as records converts to exactly their JSON.
                if (read !== undefined) expect(fs.readFileSync(out, 'utf8').split('\n').slice(1, -1).map(l => JSON.parse(l) as unknown)).toEqual(read.map(plain));
            } catch (error) {
                located(error);
                expect(read).toBeUndefined();
            }
        }), { numRuns: 200 });
    });
});

// ---------------------------------------------------------------------------------------
// Files

/** Counters 0..n-1 (names q0..q9, each first used in block 0) and spans, in 4 KiB blocks, in a binary trace file. */
function traceFile(n: number, name = 'trace.aimtrace'): { file: string; records: TraceRecord[]; blockEnds: number[]; counts: number[] } {
    const file = path.join(dir, name);
    writeBinaryTraceHeader(file, HEADER);
    const headerBytes = fs.statSync(file).size;
    const blockEnds: number[] = [];
    const counts: number[] = [];
    const fd = fs.openSync(file, 'a');
    const writer = new BlockFileWriter(fd);
    const encoder = new TraceEncoder({
        enabled: true, blocks: true,
        block: b => { writer.block(b); blockEnds.push(headerBytes + writer.bytes); counts.push(blockHead(b).records); }
    }, { blockBytes: 4096 });
    const script: Op[] = [];
    for (let i = 0; i < n; i++) {
        script.push({ op: 'wall', w: 1000 + i });
        script.push(i % 4 === 0
            ? { op: 'span', cat: 0, name: 'Customer', id: i + 1, parent: 0, subject: 'Customer#', serial: i, start: i, end: i + 0.5, wallStart: 'now' }
            : { op: 'counter', name: `q${i % 10}`, t: i, value: i % 7 });
    }
    const records = play(encoder, script);
    encoder.flush();
    fs.closeSync(fd);
    return { file, records, blockEnds, counts };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const item of items) out.push(item);
    return out;
}

describe('binary trace files', () => {
    it('readTrace gives the header, then every record; from(seq) numbers them', async () => {
        const { file, records, counts } = traceFile(2000);
        expect(counts.length).toBeGreaterThan(10);
        const reader = readTrace(file);
        const all = await collect(reader);
        expect(all[0]).toEqual({ ...HEADER, version: BINARY_TRACE_VERSION, encoding: 'binary' });
        expect(all.slice(1)).toEqual(records);
        expect(reader.records).toBe(2000);
        expect(reader.truncated).toBe(false);
        const numbered = await collect(readTrace(file).from(0));
        expect(numbered).toEqual(records.map((record, seq) => ({ seq, record })));
    });

    it('readTraceFrom starts inside a block, at a block boundary, at the last record and past the end', async () => {
        const { file, records, counts } = traceFile(2000);
        const boundary = counts[0] + counts[1];
        for (const k of [1, counts[0] - 1, counts[0], boundary, boundary + 1, 1999, 2000, 5000, -3, 2.5]) {
            const from = Math.max(0, Math.floor(k));
            const got = await collect(readTraceFrom(file, k));
            expect(got, `from ${k}`).toEqual(records.slice(from).map((record, i) => ({ seq: from + i, record })));
        }
    });

    it('a file cut in the middle of a block reads its complete blocks and says it was truncated', async () => {
        const { file, records, blockEnds, counts } = traceFile(1500);
        const whole = fs.readFileSync(file);
        const headerBytes = whole.indexOf(0x0a) + 1;
        const cuts = [headerBytes + 1, headerBytes + BLOCK_HEAD - 1, headerBytes + BLOCK_HEAD, headerBytes + BLOCK_HEAD + 1, blockEnds[0] - 1, blockEnds[0] + 5, blockEnds[2] + BLOCK_HEAD + 30, blockEnds[blockEnds.length - 1] - 1];
        for (const cut of cuts) {
            fs.writeFileSync(file, whole);
            fs.truncateSync(file, cut);
            const complete = blockEnds.filter(e => e <= cut).length;
            const expected = records.slice(0, counts.slice(0, complete).reduce((a, b) => a + b, 0));
            const reader = readTrace(file);
            expect((await collect(reader)).slice(1), `cut at ${cut}`).toEqual(expected);
            expect(reader.truncated, `cut at ${cut}`).toBe(true);
            expect(reader.records).toBe(expected.length);
            // Reading from a sequence number past what is left: nothing, and still truncated.
            const from = readTrace(file);
            expect(await collect(from.from(expected.length))).toEqual([]);
            expect(from.truncated).toBe(true);
        }
        // Cut exactly at a block's end: nothing is missing.
        fs.writeFileSync(file, whole);
        fs.truncateSync(file, blockEnds[1]);
        const reader = readTrace(file);
        expect((await collect(reader)).length - 1).toBe(counts[0] + counts[1]);
        expect(reader.truncated).toBe(false);
    });

    it('reads a version 2 file (its counters and spans carry their own times and 32-bit string ids), and the same in versions 3 and 4; refuses a version it does not know', async () => {
        const file = path.join(dir, 'trace.aimtrace');
        const body = new Body().str('q').str('delay').wall(7).counter(0, 1.5, 2)
            .u8(OP_SPAN).u8(1).u32(1).u32(9).u32(0).u32(NONE).u32(NONE).u32(NONE).f64(1).f64(2).get();
        const head = new Uint8Array(BLOCK_HEAD);
        const dv = new DataView(head.buffer);
        dv.setUint32(0, BLOCK_MAGIC, true);
        dv.setUint32(4, body.length, true);
        dv.setUint32(8, 2, true);
        dv.setUint32(12, 2, true);
        const header = (version: number): string => JSON.stringify({ ...HEADER, version, encoding: 'binary' }) + '\n';
        fs.writeFileSync(file, Buffer.concat([Buffer.from(header(2)), head, body]));
        expect((await collect(readTrace(file))).slice(1)).toEqual([
            { kind: 'counter', name: 'q', t: 1.5, wall: 7, value: 2 },
            { kind: 'span', id: 9, name: 'delay', cat: 'step', start: 1, end: 2, wallStart: 7, wallEnd: 7 }
        ]);
        // Version 3 (the unaligned compact operations) and 4 hold the same operations as 2, and more.
        for (const version of [3, 4]) {
            fs.writeFileSync(file, Buffer.concat([Buffer.from(header(version)), head, body]));
            expect((await collect(readTrace(file))).length, `version ${version}`).toBe(3);
        }
        fs.writeFileSync(file, Buffer.concat([Buffer.from(header(5)), head, body]));
        await expect(collect(readTrace(file))).rejects.toThrow(/binary trace version 5 is not one this reader knows \(2, 3 or 4\)/);
    });

    it('an empty file, a header alone and a cut header', async () => {
        const file = path.join(dir, 'trace.aimtrace');
        fs.writeFileSync(file, '');
        await expect(collect(readTrace(file))).rejects.toThrow(new TraceFormatError(file, 1, 'the trace file is empty'));
        writeBinaryTraceHeader(file, HEADER);
        const reader = readTrace(file);
        expect(await collect(reader)).toEqual([{ ...HEADER, version: BINARY_TRACE_VERSION, encoding: 'binary' }]);
        expect(reader.truncated).toBe(false);
        const header = fs.readFileSync(file);
        fs.writeFileSync(file, header.subarray(0, header.length - 10));
        await expect(collect(readTrace(file))).rejects.toThrow(/header line is incomplete/);
        fs.writeFileSync(file, header.subarray(0, header.length - 10) + '\n');
        await expect(collect(readTrace(file))).rejects.toThrow(TraceFormatError);
        fs.writeFileSync(file, JSON.stringify({ ...HEADER, version: 9, encoding: 'binary' }) + '\n');
        await expect(collect(readTrace(file))).rejects.toThrow(/binary trace version 9/);
    });

    it('a block head whose length runs past the end of the file is a cut block, left out unread (not gigabytes allocated and read)', async () => {
        const { file, blockEnds, counts } = traceFile(1000);
        const bytes = fs.readFileSync(file);
        for (const length of [0x80000000, 0xfffffff0, bytes.length]) {
            bytes.writeUInt32LE(length, blockEnds[0] + 4);
            fs.writeFileSync(file, bytes);
            const reader = readTrace(file);
            expect((await collect(reader)).length - 1).toBe(counts[0]);
            expect(reader.truncated).toBe(true);
            expect(writeJsonl(file, path.join(dir, 'out.jsonl'))).toEqual({ records: counts[0], truncated: true });
        }
    });

    it('a damaged block in a file is a TraceFormatError naming the block and its byte', async () => {
        const { file, blockEnds } = traceFile(1000);
        const bytes = fs.readFileSync(file);
        bytes[blockEnds[1]] ^= 0xff;
        fs.writeFileSync(file, bytes);
        await expect(collect(readTrace(file))).rejects.toThrow(`${file}: block 2 at byte ${blockEnds[1]}: not a trace block (wrong magic) (the trace is damaged)`);
        // An operation inside a block: its byte within the block is told too.
        bytes[blockEnds[1]] ^= 0xff;
        bytes[blockEnds[1] + BLOCK_HEAD] = 0x42;
        fs.writeFileSync(file, bytes);
        await expect(collect(readTrace(file))).rejects.toThrow(`${file}: block 2 at byte ${blockEnds[1]}: unknown operation 66 at byte 0 of a block (the trace is damaged)`);
    });

    it('a block whose head counts other records than its body holds is damaged (the records after it would be misnumbered)', async () => {
        const { file, blockEnds, counts } = traceFile(1000);
        const bytes = fs.readFileSync(file);
        for (const says of [counts[1] + 1, counts[1] - 1, 0]) {
            bytes.writeUInt32LE(says, blockEnds[0] + 8);
            fs.writeFileSync(file, bytes);
            const message = `${file}: block 1 at byte ${blockEnds[0]}: its head says ${says} records, its body holds ${counts[1]} (the trace is damaged)`;
            await expect(collect(readTrace(file)), `says ${says}`).rejects.toThrow(message);
            expect(() => writeJsonl(file, path.join(dir, 'out.jsonl'))).toThrow(message);
        }
        // Read from inside the block: still told, as far as the reader can count.
        bytes.writeUInt32LE(counts[1] + 5, blockEnds[0] + 8);
        fs.writeFileSync(file, bytes);
        await expect(collect(readTraceFrom(file, counts[0] + 3))).rejects.toThrow(`its head says ${counts[1] + 5} records, its body holds ${counts[1]}`);
        bytes.writeUInt32LE(counts[1] + 500, blockEnds[0] + 8);
        fs.writeFileSync(file, bytes);
        await expect(collect(readTraceFrom(file, counts[0] + counts[1] + 3))).rejects.toThrow(`its head says ${counts[1] + 500} records, its body holds fewer`);
        // The first block saying it has none: read from 0, it is not passed over as a block of strings alone.
        const first = traceFile(1000, 'first.aimtrace');
        const firstBytes = fs.readFileSync(first.file);
        const at = firstBytes.indexOf('\n') + 1;
        firstBytes.writeUInt32LE(0, at + 8);
        fs.writeFileSync(first.file, firstBytes);
        const message = `${first.file}: block 0 at byte ${at}: its head says 0 records, its body holds ${first.counts[0]} (the trace is damaged)`;
        await expect(collect(readTrace(first.file))).rejects.toThrow(message);
        expect(() => writeJsonl(first.file, path.join(dir, 'out.jsonl'))).toThrow(message);
        // Skipped to a record past it, the block is read for its strings, and its count still checked.
        await expect(collect(readTraceFrom(first.file, first.counts[0] + first.counts[1] - 1))).rejects.toThrow(`block 0 at byte ${at}: its head says 0 records, its body holds ${first.counts[0]}`);
    });
});

describe('writeJsonl', () => {
    it('writes JSON Lines version 1, record for record what readTrace gives of the binary trace', async () => {
        const { file, records } = traceFile(1200);
        fs.appendFileSync(file, Buffer.from([0x41, 0x49])); // a cut block at the end
        const out = path.join(dir, 'out.jsonl');
        expect(writeJsonl(file, out)).toEqual({ records: 1200, truncated: true });
        const lines = fs.readFileSync(out, 'utf8').split('\n');
        expect(lines.pop()).toBe('');
        const header = JSON.parse(lines[0]) as TraceHeader;
        expect(header).toEqual({ ...HEADER, version: TRACE_VERSION });
        expect('encoding' in header).toBe(false);
        expect(lines.slice(1).map(l => JSON.parse(l) as unknown)).toEqual(records.map(plain));
        // The JSON Lines reader (version 1) reads it back as the same records.
        const back = readTrace(out);
        expect((await collect(back)).slice(1)).toEqual((await collect(readTrace(file))).slice(1).map(plain));
        expect(back.truncated).toBe(false);
        // Nothing left behind but the output.
        expect(fs.readdirSync(dir).sort()).toEqual(['out.jsonl', 'trace.aimtrace']);
    });

    it('copies a legacy JSON Lines trace as it is', () => {
        const file = path.join(dir, 'old.jsonl');
        writeTraceHeader(file, { ...HEADER, version: TRACE_VERSION });
        const w = new JsonlTraceWriter(fs.openSync(file, 'a'));
        w.record({ kind: 'counter', name: 'q', t: 1, wall: 2, value: 3 });
        w.close();
        const out = path.join(dir, 'copy.jsonl');
        writeJsonl(file, out);
        expect(fs.readFileSync(out)).toEqual(fs.readFileSync(file));
    });

    it('leaves the old output in place when the trace is damaged', () => {
        const { file, blockEnds } = traceFile(600);
        const bytes = fs.readFileSync(file);
        bytes[blockEnds[0]] = 0;
        fs.writeFileSync(file, bytes);
        const out = path.join(dir, 'out.jsonl');
        fs.writeFileSync(out, 'old');
        expect(() => writeJsonl(file, out)).toThrow(/block 1 at byte \d+: not a trace block/);
        expect(fs.readFileSync(out, 'utf8')).toBe('old');
        expect(fs.readdirSync(dir).sort()).toEqual(['out.jsonl', 'trace.aimtrace']);
    });
});
