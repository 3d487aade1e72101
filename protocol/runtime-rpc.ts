/**
 * The runtime server's JSON-RPC 2.0 protocol (over WebSocket): every method and every
 * notification, declared once here with its parameter and result types and the runtime
 * check of its parameters, and imported by the server (`aimatrix serve`) and its clients
 * (`aimatrix trace follow`, the extension, tests, the benchmark).
 *
 * How to connect: the server writes `<workspace>/.aimatrix/runtime.json` ({@link RuntimeConnectionFile},
 * mode 0600) and accepts a WebSocket on `ws://127.0.0.1:<port>/` carrying the token as
 * `Authorization: Bearer <token>` or as `?token=<token>` (browsers cannot set headers).
 * A browser `Origin` is refused unless a client holding the token allowed it first
 * (`server.allowOrigin`). The layout is documented in docs/runtime-server.md.
 */
import type { TraceRecord } from './trace.js';

export const RUNTIME_PROTOCOL_VERSION = 1;

/** `<workspace>/.aimatrix/runtime.json`, written by the server while it runs. */
export interface RuntimeConnectionFile {
    readonly port: number;
    readonly token: string;
    readonly pid: number;
    /** The aimatrix version of the server. */
    readonly version: string;
    readonly protocol: number;
    readonly workspace: string;
}

/** Error codes: JSON-RPC's own, then the server's (-32000 to -32099). */
export const RpcErrorCode = {
    ParseError: -32700,
    InvalidRequest: -32600,
    MethodNotFound: -32601,
    InvalidParams: -32602,
    InternalError: -32603,
    /** No such run, model or file. */
    NotFound: -32001,
    /** A path outside the workspace, or something the server will not do for this client. */
    Refused: -32002,
    /** The run is not in a state that allows it (pause a finished run). */
    WrongState: -32003,
    /** The model has errors or failed to load; `data.diagnostics` lists them when there are some. */
    ModelError: -32004
} as const;

// ------------------------------------------------------------------ parameter schemas

/** One parameter field: its JSON type, whether it may be left out, and bounds for numbers. */
export interface FieldSpec {
    readonly type: 'string' | 'integer' | 'boolean' | 'strings' | 'integers';
    readonly optional: boolean;
    readonly min?: number;
    readonly max?: number;
}
type FieldValue<F extends FieldSpec> = F['type'] extends 'string' ? string
    : F['type'] extends 'integer' ? number
        : F['type'] extends 'boolean' ? boolean
            : F['type'] extends 'integers' ? readonly number[]
                : readonly string[];
export type Schema = Readonly<Record<string, FieldSpec>>;
type RequiredKeys<S extends Schema> = { [K in keyof S]: S[K]['optional'] extends true ? never : K }[keyof S];
type OptionalKeys<S extends Schema> = { [K in keyof S]: S[K]['optional'] extends true ? K : never }[keyof S];
/** The TypeScript type of the parameters a schema accepts. */
export type ParamsOf<S extends Schema> =
    { readonly [K in RequiredKeys<S>]: FieldValue<S[K]> } & { readonly [K in OptionalKeys<S>]?: FieldValue<S[K]> };

const bounds = (min?: number, max?: number) => ({ ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) });
const field = <T extends FieldSpec['type']>(type: T, min?: number, max?: number) => ({ type, optional: false as const, ...bounds(min, max) });
const optional = <T extends FieldSpec['type']>(type: T, min?: number, max?: number) => ({ type, optional: true as const, ...bounds(min, max) });

/** Checks parameters against a schema: the first problem in one line, or undefined when they fit. Unknown fields are refused. */
export function checkParams(schema: Schema, params: unknown): string | undefined {
    if (params === undefined || params === null) params = {};
    if (typeof params !== 'object' || Array.isArray(params)) return 'params must be an object (named parameters)';
    const given = params as Record<string, unknown>;
    for (const key of Object.keys(given)) {
        if (!Object.prototype.hasOwnProperty.call(schema, key)) return `unknown parameter '${key}' (expected ${Object.keys(schema).join(', ') || 'none'})`;
    }
    for (const [key, spec] of Object.entries(schema)) {
        const value = given[key];
        if (value === undefined) {
            if (!spec.optional) return `missing parameter '${key}' (${spec.type})`;
            continue;
        }
        switch (spec.type) {
            case 'string':
                if (typeof value !== 'string') return `'${key}' must be a string`;
                break;
            case 'boolean':
                if (typeof value !== 'boolean') return `'${key}' must be true or false`;
                break;
            case 'integer':
                if (typeof value !== 'number' || !Number.isSafeInteger(value)) return `'${key}' must be a whole number`;
                if (spec.min !== undefined && value < spec.min) return `'${key}' must be ≥ ${spec.min}`;
                if (spec.max !== undefined && value > spec.max) return `'${key}' must be ≤ ${spec.max}`;
                break;
            case 'strings':
                if (!Array.isArray(value) || !value.every(v => typeof v === 'string')) return `'${key}' must be an array of strings`;
                break;
            case 'integers':
                if (!Array.isArray(value) || !value.every(v => typeof v === 'number' && Number.isSafeInteger(v) && (spec.min === undefined || v >= spec.min) && (spec.max === undefined || v <= spec.max))) {
                    const range = [spec.min !== undefined ? `≥ ${spec.min}` : '', spec.max !== undefined ? `≤ ${spec.max}` : ''].filter(Boolean).join(' and ');
                    return `'${key}' must be an array of whole numbers${range ? ` ${range}` : ''}`;
                }
                break;
        }
    }
    return undefined;
}

/** A request: its name, parameter schema (checked at runtime by the server) and, as types, its params and result. */
export interface RequestType<S extends Schema, R> {
    readonly method: string;
    readonly params: S;
    /** Types only: never read. */
    readonly _types?: { params: ParamsOf<S>; result: R };
}
export interface NotificationType<P> {
    readonly method: string;
    readonly _types?: { params: P };
}
export type RequestParams<T> = T extends RequestType<infer S, unknown> ? ParamsOf<S> : never;
export type RequestResult<T> = T extends RequestType<Schema, infer R> ? R : never;
export type NotificationParams<T> = T extends NotificationType<infer P> ? P : never;

function request<R>() {
    return <const S extends Schema>(method: string, params: S): RequestType<S, R> => ({ method, params });
}
function notification<P>(method: string): NotificationType<P> {
    return { method };
}

// ------------------------------------------------------------------ shared shapes

export type RunState = 'running' | 'pausing' | 'paused' | 'completed' | 'stopped' | 'failed' | 'incomplete';

/** A KPI summary over the replications of one point (stats.ts `Summary`, with its unit). */
export interface KpiSummary {
    readonly unit: string | null;
    readonly mean: number | null;
    readonly stdev: number | null;
    readonly ci95: readonly [number, number] | null;
    readonly min: number | null;
    readonly max: number | null;
    readonly n: number;
}

/** The results of a run: `aimatrix run --json` prints it, results.json stores it (with per-replication outcomes). */
/** How a run used one ONNX model, summed over its completed replications. */
export interface InferenceUse {
    readonly model: string;
    /** The execution provider it ran on. */
    readonly provider: string;
    /** `infer` calls. */
    readonly calls: number;
    /** Session runs: a micro-batch counts once, a cache hit not at all. */
    readonly runs: number;
    readonly cacheHits: number;
    readonly cacheMisses: number;
}

export interface RunReport {
    readonly runId: string;
    readonly state: 'completed' | 'stopped' | 'failed';
    readonly twin: string;
    readonly experiment: string | null;
    readonly seed: number;
    readonly replications: number;
    readonly horizon: { readonly value: number | null; readonly unit: string };
    readonly points: ReadonlyArray<{
        readonly set: Readonly<Record<string, number | boolean | string>>;
        readonly kpis: Readonly<Record<string, KpiSummary>>;
    }>;
    readonly events: number;
    readonly wallMs: number;
    /** Replications that failed: where, when, who. */
    readonly errors: ReadonlyArray<{
        readonly point: number;
        readonly replication: number;
        readonly message: string;
        readonly text: string;
        readonly simTime?: number;
        readonly subject?: string;
        readonly loc?: { readonly file: string; readonly line: number; readonly column: number };
    }>;
    /** The ONNX models the run's agents called; absent when they called none. */
    readonly inference?: readonly InferenceUse[];
}

/** A stored run as `runs.list` shows it. */
export interface RunInfo {
    readonly runId: string;
    readonly state: RunState;
    readonly file: string;
    readonly twin: string;
    readonly experiment: string | null;
    readonly startedAt: string;
    readonly endedAt?: string;
    /** Whether a trace is (being) recorded. */
    readonly trace: boolean;
    /** Whether this server started it and it has not ended yet. */
    readonly live: boolean;
    readonly progress?: { readonly finished: number; readonly total: number; readonly failed: number };
    readonly reason?: string;
}

export interface ModelInfo {
    /** Relative to the workspace. */
    readonly file: string;
    readonly bytes: number;
    readonly inputs?: ReadonlyArray<{ readonly name: string; readonly type: string; readonly shape: ReadonlyArray<number | string> }>;
    readonly outputs?: ReadonlyArray<{ readonly name: string; readonly type: string; readonly shape: ReadonlyArray<number | string> }>;
    /** Why the metadata could not be read. */
    readonly error?: string;
}

// ------------------------------------------------------------------ requests (client → server)

export const ServerInfo = request<{ readonly version: string; readonly protocol: number; readonly workspace: string; readonly pid: number }>()('server.info', {});

/** Allows a browser origin (e.g. the `vscode-webview://…` origin of the extension's panel) to connect with the token. */
export const ServerAllowOrigin = request<{ readonly origins: readonly string[] }>()('server.allowOrigin', { origin: field('string') });

export const ServerShutdown = request<Record<string, never>>()('server.shutdown', {});

/** Starts a run of a twin file inside the workspace; `set` as on the command line (`serviceMean=3min`), `horizon` with a unit. */
export const RunStart = request<{ readonly runId: string }>()('run.start', {
    file: field('string'),
    experiment: optional('string'),
    set: optional('strings'),
    replications: optional('integer', 1),
    horizon: optional('string'),
    seed: optional('integer', 0),
    workers: optional('integer', 1),
    /** Record the trace of the first replication of the first point (default true): what subscribers see. */
    trace: optional('boolean')
});

const runRef = { runId: field('string') } as const;
export const RunStop = request<{ readonly state: RunState }>()('run.stop', runRef);
export const RunPause = request<{ readonly state: RunState }>()('run.pause', runRef);
export const RunResume = request<{ readonly state: RunState }>()('run.resume', runRef);
export const RunsList = request<{ readonly runs: readonly RunInfo[] }>()('runs.list', {});
/** The results of a run that ended (null while it runs or when it left none). */
export const RunResults = request<{ readonly runId: string; readonly state: RunState; readonly results: RunReport | null }>()('run.results', runRef);

/**
 * Streams a run's trace: `trace.batch` notifications from record `fromSeq` (default 0), then
 * `trace.end` once the run has ended and everything was sent. Works for a stored run too.
 */
export const TraceSubscribe = request<{ readonly runId: string; readonly fromSeq: number; readonly live: boolean; readonly buffer: number; readonly maxRate: number }>()('trace.subscribe', {
    runId: field('string'),
    fromSeq: optional('integer', 0),
    /**
     * Records this subscriber may fall behind the live end before records are dropped for it
     * (default: the server's `--subscriber-buffer`). The records wait in the run's trace file,
     * not in memory: a large buffer costs the server nothing but lets a slow reader lag.
     */
    buffer: optional('integer', 1),
    /**
     * Records per second this subscriber is sent at most while the run is live (default: the
     * server's `--subscriber-rate`; 0: as fast as it reads). What it is not sent counts
     * against `buffer`, and is dropped with a `trace.gap` past it; the stored trace keeps it.
     * A live view needs a fraction of what a run makes (millions of records a second), and
     * every record sent costs the server CPU the simulation may need.
     */
    maxRate: optional('integer', 0, 1e9)
});
export const TraceUnsubscribe = request<{ readonly unsubscribed: boolean }>()('trace.unsubscribe', runRef);

export const ModelsList = request<{ readonly models: readonly ModelInfo[] }>()('models.list', {});
/**
 * Profiles an ONNX model inside the workspace (runtime/profile `profileModel`); the result is
 * its `ProfileReport` (latency percentiles per provider and batch size, per-operator times).
 * `model.profileProgress` notifications go to the asking client while it runs.
 */
/**
 * Profiles a model in the server's process: bounded, so that one request cannot hold the
 * server (and every other client) for hours or take its memory (batch 65,536 rows, a
 * million timed calls, 1,024 callers, 256 threads).
 */
export const ModelProfile = request<unknown>()('model.profile', {
    file: field('string'),
    providers: optional('strings'),
    batches: optional('integers', 1, 65_536),
    concurrency: optional('integer', 1, 1024),
    warmup: optional('integer', 0, 100_000),
    iterations: optional('integer', 1, 1_000_000),
    threads: optional('integer', 1, 256),
    opRuns: optional('integer', 0, 10_000)
});

export const REQUESTS = [
    ServerInfo, ServerAllowOrigin, ServerShutdown, RunStart, RunStop, RunPause, RunResume, RunsList, RunResults,
    TraceSubscribe, TraceUnsubscribe, ModelsList, ModelProfile
] as const;

// ------------------------------------------------------------------ notifications (server → client)

/** Records `seq`, `seq + 1`, …: `seq` is the index of the first in the run's trace (header excluded). */
export const TraceBatch = notification<{ readonly runId: string; readonly seq: number; readonly records: readonly TraceRecord[] }>('trace.batch');
/** Records `fromSeq`…`toSeq` (`missed` of them) were dropped for this subscriber: it fell too far behind. */
export const TraceGap = notification<{ readonly runId: string; readonly missed: number; readonly fromSeq: number; readonly toSeq: number }>('trace.gap');
/** The run ended and every record up to `seq` (exclusive) was sent or reported missed. */
/**
 * `damaged`: the stored trace could not be read past record `seq` (the block there is damaged, named in the text); records
 * after it are not sent. A subscriber that had been sent records past that block (it resumed there before another reader
 * found the damage) gets its own position as `seq`: a subscriber's `seq` never goes back.
 */
export const TraceEnd = notification<{ readonly runId: string; readonly seq: number; readonly state: RunState; readonly damaged?: string }>('trace.end');
export const RunProgress = notification<{
    readonly runId: string;
    readonly done: number;
    readonly total: number;
    readonly failed: number;
    readonly events: number;
    readonly eventsPerSecond: number;
    readonly etaSeconds: number | null;
    readonly elapsedMs: number;
    /**
     * Each point's KPIs over the replications finished so far (mean, 95% CI…, as in
     * `run.results`); sent with the first progress after a replication finishes, absent otherwise.
     */
    readonly points?: RunReport['points'];
}>('run.progress');
export const RunStateChanged = notification<{ readonly runId: string; readonly state: RunState; readonly reason?: string }>('run.state');
/** Something about a run the user should know that does not stop it (a model's execution provider fell back), each once. */
export const RunWarning = notification<{ readonly runId: string; readonly message: string }>('run.warning');
/** What the profiler is doing (`stage`, `note`, `warning`), for the client that asked for `model.profile`. */
export const ModelProfileProgress = notification<{ readonly file: string; readonly kind: 'stage' | 'note' | 'warning' | 'run'; readonly message: string }>('model.profileProgress');
