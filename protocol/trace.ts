/**
 * The one trace model of AIMatrix: what a run records, what the runtime stores and
 * streams, what the CLI exports and what the webviews draw. Every record carries both
 * clocks: simulated time (seconds since the start of the run) and wall time
 * (microseconds since the run started on this machine).
 *
 * The format is documented in docs/trace-format.md; keep the two in step.
 */

export interface SourceLocation {
    /** Path of the DSL file, relative to the workspace when there is one. */
    readonly file: string;
    /** 1-based. */
    readonly line: number;
    /** 1-based. */
    readonly column: number;
}

export type SpanCategory = 'entity' | 'step' | 'queue' | 'agent' | 'inference';

/** Something that took time: an entity's life, a process step, a wait in a queue, an agent behaviour, a model call. */
export interface SpanRecord {
    readonly kind: 'span';
    readonly id: number;
    /** The enclosing span (an entity's lifecycle encloses its steps). */
    readonly parent?: number;
    readonly name: string;
    readonly cat: SpanCategory;
    /** Simulated start and end, seconds. */
    readonly start: number;
    readonly end: number;
    /** Wall clock at start and end, microseconds since the run started. */
    readonly wallStart: number;
    readonly wallEnd: number;
    /** The entity or agent the span belongs to, e.g. `Customer#17`. */
    readonly subject?: string;
    readonly attrs?: Readonly<Record<string, string | number | boolean>>;
    readonly loc?: SourceLocation;
}

/** A level that changes over time: a resource's busy units or queue length, a stock's level. */
export interface CounterRecord {
    readonly kind: 'counter';
    readonly name: string;
    readonly t: number;
    readonly wall: number;
    readonly value: number;
}

/** A message sent on a channel; `link` points from the receive back to the send. */
export interface MessageRecord {
    readonly kind: 'message';
    readonly id: number;
    readonly phase: 'send' | 'receive';
    readonly channel: string;
    readonly from: string;
    readonly to?: string;
    /** For `receive`: the id of the matching `send` record. */
    readonly link?: number;
    readonly t: number;
    readonly wall: number;
    readonly payload?: Readonly<Record<string, string | number | boolean>>;
}

/** A decision by weighted criteria, with its inputs and scores: the audit trail. */
export interface DecisionRecord {
    readonly kind: 'decision';
    readonly id: number;
    readonly decision: string;
    readonly agent: string;
    readonly t: number;
    readonly wall: number;
    readonly chosen: string;
    readonly scores: ReadonlyArray<{ readonly option: string; readonly score: number; readonly criteria: Readonly<Record<string, number>> }>;
    readonly weights: Readonly<Record<string, number>>;
}

/** A point event: a log line from an agent, a warm-up reset, a runtime error. */
export interface InstantRecord {
    readonly kind: 'instant';
    readonly name: string;
    readonly t: number;
    readonly wall: number;
    readonly subject?: string;
    readonly attrs?: Readonly<Record<string, string | number | boolean>>;
    readonly loc?: SourceLocation;
}

export type TraceRecord = SpanRecord | CounterRecord | MessageRecord | DecisionRecord | InstantRecord;

/**
 * Where an engine sends its records. Engines check `enabled` once per replication and
 * build no record at all when it is false: tracing off costs nothing.
 */
export interface TraceSink {
    readonly enabled: boolean;
    record(r: TraceRecord): void;
}

export const NO_TRACE: TraceSink = { enabled: false, record: () => undefined };
