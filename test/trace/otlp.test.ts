/**
 * OTLP export: the OTLP/JSON of a trace is what OpenTelemetry's own JSON serialiser writes
 * for the same spans (decoded into the SDK's ReadableSpan type and serialised again by
 * @opentelemetry/otlp-transformer), every span/message/decision/instant is there with its
 * parent and its link; `--endpoint` pushes batches to a collector (a local HTTP server here)
 * and reports a failing or absent collector in one line, exit 1; Chrome export keeps every span;
 * a binary trace (what runs store) exports to the same bytes as the same records in JSON Lines,
 * from a file and from a stored run.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SpanRecord, TraceRecord } from '../../protocol/index.js';
import { exportCommand, type ExportOptions } from '../../runtime/cli/trace.js';
import { RunStore } from '../../runtime/store/run-store.js';
import { exportChrome } from '../../runtime/trace/chrome.js';
import { JsonlTraceWriter, TRACE_FORMAT, TRACE_VERSION, writeTraceHeader, type TraceHeader } from '../../runtime/trace/jsonl.js';
import { exportOtlp, spanIdOf, traceIdOf, type OtlpKeyValue, type OtlpSpan, type OtlpTraceRequest } from '../../runtime/trace/otlp.js';
import { createFakeModel } from '../experiment/fake-model.js';
import { writeBinaryTrace } from './export-support.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-otlp-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const WALL_ORIGIN = 1_764_590_000_123_456; // µs since the epoch: nanoseconds go beyond 2^53
const header = (runId: string): TraceHeader => ({
    kind: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, runId, twin: 'Fake', experiment: 'Sweep',
    files: ['fake.twin'], point: 0, replication: 0, set: { mean: 120 }, seed: 1, clocks: { sim: 's', wall: 'us' }, wallOrigin: WALL_ORIGIN
});

function traceFile(file: string, runId: string, steps: number): TraceRecord[] {
    writeTraceHeader(file, header(runId));
    const writer = new JsonlTraceWriter(fs.openSync(file, 'a'));
    const records: TraceRecord[] = [];
    let wall = 0;
    createFakeModel({ steps }).runReplication({
        seed: 1, replication: 0, horizon: Infinity, warmup: 0, wallClock: () => (wall += 10.25),
        trace: { enabled: true, record: r => { records.push(r); writer.record(r); } }
    });
    // An error instant with a location, as the engine writes one.
    const error: TraceRecord = { kind: 'instant', name: 'error', t: 5, wall: wall + 1, subject: 'Job#3', attrs: { message: 'negative delay' }, loc: { file: 'fake.twin', line: 11, column: 5 } };
    records.push(error);
    writer.record(error);
    writer.close();
    return records;
}

async function otlpOf(file: string): Promise<{ text: string; doc: OtlpTraceRequest }> {
    const chunks: string[] = [];
    const out = new PassThrough();
    out.setEncoding('utf8').on('data', (s: string) => chunks.push(s));
    await exportOtlp(file, out);
    out.end();
    const text = chunks.join('');
    return { text, doc: JSON.parse(text) as OtlpTraceRequest };
}

type ReadableSpan = Parameters<typeof JsonTraceSerializer.serializeRequest>[0][number];

function plain(kvs: readonly OtlpKeyValue[]): Record<string, string | number | boolean> {
    const out: Record<string, string | number | boolean> = {};
    for (const { key, value } of kvs) {
        const v = Object.values(value)[0] as string | number | boolean;
        out[key] = v;
    }
    return out;
}

const hr = (nanos: string): [number, number] => { const n = BigInt(nanos); return [Number(n / 1_000_000_000n), Number(n % 1_000_000_000n)]; };

/** Decodes OTLP/JSON into OpenTelemetry's SDK span type (ReadableSpan), the way a collector-side SDK sees it. */
function toReadableSpans(doc: OtlpTraceRequest): ReadableSpan[] {
    const spans: ReadableSpan[] = [];
    for (const rs of doc.resourceSpans) {
        const resource = { attributes: plain(rs.resource.attributes) } as unknown as ReadableSpan['resource'];
        for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
                spans.push({
                    name: s.name,
                    kind: s.kind - 1,
                    spanContext: () => ({ traceId: s.traceId, spanId: s.spanId, traceFlags: s.flags & 0xff }),
                    parentSpanContext: s.parentSpanId !== undefined ? { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: 1 } : undefined,
                    startTime: hr(s.startTimeUnixNano),
                    endTime: hr(s.endTimeUnixNano),
                    status: s.status,
                    attributes: plain(s.attributes),
                    links: s.links.map(l => ({ context: { traceId: l.traceId, spanId: l.spanId, traceFlags: l.flags & 0xff }, attributes: plain(l.attributes), droppedAttributesCount: 0 })),
                    events: s.events.map(e => ({ name: e.name, time: hr(e.timeUnixNano), attributes: plain(e.attributes), droppedAttributesCount: 0 })),
                    duration: [0, 0],
                    ended: true,
                    resource,
                    instrumentationScope: ss.scope,
                    droppedAttributesCount: 0,
                    droppedEventsCount: 0,
                    droppedLinksCount: 0
                } as unknown as ReadableSpan);
            }
        }
    }
    return spans;
}

describe('OTLP/JSON export', () => {
    it('is what OpenTelemetry serialises for the same spans, and keeps every span, parent and link', async () => {
        const runId = '20250101-000000-000-abcdef';
        const file = path.join(dir, 'trace.jsonl');
        const records = traceFile(file, runId, 60);
        const { text, doc } = await otlpOf(file);

        // Decoded into the SDK type and serialised again by the OpenTelemetry transformer: the same document.
        const readable = toReadableSpans(doc);
        const again: unknown = JSON.parse(new TextDecoder().decode(JsonTraceSerializer.serializeRequest(readable)));
        expect(again).toEqual(JSON.parse(JSON.stringify(doc)));
        // The protobuf encoder accepts it too (ids are valid hex of the right length, times fit fixed64).
        const proto = ProtobufTraceSerializer.serializeRequest(readable);
        expect(proto!.length).toBeGreaterThan(text.length / 4);

        // One resource per run, with the run's identity; one scope.
        expect(doc.resourceSpans).toHaveLength(1);
        const resource = plain(doc.resourceSpans[0].resource.attributes);
        expect(resource).toMatchObject({ 'service.name': 'Fake', 'aimatrix.run.id': runId, 'aimatrix.twin': 'Fake', 'aimatrix.experiment': 'Sweep', 'aimatrix.param.mean': 120 });
        expect(doc.resourceSpans[0].scopeSpans).toHaveLength(1);
        expect(doc.resourceSpans[0].scopeSpans[0].scope.name).toBe('aimatrix');
        const spans = doc.resourceSpans[0].scopeSpans[0].spans;

        // Every record but the counters is a span, ids unique, one trace id from the run id.
        const kept = records.filter(r => r.kind !== 'counter');
        expect(spans).toHaveLength(kept.length);
        expect(new Set(spans.map(s => s.spanId)).size).toBe(spans.length);
        for (const s of spans) {
            expect(s.traceId).toBe(traceIdOf(runId));
            expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
            expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
        }
        const byId = new Map(spans.map(s => [s.spanId, s]));

        // Spans: parents kept, wall clock in exact nanoseconds, simulated time as attributes.
        const spanRecords = records.filter((r): r is SpanRecord => r.kind === 'span');
        for (const r of spanRecords) {
            const s = byId.get(spanIdOf('span', r.id))!;
            expect(s.name).toBe(r.name);
            expect(s.startTimeUnixNano).toBe((BigInt(WALL_ORIGIN) * 1000n + BigInt(Math.round(r.wallStart * 1000))).toString());
            expect(s.endTimeUnixNano).toBe((BigInt(WALL_ORIGIN) * 1000n + BigInt(Math.round(r.wallEnd * 1000))).toString());
            const a = plain(s.attributes);
            expect(a['aimatrix.sim.start']).toBe(r.start);
            expect(a['aimatrix.sim.end']).toBe(r.end);
            if (r.parent !== undefined) {
                expect(s.parentSpanId).toBe(spanIdOf('span', r.parent));
                expect(byId.has(s.parentSpanId!)).toBe(true);
            } else {
                expect(s.parentSpanId).toBeUndefined();
            }
            if (r.loc) expect(a).toMatchObject({ 'code.file.path': r.loc.file, 'code.line.number': r.loc.line });
        }
        expect(spanRecords.some(r => r.parent !== undefined)).toBe(true);

        // Messages: producer at the send, consumer at the receive linked to the send.
        const receives = records.filter(r => r.kind === 'message' && r.phase === 'receive');
        expect(receives.length).toBeGreaterThan(0);
        for (const r of receives) {
            if (r.kind !== 'message') continue;
            const s = byId.get(spanIdOf('message', r.id))!;
            expect(s.kind).toBe(5);
            expect(s.links).toHaveLength(1);
            expect(s.links[0].spanId).toBe(spanIdOf('message', r.link!));
            expect(byId.get(s.links[0].spanId)!.kind).toBe(4);
        }
        // Decisions: one event per option; instants: zero-length spans, an error with status ERROR.
        const decision = spans.find(s => s.name === 'decide pick')!;
        expect(decision.events.map(e => e.name)).toEqual(['option a']);
        expect(plain(decision.events[0].attributes)).toEqual({ 'aimatrix.option': 'a', 'aimatrix.score': 0.7, 'aimatrix.criterion.cost': 0.7 });
        const error = spans.find(s => s.name === 'error')!;
        expect(error.status).toEqual({ code: 2, message: 'negative delay' });
        expect(error.startTimeUnixNano).toBe(error.endTimeUnixNano);

        // Deterministic: the same trace exports to the same bytes.
        expect((await otlpOf(file)).text).toBe(text);
    });

    it('a binary trace exports to the same OTLP/JSON as the same records in JSON Lines', async () => {
        const file = path.join(dir, 'trace.jsonl');
        const records = traceFile(file, '20250101-000000-000-abcdef', 200);
        const bin = path.join(dir, 'trace.aimtrace');
        writeBinaryTrace(bin, header('20250101-000000-000-abcdef'), records);
        const fromBinary = await otlpOf(bin);
        expect(fromBinary.doc.resourceSpans[0].scopeSpans[0].spans).toHaveLength(records.filter(r => r.kind !== 'counter').length);
        expect(fromBinary.text).toBe((await otlpOf(file)).text);
    });

    it('Chrome export still has every span', async () => {
        const file = path.join(dir, 'trace.jsonl');
        const records = traceFile(file, 'r', 50);
        const chunks: string[] = [];
        const out = new PassThrough();
        out.setEncoding('utf8').on('data', (s: string) => chunks.push(s));
        await exportChrome(file, out);
        out.end();
        const events = (JSON.parse(chunks.join('')) as { traceEvents: Array<{ ph: string; args?: { id?: number } }> }).traceEvents;
        const ids = new Set(events.filter(e => e.ph === 'X').map(e => e.args?.id));
        for (const r of records) if (r.kind === 'span') expect(ids.has(r.id)).toBe(true);
    });
});

// ---------------------------------------------------------------------------------------
// aimatrix trace export --format otlp [--out] [--endpoint]

interface Received { path: string; contentType: string | undefined; body: OtlpTraceRequest }

async function collector(answer: (n: number) => { status: number; body: string }): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
    const received: Received[] = [];
    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
            received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpTraceRequest });
            const a = answer(received.length);
            res.writeHead(a.status, { 'Content-Type': 'application/json' }).end(a.body);
        });
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return { url: `http://127.0.0.1:${port}/v1/traces`, received, close: () => new Promise(resolve => server.close(() => resolve())) };
}

function storedRun(steps: number): { runId: string; records: TraceRecord[] } {
    const store = new RunStore(dir);
    const run = store.create({ file: 'fake.twin', files: ['fake.twin'], twin: 'Fake', experiment: null, params: [], plan: {}, options: {}, trace: true });
    const records = traceFile(store.file(run.id, 'trace.jsonl'), run.id, steps);
    store.update(run, { state: 'completed', endedAt: new Date().toISOString() });
    return { runId: run.id, records };
}

async function command(ref: string, opts: Partial<ExportOptions>): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = new PassThrough().setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    const err = new PassThrough().setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const code = await exportCommand(ref, { format: 'otlp', clock: 'sim', ...opts }, dir, out, err);
    out.end();
    err.end();
    return { code, stdout, stderr };
}

describe('aimatrix trace export --format otlp', () => {
    it('exports a run stored in binary (trace.aimtrace) as it would the same records in JSON Lines', async () => {
        const { runId, records } = storedRun(30);
        const store = new RunStore(dir);
        const legacy = store.file(runId, 'trace.jsonl');
        writeBinaryTrace(store.file(runId, 'trace.aimtrace'), header(runId), records);
        fs.renameSync(legacy, path.join(dir, 'legacy.jsonl'));
        expect(store.traceFile(runId)).toBe(store.file(runId, 'trace.aimtrace'));
        const r = await command(runId, {});
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe((await otlpOf(path.join(dir, 'legacy.jsonl'))).text);
    });

    it('--out writes the OTLP/JSON file', async () => {
        const { runId, records } = storedRun(30);
        const r = await command(runId, { out: 'trace.otlp.json', json: true });
        expect(r.code).toBe(0);
        const spans = records.filter(x => x.kind !== 'counter').length;
        expect(JSON.parse(r.stdout)).toEqual({ run: runId, out: 'trace.otlp.json', records: records.length, events: spans });
        const doc = JSON.parse(fs.readFileSync(path.join(dir, 'trace.otlp.json'), 'utf8')) as OtlpTraceRequest;
        expect(doc.resourceSpans[0].scopeSpans[0].spans).toHaveLength(spans);
    });

    it('--endpoint POSTs JSON batches, each a whole request with the run resource, every span once', async () => {
        const { runId, records } = storedRun(100);
        const c = await collector(() => ({ status: 200, body: '{}' }));
        try {
            const r = await command('last', { endpoint: c.url, batchSize: 50 });
            expect(r.code).toBe(0);
            const spans = records.filter(x => x.kind !== 'counter').length;
            expect(c.received).toHaveLength(Math.ceil(spans / 50));
            expect(r.stderr).toBe(`run ${runId}: ${spans} spans in ${c.received.length} requests to ${c.url}\n`);
            const all: OtlpSpan[] = [];
            for (const req of c.received) {
                expect(req.path).toBe('/v1/traces');
                expect(req.contentType).toBe('application/json');
                expect(req.body.resourceSpans).toHaveLength(1);
                expect(plain(req.body.resourceSpans[0].resource.attributes)['aimatrix.run.id']).toBe(runId);
                const batch = req.body.resourceSpans[0].scopeSpans[0].spans;
                expect(batch.length).toBeLessThanOrEqual(50);
                all.push(...batch);
            }
            expect(c.received.slice(0, -1).every(q => q.body.resourceSpans[0].scopeSpans[0].spans.length === 50)).toBe(true);
            expect(all).toEqual((await otlpOf(new RunStore(dir).file(runId, 'trace.jsonl'))).doc.resourceSpans[0].scopeSpans[0].spans);
        } finally {
            await c.close();
        }
    });

    it('a collector answering 500 fails in one line with the status, exit 1, and nothing more is sent', async () => {
        storedRun(100);
        const c = await collector(() => ({ status: 500, body: '{"code":13,"message":"storage is full"}' }));
        try {
            const r = await command('last', { endpoint: c.url, batchSize: 50 });
            expect(r.code).toBe(1);
            expect(r.stderr).toBe(`aimatrix: ${c.url} (request 1): HTTP 500 Internal Server Error: storage is full\n`);
            expect(c.received).toHaveLength(1);
        } finally {
            await c.close();
        }
    });

    it('spans a collector rejects (partial success) are reported, exit 1', async () => {
        storedRun(20);
        const c = await collector(n => ({ status: 200, body: n === 1 ? '{"partialSuccess":{"rejectedSpans":"3","errorMessage":"spans too old"}}' : '{}' }));
        try {
            const r = await command('last', { endpoint: c.url, batchSize: 10 });
            expect(r.code).toBe(1);
            expect(r.stderr.split('\n').at(-2)).toMatch(/^aimatrix: the collector rejected 3 of \d+ spans: spans too old$/);
            expect(c.received.length).toBeGreaterThan(1);
        } finally {
            await c.close();
        }
    });

    it('a closed port and a collector that never answers fail in one line, exit 1', async () => {
        storedRun(20);
        const c = await collector(() => ({ status: 200, body: '{}' }));
        const url = c.url;
        await c.close();
        const refused = await command('last', { endpoint: url });
        expect(refused.code).toBe(1);
        expect(refused.stderr).toBe(`aimatrix: cannot reach ${url} (request 1): ECONNREFUSED\n`);

        const sockets = new Set<import('node:net').Socket>();
        const silent = http.createServer(() => { /* never answers */ });
        silent.on('connection', s => sockets.add(s));
        await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve));
        const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1/traces`;
        try {
            const r = await command('last', { endpoint: silentUrl, timeout: 0.3 });
            expect(r.code).toBe(1);
            expect(r.stderr).toBe(`aimatrix: no answer from ${silentUrl} (request 1) within 0.3 s\n`);
        } finally {
            for (const s of sockets) s.destroy();
            await new Promise(resolve => silent.close(resolve));
        }
    });

    it('refuses --endpoint with chrome or with --out, and a bad URL, in one line', async () => {
        storedRun(5);
        expect(await command('last', { format: 'chrome', endpoint: 'http://x' })).toMatchObject({ code: 2, stderr: 'aimatrix: --endpoint pushes OTLP: use it with --format otlp\n' });
        expect(await command('last', { endpoint: 'http://x', out: 'f' })).toMatchObject({ code: 2 });
        expect(await command('last', { endpoint: 'localhost:4318' })).toMatchObject({ code: 1, stderr: 'aimatrix: the endpoint must be an http:// or https:// URL: localhost:4318\n' });
    });
});
