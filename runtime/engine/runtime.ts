/**
 * One replication of a compiled twin: the discrete-event loop, the system-dynamics
 * integrator and the agents, all on one clock.
 *
 * - Events sit in a typed-array heap ordered by (time, insertion sequence).
 * - Entities are rows of typed arrays (process, instruction index, attributes…), recycled
 *   through a free list when they leave: memory does not grow with the length of a run.
 * - A process is a flat list of instructions; an entity runs until it must wait (a delay,
 *   a busy resource, a condition) and resumes at its instruction index later. Entities a
 *   release makes ready continue at the same time, in the order they got the resource,
 *   before the next event.
 * - Stocks are integrated lazily: whoever reads or changes a stock at an event time first
 *   advances the integrator to that time (a partial step, then back onto the step grid).
 *   When processes or agents share the clock, each grid step is also an event, so
 *   `wait until` and `when` conditions on stocks are re-checked after every step.
 * - After every event that changed state (a stock, a parameter, an attribute, a resource,
 *   an agent's state), `wait until` conditions and agents' `when` conditions are re-checked.
 * - Agent messages are delivered at the time they are sent, after the current event (and
 *   after every event already scheduled for that time): one delivery event per message.
 */
import { SimulationError, type Constant, type InferResult, type ModelHost, type ReplicationResult, type ReplicationSpec } from './api.js';
import type { InstrSpec, Program } from './compile.js';
import {
    ARM_OTHERWISE, ARM_PROB, OP_ASSIGN, OP_BRANCH, OP_DELAY, OP_DISPOSE, OP_END, OP_JUMP, OP_RELEASE, OP_ROUTE, OP_SEIZE, OP_WAIT
} from './opcodes.js';
import * as H from './random.js';
import { Xoshiro128, type Uniform } from './random.js';
import { AgentSeries, EntityQueue, EventHeap, QuantileSketch, Tally, TimeWeighted } from './structures.js';
import type { SourceLocation, TraceRecord, TraceSink } from '../../protocol/index.js';
import { BLOCK_HEAD, CAT_QUEUE, CAT_STEP, NONE, TraceDecoder, TraceEncoder } from '../trace/binary.js';

const EV_ARRIVAL = 0, EV_RESUME = 1, EV_SD = 2, EV_TIMER = 3, EV_MSG = 4, EV_WARMUP = 5, EV_HEARTBEAT = 6;

type Fn = (...args: never[]) => unknown;
type EntityFn = (e: number) => unknown;
type AgentFn = (a: number, st: unknown[][], msg: unknown) => unknown;

class Instr {
    readonly op: number;
    readonly a: number;
    readonly fn: EntityFn | null;
    readonly fn2: EntityFn | null;
    readonly armKinds: Int8Array | null;
    readonly armFns: (EntityFn | null)[] | null;
    readonly armTargets: Int32Array | null;
    readonly end: number;
    readonly stream: Uniform | null;
    readonly site: number;
    /** Inline exponential: 0 none, 1 mean, 2 rate; its stream, parameter slot (or -1) and constant. */
    readonly fastKind: number;
    readonly fastStream: Uniform | null;
    readonly fastParam: number;
    readonly fastValue: number;
    constructor(s: InstrSpec, fns: Fn[], streams: Uniform[]) {
        const f = (i: number) => (i >= 0 ? fns[i] as EntityFn : null);
        this.op = s.op;
        this.a = s.a;
        this.fn = f(s.fn);
        this.fn2 = f(s.fn2);
        this.armKinds = s.armKinds ? Int8Array.from(s.armKinds) : null;
        this.armFns = s.armFns ? s.armFns.map(f) : null;
        this.armTargets = s.armTargets ? Int32Array.from(s.armTargets) : null;
        this.end = s.end ?? -1;
        this.stream = s.stream !== undefined && s.stream >= 0 ? streams[s.stream] : null;
        this.site = s.site;
        this.fastKind = s.fast ? (s.fast.kind === 'mean' ? 1 : 2) : 0;
        this.fastStream = s.fast ? streams[s.fast.stream] : null;
        this.fastParam = s.fast ? s.fast.param : -1;
        this.fastValue = s.fast ? s.fast.value : 0;
    }
}

/** A message in flight: its channel, fields, the sending agent (group and index; -1 when not an agent) and its trace id. */
interface Message { channel: number; payload: Record<string, unknown>; from: string; fromG: number; fromA: number; id: number }

/**
 * A behaviour that calls a model (an async body) and has not finished: the engine resumes
 * it, one at a time and in the order the calls were made, between simulated instants.
 */
interface Activation {
    readonly g: number;
    readonly a: number;
    /** Called when the body, resumed, calls a model again or finishes. */
    wake: (() => void) | undefined;
}

/** A model call waiting for its answer: the host's promise and the gate the body awaits. */
interface PendingInfer {
    readonly act: Activation;
    /** Order of the call in the replication. */
    readonly seq: number;
    readonly model: number;
    readonly site: number;
    readonly wall0: number;
    readonly answer: Promise<InferResult>;
    readonly resolve: (outputs: unknown) => void;
    readonly reject: (error: unknown) => void;
}

/** The votes of a consensus swarm for one message (channel and fields) in one heartbeat interval. */
interface Ballot { window: number; voters: Set<number> }

const defaultWallClock = () => performance.now() * 1000;

/**
 * While tracing, the wall clock is read once every this many events (a power of two, minus
 * one) and the records between take that reading: a read costs about as much as a customer
 * of the bank example. Cold records (agents, messages, model calls, errors) read it themselves.
 */
const WALL_EVERY = 63;

/** The string ids of the hot records, interned once per replication in its encoder. */
interface TraceIds {
    readonly entity: readonly number[];
    readonly entityPrefix: readonly number[];
    readonly busy: readonly number[];
    readonly queueLen: readonly number[];
    readonly queueSpan: readonly number[];
    readonly stock: readonly number[];
    readonly delay: number;
    /** By site, made on first use (-1: not yet). */
    readonly sites: number[];
}

/** An encoder whose blocks are decoded back into records for a sink of records (tests, in-process consumers). */
function recordEncoder(sink: TraceSink): TraceEncoder {
    const decoder = new TraceDecoder();
    const emit = (r: TraceRecord): void => sink.record(r);
    return new TraceEncoder({ enabled: true, blocks: true, block: bytes => decoder.decode(bytes.subarray(BLOCK_HEAD), emit) });
}

/**
 * The strings the trace writes, made once per compiled program: the names as flat one-byte
 * strings where their characters allow it, and the composite names (`Teller.busy`,
 * `queue Teller`, `Customer#`) already joined.
 *
 * Why: names are cut out of the model's source text, and V8 keeps a source with any
 * character above U+00FF (a `λ` in a comment is enough) as a two-byte string, so every name
 * sliced from it is two-byte too. One two-byte name makes JSON.stringify build the whole
 * line as a two-byte cons string, and a block of such lines costs the writer about 15 times
 * more to join and write (measured on the bank example: 2 µs per record instead of 0.1).
 */
interface TraceNames {
    readonly entity: readonly string[];
    /** `Customer#`, by entity type. */
    readonly entityPrefix: readonly string[];
    /** `Teller.busy`, `Teller.queue`, `queue Teller`, by resource. */
    readonly busy: readonly string[];
    readonly queueLen: readonly string[];
    readonly queueSpan: readonly string[];
    readonly stock: readonly string[];
    readonly channel: readonly string[];
    /** `on <channel>`, the name of a handler's span. */
    readonly channelOn: readonly string[];
    /** `Scout#`, by group. */
    readonly agentPrefix: readonly string[];
    readonly coordinator: readonly string[];
    readonly model: readonly string[];
    readonly sites: readonly (SourceLocation | undefined)[];
}

const traceNamesOf = new WeakMap<Program, TraceNames>();

function traceNames(p: Program): TraceNames {
    let names = traceNamesOf.get(p);
    if (names === undefined) {
        const entity = p.entities.map(e => flat(e.name));
        const resource = p.resources.map(r => flat(r.name));
        const channel = p.channels.map(flat);
        names = {
            entity,
            entityPrefix: entity.map(n => flat(`${n}#`)),
            busy: resource.map(n => flat(`${n}.busy`)),
            queueLen: resource.map(n => flat(`${n}.queue`)),
            queueSpan: resource.map(n => flat(`queue ${n}`)),
            stock: p.stocks.map(s => flat(s.name)),
            channel,
            channelOn: channel.map(c => flat(`on ${c}`)),
            agentPrefix: p.groups.map(g => flat(`${p.agentTypes[g.agentType].name}#`)),
            coordinator: p.coordinators.map(c => flat(c.name)),
            model: p.models.map(m => flat(m.name)),
            sites: p.sites.map(l => (l === undefined ? undefined : { file: flat(l.file), line: l.line, column: l.column }))
        };
        traceNamesOf.set(p, names);
    }
    return names;
}

/** The same characters as a new flat string: one-byte in V8 when every character is at most U+00FF. */
function flat(s: string): string {
    const codes = new Array<number>(s.length);
    for (let i = 0; i < s.length; i++) codes[i] = s.charCodeAt(i);
    let out = '';
    for (let i = 0; i < codes.length; i += 4096) out += String.fromCharCode(...codes.slice(i, i + 4096));
    return out;
}

export class Replication {
    // ---- read by generated code
    now = 0;
    readonly P: Constant[];
    readonly Y: Float64Array;
    readonly AT: (Float64Array | unknown[])[];
    readonly streams: Uniform[];
    readonly fns: Fn[];
    dirty = true;
    readonly MW: (Tally | null)[];
    readonly MT: (Tally | null)[];
    readonly MQ: TimeWeighted[];
    readonly MB: TimeWeighted[];
    readonly MP: TimeWeighted[];
    readonly ML: (TimeWeighted | null)[];

    // ---- clock and events
    private readonly heap = new EventHeap(256);
    private events = 0;
    private readonly horizon: number;
    private readonly warmup: number;
    private warmedUp = false;
    private statsStart = 0;

    // ---- entities (struct of arrays)
    private cap = 0;
    private eProc = new Int32Array(0);
    private ePc = new Int32Array(0);
    private eType = new Int32Array(0);
    private eSerial = new Float64Array(0);
    private eBorn = new Float64Array(0);
    private eWait = new Float64Array(0);
    private eQStart = new Float64Array(0);
    private eAmt = new Float64Array(0);
    private eSpan = new Float64Array(0);
    private eWallBorn = new Float64Array(0);
    private eStepStart = new Float64Array(0);
    /** The site of the delay each entity is in (traced runs): its step span's location. */
    private eStepSite = new Int32Array(0);
    private eTis: Float64Array[] = [];
    private free = new Int32Array(0);
    private freeN = 0;
    private used = 0;
    private readonly serials: Float64Array;
    private created = 0;
    private readonly tisSlot: Int32Array;
    private ready = new Int32Array(64);
    private readyHead = 0;
    private readyN = 0;
    private waiters: number[] = [];
    private curE = -1;

    // ---- processes, resources, sources
    private readonly codes: Instr[][];
    private readonly wipCount: Float64Array;
    private readonly completions: Float64Array;
    private readonly capacity: Float64Array;
    private readonly busy: Float64Array;
    private readonly queues: EntityQueue[];
    private readonly srcCreated: Float64Array;
    private readonly srcLimit: Float64Array;
    private readonly srcUntil: Float64Array;
    private readonly srcIa: (() => unknown)[];
    /** Inline exponential inter-arrivals, per source: 0 none, 1 mean, 2 rate; stream, parameter slot (or -1), constant. */
    private readonly srcFastKind: Int8Array;
    private readonly srcFastStream: (Uniform | null)[];
    private readonly srcFastParam: Int32Array;
    private readonly srcFastValue: Float64Array;
    private readonly srcTarget: Int32Array;
    private readonly srcEntity: Int32Array;
    /** Per process: 1 when its work in progress is monitored. */
    private readonly wipOn: Uint8Array;
    private readonly attrInit: (EntityFn | null)[][];

    // ---- system dynamics
    private sdT = 0;
    private sdK = 0;
    private onGrid = true;
    private readonly dt: number;
    /** One generated integration step (RK4 or Euler), or null without flows. */
    private readonly step: ((t: number, h: number, y: Float64Array) => void) | null;
    /** While the integrator runs: the start of the step being computed (for errors). */
    private inSD = false;
    private readonly monitoredStocks: Int32Array;
    private sdSteps = 0;
    private stockThin = 1;

    // ---- agents
    private readonly groupStates: unknown[][][];
    private readonly groupBase: Int32Array;
    private readonly gidGroup: Int32Array;
    private readonly gidIndex: Int32Array;
    private readonly lastWhen: Uint8Array;
    private readonly maxWhens: number;
    private readonly hasWhens: boolean;
    private readonly rr: Int32Array;
    private readonly groupStrategy: (string | undefined)[];
    /** Per group: the index of its elected leader under a `leader` coordinator, else -1. */
    private readonly leaderOf: Int32Array;
    /** Per group: the heartbeat of its `consensus` coordinator (seconds; 0: none). */
    private readonly consensusBeat: Float64Array;
    private readonly messages: (Message | undefined)[] = [];
    private readonly freeMessages: number[] = [];
    private curG = -1;
    private curA = -1;
    private readonly seriesCache = new Map<string, AgentSeries>();
    /** Per group under consensus: ballots keyed by channel and fields. */
    private readonly ballots: Map<string, Ballot>[];

    // ---- inference
    private readonly host: ModelHost | undefined;
    /** Behaviours started that have not finished (async bodies waiting on a model). */
    private pendingN = 0;
    private readonly inferQueue: PendingInfer[] = [];
    /** The activation whose code runs now (set while a body's synchronous part or a resumed part runs). */
    private act: Activation | undefined = undefined;
    /** The first failure of an async body. */
    private failure: unknown = undefined;
    /** Model calls made so far, and how many of them the host had been told to run at the last flush. */
    private inferSeq = 0;
    private flushedSeq = 0;

    // ---- tracing
    private readonly tr: boolean;
    /** Where records go (undefined when not tracing): hot ones as numbers and string ids, cold ones as records. */
    private readonly enc: TraceEncoder | undefined;
    /** The encoder came with the spec: its owner flushes it. */
    private readonly ownEncoder: boolean;
    private readonly wallClock: () => number;
    private readonly wall0: number;
    /** The wall clock at the last reading (every WALL_EVERY + 1 events): what hot records carry. */
    private wallNow = 0;
    private nextId = 1;
    /** Traced: the entity whose step ended at this event, its span not yet recorded (-1: none). */
    private stepDue = -1;
    /** The trace's strings and their ids (undefined when not tracing). */
    private readonly tn: TraceNames | undefined;
    private readonly ids: TraceIds | undefined;

    constructor(private readonly program: Program, private readonly spec: ReplicationSpec) {
        const p = program;
        this.horizon = spec.horizon;
        this.warmup = spec.warmup > 0 ? spec.warmup : 0;
        this.tr = spec.trace?.enabled === true;
        this.wallClock = spec.wallClock ?? defaultWallClock;
        this.wall0 = this.wallClock();
        this.tn = this.tr ? traceNames(program) : undefined;
        const given = spec.trace;
        // Told apart by shape, not instanceof: the encoder may come from another bundle.
        this.ownEncoder = !(given !== undefined && typeof (given as Partial<TraceEncoder>).span === 'function');
        this.enc = !this.tr ? undefined : this.ownEncoder ? recordEncoder(given as TraceSink) : given as TraceEncoder;
        if (this.enc) {
            const enc = this.enc;
            const tn = this.tn!;
            const ids = (names: readonly string[]) => names.map(n => enc.intern(n));
            this.ids = {
                entity: ids(tn.entity), entityPrefix: ids(tn.entityPrefix), busy: ids(tn.busy), queueLen: ids(tn.queueLen),
                queueSpan: ids(tn.queueSpan), stock: ids(tn.stock), delay: enc.intern('delay'), sites: new Array<number>(tn.sites.length).fill(-1)
            };
        }
        this.host = spec.models;

        this.streams = p.streamNames.map(name =>
            p.options.streamOverride?.(name, spec.seed, spec.replication) ?? Xoshiro128.of(spec.seed, spec.replication, name));
        this.P = new Array<Constant>(p.params.length).fill(0);
        this.Y = new Float64Array(p.stocks.length);
        this.AT = p.attrs.map(a => (a.numeric ? new Float64Array(0) : []));
        this.MW = p.processes.map((_, i) => (p.waitMonitors.has(i) ? new Tally() : null));
        this.MT = p.processes.map((_, i) => (p.tisMonitors.includes(i) ? new Tally() : null));
        this.MQ = p.resources.map(() => new TimeWeighted(0, 0));
        this.MB = p.resources.map(() => new TimeWeighted(0, 0));
        this.MP = p.processes.map(() => new TimeWeighted(0, 0));
        this.ML = p.stocks.map((_, i) => (p.stockMonitors.includes(i) ? new TimeWeighted(0, 0) : null));
        for (const key of p.sketches) {
            const i = Number(key.slice(1));
            const m = key[0] === 'W' ? this.MW[i] : key[0] === 'T' ? this.MT[i] : key[0] === 'Q' ? this.MQ[i] : key[0] === 'P' ? this.MP[i] : this.ML[i];
            if (m) m.sketch = new QuantileSketch();
        }
        this.fns = p.factory(this, H);

        // Parameters, with the overrides.
        const ov: (Constant | undefined)[] = new Array(p.params.length).fill(undefined);
        for (const [name, value] of Object.entries(spec.overrides ?? {})) {
            const i = p.params.findIndex(x => x.name === name);
            if (i < 0) throw new SimulationError(`unknown parameter '${name}' in the overrides`, undefined, 0);
            ov[i] = value;
        }
        (this.fns[p.paramInit] as (ov: unknown[]) => void)(ov);

        // Stocks.
        p.stocks.forEach((s, i) => { this.Y[i] = Number((this.fns[s.init] as () => unknown)()); });
        this.ML.forEach((m, i) => { if (m) { m.value = this.Y[i]; m.reset(0); } });
        this.dt = p.dt;
        this.step = p.deriv >= 0 ? this.fns[p.deriv] as (t: number, h: number, y: Float64Array) => void : null;
        this.monitoredStocks = Int32Array.from(this.ML.flatMap((m, i) => (m ? [i] : [])));

        // Discrete-event structures.
        this.codes = p.processes.map(pr => pr.code.map(s => new Instr(s, this.fns, this.streams)));
        this.wipCount = new Float64Array(p.processes.length);
        this.completions = new Float64Array(p.processes.length);
        this.capacity = new Float64Array(p.resources.length);
        this.busy = new Float64Array(p.resources.length);
        this.queues = p.resources.map(r => new EntityQueue(r.discipline));
        p.resources.forEach((r, i) => {
            const c = Number((this.fns[r.capacity] as () => unknown)());
            if (!(c >= 0)) throw new SimulationError(`the capacity of '${r.name}' is ${c}: it must be ≥ 0`, r.loc, 0);
            this.capacity[i] = Math.floor(c);
        });
        this.serials = new Float64Array(p.entities.length);
        this.tisSlot = Int32Array.from(p.processes.map((_, i) => p.tisMonitors.indexOf(i)));
        this.srcCreated = new Float64Array(p.sources.length);
        this.srcLimit = Float64Array.from(p.sources.map(s => (s.limit >= 0 ? Number((this.fns[s.limit] as () => unknown)()) : Infinity)));
        this.srcUntil = Float64Array.from(p.sources.map(s => (s.until >= 0 ? Number((this.fns[s.until] as () => unknown)()) : Infinity)));
        this.srcIa = p.sources.map(s => this.fns[s.interarrival] as () => unknown);
        this.srcFastKind = Int8Array.from(p.sources.map(s => (s.fast ? (s.fast.kind === 'mean' ? 1 : 2) : 0)));
        this.srcFastStream = p.sources.map(s => (s.fast ? this.streams[s.fast.stream] : null));
        this.srcFastParam = Int32Array.from(p.sources.map(s => (s.fast ? s.fast.param : -1)));
        this.srcFastValue = Float64Array.from(p.sources.map(s => (s.fast ? s.fast.value : 0)));
        this.srcTarget = Int32Array.from(p.sources.map(s => s.target));
        this.srcEntity = Int32Array.from(p.sources.map(s => s.entity));
        this.wipOn = Uint8Array.from(p.processes.map((_, i) => (p.wipMonitors.has(i) ? 1 : 0)));
        this.attrInit = p.entities.map(e => e.attrs.map(k => (p.attrs[k].init >= 0 ? this.fns[p.attrs[k].init] as EntityFn : null)));
        this.growEntities(256);

        // Agents.
        this.groupBase = new Int32Array(p.groups.length);
        let total = 0;
        p.groups.forEach((g, i) => { this.groupBase[i] = total; total += g.count; });
        this.gidGroup = new Int32Array(total);
        this.gidIndex = new Int32Array(total);
        p.groups.forEach((g, i) => { for (let a = 0; a < g.count; a++) { this.gidGroup[this.groupBase[i] + a] = i; this.gidIndex[this.groupBase[i] + a] = a; } });
        this.groupStates = p.groups.map(g => p.agentTypes[g.agentType].states.map(() => new Array<unknown>(g.count).fill(0)));
        this.maxWhens = Math.max(0, ...p.agentTypes.map(t => t.whens.length));
        this.hasWhens = p.groups.some(g => g.count > 0 && p.agentTypes[g.agentType].whens.length > 0);
        this.lastWhen = new Uint8Array(total * this.maxWhens);
        this.rr = new Int32Array(p.groups.length);
        this.groupStrategy = p.groups.map((_, i) => p.coordinators.find(c => c.group === i)?.strategy);
        // Agents do not fail in a simulated run: the leader, once elected (the first member), stays leader.
        this.leaderOf = Int32Array.from(p.groups.map((_, i) => (this.groupStrategy[i] === 'leader' ? 0 : -1)));
        this.consensusBeat = Float64Array.from(p.groups.map((_, i) => p.coordinators.find(c => c.group === i && c.strategy === 'consensus')?.heartbeat ?? 0));
        this.ballots = p.groups.map(() => new Map<string, Ballot>());
    }

    /** The default parameter values of a program (in base units). */
    static defaultParams(program: Program): Constant[] {
        return new Replication(program, { seed: 0, replication: 0, horizon: 0, warmup: 0 }).P.slice();
    }

    // ================================================================ run

    run(): ReplicationResult {
        try {
            return this.runSync();
        } finally {
            if (this.ownEncoder) this.enc?.flush();
        }
    }

    private runSync(): ReplicationResult {
        const des = this.start();
        let stopped = false;
        if (!des && this.program.hasFlows) {
            stopped = this.runStocksOnly();
        } else {
            if (this.program.hasFlows) this.heap.push(this.dt, EV_SD, 0, 0);
            stopped = this.loop();
        }
        if (this.pendingN !== 0) throw new Error(`twin '${this.program.twin}' calls models: run it with runReplicationAsync`);
        return this.finish(stopped);
    }

    /**
     * The same run, for twins whose agents call models: whenever behaviours wait on a model,
     * the loop stops before simulated time moves past the current instant; the batched calls
     * run, then each waiting behaviour resumes in the order its call was made (inference
     * takes no simulated time), and the loop goes on.
     */
    async runAsync(): Promise<ReplicationResult> {
        try {
            return await this.runAsyncBody();
        } finally {
            if (this.ownEncoder) this.enc?.flush();
        }
    }

    private async runAsyncBody(): Promise<ReplicationResult> {
        if (this.program.usesInference && !this.host) {
            throw new Error(`twin '${this.program.twin}' has agents that call models: give the replication a model host (ReplicationSpec.models)`);
        }
        this.host?.beginReplication({ trace: this.enc ? { enabled: true, record: r => this.enc!.record(r) } : undefined, wall: () => this.wall() });
        const des = this.start();
        let stopped = false;
        if (!des && this.program.hasFlows) {
            await this.settle();
            stopped = this.runStocksOnly();
        } else {
            if (this.program.hasFlows) this.heap.push(this.dt, EV_SD, 0, 0);
            for (;;) {
                await this.settle();
                stopped = this.loop();
                if (stopped || this.pendingN === 0) break;
            }
        }
        return this.finish(stopped);
    }

    /** Agents' initial states, timers and first look at conditions; first arrivals, warm-up, heartbeats. Returns whether there is discrete-event work. */
    private start(): boolean {
        const p = this.program;
        const heap = this.heap;
        this.initAgents();
        for (let s = 0; s < p.sources.length; s++) {
            if (this.srcLimit[s] > 0) this.scheduleArrival(s);
        }
        const des = p.sources.length > 0 || heap.n > 0;
        if (this.warmup > 0) heap.push(this.warmup, EV_WARMUP, 0, 0);
        for (let c = 0; c < p.coordinators.length; c++) {
            const hb = p.coordinators[c].heartbeat;
            if (p.coordinators[c].strategy !== 'round-robin' && hb > 0) heap.push(hb, EV_HEARTBEAT, c, 1);
        }
        if (p.hasFlows && Number.isFinite(this.horizon)) this.stockThin = Math.max(1, Math.floor(this.horizon / this.dt / 2000));
        return des;
    }

    private finish(stopped: boolean): ReplicationResult {
        if (!stopped && Number.isFinite(this.horizon)) this.now = this.horizon;
        this.advanceSD(this.now);
        return {
            status: stopped ? 'stopped' : 'completed',
            kpis: this.kpis(),
            events: this.events,
            simTime: this.now,
            entities: this.created
        };
    }

    private loop(): boolean {
        const heap = this.heap;
        const horizon = this.horizon;
        const spec = this.spec;
        const checkEvery = spec.onProgress || spec.shouldStop ? 4095 : -1;
        const tr = this.tr;
        if (tr) this.readWall();
        while (heap.n > 0) {
            if (heap.t[0] > horizon) break;
            // Behaviours wait on models: time moves on only once they have their answers.
            if (this.pendingN !== 0 && heap.t[0] > this.now) return false;
            heap.pop();
            this.now = heap.topT;
            if ((++this.events & WALL_EVERY) === 0 && tr) this.readWall();
            switch (heap.topK) {
                case EV_ARRIVAL: this.arrival(heap.topA); break;
                case EV_RESUME: {
                    const e = heap.topA;
                    if (tr) {
                        // The step's span is recorded once the entity has run on to its next delay (there), a wait
                        // (here) or its end (with its own span, in one record).
                        this.stepDue = e;
                        this.runEntity(e);
                        if (this.stepDue >= 0) this.traceStep();
                    } else {
                        this.runEntity(e);
                    }
                    break;
                }
                case EV_SD:
                    this.advanceSD(this.now);
                    this.dirty = true;
                    heap.push((this.sdK + 1) * this.dt, EV_SD, 0, 0);
                    break;
                case EV_TIMER: this.timer(heap.topA, heap.topB); break;
                case EV_MSG: this.deliver(heap.topA); break;
                case EV_WARMUP: this.resetStatistics(); break;
                case EV_HEARTBEAT: this.heartbeat(heap.topA, heap.topB); break;
            }
            if (this.readyN > 0) this.drainReady();
            if (this.dirty) {
                // Only waiting entities and agents' conditions care about a change.
                if (this.waiters.length > 0 || this.hasWhens) this.recheck();
                else this.dirty = false;
            }
            if ((this.events & checkEvery) === 0 && checkEvery > 0) {
                this.enc?.flushIfDue();
                spec.onProgress?.(this.now, this.events);
                if (spec.shouldStop?.()) return true;
            }
        }
        return false;
    }

    private runStocksOnly(): boolean {
        const spec = this.spec;
        if (!Number.isFinite(this.horizon)) {
            throw new SimulationError('a model with only stocks and flows needs a finite horizon', undefined, 0);
        }
        const chunk = 16384;
        const go = (t: number): boolean => {
            while (this.sdT < t) {
                const target = Math.min(t, (this.sdK + chunk) * this.dt);
                this.advanceSD(target);
                this.now = this.sdT;
                this.events = this.sdSteps;
                spec.onProgress?.(this.now, this.events);
                if (spec.shouldStop?.()) return true;
            }
            return false;
        };
        if (this.warmup > 0 && this.warmup < this.horizon) {
            if (go(this.warmup)) return true;
            this.now = this.warmup;
            this.resetStatistics();
        }
        const stopped = go(this.horizon);
        this.events = this.sdSteps;
        return stopped;
    }

    private resetStatistics(): void {
        const now = this.now;
        this.advanceSD(now);
        this.warmedUp = true;
        this.statsStart = now;
        for (const m of this.MW) m?.reset();
        for (const m of this.MT) m?.reset();
        for (const m of this.MQ) { m.finish(now); m.reset(now); }
        for (const m of this.MB) { m.finish(now); m.reset(now); }
        for (const m of this.MP) { m.finish(now); m.reset(now); }
        for (const m of this.ML) { if (m) { m.ramp(now, m.value); m.reset(now); } }
        this.completions.fill(0);
        if (this.tr) this.enc!.record({ kind: 'instant', name: 'warm-up: statistics reset', t: now, wall: this.wall() });
    }

    // ================================================================ entities

    private growEntities(min: number): void {
        const cap = Math.max(min, this.cap * 2);
        const f64 = (a: Float64Array) => { const b = new Float64Array(cap); b.set(a); return b; };
        const i32 = (a: Int32Array) => { const b = new Int32Array(cap); b.set(a); return b; };
        this.eProc = i32(this.eProc); this.ePc = i32(this.ePc); this.eType = i32(this.eType);
        this.eSerial = f64(this.eSerial); this.eBorn = f64(this.eBorn); this.eWait = f64(this.eWait);
        this.eQStart = f64(this.eQStart); this.eAmt = f64(this.eAmt); this.eSpan = f64(this.eSpan);
        this.eWallBorn = f64(this.eWallBorn); this.eStepStart = f64(this.eStepStart); this.eStepSite = i32(this.eStepSite);
        this.eTis = this.program.tisMonitors.map((_, k) => { const b = new Float64Array(cap).fill(NaN); if (this.eTis[k]) b.set(this.eTis[k]); return b; });
        for (let k = 0; k < this.AT.length; k++) {
            const a = this.AT[k];
            if (a instanceof Float64Array) { const b = new Float64Array(cap); b.set(a); this.AT[k] = b; }
        }
        const free = new Int32Array(cap); free.set(this.free.subarray(0, this.freeN)); this.free = free;
        this.cap = cap;
    }

    private allocEntity(): number {
        if (this.freeN > 0) return this.free[--this.freeN];
        if (this.used === this.cap) this.growEntities(this.cap * 2);
        return this.used++;
    }

    private scheduleArrival(s: number): void {
        const kind = this.srcFastKind[s];
        let ia: number;
        if (kind !== 0) {
            const param = this.srcFastParam[s];
            const x = param >= 0 ? this.P[param] as number : this.srcFastValue[s];
            const u = this.srcFastStream[s]!.next();
            ia = kind === 1 ? -Math.log(1 - u) * x : -Math.log(1 - u) / x;
        } else {
            ia = Number(this.srcIa[s]());
        }
        if (!(ia >= 0)) this.fail(this.program.sources[s].site, `negative or invalid inter-arrival time ${ia} s`);
        const t = this.now + ia;
        if (t <= this.srcUntil[s]) this.heap.push(t, EV_ARRIVAL, s, 0);
    }

    private arrival(s: number): void {
        const type = this.srcEntity[s];
        const e = this.allocEntity();
        this.created++;
        this.eType[e] = type;
        this.eSerial[e] = ++this.serials[type];
        this.eBorn[e] = this.now;
        this.eWait[e] = 0;
        this.curE = e;
        this.curG = -1;
        const inits = this.attrInit[type];
        if (inits.length > 0) {
            const slots = this.program.entities[type].attrs;
            for (let k = 0; k < inits.length; k++) {
                const f = inits[k];
                if (f !== null) (this.AT[slots[k]] as Float64Array)[e] = f(e) as number;
            }
        }
        if (this.tr) { this.eSpan[e] = this.nextId++; this.eWallBorn[e] = this.wallNow; }
        if (++this.srcCreated[s] < this.srcLimit[s]) this.scheduleArrival(s);
        this.enter(e, this.srcTarget[s]);
        this.runEntity(e);
    }

    private enter(e: number, p: number): void {
        this.eProc[e] = p;
        this.ePc[e] = 0;
        this.eWait[e] = 0;
        const n = ++this.wipCount[p];
        if (this.wipOn[p] === 1) this.MP[p].set(this.now, n);
        const k = this.tisSlot[p];
        if (k >= 0 && this.eTis[k][e] !== this.eTis[k][e]) this.eTis[k][e] = this.now;
    }

    private leave(e: number, p: number): void {
        const n = --this.wipCount[p];
        if (this.wipOn[p] === 1) this.MP[p].set(this.now, n);
        this.completions[p]++;
        const w = this.MW[p];
        if (w !== null) w.add(this.eWait[e]);
    }

    private dispose(e: number): void {
        const tis = this.program.tisMonitors;
        for (let k = 0; k < tis.length; k++) {
            const t0 = this.eTis[k][e];
            if (t0 === t0) {
                this.MT[tis[k]]!.add(this.now - t0);
                this.eTis[k][e] = NaN;
            }
        }
        if (this.tr) {
            const type = this.eType[e];
            const ids = this.ids!;
            if (this.stepDue === e) {
                // It leaves as its step ends: both spans in one record.
                this.stepDue = -1;
                this.enc!.entityStep(ids.entity[type], this.eSpan[e], ids.entityPrefix[type], this.eSerial[e], this.eBorn[e], this.now, this.eWallBorn[e],
                    ids.delay, this.nextId++, this.stepLoc(e), this.eStepStart[e]);
            } else {
                this.enc!.entitySpan(ids.entity[type], this.eSpan[e], ids.entityPrefix[type], this.eSerial[e], this.eBorn[e], this.now, this.eWallBorn[e]);
            }
        }
        if (this.freeN === this.free.length) { const f = new Int32Array(this.free.length * 2 + 16); f.set(this.free); this.free = f; }
        this.free[this.freeN++] = e;
    }

    private pushReady(e: number): void {
        if (this.readyN === this.ready.length) {
            const cap = this.ready.length * 2;
            const b = new Int32Array(cap);
            for (let i = 0; i < this.readyN; i++) b[i] = this.ready[(this.readyHead + i) & (this.ready.length - 1)];
            this.ready = b;
            this.readyHead = 0;
        }
        this.ready[(this.readyHead + this.readyN) & (this.ready.length - 1)] = e;
        this.readyN++;
    }

    private drainReady(): void {
        while (this.readyN > 0) {
            const e = this.ready[this.readyHead];
            this.readyHead = (this.readyHead + 1) & (this.ready.length - 1);
            this.readyN--;
            this.runEntity(e);
        }
    }

    /** Runs entity e from its instruction index until it waits or leaves. */
    private runEntity(e: number): void {
        this.curE = e;
        this.curG = -1;
        let proc = this.eProc[e];
        let code = this.codes[proc];
        let pc = this.ePc[e];
        const now = this.now;
        for (;;) {
            const ins = code[pc];
            switch (ins.op) {
                case OP_SEIZE: {
                    const r = ins.a;
                    const amt = ins.fn === null ? 1 : Number(ins.fn(e));
                    if (amt > this.capacity[r] || !(amt >= 0)) this.failSeize(ins, r, amt);
                    const q = this.queues[r];
                    if (q.n === 0 && this.busy[r] + amt <= this.capacity[r]) {
                        this.busy[r] += amt;
                        this.MB[r].set(now, this.busy[r]);
                        if (this.tr) this.counter(this.ids!.busy[r], this.busy[r]);
                        this.dirty = true;
                        pc++;
                        continue;
                    }
                    this.eAmt[e] = amt;
                    this.eQStart[e] = now;
                    this.ePc[e] = pc;
                    q.push(e, ins.fn2 === null ? 0 : Number(ins.fn2(e)));
                    this.MQ[r].set(now, q.n);
                    if (this.tr) this.counter(this.ids!.queueLen[r], q.n);
                    this.tryServe(r);
                    return;
                }
                case OP_RELEASE: {
                    const r = ins.a;
                    const amt = ins.fn === null ? 1 : Number(ins.fn(e));
                    const b = this.busy[r] - amt;
                    if (b < 0 || !(amt >= 0)) this.failRelease(ins, r, amt);
                    this.busy[r] = b;
                    this.MB[r].set(now, b);
                    // A release that lets the next waiting entity in at once is one change of the level in
                    // the trace, recorded by tryServe: the level in between lasted no time.
                    if (this.queues[r].n > 0) this.tryServe(r, this.tr);
                    else if (this.tr) this.counter(this.ids!.busy[r], b);
                    this.dirty = true;
                    pc++;
                    continue;
                }
                case OP_DELAY: {
                    let d: number;
                    if (ins.fastKind !== 0) {
                        const x = ins.fastParam >= 0 ? this.P[ins.fastParam] as number : ins.fastValue;
                        const u = ins.fastStream!.next();
                        d = ins.fastKind === 1 ? -Math.log(1 - u) * x : -Math.log(1 - u) / x;
                    } else {
                        d = ins.fn!(e) as number;
                    }
                    if (!(d >= 0)) this.fail(ins.site, `negative or invalid delay ${d} s`);
                    this.ePc[e] = pc + 1;
                    if (this.tr) {
                        // The step that ended at this event is recorded before its start and site give way to this one's.
                        if (this.stepDue === e) this.traceStep();
                        this.eStepStart[e] = now;
                        this.eStepSite[e] = ins.site;
                    }
                    this.heap.push(now + d, EV_RESUME, e, 0);
                    return;
                }
                case OP_JUMP:
                    pc = ins.a;
                    continue;
                case OP_BRANCH:
                    pc = this.branch(ins, e);
                    continue;
                case OP_ROUTE:
                    this.leave(e, proc);
                    proc = ins.a;
                    code = this.codes[proc];
                    this.enter(e, proc);
                    pc = 0;
                    continue;
                case OP_ASSIGN:
                    ins.fn!(e);
                    this.dirty = true;
                    pc++;
                    continue;
                case OP_WAIT:
                    if (ins.fn!(e)) {
                        pc++;
                        continue;
                    }
                    this.ePc[e] = pc;
                    this.eQStart[e] = now;
                    this.waiters.push(e);
                    return;
                case OP_DISPOSE:
                case OP_END:
                    this.leave(e, proc);
                    this.dispose(e);
                    return;
            }
        }
    }

    private branch(ins: Instr, e: number): number {
        const kinds = ins.armKinds!, fns = ins.armFns!, targets = ins.armTargets!;
        let u = -1;
        let acc = 0;
        for (let i = 0; i < kinds.length; i++) {
            const k = kinds[i];
            if (k === ARM_PROB) {
                if (u < 0) u = ins.stream!.next();
                const pr = Number(fns[i]!(e));
                if (!(pr >= 0)) this.fail(ins.site, `invalid probability ${pr}`);
                acc += pr;
                if (u < acc) return targets[i];
            } else if (k === ARM_OTHERWISE || fns[i]!(e)) {
                return targets[i];
            }
        }
        return ins.end;
    }

    // The cold paths of runEntity and tryServe, out of line so that the hot code stays small.
    private failSeize(ins: Instr, r: number, amt: number): never {
        this.fail(ins.site, `seizes ${amt} of '${this.program.resources[r].name}', whose capacity is ${this.capacity[r]}`);
    }

    private failRelease(ins: Instr, r: number, amt: number): never {
        this.fail(ins.site, `releases ${amt} of '${this.program.resources[r].name}' but only ${this.busy[r]} are in use`);
    }

    private traceQueued(e: number, r: number): void {
        this.enc!.childSpan(CAT_QUEUE, this.ids!.queueSpan[r], this.nextId++, this.eSpan[e], this.ids!.entityPrefix[this.eType[e]], this.eSerial[e], NONE,
            this.eQStart[e], this.now);
    }

    /** Grants waiting entities the resource while the head of the queue fits; `released`: the trace has yet to record a release of this instant. */
    private tryServe(r: number, released = false): void {
        const q = this.queues[r];
        const cap = this.capacity[r];
        const now = this.now;
        let served = false;
        // Traced: the last entity served, whose wait is recorded with the resource's counters after it, in one record (`served`).
        let last = -1;
        while (q.n > 0) {
            const e = q.peek();
            const amt = this.eAmt[e];
            if (this.busy[r] + amt > cap) break;
            q.pop();
            served = true;
            this.busy[r] += amt;
            this.eWait[e] += now - this.eQStart[e];
            this.ePc[e]++;
            if (this.tr) {
                if (last >= 0) this.traceQueued(last, r);
                last = e;
            }
            this.pushReady(e);
        }
        if (served) {
            this.MB[r].set(now, this.busy[r]);
            this.MQ[r].set(now, q.n);
            if (this.tr) {
                const ids = this.ids!;
                this.enc!.served(ids.queueSpan[r], this.nextId++, this.eSpan[last], ids.entityPrefix[this.eType[last]], this.eSerial[last],
                    this.eQStart[last], now, ids.busy[r], this.busy[r], ids.queueLen[r], q.n);
            }
        } else if (released) {
            this.counter(this.ids!.busy[r], this.busy[r]);
        }
    }

    /** After a change of state: waiting entities whose condition now holds continue; agents' `when` conditions are checked. */
    private recheck(): void {
        for (let round = 0; this.dirty && round < 1000; round++) {
            this.dirty = false;
            if (this.waiters.length > 0) {
                const still: number[] = [];
                for (const e of this.waiters) {
                    const ins = this.codes[this.eProc[e]][this.ePc[e]];
                    this.curE = e;
                    this.curG = -1;
                    if (ins.fn!(e)) {
                        this.ePc[e]++;
                        this.eWait[e] += this.now - this.eQStart[e];
                        this.pushReady(e);
                    } else {
                        still.push(e);
                    }
                }
                this.waiters = still;
                if (this.readyN > 0) this.drainReady();
            }
            if (this.hasWhens) this.checkWhens();
        }
    }

    // ================================================================ system dynamics

    /** The value of stock i now (the integrator first catches up with the clock). */
    stock(i: number): number {
        if (this.sdT < this.now) this.advanceSD(this.now);
        return this.Y[i];
    }

    setStock(i: number, v: number): void {
        if (this.sdT < this.now) this.advanceSD(this.now);
        this.Y[i] = v;
        const m = this.ML[i];
        if (m !== null) m.set(this.now, v);
        this.dirty = true;
        if (this.tr) {
            this.readWall();
            this.enc!.counter(this.ids!.stock[i], this.now, v);
        }
    }

    /** Advances the integrator to time t: whole steps on the grid k·dt, and a partial step to t when t is between. */
    private advanceSD(t: number): void {
        const step = this.step;
        if (step === null) {
            if (t > this.sdT) this.sdT = t;
            return;
        }
        const dt = this.dt;
        const mon = this.monitoredStocks;
        const y = this.Y;
        this.inSD = true;
        while (this.sdT < t) {
            const grid = (this.sdK + 1) * dt;
            let next: number, h: number;
            if (grid <= t) {
                next = grid;
                h = this.onGrid ? dt : grid - this.sdT;
                this.sdK++;
                this.onGrid = true;
            } else {
                next = t;
                h = t - this.sdT;
                this.onGrid = false;
            }
            step(this.sdT, h, y);
            this.sdT = next;
            this.sdSteps++;
            for (let j = 0; j < mon.length; j++) this.ML[mon[j]]!.ramp(next, y[mon[j]]);
            if (this.tr && this.sdSteps % this.stockThin === 0) this.traceStocks(next);
        }
        this.inSD = false;
    }

    private traceStocks(t: number): void {
        this.readWall();
        for (let j = 0; j < this.Y.length; j++) this.enc!.counter(this.ids!.stock[j], t, this.Y[j]);
    }

    // ================================================================ agents

    private initAgents(): void {
        const p = this.program;
        for (let g = 0; g < p.groups.length; g++) {
            const group = p.groups[g];
            const type = p.agentTypes[group.agentType];
            const st = this.groupStates[g];
            for (let a = 0; a < group.count; a++) {
                this.curG = g; this.curA = a; this.curE = -1;
                type.states.forEach((s, k) => { st[k][a] = (this.fns[s.init] as AgentFn)(a, st, undefined); });
            }
        }
        for (let g = 0; g < p.groups.length; g++) {
            const group = p.groups[g];
            const type = p.agentTypes[group.agentType];
            const leader = this.leaderOf[g];
            for (let a = 0; a < group.count; a++) {
                // Under a leader coordinator only the leader runs its timers.
                if (leader >= 0 && a !== leader) continue;
                for (let i = 0; i < type.timers.length; i++) this.scheduleTimer(g, a, i);
            }
        }
        if (this.hasWhens) this.checkWhens();
    }

    private scheduleTimer(g: number, a: number, i: number): void {
        const type = this.program.agentTypes[this.program.groups[g].agentType];
        const timer = type.timers[i];
        this.curG = g; this.curA = a; this.curE = -1;
        const dt = Number((this.fns[timer.interval] as AgentFn)(a, this.groupStates[g], undefined));
        if (!(dt > 0)) this.fail(timer.site, `the interval of a timer must be positive (got ${dt} s)`);
        this.heap.push(this.now + dt, EV_TIMER, this.groupBase[g] + a, i);
    }

    private timer(gid: number, i: number): void {
        const g = this.gidGroup[gid], a = this.gidIndex[gid];
        const type = this.program.agentTypes[this.program.groups[g].agentType];
        this.behave(g, a, type.timers[i].body, undefined, 'every');
        this.scheduleTimer(g, a, i);
    }

    private behave(g: number, a: number, body: number, msg: unknown, what: string): void {
        this.curG = g; this.curA = a; this.curE = -1;
        const w0 = this.tr ? this.wall() : 0;
        this.act = undefined;
        const r = (this.fns[body] as AgentFn)(a, this.groupStates[g], msg);
        if (r !== undefined) this.track(r as Promise<unknown>, g, a);
        this.dirty = true;
        if (this.tr) {
            this.enc!.record({
                kind: 'span', id: this.nextId++, name: what, cat: 'agent', start: this.now, end: this.now,
                wallStart: w0, wallEnd: this.wall(), subject: this.traceAgent(g, a)
            });
        }
    }

    private checkWhens(): void {
        const p = this.program;
        for (let g = 0; g < p.groups.length; g++) {
            const type = p.agentTypes[p.groups[g].agentType];
            if (type.whens.length === 0) continue;
            const st = this.groupStates[g];
            const leader = this.leaderOf[g];
            for (let a = 0; a < p.groups[g].count; a++) {
                // Under a leader coordinator only the leader runs its condition behaviours.
                if (leader >= 0 && a !== leader) continue;
                const base = (this.groupBase[g] + a) * this.maxWhens;
                for (let w = 0; w < type.whens.length; w++) {
                    this.curG = g; this.curA = a; this.curE = -1;
                    const v = (this.fns[type.whens[w].cond] as AgentFn)(a, st, undefined) ? 1 : 0;
                    const was = this.lastWhen[base + w];
                    this.lastWhen[base + w] = v;
                    if (v === 1 && was === 0) this.behave(g, a, type.whens[w].body, undefined, 'when');
                }
            }
        }
    }

    send(channel: number, payload: Record<string, unknown>, a: number, _st: unknown, site: number): void {
        void site;
        const g = this.curG;
        if (g >= 0 && this.groupStrategy[g] === 'consensus' && !this.vote(g, channel, payload, a)) return;
        const from = g < 0 ? '' : this.tr ? this.traceAgent(g, a) : this.agentName(g, a);
        const id = this.nextId++;
        const m: Message = { channel, payload, from, fromG: g, fromA: g >= 0 ? a : -1, id };
        const slot = this.freeMessages.length > 0 ? this.freeMessages.pop()! : this.messages.length;
        this.messages[slot] = m;
        this.heap.push(this.now, EV_MSG, slot, 0);
        if (this.tr) {
            this.enc!.record({ kind: 'message', id, phase: 'send', channel: this.tn!.channel[channel], from, t: this.now, wall: this.wall(), payload: plain(payload) });
        }
    }

    /**
     * Consensus: member a of group g votes for a message (its channel and fields). The
     * message goes out when more than half of the members voted for the same message in
     * the current heartbeat interval [k·t, (k+1)·t); the votes are then spent. Without a
     * heartbeat the interval is the whole run.
     */
    private vote(g: number, channel: number, payload: Record<string, unknown>, a: number): boolean {
        const beat = this.consensusBeat[g];
        const window = beat > 0 ? Math.floor(this.now / beat) : 0;
        const key = ballotKey(channel, payload);
        const ballots = this.ballots[g];
        let b = ballots.get(key);
        if (b === undefined) { b = { window, voters: new Set() }; ballots.set(key, b); }
        if (b.window !== window) { b.window = window; b.voters.clear(); }
        b.voters.add(a);
        if (b.voters.size * 2 <= this.program.groups[g].count) return false;
        ballots.delete(key);
        return true;
    }

    private deliver(slot: number): void {
        const m = this.messages[slot]!;
        this.messages[slot] = undefined;
        this.freeMessages.push(slot);
        const p = this.program;
        for (let g = 0; g < p.groups.length; g++) {
            const group = p.groups[g];
            const handlers = this.handlersOf(group.agentType, m.channel);
            if (handlers.length === 0 || group.count === 0) continue;
            // The sender never receives its own message.
            const self = m.fromG === g ? m.fromA : -1;
            let from = 0, to = group.count;
            if (this.groupStrategy[g] === 'round-robin') {
                // One member in turn, the sender skipped.
                let turn = this.rr[g] % group.count;
                if (turn === self) {
                    if (group.count === 1) continue;
                    turn = (turn + 1) % group.count;
                }
                from = turn; to = turn + 1; this.rr[g] = to % group.count;
            }
            for (let a = from; a < to; a++) {
                if (a === self) continue;
                if (this.tr) {
                    this.enc!.record({
                        kind: 'message', id: this.nextId++, phase: 'receive', channel: this.tn!.channel[m.channel], from: m.from,
                        to: this.traceAgent(g, a), link: m.id, t: this.now, wall: this.wall(), payload: plain(m.payload)
                    });
                }
                for (const h of handlers) this.behave(g, a, h.body, m.payload, this.tr ? this.tn!.channelOn[m.channel] : `on ${p.channels[m.channel]}`);
            }
        }
    }

    private readonly handlerCache = new Map<number, { channel: number; body: number }[]>();
    private handlersOf(agentType: number, channel: number): { channel: number; body: number }[] {
        const key = agentType * 65536 + channel;
        let h = this.handlerCache.get(key);
        if (!h) {
            h = this.program.agentTypes[agentType].handlers.filter(x => x.channel === channel);
            this.handlerCache.set(key, h);
        }
        return h;
    }

    /** The k-th heartbeat of coordinator c, at k·heartbeat: an instant in the trace; stale consensus votes go. */
    private heartbeat(c: number, k: number): void {
        const coord = this.program.coordinators[c];
        if (this.tr) this.enc!.record({ kind: 'instant', name: 'heartbeat', t: this.now, wall: this.wall(), subject: this.tn!.coordinator[c] });
        if (coord.strategy === 'consensus') {
            const window = Math.floor(this.now / coord.heartbeat);
            for (const [key, b] of this.ballots[coord.group]) if (b.window < window) this.ballots[coord.group].delete(key);
        }
        this.heap.push((k + 1) * coord.heartbeat, EV_HEARTBEAT, c, k + 1);
    }

    /**
     * `decide`: each criterion's scores are scaled to [0, 1] over the options (min–max;
     * `minimize` flips them, so the lowest raw score gets 1; when every option scores
     * the same, each gets 1), multiplied by the criterion's weight and summed; the best
     * option wins, ties going to the first declared.
     */
    decide(d: number, a: number, st: unknown[][], msg: unknown): string {
        const dec = this.program.decisions[d];
        const nOpt = dec.options.length, nCrit = dec.criteria.length;
        const raw = new Float64Array(nOpt * nCrit);
        for (let i = 0; i < nOpt; i++) {
            const o = dec.options[i];
            for (let k = 0; k < nCrit; k++) {
                const v = o.scores[k] >= 0 ? Number((this.fns[o.scores[k]] as AgentFn)(a, st, msg)) : 0;
                if (!Number.isFinite(v)) this.fail(dec.site, `option '${o.name}' of decision '${dec.name}' scores ${v} on '${dec.criteria[k].name}'`);
                raw[i * nCrit + k] = v;
            }
        }
        const score = new Float64Array(nOpt);
        for (let k = 0; k < nCrit; k++) {
            const c = dec.criteria[k];
            let lo = Infinity, hi = -Infinity;
            for (let i = 0; i < nOpt; i++) { const v = raw[i * nCrit + k]; if (v < lo) lo = v; if (v > hi) hi = v; }
            const span = hi - lo;
            for (let i = 0; i < nOpt; i++) {
                const v = raw[i * nCrit + k];
                const n = span > 0 ? (c.sign < 0 ? (hi - v) / span : (v - lo) / span) : 1;
                score[i] += c.weight * n;
            }
        }
        let best = -1, bestScore = -Infinity;
        for (let i = 0; i < nOpt; i++) if (score[i] > bestScore) { bestScore = score[i]; best = i; }
        const chosen = best >= 0 ? dec.options[best].name : '';
        if (this.tr) {
            const weights: Record<string, number> = {};
            for (const c of dec.criteria) weights[c.name] = c.weight;
            const scores = dec.options.map((o, i) => {
                const criteria: Record<string, number> = {};
                dec.criteria.forEach((c, k) => { criteria[c.name] = raw[i * nCrit + k]; });
                return { option: o.name, score: score[i], criteria };
            });
            this.enc!.record({
                kind: 'decision', id: this.nextId++, decision: dec.name, agent: this.curG >= 0 ? this.agentName(this.curG, a) : '',
                t: this.now, wall: this.wall(), chosen, scores, weights
            });
        }
        return chosen;
    }

    log(a: number, _st: unknown, message: unknown, site: number): void {
        if (this.tr) {
            this.enc!.record({
                kind: 'instant', name: 'log', t: this.now, wall: this.wall(), subject: this.curG >= 0 ? this.traceAgent(this.curG, a) : undefined,
                attrs: { message: String(message) }, loc: this.tn!.sites[site]
            });
        }
    }

    // ================================================================ inference

    /** An async body returned: it is pending until it settles (its first model call, if any, made it the current activation). */
    private track(body: Promise<unknown>, g: number, a: number): void {
        const act = this.act ?? { g, a, wake: undefined };
        this.act = undefined;
        this.pendingN++;
        const settled = (): void => {
            this.pendingN--;
            const wake = act.wake;
            act.wake = undefined;
            wake?.();
        };
        body.then(settled, (error: unknown) => {
            this.failure ??= error;
            settled();
        });
    }

    /**
     * `infer`: hands the call to the model host now (calls of one instant batch together)
     * and returns the promise the body awaits; the engine resolves it in `settle`, in the
     * order the calls were made.
     */
    infer(model: number, inputs: Record<string, unknown>, a: number, site: number): Promise<unknown> {
        const decl = this.program.models[model];
        if (!this.host) this.fail(site, `model '${decl.name}' needs a model host: run the twin with runReplicationAsync`);
        const g = this.curG;
        const act = this.act ?? (this.act = { g, a, wake: undefined });
        const wall0 = this.tr ? this.wall() : 0;
        let answer: Promise<InferResult>;
        try {
            answer = this.host.infer(model, inputs, { simTime: this.now, subject: this.agentName(g, a), site: this.program.sites[site] });
        } catch (error) {
            answer = Promise.reject(error);
        }
        // Awaited later, in order; a replication that fails first never awaits it (no unhandled rejection).
        answer.catch(() => undefined);
        return new Promise<unknown>((resolve, reject) => {
            this.inferQueue.push({ act, seq: this.inferSeq++, model, site, wall0, answer, resolve, reject });
            const wake = act.wake;
            act.wake = undefined;
            wake?.();
        });
    }

    /**
     * Runs what the behaviours of this instant asked the models: the host runs its batches,
     * then each waiting body resumes with its answer, one at a time in the order of the
     * calls, until every body has finished. The host is told to run what it holds only when
     * the next answer awaited is not running yet, so the calls that resumed bodies make next
     * batch together too. Throws the first failure.
     */
    private async settle(): Promise<void> {
        let idle = 0;
        while (this.pendingN !== 0) {
            const call = this.inferQueue.shift();
            if (call === undefined) {
                // Bodies that finished without waiting on a model settle on the next microtasks.
                await Promise.resolve();
                if (this.failure !== undefined) throw this.failure;
                if (++idle > 1000) throw new Error(`internal error: ${this.pendingN} behaviour(s) neither finish nor call a model`);
                continue;
            }
            idle = 0;
            if (call.seq >= this.flushedSeq) {
                // Every call made so far goes: those of this instant, and those the bodies resumed so far made next.
                this.flushedSeq = this.inferSeq;
                this.host!.flush();
            }
            let result: InferResult | undefined;
            let error: unknown;
            try {
                result = await call.answer;
            } catch (e) {
                error = e;
            }
            const { act } = call;
            this.curG = act.g; this.curA = act.a; this.curE = -1;
            this.act = act;
            const woke = new Promise<void>(resolve => { act.wake = resolve; });
            if (result !== undefined) {
                if (this.tr) this.traceInference(call, result);
                call.resolve(result.outputs);
            } else {
                call.reject(this.inferenceError(call, error));
            }
            await woke;
            this.act = undefined;
            this.dirty = true;
            if (this.failure !== undefined) throw this.failure;
            // A resumed body is like an event: what it changed may release waiting entities or fire conditions.
            if (this.readyN > 0) this.drainReady();
            if (this.waiters.length > 0 || this.hasWhens) this.recheck();
            else this.dirty = false;
        }
        if (this.failure !== undefined) throw this.failure;
    }

    private traceInference(call: PendingInfer, result: InferResult): void {
        const info = result.info;
        const name = this.tn!.model[call.model];
        this.enc!.record({
            kind: 'span', id: this.nextId++, name, cat: 'inference', start: this.now, end: this.now,
            wallStart: call.wall0, wallEnd: this.wall(), subject: this.traceAgent(call.act.g, call.act.a),
            attrs: { model: name, provider: info.provider, batch: info.batch, queueWaitUs: round1(info.queueWaitUs), runUs: round1(info.runUs), cacheHit: info.cacheHit },
            loc: this.tn!.sites[call.site]
        });
    }

    /** A failed model call: a SimulationError at the `infer`, naming the agent (subject) and the model; the host's line names the tensor. */
    private inferenceError(call: PendingInfer, error: unknown): SimulationError {
        const name = this.program.models[call.model].name;
        const reason = error instanceof Error ? error.message : String(error);
        const message = reason.includes(`'${name}'`) ? reason : `model '${name}': ${reason}`;
        const loc = this.program.sites[call.site];
        const err = new SimulationError(message, loc, this.now, this.agentName(call.act.g, call.act.a));
        if (this.tr) this.enc!.record({ kind: 'instant', name: 'error', t: this.now, wall: this.wall(), subject: err.subject, attrs: { message }, loc });
        return err;
    }

    member(obj: unknown, name: string, site: number): unknown {
        if (obj !== null && typeof obj === 'object' && name in obj) return (obj as Record<string, unknown>)[name];
        return this.fail(site, `no field '${name}' here`);
    }

    series(g: number, state: string): AgentSeries {
        const key = `${g}:${state}`;
        let s = this.seriesCache.get(key);
        if (!s) {
            const type = this.program.agentTypes[this.program.groups[g].agentType];
            const k = type.states.findIndex(x => x.name === state);
            if (k < 0) throw new SimulationError(`agent '${type.name}' has no state '${state}'`, this.program.groups[g].loc, this.now);
            s = new AgentSeries(() => this.groupStates[g][k]);
            this.seriesCache.set(key, s);
        }
        return s;
    }

    groupCount(g: number): number {
        return this.program.groups[g].count;
    }

    // ================================================================ monitors and KPIs

    stockMonitor(i: number): TimeWeighted {
        if (this.sdT < this.now) this.advanceSD(this.now);
        return this.ML[i]!;
    }

    utilization(r: number): number {
        const c = this.capacity[r];
        return c > 0 ? this.MB[r].mean() / c : NaN;
    }

    completed(p: number): number {
        return this.completions[p];
    }

    throughput(p: number): number {
        const span = this.now - this.statsStart;
        return span > 0 ? this.completions[p] / span : NaN;
    }

    div(a: number, b: number, site: number): number {
        if (b === 0) this.fail(site, 'division by zero');
        return a / b;
    }

    mod(a: number, b: number, site: number): number {
        if (b === 0) this.fail(site, 'division by zero (remainder)');
        return a % b;
    }

    private kpis(): Record<string, number> {
        const now = this.now;
        for (const m of this.MQ) m.finish(now);
        for (const m of this.MB) m.finish(now);
        for (const m of this.MP) m.finish(now);
        for (const m of this.ML) if (m) m.ramp(now, m.value);
        this.curE = -1; this.curG = -1;
        const out: Record<string, number> = {};
        for (const k of this.program.kpis) {
            const v = (this.fns[k.fn] as () => unknown)();
            out[k.name] = typeof v === 'boolean' ? (v ? 1 : 0) : Number(v) * k.factor;
        }
        void this.warmedUp;
        return out;
    }

    // ================================================================ errors and tracing

    private entityName(e: number): string {
        return `${this.program.entities[this.eType[e]].name}#${this.eSerial[e]}`;
    }

    private agentName(g: number, a: number): string {
        return `${this.program.agentTypes[this.program.groups[g].agentType].name}#${a + 1}`;
    }

    /** agentName, from the trace's strings. */
    private traceAgent(g: number, a: number): string {
        return this.tn!.agentPrefix[g] + (a + 1);
    }

    private subject(): string | undefined {
        if (this.curG >= 0) return this.agentName(this.curG, this.curA);
        if (this.curE >= 0) return this.entityName(this.curE);
        return undefined;
    }

    fail(site: number, message: string): never {
        // The step that ended at this event, before the error that followed it.
        if (this.stepDue >= 0) this.traceStep();
        const loc: SourceLocation | undefined = this.program.sites[site];
        const time = this.inSD ? this.sdT : this.now;
        this.inSD = false;
        const err = new SimulationError(message, loc, time, this.inSD ? undefined : this.subject());
        if (this.tr) this.enc!.record({ kind: 'instant', name: 'error', t: this.now, wall: this.wall(), subject: err.subject, attrs: { message }, loc });
        throw err;
    }

    private wall(): number {
        return this.wallClock() - this.wall0;
    }

    /** A hot counter: `name` is a string id from `ids`. */
    private counter(name: number, value: number): void {
        this.enc!.counter(name, this.now, value);
    }

    /** The span of the step that ended for the entity resumed at this event (`stepDue`), which did not leave with it. */
    private traceStep(): void {
        const e = this.stepDue;
        this.stepDue = -1;
        const ids = this.ids!;
        this.enc!.childSpan(CAT_STEP, ids.delay, this.nextId++, this.eSpan[e], ids.entityPrefix[this.eType[e]], this.eSerial[e], this.stepLoc(e),
            this.eStepStart[e], this.now);
    }

    /** The string id of the location of entity e's step (its delay). */
    private stepLoc(e: number): number {
        const ids = this.ids!;
        const site = this.eStepSite[e];
        const loc = ids.sites[site];
        return loc >= 0 ? loc : (ids.sites[site] = this.enc!.loc(this.tn!.sites[site]));
    }

    /** Reads the wall clock for the hot records that follow. */
    private readWall(): void {
        this.wallNow = this.wall();
        this.enc!.wall(this.wallNow);
    }
}

function round1(x: number): number {
    return Math.round(x * 10) / 10;
}

/** A key for "the same message": the channel and the fields, whatever their order. */
function ballotKey(channel: number, payload: Record<string, unknown>): string {
    const keys = Object.keys(payload).sort();
    let out = String(channel);
    for (const k of keys) out += `\u0000${k}\u0000${typeof payload[k]}:${String(payload[k])}`;
    return out;
}

function plain(payload: Record<string, unknown>): Record<string, string | number | boolean> {
    const out: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(payload)) out[k] = typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string' ? v : String(v);
    return out;
}
