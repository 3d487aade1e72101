/**
 * Micro-batching: calls to one session that arrive within a short window are concatenated
 * along their first dimension, run as one `session.run`, and the outputs are split back, so
 * each caller gets exactly the rows its own inputs produced.
 *
 * Only a model whose every input and output has a symbolic (dynamic) first dimension can be
 * batched; any other runs each call alone. Calls whose inputs differ in element type or in
 * any dimension after the first cannot share a batch: the batch collected so far runs and a
 * new one starts.
 */
import * as ort from 'onnxruntime-node';

export interface MicroBatcherOptions {
    /** Most calls merged into one run (1: no batching). */
    readonly maxBatch: number;
    /**
     * How long the first call of a batch waits for others, milliseconds (0: until the next
     * turn of the event loop; Infinity: until `flush()` or a full batch, for a caller that
     * decides itself when a batch is complete, like the simulation engine).
     */
    readonly maxWaitMs: number;
    /** false: never batch, whatever the model's metadata says. */
    readonly batchable?: boolean;
}

export interface BatchedResult {
    readonly outputs: Record<string, ort.Tensor>;
    /** Calls that ran together in this call's `session.run` (1 when it ran alone). */
    readonly batchSize: number;
    /** Time from the call to the start of its run, microseconds. */
    readonly queueWaitUs: number;
    /** Duration of the `session.run` that answered it (shared by the whole batch), microseconds. */
    readonly runUs: number;
}

interface Pending {
    readonly feeds: Record<string, ort.Tensor>;
    readonly rows: number;
    readonly queuedAt: number;
    readonly resolve: (result: BatchedResult) => void;
    readonly reject: (error: unknown) => void;
}

type TensorData = ort.Tensor['data'];

export class MicroBatcher {
    /** Whether calls are merged at all (the option and the model's metadata both allow it). */
    readonly batching: boolean;
    private readonly maxBatch: number;
    private readonly maxWaitMs: number;
    private readonly inputNames: readonly string[];
    private readonly outputNames: readonly string[];
    private queue: Pending[] = [];
    private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
    private runCount = 0;
    /** Set when a batch's outputs did not have one row per input row: from then on every call runs alone. */
    private splitFailed = false;

    constructor(private readonly session: ort.InferenceSession, opts: MicroBatcherOptions) {
        this.maxBatch = Math.max(1, Math.floor(opts.maxBatch));
        this.maxWaitMs = Math.max(0, opts.maxWaitMs);
        this.inputNames = session.inputNames;
        this.outputNames = session.outputNames;
        this.batching = (opts.batchable ?? true) && this.maxBatch > 1 && hasDynamicBatch(session);
    }

    run(feeds: Record<string, ort.Tensor>): Promise<BatchedResult> {
        const queuedAt = performance.now();
        if (!this.batching || this.splitFailed) return this.runAlone(feeds, queuedAt);
        const rows = batchRows(feeds, this.inputNames);
        if (rows === 0) return this.runAlone(feeds, queuedAt);
        return new Promise<BatchedResult>((resolve, reject) => {
            if (this.queue.length > 0 && !sameRowShape(this.queue[0].feeds, feeds, this.inputNames)) this.dispatch();
            this.queue.push({ feeds, rows, queuedAt, resolve, reject });
            if (this.queue.length >= this.maxBatch) this.dispatch();
            else if (this.timer === undefined) this.arm();
        });
    }

    /** Run what is queued now, without waiting for the window to close. */
    flush(): void {
        if (this.queue.length > 0) this.dispatch();
    }

    /** Rejects every call still queued with `error` (their batch never runs): for a caller that gives up on them, like a replication that ended early. */
    cancel(error: Error): void {
        this.disarm();
        const dropped = this.queue;
        this.queue = [];
        for (const p of dropped) p.reject(error);
    }

    /** `session.run` calls so far (a batch counts once). */
    get runs(): number {
        return this.runCount;
    }

    /** Calls waiting for their batch to start. */
    get queued(): number {
        return this.queue.length;
    }

    private arm(): void {
        if (this.maxWaitMs === Infinity) return;
        const fire = (): void => {
            this.timer = undefined;
            this.flush();
        };
        this.timer = this.maxWaitMs > 0 ? setTimeout(fire, this.maxWaitMs) : setImmediate(fire);
    }

    private disarm(): void {
        if (this.timer === undefined) return;
        if (this.maxWaitMs > 0) clearTimeout(this.timer as NodeJS.Timeout);
        else clearImmediate(this.timer as NodeJS.Immediate);
        this.timer = undefined;
    }

    private dispatch(): void {
        this.disarm();
        const batch = this.queue;
        this.queue = [];
        if (batch.length === 0) return;
        void this.runBatch(batch);
    }

    private async runAlone(feeds: Record<string, ort.Tensor>, queuedAt: number): Promise<BatchedResult> {
        const start = performance.now();
        this.runCount++;
        const outputs = await this.session.run(feeds);
        const end = performance.now();
        return { outputs, batchSize: 1, queueWaitUs: (start - queuedAt) * 1000, runUs: (end - start) * 1000 };
    }

    private async runBatch(batch: Pending[]): Promise<void> {
        if (batch.length === 1) {
            const only = batch[0];
            try {
                only.resolve(await this.runAlone(only.feeds, only.queuedAt));
            } catch (error) {
                only.reject(error);
            }
            return;
        }
        let outputs: ort.InferenceSession.OnnxValueMapType;
        const start = performance.now();
        this.runCount++;
        try {
            outputs = await this.session.run(concatFeeds(batch, this.inputNames));
        } catch (error) {
            for (const p of batch) p.reject(error);
            return;
        }
        const runUs = (performance.now() - start) * 1000;
        const totalRows = batch.reduce((n, p) => n + p.rows, 0);
        const splittable = this.outputNames.every(name => {
            const t = outputs[name];
            return t !== undefined && t.dims.length > 0 && t.dims[0] === totalRows;
        });
        if (!splittable) {
            // The model did not keep one output row per input row: answer each call alone, and stop batching.
            this.splitFailed = true;
            for (const p of batch) {
                this.runAlone(p.feeds, p.queuedAt).then(p.resolve, p.reject);
            }
            return;
        }
        const names = this.outputNames;
        const rowDims = names.map(name => outputs[name].dims.slice(1));
        const rowSizes = rowDims.map(d => d.reduce((a, b) => a * b, 1));
        let row = 0;
        for (const p of batch) {
            const mine: Record<string, ort.Tensor> = {};
            for (let k = 0; k < names.length; k++) mine[names[k]] = sliceRows(outputs[names[k]], row, p.rows, rowDims[k], rowSizes[k]);
            row += p.rows;
            p.resolve({ outputs: mine, batchSize: batch.length, queueWaitUs: (start - p.queuedAt) * 1000, runUs });
        }
    }
}

/** Every input and output is a tensor whose first dimension is symbolic. */
export function hasDynamicBatch(session: ort.InferenceSession): boolean {
    // A first dimension whose name recurs on another axis (`[N, N]`) is not a batch that rows can be stacked along.
    const dynamicFirst = (m: ort.InferenceSession.ValueMetadata): boolean =>
        m.isTensor && m.shape.length > 0 && typeof m.shape[0] === 'string' && (m.shape[0] === '' || !m.shape.slice(1).includes(m.shape[0]));
    return session.inputMetadata.length > 0 && session.inputMetadata.every(dynamicFirst) && session.outputMetadata.every(dynamicFirst);
}

/** The rows of a call (its inputs' common first dimension); 0 when it cannot be batched. */
function batchRows(feeds: Record<string, ort.Tensor>, names: readonly string[]): number {
    let rows = -1;
    for (const name of names) {
        const t = feeds[name];
        if (!t || t.dims.length === 0) return 0;
        if (rows === -1) rows = t.dims[0];
        else if (t.dims[0] !== rows) return 0;
    }
    return rows > 0 ? rows : 0;
}

/** Whether two calls can share a batch: each input has the same element type and the same dimensions after the first. */
function sameRowShape(a: Record<string, ort.Tensor>, b: Record<string, ort.Tensor>, names: readonly string[]): boolean {
    for (const name of names) {
        const x = a[name];
        const y = b[name];
        if (x.type !== y.type || x.dims.length !== y.dims.length) return false;
        for (let i = 1; i < x.dims.length; i++) if (x.dims[i] !== y.dims[i]) return false;
    }
    return true;
}

function concatFeeds(batch: readonly Pending[], names: readonly string[]): Record<string, ort.Tensor> {
    const totalRows = batch.reduce((n, p) => n + p.rows, 0);
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of names) {
        const first = batch[0].feeds[name];
        const parts = batch.map(p => p.feeds[name].data);
        feeds[name] = new ort.Tensor(first.type, concatData(parts), [totalRows, ...first.dims.slice(1)]);
    }
    return feeds;
}

function concatData(parts: readonly TensorData[]): TensorData {
    const first = parts[0];
    if (Array.isArray(first)) return (parts as readonly string[][]).flat();
    const length = parts.reduce((n, p) => n + p.length, 0);
    const Ctor = (first as ArrayBufferView).constructor as new (n: number) => Exclude<TensorData, string[]>;
    const out = new Ctor(length);
    let at = 0;
    for (const p of parts) {
        (out as unknown as { set(a: ArrayLike<unknown>, offset: number): void }).set(p as ArrayLike<unknown>, at);
        at += p.length;
    }
    return out;
}

/**
 * A caller's rows of a batch output, copied. (Views with `subarray` measured no faster on the
 * MLP at concurrency 32, within 1-4%, and a caller keeping its view would keep the whole
 * batch's buffer alive and could reach the other callers' rows through `.buffer`.)
 */
function sliceRows(t: ort.Tensor, fromRow: number, rows: number, rowDims: readonly number[], rowSize: number): ort.Tensor {
    const from = fromRow * rowSize;
    const to = from + rows * rowSize;
    const data = t.data;
    const mine = Array.isArray(data) ? data.slice(from, to) : (data as Exclude<TensorData, string[]>).slice(from, to);
    return new ort.Tensor(t.type, mine as never, [rows, ...rowDims]);
}
