/**
 * OTLP/JSON (OpenTelemetry protocol, JSON encoding) from an AIMatrix trace file of either
 * encoding (binary or JSON Lines), streamed: records are read block by block (or line by line)
 * and written out (or pushed to a collector in batches) as they come, so a trace of any length
 * exports in bounded memory.
 *
 * Mapping (docs/trace-format.md has the table):
 * - one resource per run: `service.name` (the twin), `aimatrix.run.id`, `aimatrix.twin`,
 *   the experiment, point, replication and seed; one scope `aimatrix` with the tool's version;
 * - traceId: 32 hex digits from a hash of the run id; spanId: 16 hex digits from the record
 *   (2 for its kind, 14 for its id), so the same trace always exports to the same ids;
 * - spans → spans with `parentSpanId` from `parent`;
 * - messages → zero-length spans, PRODUCER at the send, CONSUMER at the receive with a link
 *   to the send's span;
 * - decisions → zero-length spans with one event per scored option;
 * - instants → zero-length spans (status ERROR for `error`);
 * - counters are levels over time, which OTLP traces have no place for: left out and counted;
 * - times: `startTimeUnixNano`/`endTimeUnixNano` from the wall clock (header `wallOrigin` +
 *   wall µs), as decimal strings; simulated times as attributes `aimatrix.sim.start`/`end`.
 * The field layout is that of @opentelemetry/otlp-transformer's JSON serialiser.
 */
import * as crypto from 'node:crypto';
import type { Writable } from 'node:stream';
import type { DecisionRecord, InstantRecord, MessageRecord, SourceLocation, SpanRecord, TraceRecord } from '../../protocol/index.js';
import { put } from './stream.js';
import { readTrace, TraceFormatError, type TraceHeader } from './read.js';

declare const __AIMATRIX_VERSION__: string | undefined;
const VERSION = typeof __AIMATRIX_VERSION__ === 'string' ? __AIMATRIX_VERSION__ : '0.0.0-dev';

// ---------------------------------------------------------------------------------------
// The OTLP/JSON shapes used here (opentelemetry-proto, trace/v1 and common/v1).

export type OtlpAnyValue =
    | { readonly stringValue: string }
    | { readonly intValue: number }
    | { readonly doubleValue: number | 'NaN' | 'Infinity' | '-Infinity' }
    | { readonly boolValue: boolean };

export interface OtlpKeyValue {
    readonly key: string;
    readonly value: OtlpAnyValue;
}

/** SpanKind: 1 internal, 4 producer, 5 consumer. */
export type OtlpSpanKind = 1 | 4 | 5;
/** Status code: 0 unset, 2 error. */
export type OtlpStatusCode = 0 | 2;

export interface OtlpSpan {
    readonly traceId: string;
    readonly spanId: string;
    readonly parentSpanId?: string;
    readonly name: string;
    readonly kind: OtlpSpanKind;
    readonly startTimeUnixNano: string;
    readonly endTimeUnixNano: string;
    readonly attributes: readonly OtlpKeyValue[];
    readonly droppedAttributesCount: 0;
    readonly events: ReadonlyArray<{ readonly attributes: readonly OtlpKeyValue[]; readonly name: string; readonly timeUnixNano: string; readonly droppedAttributesCount: 0 }>;
    readonly droppedEventsCount: 0;
    readonly status: { readonly code: OtlpStatusCode; readonly message?: string };
    readonly links: ReadonlyArray<{ readonly attributes: readonly OtlpKeyValue[]; readonly spanId: string; readonly traceId: string; readonly droppedAttributesCount: 0; readonly flags: number }>;
    readonly droppedLinksCount: 0;
    /** W3C trace flags (sampled) with the "is-remote is known" bit. */
    readonly flags: number;
}

export interface OtlpResource {
    readonly attributes: readonly OtlpKeyValue[];
    readonly droppedAttributesCount: 0;
}

export interface OtlpScope {
    readonly name: string;
    readonly version: string;
}

/** An ExportTraceServiceRequest. */
export interface OtlpTraceRequest {
    readonly resourceSpans: ReadonlyArray<{
        readonly resource: OtlpResource;
        readonly scopeSpans: ReadonlyArray<{ readonly scope: OtlpScope; readonly spans: readonly OtlpSpan[] }>;
    }>;
}

/** Sampled, plus SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE (the span is not remote). */
const FLAGS = 0x100 | 0x01;
const KIND_INTERNAL = 1;
const KIND_PRODUCER = 4;
const KIND_CONSUMER = 5;

// ---------------------------------------------------------------------------------------
// Ids and values

/** 32 hex digits from the run id (the first 128 bits of its SHA-256). */
export function traceIdOf(runId: string): string {
    return crypto.createHash('sha256').update(runId).digest('hex').slice(0, 32);
}

const TAG = { span: '01', message: '02', decision: '03', instant: '04' } as const;

/** 16 hex digits: the record kind (2), then its id (14: ids up to 2^56, more than any safe integer). */
export function spanIdOf(kind: keyof typeof TAG, id: number): string {
    const n = Number.isSafeInteger(id) && id >= 0 ? id : 0;
    return TAG[kind] + n.toString(16).padStart(14, '0');
}

function anyValue(v: string | number | boolean): OtlpAnyValue {
    switch (typeof v) {
        case 'string': return { stringValue: v };
        case 'boolean': return { boolValue: v };
        default:
            if (Number.isInteger(v)) return { intValue: v };
            if (Number.isFinite(v)) return { doubleValue: v };
            // proto3 JSON writes non-finite doubles as these strings.
            return { doubleValue: Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity' };
    }
}

function kv(key: string, v: string | number | boolean): OtlpKeyValue {
    return { key, value: anyValue(v) };
}

function attrsOf(attrs: Readonly<Record<string, string | number | boolean>> | undefined, out: OtlpKeyValue[], prefix = ''): void {
    if (!attrs) return;
    for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out.push(kv(prefix + k, v));
    }
}

function locOf(loc: SourceLocation | undefined, out: OtlpKeyValue[]): void {
    if (!loc) return;
    out.push(kv('code.file.path', loc.file), kv('code.line.number', loc.line), kv('code.column.number', loc.column));
}

/** Unix nanoseconds as a decimal string, exact (beyond 2^53): origin µs (an integer) and a wall offset in µs. */
function nanos(originUs: bigint, wallUs: number): string {
    const offset = Number.isFinite(wallUs) ? BigInt(Math.round(wallUs * 1000)) : 0n;
    return (originUs * 1000n + offset).toString();
}

// ---------------------------------------------------------------------------------------
// Records to spans

export interface OtlpStats {
    /** Records read from the trace (the header not counted). */
    readonly records: number;
    /** Spans exported. */
    readonly spans: number;
    /** Counter records, which OTLP traces have no place for. */
    readonly skippedCounters: number;
    /** The trace file ended in a cut block or line (a killed run), which was left out. */
    readonly truncated: boolean;
}

/** The resource and scope of a run: from the trace header. */
export function resourceOf(header: TraceHeader): { resource: OtlpResource; scope: OtlpScope } {
    const attributes: OtlpKeyValue[] = [
        kv('service.name', header.twin),
        kv('service.version', VERSION),
        kv('aimatrix.run.id', header.runId),
        kv('aimatrix.twin', header.twin)
    ];
    if (header.experiment !== null) attributes.push(kv('aimatrix.experiment', header.experiment));
    attributes.push(kv('aimatrix.point', header.point), kv('aimatrix.replication', header.replication), kv('aimatrix.seed', header.seed));
    if (header.files.length > 0) attributes.push(kv('aimatrix.files', header.files.join(',')));
    attrsOf(header.set, attributes, 'aimatrix.param.');
    return { resource: { attributes, droppedAttributesCount: 0 }, scope: { name: 'aimatrix', version: VERSION } };
}

/** Turns records into spans, one at a time (nothing is kept between records). */
export class SpanMapper {
    readonly traceId: string;
    private readonly origin: bigint;
    private instants = 0;

    constructor(header: TraceHeader) {
        this.traceId = traceIdOf(header.runId);
        this.origin = BigInt(Math.round(Number.isFinite(header.wallOrigin) ? header.wallOrigin : 0));
    }

    /** The span of a record, or undefined for a counter. */
    map(r: TraceRecord): OtlpSpan | undefined {
        switch (r.kind) {
            case 'span': return this.span(r);
            case 'message': return this.message(r);
            case 'decision': return this.decision(r);
            case 'instant': return this.instant(r);
            default: return undefined;
        }
    }

    private base(spanId: string, name: string, kind: OtlpSpanKind, wallStart: number, wallEnd: number, attributes: OtlpKeyValue[], extra: Partial<Pick<OtlpSpan, 'parentSpanId' | 'events' | 'links' | 'status'>> = {}): OtlpSpan {
        return {
            traceId: this.traceId,
            spanId,
            parentSpanId: extra.parentSpanId,
            name,
            kind,
            startTimeUnixNano: nanos(this.origin, wallStart),
            endTimeUnixNano: nanos(this.origin, Math.max(wallStart, wallEnd)),
            attributes,
            droppedAttributesCount: 0,
            events: extra.events ?? [],
            droppedEventsCount: 0,
            status: extra.status ?? { code: 0 },
            links: extra.links ?? [],
            droppedLinksCount: 0,
            flags: FLAGS
        };
    }

    private span(r: SpanRecord): OtlpSpan {
        const a: OtlpKeyValue[] = [kv('aimatrix.sim.start', r.start), kv('aimatrix.sim.end', r.end), kv('aimatrix.category', r.cat)];
        if (r.subject !== undefined) a.push(kv('aimatrix.subject', r.subject));
        a.push(kv('aimatrix.record.id', r.id));
        attrsOf(r.attrs, a);
        locOf(r.loc, a);
        return this.base(spanIdOf('span', r.id), r.name, KIND_INTERNAL, r.wallStart, r.wallEnd, a, {
            parentSpanId: r.parent !== undefined ? spanIdOf('span', r.parent) : undefined
        });
    }

    private message(r: MessageRecord): OtlpSpan {
        const a: OtlpKeyValue[] = [
            kv('aimatrix.sim.start', r.t), kv('aimatrix.sim.end', r.t), kv('aimatrix.category', 'message'),
            kv('messaging.operation.type', r.phase === 'send' ? 'send' : 'receive'), kv('messaging.destination.name', r.channel),
            kv('aimatrix.from', r.from)
        ];
        if (r.to !== undefined) a.push(kv('aimatrix.to', r.to));
        a.push(kv('aimatrix.record.id', r.id));
        attrsOf(r.payload, a, 'aimatrix.payload.');
        const links = r.phase === 'receive' && r.link !== undefined
            ? [{ attributes: [], spanId: spanIdOf('message', r.link), traceId: this.traceId, droppedAttributesCount: 0 as const, flags: FLAGS }]
            : [];
        return this.base(spanIdOf('message', r.id), `${r.phase} ${r.channel}`, r.phase === 'send' ? KIND_PRODUCER : KIND_CONSUMER, r.wall, r.wall, a, { links });
    }

    private decision(r: DecisionRecord): OtlpSpan {
        const a: OtlpKeyValue[] = [
            kv('aimatrix.sim.start', r.t), kv('aimatrix.sim.end', r.t), kv('aimatrix.category', 'decision'),
            kv('aimatrix.agent', r.agent), kv('aimatrix.decision.chosen', r.chosen), kv('aimatrix.record.id', r.id)
        ];
        attrsOf(r.weights, a, 'aimatrix.decision.weight.');
        const time = nanos(this.origin, r.wall);
        const events = r.scores.map(s => {
            const ea: OtlpKeyValue[] = [kv('aimatrix.option', s.option), kv('aimatrix.score', s.score)];
            attrsOf(s.criteria, ea, 'aimatrix.criterion.');
            return { attributes: ea, name: `option ${s.option}`, timeUnixNano: time, droppedAttributesCount: 0 as const };
        });
        return this.base(spanIdOf('decision', r.id), `decide ${r.decision}`, KIND_INTERNAL, r.wall, r.wall, a, { events });
    }

    private instant(r: InstantRecord): OtlpSpan {
        const a: OtlpKeyValue[] = [kv('aimatrix.sim.start', r.t), kv('aimatrix.sim.end', r.t), kv('aimatrix.category', 'instant')];
        if (r.subject !== undefined) a.push(kv('aimatrix.subject', r.subject));
        attrsOf(r.attrs, a);
        locOf(r.loc, a);
        const message = r.attrs?.message;
        const status = r.name === 'error' ? { code: 2 as const, message: typeof message === 'string' ? message : undefined } : { code: 0 as const };
        return this.base(spanIdOf('instant', this.instants++), r.name, KIND_INTERNAL, r.wall, r.wall, a, { status });
    }
}

/** Reads a trace file and hands its spans out in batches of at most `batchSize`; the header comes first. */
async function eachBatch(
    traceFile: string,
    batchSize: number,
    onHeader: (header: TraceHeader) => Promise<void>,
    onBatch: (spans: OtlpSpan[]) => Promise<void>
): Promise<OtlpStats> {
    const reader = readTrace(traceFile);
    let mapper: SpanMapper | undefined;
    let batch: OtlpSpan[] = [];
    let spans = 0;
    let counters = 0;
    for await (const item of reader) {
        if (item.kind === 'header') {
            mapper = new SpanMapper(item);
            await onHeader(item);
            continue;
        }
        if (!mapper) throw new TraceFormatError(traceFile, 1, 'no header');
        const span = mapper.map(item);
        if (span === undefined) {
            counters++;
            continue;
        }
        batch.push(span);
        spans++;
        if (batch.length >= batchSize) {
            const full = batch;
            batch = [];
            await onBatch(full);
        }
    }
    if (batch.length > 0) await onBatch(batch);
    return { records: reader.records, spans, skippedCounters: counters, truncated: reader.truncated };
}

// ---------------------------------------------------------------------------------------
// To a file

/**
 * Writes the trace file as one OTLP/JSON ExportTraceServiceRequest to `out` (which is not
 * ended), span by span, waiting on the stream's back-pressure.
 */
export async function exportOtlp(traceFile: string, out: Writable): Promise<OtlpStats> {
    const write = (text: string): Promise<void> => put(out, text);
    let first = true;
    const stats = await eachBatch(traceFile, 256,
        header => {
            const { resource, scope } = resourceOf(header);
            return write(`{"resourceSpans":[{"resource":${JSON.stringify(resource)},"scopeSpans":[{"scope":${JSON.stringify(scope)},"spans":[\n`);
        },
        spans => {
            let text = '';
            for (const s of spans) {
                text += (first ? '' : ',\n') + JSON.stringify(s);
                first = false;
            }
            return write(text);
        });
    await write('\n]}]}]}\n');
    return stats;
}

// ---------------------------------------------------------------------------------------
// To a collector (OTLP/HTTP, JSON)

export class OtlpPushError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'OtlpPushError';
    }
}

export interface PushOptions {
    /** Spans per request (default 512, as OpenTelemetry's batch processor). */
    readonly batchSize?: number;
    /** Milliseconds to wait for each answer (default 10 000). */
    readonly timeoutMs?: number;
    readonly headers?: Readonly<Record<string, string>>;
    /** Called after each accepted request. */
    readonly onBatch?: (sent: { readonly request: number; readonly spans: number }) => void;
}

export interface PushStats extends OtlpStats {
    readonly requests: number;
    /** Spans the collector said it rejected (partial success), with its message. */
    readonly rejectedSpans: number;
    readonly rejectMessage?: string;
}

/**
 * Pushes the trace file to an OTLP/HTTP collector as JSON (`Content-Type: application/json`),
 * POSTing to `endpoint` exactly as given (e.g. http://localhost:4318/v1/traces), one request
 * per batch, each a whole ExportTraceServiceRequest with the run's resource. The first
 * failure ends the push with an OtlpPushError whose message is one line.
 */
export async function pushOtlp(traceFile: string, endpoint: string, options: PushOptions = {}): Promise<PushStats> {
    let url: URL;
    try {
        url = new URL(endpoint);
    } catch {
        throw new OtlpPushError(`not a URL: ${endpoint}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OtlpPushError(`the endpoint must be an http:// or https:// URL: ${endpoint}`);
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 512));
    const timeoutMs = options.timeoutMs ?? 10_000;
    let resource: OtlpResource | undefined;
    let scope: OtlpScope | undefined;
    let requests = 0;
    let rejectedSpans = 0;
    let rejectMessage: string | undefined;
    const stats = await eachBatch(traceFile, batchSize,
        header => {
            ({ resource, scope } = resourceOf(header));
            return Promise.resolve();
        },
        async spans => {
            const body: OtlpTraceRequest = { resourceSpans: [{ resource: resource!, scopeSpans: [{ scope: scope!, spans }] }] };
            const n = ++requests;
            const answer = await post(url, JSON.stringify(body), timeoutMs, options.headers ?? {}, n);
            if (answer.partialSuccess?.rejectedSpans) {
                rejectedSpans += Number(answer.partialSuccess.rejectedSpans);
                rejectMessage ??= answer.partialSuccess.errorMessage;
            }
            options.onBatch?.({ request: n, spans: spans.length });
        });
    return { ...stats, requests, rejectedSpans, rejectMessage };
}

interface ExportTraceServiceResponse {
    readonly partialSuccess?: { readonly rejectedSpans?: number | string; readonly errorMessage?: string };
}

async function post(url: URL, body: string, timeoutMs: number, headers: Readonly<Record<string, string>>, request: number): Promise<ExportTraceServiceResponse> {
    const where = `${url.href} (request ${request})`;
    let response: Response;
    try {
        response = await fetch(url, {
            method: 'POST',
            headers: { ...headers, 'Content-Type': 'application/json' },
            body,
            signal: AbortSignal.timeout(timeoutMs)
        });
    } catch (error) {
        const e = error as Error & { cause?: { code?: string; message?: string } };
        if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new OtlpPushError(`no answer from ${where} within ${timeoutMs / 1000} s`);
        const why = e.cause?.code ?? e.cause?.message ?? e.message;
        throw new OtlpPushError(`cannot reach ${where}: ${why}`);
    }
    let text: string;
    try {
        text = await response.text();
    } catch (error) {
        throw new OtlpPushError(`${where}: the answer was cut short (${(error as Error).message})`);
    }
    if (!response.ok) {
        const detail = oneLine(text);
        throw new OtlpPushError(`${where}: HTTP ${response.status}${response.statusText ? ' ' + response.statusText : ''}${detail ? `: ${detail}` : ''}`);
    }
    if (text.trim() === '') return {};
    try {
        return JSON.parse(text) as ExportTraceServiceResponse;
    } catch {
        return {}; // a collector that answers 200 with something else still took the spans
    }
}

/** A response body as one short line (collectors answer JSON, text or HTML). */
function oneLine(text: string): string {
    let t = text;
    try {
        const parsed = JSON.parse(text) as { message?: unknown };
        if (typeof parsed.message === 'string') t = parsed.message;
    } catch { /* not JSON */ }
    t = t.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
    return t.length > 200 ? t.slice(0, 199) + '…' : t;
}
