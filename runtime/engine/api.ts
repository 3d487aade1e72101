/**
 * The contract between the simulation engine (compile + run one replication) and
 * everything around it (experiments, workers, the CLI, the server, the debugger).
 * The engine is plain Node: no I/O, no clock and no randomness except what it is given.
 */
import type { SourceLocation, TraceSink } from '../../protocol/index.js';

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
    readonly trace?: TraceSink;
    /** Called now and then (every few thousand events) with the progress of the run. */
    readonly onProgress?: (simTime: number, events: number) => void;
    /** Checked with onProgress; returning true stops the replication cleanly. */
    readonly shouldStop?: () => boolean;
    /** The wall clock in microseconds (injected so tests and traces are deterministic when they need to be). */
    readonly wallClock?: () => number;
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
    runReplication(spec: ReplicationSpec): ReplicationResult;
}

/**
 * A failure inside a replication: a negative sampled delay, a capacity exceeded, a division
 * by zero in a flow, a call to a model the runtime cannot run yet. It says where (the DSL
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
