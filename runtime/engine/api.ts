/**
 * The contract between the simulation engine (compile + run one replication) and
 * everything around it (experiments, workers, the CLI, the server, the debugger).
 * The engine is plain Node: no I/O, no clock and no randomness except what it is given.
 */
import type { SourceLocation, TraceSink } from '../../protocol/index.js';
import type { TraceEncoder } from '../trace/binary.js';

export type Constant = number | boolean | string;

export type ParamKind = 'count' | 'time' | 'rate' | 'bool' | 'string';

export interface ParamInfo {
    readonly name: string;
    /** Default value in base units (seconds for times, per second for rates). */
    readonly value: Constant;
    readonly kind: ParamKind;
    readonly loc: SourceLocation;
}

export interface KpiInfo {
    readonly name: string;
    /** The declared unit (`min`, `per h`), or undefined for a count or when none was given (times then report in seconds). */
    readonly unit: string | undefined;
    readonly loc: SourceLocation;
}

export interface ReplicationSpec {
    /** The experiment's seed; every random stream of the run derives from (seed, replication, stream). */
    readonly seed: number;
    /** Index of this replication (0-based). */
    readonly replication: number;
    /** Simulated time at which the run ends, seconds; Infinity runs until no event is left. */
    readonly horizon: number;
    /** Statistics are reset at this simulated time, seconds (0: no warm-up). */
    readonly warmup: number;
    /** Parameter values that replace the model's, in base units. */
    readonly overrides?: Readonly<Record<string, Constant>>;
    /**
     * Where the trace goes: an encoder of the binary trace (what workers give: records stay
     * numbers and string ids until a reader decodes them), or any sink of records (decoded
     * from the same encoding at each block, and at the end of the replication).
     */
    readonly trace?: TraceSink | TraceEncoder;
    /** Called now and then (every few thousand events) with the progress of the run. */
    readonly onProgress?: (simTime: number, events: number) => void;
    /** Checked with onProgress; returning true stops the replication cleanly. */
    readonly shouldStop?: () => boolean;
    /** The wall clock in microseconds (injected so tests and traces are deterministic when they need to be). */
    readonly wallClock?: () => number;
    /** Runs the models the agents call (`infer`); needed by `runReplicationAsync` when the twin calls any. */
    readonly models?: ModelHost;
}

/** A tensor of a model declaration: `input features: float32 [N, 4]`. */
export interface TensorDecl {
    readonly name: string;
    /** Element type as the agent language spells it (`float32`, `int64`, …). */
    readonly type: string;
    /** Fixed sizes, or names of symbolic (dynamic) dimensions; empty when the declaration gives no shape. */
    readonly shape: readonly (number | string)[];
}

/** A model declared in an agent system (`model DemandForecast { … }`), as the engine hands it to a ModelHost. */
export interface ModelDecl {
    readonly name: string;
    /** Absolute path of the ONNX file (the declaration's `file`, relative to its .agent file). */
    readonly file: string;
    readonly inputs: readonly TensorDecl[];
    readonly outputs: readonly TensorDecl[];
    /** Execution providers, best first, as declared (empty: the CPU). */
    readonly providers: readonly string[];
    /** Most calls run as one batch (1: no batching). */
    readonly batch: number;
    /** How long a batch may wait for more calls, milliseconds (wall time, outside a simulation). */
    readonly maxWaitMs: number;
    /** Response cache entries (0: no cache). */
    readonly cacheSize: number;
    /** How long a cached answer stays valid, simulated seconds (Infinity: until evicted). */
    readonly cacheTtl: number;
    /** Agents whose behaviours call the model (for errors). */
    readonly callers: readonly string[];
    readonly loc: SourceLocation;
}

/** Where a model call comes from: the engine's clock and the calling agent. */
export interface InferCall {
    readonly simTime: number;
    /** The calling agent (`Replenisher#1`). */
    readonly subject: string;
    readonly site: SourceLocation | undefined;
}

/** What a ModelHost says about one call, for its trace span. */
export interface InferInfo {
    readonly provider: string;
    /** Calls that ran together in one session run (1: alone; 0: answered by the cache). */
    readonly batch: number;
    readonly queueWaitUs: number;
    readonly runUs: number;
    readonly cacheHit: boolean;
}

export interface InferResult {
    /** Each declared output: one element → a number, otherwise a flat array (row-major). */
    readonly outputs: Readonly<Record<string, number | number[]>>;
    readonly info: InferInfo;
}

/**
 * Runs the models of a compiled twin for the engine (which itself does no I/O and never
 * loads onnxruntime): one call per `infer`, by the model's index in `CompiledModel.models`.
 */
export interface ModelHost {
    /** Inputs are the `infer` arguments by name (numbers, booleans or lists of them). A rejection is one line naming the model and the tensor. */
    infer(model: number, inputs: Readonly<Record<string, unknown>>, call: InferCall): Promise<InferResult>;
    /** Every call of this simulated instant has been made: run what is batched now. */
    flush(): void;
    /** A replication starts: forget per-run state (the cache), and tell its trace which providers the models run on. */
    beginReplication(run: { readonly trace: TraceSink | undefined; readonly wall: () => number }): void;
}

export interface ReplicationResult {
    readonly status: 'completed' | 'stopped';
    /** KPI values in each KPI's declared unit. */
    readonly kpis: Readonly<Record<string, number>>;
    /** Events the engine processed. */
    readonly events: number;
    /** Simulated time reached, seconds. */
    readonly simTime: number;
    /** Entities created by sources (discrete-event part). */
    readonly entities: number;
}

export interface CompiledModel {
    readonly twin: string;
    readonly params: readonly ParamInfo[];
    readonly kpis: readonly KpiInfo[];
    /** The models the twin's agents may call (absent: none) (index = the `model` argument of ModelHost.infer). */
    readonly models?: readonly ModelDecl[];
    /** Whether any behaviour calls a model (then only runReplicationAsync can run it). */
    readonly usesInference?: boolean;
    /** Runs one replication synchronously; throws for a twin whose agents call models (use runReplicationAsync). */
    runReplication(spec: ReplicationSpec): ReplicationResult;
    /** Runs one replication, awaiting model calls (`spec.models`) where there are any; works for every twin. */
    runReplicationAsync?(spec: ReplicationSpec): Promise<ReplicationResult>;
}

/**
 * A failure inside a replication: a negative sampled delay, a capacity exceeded, a division
 * by zero in a flow, a model call that failed. It says where (the DSL
 * location), when (simulated time) and who (the entity or agent).
 */
export class SimulationError extends Error {
    constructor(
        message: string,
        readonly loc: SourceLocation | undefined,
        readonly simTime: number,
        readonly subject?: string
    ) {
        super(message);
        this.name = 'SimulationError';
    }

    /** `bank.twin:11:5: at t=42.1 s (Customer#17): negative delay -0.3 s` */
    describe(): string {
        const where = this.loc ? `${this.loc.file}:${this.loc.line}:${this.loc.column}: ` : '';
        const who = this.subject ? ` (${this.subject})` : '';
        return `${where}at t=${Number(this.simTime.toPrecision(6))} s${who}: ${this.message}`;
    }
}
