/**
 * Compiles a checked twin (and the agents that populate it) into a `Program`: flat
 * tables (parameters, stocks, resources, sources, process instructions, agent
 * behaviours, KPIs) and one generated JavaScript function that, given a replication's
 * state, returns every expression of the model as a closure over typed arrays. The AST
 * is walked once, here; the hot loop (runtime.ts) never touches it.
 *
 * Generated code only ever names slots (P[3], Y[0], AT[2][e]) and helpers: DSL names
 * never reach it as code (strings are JSON-encoded), so nothing in a model can inject code.
 */
import * as path from 'node:path';
import { AstUtils, type AstNode } from 'langium';
import * as ast from '../../language-server/generated/ast.js';
import { findBuiltin } from '../../language-server/src/builtins.js';
import { SECONDS_PER, inferDim, unitSpecDim, unitSpecText, unquote, type Dim, type TimeUnitName } from '../../language-server/src/units.js';
import type { SourceLocation } from '../../protocol/index.js';
import type { CompiledModel, Constant, KpiInfo, ModelDecl, ParamInfo, ParamKind, ReplicationResult, ReplicationSpec, TensorDecl } from './api.js';
import type { Uniform } from './random.js';
import { Replication } from './runtime.js';
import { FIFO, LIFO, PRIORITY } from './structures.js';
import { ARM_OTHERWISE, ARM_PROB, ARM_WHEN, OP_ASSIGN, OP_BRANCH, OP_DELAY, OP_DISPOSE, OP_END, OP_JUMP, OP_RELEASE, OP_ROUTE, OP_SEIZE, OP_WAIT } from './opcodes.js';

export interface CompileOptions {
    /** Locations are reported relative to this folder (default: the current folder). */
    readonly cwd?: string;
    /**
     * Test-only: replaces a random stream by name (e.g. to replay the peers' mulberry32
     * streams). Returning undefined keeps the engine's own stream.
     */
    readonly streamOverride?: (name: string, seed: number, replication: number) => Uniform | undefined;
    /**
     * Agent systems that may observe the twin (typically every system of the files the
     * twin was loaded with). Those whose `observes` names this twin run with it, their
     * swarms included, even when the twin has no `population` of their agents.
     */
    readonly systems?: readonly ast.System[];
}

/** A compile-time failure: the model uses something the engine cannot execute. */
export class CompileError extends Error {
    constructor(message: string, readonly loc: SourceLocation | undefined) {
        super(loc ? `${loc.file}:${loc.line}:${loc.column}: ${message}` : message);
        this.name = 'CompileError';
    }
}

// ------------------------------------------------------------------ the program

export * from './opcodes.js';

export interface InstrSpec {
    op: number;
    /** Resource, process or jump target, by op. */
    a: number;
    /** Expression ids (-1: none): seize amount / release amount / delay / assign / wait condition. */
    fn: number;
    /** Seize priority. */
    fn2: number;
    /** Branch arms. */
    armKinds?: number[];
    armFns?: number[];
    armTargets?: number[];
    /** Branch: where execution continues when no arm is taken. */
    end?: number;
    /** Branch: the stream for probability arms. */
    stream?: number;
    /** Delay: a fast path for the common case (see FastSample). */
    fast?: FastSample;
    site: number;
}

/**
 * An exponential with a constant or parameter argument, sampled inline by the hot loop
 * (no closure call): the same arithmetic and the same stream as the generated code.
 */
export interface FastSample { kind: 'mean' | 'rate'; stream: number; param: number; value: number }

export interface ProcessSpec { name: string; entity: number; code: InstrSpec[]; loc: SourceLocation }
export interface ResourceSpec { name: string; capacity: number; discipline: number; loc: SourceLocation }
export interface SourceSpec { name: string; entity: number; target: number; interarrival: number; fast?: FastSample; limit: number; until: number; site: number }
export interface EntitySpec { name: string; attrs: number[] }
export interface AttrSpec { name: string; init: number; numeric: boolean }
export interface StockSpec { name: string; init: number; loc: SourceLocation }
export interface KpiSpec { name: string; unit: string | undefined; factor: number; fn: number; loc: SourceLocation }
export interface AgentTypeSpec {
    name: string;
    states: { name: string; init: number }[];
    timers: { interval: number; body: number; site: number }[];
    handlers: { channel: number; body: number; site: number }[];
    whens: { cond: number; body: number; site: number }[];
}
export interface GroupSpec { name: string; agentType: number; count: number; loc: SourceLocation }
export interface CoordinatorSpec { name: string; group: number; strategy: 'round-robin' | 'leader' | 'consensus'; heartbeat: number }
export interface DecisionSpec {
    name: string;
    /** Where the decision is declared (for errors in its scores). */
    site: number;
    criteria: { name: string; weight: number; sign: number }[];
    options: { name: string; scores: number[] }[];
}

export interface Program {
    twin: string;
    params: ParamInfo[];
    paramInit: number;
    stocks: StockSpec[];
    /** The stocks whose level is monitored (by index). */
    stockMonitors: number[];
    hasFlows: boolean;
    method: 'euler' | 'rk4';
    dt: number;
    deriv: number;
    entities: EntitySpec[];
    attrs: AttrSpec[];
    resources: ResourceSpec[];
    sources: SourceSpec[];
    processes: ProcessSpec[];
    waitMonitors: Set<number>;
    tisMonitors: number[];
    /** Processes whose work in progress a KPI or condition reads (only those are tracked over time). */
    wipMonitors: Set<number>;
    sketches: Set<string>;
    kpis: KpiSpec[];
    agentTypes: AgentTypeSpec[];
    groups: GroupSpec[];
    channels: string[];
    coordinators: CoordinatorSpec[];
    decisions: DecisionSpec[];
    /** The models of the agent systems (declared, or called by an agent of the twin). */
    models: ModelDecl[];
    /** Whether a behaviour calls a model (its body is then an async function). */
    usesInference: boolean;
    streamNames: string[];
    sites: (SourceLocation | undefined)[];
    /** The generated module: `(R, H) => Function[]`. */
    factory: (R: Replication, H: unknown) => ((...args: never[]) => unknown)[];
    /** Its source, for debugging. */
    code: string;
    options: CompileOptions;
}

export interface CompiledTwin extends CompiledModel {
    readonly program: Program;
    readonly models: readonly ModelDecl[];
    readonly usesInference: boolean;
    runReplicationAsync(spec: ReplicationSpec): Promise<ReplicationResult>;
    /** Names of the random streams the model draws from (one per sampling site). */
    readonly streamNames: readonly string[];
}

/** Compiles a twin. Throws CompileError for constructs the engine cannot execute. */
export function compileTwin(twin: ast.Twin, options: CompileOptions = {}): CompiledTwin {
    const program = new Compiler(twin, options).compile();
    return {
        twin: twin.name,
        params: program.params,
        kpis: program.kpis.map((k): KpiInfo => ({ name: k.name, unit: k.unit, loc: k.loc })),
        models: program.models,
        usesInference: program.usesInference,
        program,
        streamNames: program.streamNames,
        runReplication: spec => {
            if (program.usesInference) {
                const names = program.models.filter(m => m.callers.length > 0).map(m => m.name).join(', ');
                throw new Error(`twin '${twin.name}' has agents that call models (${names}): run it with runReplicationAsync and a model host`);
            }
            return new Replication(program, spec).run();
        },
        runReplicationAsync: spec => new Replication(program, spec).runAsync()
    };
}

// ------------------------------------------------------------------ locations

export function nodeLocation(node: AstNode, cwd = process.cwd()): SourceLocation {
    let file = '<unknown>';
    try {
        const uri = AstUtils.getDocument(node).uri;
        file = uri.scheme === 'file' ? path.relative(cwd, uri.fsPath) || uri.fsPath : uri.toString();
        if (uri.scheme === 'file' && file.startsWith('..')) file = uri.fsPath;
    } catch {
        // a node outside a document (built in memory)
    }
    const range = node.$cstNode?.range;
    return { file, line: (range?.start.line ?? 0) + 1, column: (range?.start.character ?? 0) + 1 };
}

// ------------------------------------------------------------------ the compiler

interface Ctx {
    /** Inside the SD derivative: stocks are `y[i]`, auxes and flows are locals, time is `t`. */
    deriv: boolean;
    entity: boolean;
    agent: boolean;
    locals: Map<AstNode, string>;
    /** In the derivative: the code of stock i at this stage, and of the stage's time. */
    stockVar?: (i: number) => string;
    timeVar?: string;
    /** In a behaviour body (the only place `infer` may be): counts its model calls, shared by nested blocks. */
    infer?: { calls: number; agent: string };
}

const TWIN_CTX: Ctx = { deriv: false, entity: false, agent: false, locals: new Map() };

class Compiler {
    private readonly fns: string[] = [];
    private readonly streams = new Map<string, number>();
    private readonly sites: (SourceLocation | undefined)[] = [];
    private readonly params: ast.Param[] = [];
    private readonly paramIndex = new Map<ast.Param, number>();
    private readonly stockIndex = new Map<ast.Stock, number>();
    private readonly auxes: ast.Aux[] = [];
    private readonly flows: ast.Flow[] = [];
    private readonly auxFn = new Map<AstNode, number>();
    private readonly attrIndex = new Map<ast.Attribute, number>();
    private readonly attrs: AttrSpec[] = [];
    private readonly entityIndex = new Map<ast.Entity, number>();
    private readonly resourceIndex = new Map<ast.Resource, number>();
    private readonly processIndex = new Map<ast.Process, number>();
    private readonly kpiIndex = new Map<ast.Kpi, number>();
    private readonly channelIndex = new Map<ast.Channel, number>();
    private readonly decisionIndex = new Map<ast.Decision, number>();
    private readonly agentTypeIndex = new Map<ast.Agent, number>();
    private readonly groupIndex = new Map<AstNode, number>();
    private readonly stateIndex = new Map<ast.StateVar, number>();
    private readonly modelIndex = new Map<ast.Model, number>();
    private readonly models: (ModelDecl & { callers: string[] })[] = [];
    private usesInference = false;
    private readonly waitMonitors = new Set<number>();
    private readonly tisMonitors: number[] = [];
    private readonly wipMonitors = new Set<number>();
    private readonly stockMonitors: number[] = [];
    private readonly sketches = new Set<string>();
    private letCounter = 0;
    private flowFactor = 1;

    constructor(private readonly twin: ast.Twin, private readonly options: CompileOptions) {}

    private loc(node: AstNode): SourceLocation {
        return nodeLocation(node, this.options.cwd);
    }

    private fail(node: AstNode, message: string): never {
        throw new CompileError(message, this.loc(node));
    }

    private site(node: AstNode | undefined): number {
        this.sites.push(node ? this.loc(node) : undefined);
        return this.sites.length - 1;
    }

    /** Adds a generated function; returns its id. */
    private fn(params: string, body: string, async = false): number {
        this.fns.push(`${async ? 'async ' : ''}function(${params}) { ${body} }`);
        return this.fns.length - 1;
    }

    private exprFn(expr: ast.Expression | undefined, ctx: Ctx, params: string): number {
        if (!expr) return -1;
        return this.fn(params, `return ${this.gen(expr, ctx)};`);
    }

    private stream(node: AstNode, suffix = ''): number {
        const name = streamName(this.twin, node) + suffix;
        let i = this.streams.get(name);
        if (i === undefined) {
            i = this.streams.size;
            this.streams.set(name, i);
        }
        return i;
    }

    compile(): Program {
        const twin = this.twin;
        const members = twin.members;
        const stocks = members.filter(ast.isStock);
        stocks.forEach((s, i) => this.stockIndex.set(s, i));
        this.auxes.push(...members.filter(ast.isAux));
        this.flows.push(...members.filter(ast.isFlow));
        members.filter(ast.isKpi).forEach((k, i) => this.kpiIndex.set(k, i));
        members.filter(ast.isResource).forEach((r, i) => this.resourceIndex.set(r, i));
        members.filter(ast.isProcess).forEach((p, i) => this.processIndex.set(p, i));
        const entities = members.filter(ast.isEntity);
        entities.forEach((e, i) => this.entityIndex.set(e, i));
        for (const e of entities) {
            for (const a of e.attributes) {
                this.attrIndex.set(a, this.attrs.length);
                this.attrs.push({ name: a.name, init: -1, numeric: isNumericDim(inferDim(a.value)) });
            }
        }

        // Parameters, in dependency order.
        const params = orderByDependencies(members.filter(ast.isParam), p => refsOf(p.value).filter(ast.isParam), p => this.fail(p, `parameter '${p.name}' depends on itself`));
        params.forEach(p => { this.paramIndex.set(p, this.params.length); this.params.push(p); });
        const paramInfos: ParamInfo[] = [];
        const paramLines: string[] = [];
        for (const p of members.filter(ast.isParam)) {
            const i = this.paramIndex.get(p)!;
            paramInfos[i] = { name: p.name, value: 0, kind: paramKind(inferDim(p.value)), loc: this.loc(p) };
        }
        for (const p of params) {
            const i = this.paramIndex.get(p)!;
            paramLines.push(`P[${i}] = ov[${i}] !== undefined ? ov[${i}] : (${this.gen(p.value, TWIN_CTX)});`);
        }
        const paramInit = this.fn('ov', paramLines.join('\n'));
        // Default values, for ParamInfo (evaluated with a throwaway replication below).

        // System dynamics.
        const integration = members.find(ast.isIntegration);
        let dt = 60;
        let unitSeconds = 1;
        if (integration) {
            const step = integration.step;
            if (ast.isQuantityLiteral(step) && step.unit && !step.unit.per) unitSeconds = SECONDS_PER[step.unit.unit as TimeUnitName] ?? 1;
            const v = constantOf(step);
            if (typeof v !== 'number' || !(v > 0)) this.fail(integration, 'the integration step must be a positive constant time');
            dt = v;
        }
        this.flowFactor = 1 / unitSeconds;
        const stockSpecs: StockSpec[] = stocks.map(s => ({ name: s.name, init: this.exprFn(s.initial, TWIN_CTX, ''), loc: this.loc(s) }));
        const deriv = this.compileDerivative(stocks, integration?.method === 'rk4' ? 'rk4' : 'euler');

        // Discrete-event.
        const entitySpecs: EntitySpec[] = entities.map(e => ({ name: e.name, attrs: e.attributes.map(a => this.attrIndex.get(a)!) }));
        const entityCtx: Ctx = { deriv: false, entity: true, agent: false, locals: new Map() };
        for (const e of entities) {
            for (const a of e.attributes) this.attrs[this.attrIndex.get(a)!].init = this.exprFn(a.value, entityCtx, 'e');
        }
        const resources: ResourceSpec[] = members.filter(ast.isResource).map(r => {
            const cap = constantOf(r.capacity);
            const capFn = this.exprFn(r.capacity, TWIN_CTX, '');
            void cap;
            const discipline = r.discipline === 'lifo' ? LIFO : r.discipline === 'priority' ? PRIORITY : FIFO;
            return { name: r.name, capacity: capFn, discipline, loc: this.loc(r) };
        });
        const processes: ProcessSpec[] = members.filter(ast.isProcess).map(p => ({
            name: p.name,
            entity: p.entity?.ref ? this.entityIndex.get(p.entity.ref) ?? -1 : -1,
            code: this.compileProcess(p, entityCtx),
            loc: this.loc(p)
        }));
        const sources: SourceSpec[] = members.filter(ast.isSource).map(s => {
            const entity = s.entity?.ref ? this.entityIndex.get(s.entity.ref) : undefined;
            const target = s.target?.ref ? this.processIndex.get(s.target.ref) : undefined;
            if (entity === undefined || target === undefined) this.fail(s, `source '${s.name}' has an unresolved entity or process`);
            return {
                name: s.name, entity, target,
                interarrival: this.exprFn(s.interarrival, TWIN_CTX, ''),
                fast: this.fastSample(s.interarrival),
                limit: this.exprFn(s.limit, TWIN_CTX, ''),
                until: this.exprFn(s.until, TWIN_CTX, ''),
                site: this.site(s.interarrival ?? s)
            };
        });

        // Agents: the twin's populations, and the swarms of the systems their agents live in.
        const { agentTypes, groups, channels, coordinators, decisions } = this.compileAgents();

        // KPIs.
        const kpiCtx: Ctx = { deriv: false, entity: false, agent: false, locals: new Map() };
        const kpis: KpiSpec[] = members.filter(ast.isKpi).map(k => ({
            name: k.name,
            unit: k.unit ? unitSpecText(k.unit) : undefined,
            factor: k.unit ? 1 / unitSpecDim(k.unit).factor : 1,
            fn: this.exprFn(k.value, kpiCtx, ''),
            loc: this.loc(k)
        }));

        const code = `"use strict";\nconst P = R.P, Y = R.Y, AT = R.AT, ST = R.streams;\nreturn [\n${this.fns.join(',\n')}\n];`;
        let factory: Program['factory'];
        try {
            factory = new Function('R', 'H', code) as Program['factory'];
        } catch (e) {
            throw new CompileError(`internal error: generated code does not compile: ${(e as Error).message}`, this.loc(twin));
        }
        const program: Program = {
            twin: twin.name, params: paramInfos, paramInit, stocks: stockSpecs, stockMonitors: this.stockMonitors,
            hasFlows: this.flows.length > 0, method: integration?.method === 'rk4' ? 'rk4' : 'euler', dt, deriv,
            entities: entitySpecs, attrs: this.attrs, resources, sources, processes,
            waitMonitors: this.waitMonitors, tisMonitors: this.tisMonitors, wipMonitors: this.wipMonitors, sketches: this.sketches, kpis,
            agentTypes, groups, channels, coordinators, decisions, models: this.models, usesInference: this.usesInference,
            streamNames: [...this.streams.keys()], sites: this.sites, factory, code, options: this.options
        };
        // Resolve the default parameter values once, for ParamInfo.
        const defaults = Replication.defaultParams(program);
        program.params = paramInfos.map((p, i) => ({ ...p, value: defaults[i] }));
        return program;
    }

    private flowScale(f: ast.Flow): string {
        const d = inferDim(f.rate);
        return d.kind === 'quantity' && d.time === 0 ? String(this.flowFactor) : '1';
    }

    /**
     * The derivative as code for one evaluation: auxes and flows as locals (suffixed) in
     * dependency order, then each stock's net flow, summed in declaration order.
     */
    private derivStage(ordered: (ast.Aux | ast.Flow)[], stocks: ast.Stock[], stockVar: (i: number) => string, timeVar: string, suffix: string): { lines: string[]; d: string[] } {
        const ctx: Ctx = { deriv: true, entity: false, agent: false, locals: new Map(), stockVar, timeVar };
        const lines: string[] = [];
        ordered.forEach((n, i) => {
            const name = `${ast.isAux(n) ? 'a' : 'f'}${i}_${suffix}`;
            const expr = ast.isAux(n) ? this.gen(n.value, ctx) : `(${this.gen(n.rate, ctx)}) * ${this.flowScale(n)}`;
            lines.push(`const ${name} = ${expr};`);
            ctx.locals.set(n, name);
        });
        const d = stocks.map(s => {
            const terms: string[] = [];
            for (const f of this.flows) {
                const v = ctx.locals.get(f)!;
                if (f.target?.ref === s) terms.push(terms.length === 0 ? v : `+ ${v}`);
                if (f.source?.ref === s) terms.push(terms.length === 0 ? `-${v}` : `- ${v}`);
            }
            return terms.length ? terms.join(' ') : '0';
        });
        return { lines, d };
    }

    /**
     * One integration step as generated code, `function(t, h, y)`: the four RK4 stages (or
     * the one Euler stage) unrolled over locals, in the same IEEE operation order as the
     * textbook loop (tmp = y + h/2·k1 …, y + h/6·(k1 + 2k2 + 2k3 + k4)).
     */
    private compileDerivative(stocks: ast.Stock[], method: 'euler' | 'rk4'): number {
        if (this.flows.length === 0) return -1;
        const nodes: (ast.Aux | ast.Flow)[] = [...this.auxes, ...this.flows];
        const ordered = orderByDependencies(nodes,
            n => refsOf(ast.isAux(n) ? n.value : n.rate).filter((r): r is ast.Aux | ast.Flow => ast.isAux(r) || ast.isFlow(r)),
            n => this.fail(n, `'${n.name}' depends on itself`));
        const n = stocks.length;
        const idx = Array.from({ length: n }, (_, i) => i);
        const out: string[] = [];
        out.push(...idx.map(i => `const y${i} = y[${i}];`));
        const stage = (vars: (i: number) => string, time: string, k: string) => {
            const { lines, d } = this.derivStage(ordered, stocks, vars, time, k);
            out.push(...lines);
            out.push(...idx.map(i => `const ${k}_${i} = ${d[i]};`));
        };
        if (method === 'euler') {
            stage(i => `y${i}`, 't', 'k1');
            out.push(...idx.map(i => `y[${i}] = y${i} + h * k1_${i};`));
        } else {
            out.push('const h2 = h / 2, h6 = h / 6, th = t + h2, te = t + h;');
            stage(i => `y${i}`, 't', 'k1');
            out.push(...idx.map(i => `const u${i} = y${i} + h2 * k1_${i};`));
            stage(i => `u${i}`, 'th', 'k2');
            out.push(...idx.map(i => `const v${i} = y${i} + h2 * k2_${i};`));
            stage(i => `v${i}`, 'th', 'k3');
            out.push(...idx.map(i => `const w${i} = y${i} + h * k3_${i};`));
            stage(i => `w${i}`, 'te', 'k4');
            out.push(...idx.map(i => `y[${i}] = y${i} + h6 * (k1_${i} + 2 * k2_${i} + 2 * k3_${i} + k4_${i});`));
        }
        return this.fn('t, h, y', out.join('\n'));
    }

    // -------------------------------------------------------------- processes

    private compileProcess(p: ast.Process, ctx: Ctx): InstrSpec[] {
        const code: InstrSpec[] = [];
        const emit = (i: InstrSpec) => { code.push(i); return code.length - 1; };
        const steps = (list: ast.Step[]): void => {
            for (const s of list) step(s);
        };
        const step = (s: ast.Step): void => {
            const site = this.site(s);
            switch (s.$type) {
                case 'SeizeStep': {
                    const r = s.resource?.ref;
                    if (!r) this.fail(s, 'unresolved resource');
                    emit({ op: OP_SEIZE, a: this.resourceIndex.get(r)!, fn: this.exprFn(s.amount, ctx, 'e'), fn2: this.exprFn(s.priority, ctx, 'e'), site });
                    break;
                }
                case 'ReleaseStep': {
                    const r = s.resource?.ref;
                    if (!r) this.fail(s, 'unresolved resource');
                    emit({ op: OP_RELEASE, a: this.resourceIndex.get(r)!, fn: this.exprFn(s.amount, ctx, 'e'), fn2: -1, site });
                    break;
                }
                case 'DelayStep':
                    emit({ op: OP_DELAY, a: 0, fn: this.exprFn(s.duration, ctx, 'e'), fn2: -1, fast: this.fastSample(s.duration), site });
                    break;
                case 'RouteStep': {
                    const t = s.target?.ref;
                    if (!t) this.fail(s, 'unresolved process');
                    emit({ op: OP_ROUTE, a: this.processIndex.get(t)!, fn: -1, fn2: -1, site });
                    break;
                }
                case 'DisposeStep':
                    emit({ op: OP_DISPOSE, a: 0, fn: -1, fn2: -1, site });
                    break;
                case 'WaitStep':
                    emit({ op: OP_WAIT, a: 0, fn: this.exprFn(s.condition, ctx, 'e'), fn2: -1, site });
                    break;
                case 'AssignStep':
                    emit({ op: OP_ASSIGN, a: 0, fn: this.fn('e', this.assignment(s, s.target?.ref, s.op, s.value, ctx)), fn2: -1, site });
                    break;
                case 'BranchStep': {
                    const spec: InstrSpec = { op: OP_BRANCH, a: 0, fn: -1, fn2: -1, armKinds: [], armFns: [], armTargets: [], end: -1, stream: -1, site };
                    emit(spec);
                    const jumps: InstrSpec[] = [];
                    for (const arm of s.arms) {
                        if (arm.probability) {
                            spec.armKinds!.push(ARM_PROB);
                            spec.armFns!.push(this.exprFn(arm.probability, ctx, 'e'));
                            if (spec.stream === -1) spec.stream = this.stream(s, '/prob');
                        } else if (arm.condition) {
                            spec.armKinds!.push(ARM_WHEN);
                            spec.armFns!.push(this.exprFn(arm.condition, ctx, 'e'));
                        } else {
                            spec.armKinds!.push(ARM_OTHERWISE);
                            spec.armFns!.push(-1);
                        }
                        spec.armTargets!.push(code.length);
                        steps(arm.steps);
                        const j: InstrSpec = { op: OP_JUMP, a: -1, fn: -1, fn2: -1, site };
                        emit(j);
                        jumps.push(j);
                    }
                    spec.end = code.length;
                    for (const j of jumps) j.a = code.length;
                    break;
                }
            }
        };
        steps(p.steps);
        emit({ op: OP_END, a: 0, fn: -1, fn2: -1, site: this.site(p) });
        return code;
    }

    /** The body of an assignment (`assign`/`set`): to an attribute, a stock, a parameter, a state variable or a local. */
    private assignment(node: AstNode, target: AstNode | undefined, op: ast.AssignOp, value: ast.Expression, ctx: Ctx): string {
        const v = this.gen(value, ctx);
        const combine = (cur: string) => op === '=' ? `(${v})` : `(${cur}) ${op === '+=' ? '+' : '-'} (${v})`;
        if (ast.isAttribute(target)) {
            const k = this.attrIndex.get(target)!;
            return `AT[${k}][e] = ${combine(`AT[${k}][e]`)}; R.dirty = true;`;
        }
        if (ast.isStock(target)) {
            const k = this.stockIndex.get(target)!;
            return `R.setStock(${k}, ${combine(`R.stock(${k})`)});`;
        }
        if (ast.isParam(target)) {
            const k = this.paramIndex.get(target)!;
            return `P[${k}] = ${combine(`P[${k}]`)}; R.dirty = true;`;
        }
        if (ast.isStateVar(target) && ctx.agent) {
            const k = this.stateIndex.get(target);
            if (k === undefined) this.fail(node, `'${target.name}' is not a state of this agent`);
            return `st[${k}][a] = ${combine(`st[${k}][a]`)}; R.dirty = true;`;
        }
        if (ast.isLetStmt(target)) {
            const local = ctx.locals.get(target);
            if (!local) this.fail(node, `'${target.name}' is not in scope`);
            return `${local} = ${combine(local)};`;
        }
        return this.fail(node, 'this cannot be assigned while the model runs');
    }

    // -------------------------------------------------------------- agents

    private compileAgents() {
        const agentTypes: AgentTypeSpec[] = [];
        const groups: GroupSpec[] = [];
        const channels: string[] = [];
        const coordinators: CoordinatorSpec[] = [];
        const decisions: DecisionSpec[] = [];
        const populations = this.twin.members.filter(ast.isPopulation);
        const systems = new Set<ast.System>();
        for (const p of populations) {
            const agent = p.agent?.ref;
            if (!agent) this.fail(p, `population '${p.name}' refers to an unknown agent`);
            systems.add(agent.$container);
        }
        for (const sys of this.options.systems ?? []) {
            if (sys.twin?.ref === this.twin) systems.add(sys);
        }
        const agentType = (agent: ast.Agent): number => {
            let i = this.agentTypeIndex.get(agent);
            if (i === undefined) {
                i = agentTypes.length;
                this.agentTypeIndex.set(agent, i);
                agentTypes.push({ name: agent.name, states: [], timers: [], handlers: [], whens: [] });
            }
            return i;
        };
        const count = (node: AstNode, e: ast.Expression) => {
            const v = constantOf(e);
            if (typeof v !== 'number' || v < 0 || !Number.isInteger(v)) this.fail(node, 'the count must be a whole number ≥ 0 known before the run');
            return v;
        };
        for (const p of populations) {
            this.groupIndex.set(p, groups.length);
            groups.push({ name: p.name, agentType: agentType(p.agent!.ref!), count: count(p, p.count), loc: this.loc(p) });
        }
        for (const sys of systems) {
            for (const m of sys.members) {
                if (ast.isChannel(m)) { this.channelIndex.set(m, channels.length); channels.push(m.name); }
                if (ast.isDecision(m)) { this.decisionIndex.set(m, decisions.length); decisions.push({ name: m.name, site: this.site(m), criteria: [], options: [] }); }
                if (ast.isModel(m)) this.model(m);
            }
            for (const m of sys.members) {
                if (ast.isSwarm(m) && m.agent?.ref) {
                    this.groupIndex.set(m, groups.length);
                    groups.push({ name: m.name, agentType: agentType(m.agent.ref), count: count(m, m.count), loc: this.loc(m) });
                }
            }
            for (const m of sys.members) {
                if (ast.isCoordinator(m) && m.swarm?.ref) {
                    const hb = m.heartbeat ? constantOf(m.heartbeat) : undefined;
                    coordinators.push({ name: m.name, group: this.groupIndex.get(m.swarm.ref)!, strategy: m.strategy, heartbeat: typeof hb === 'number' ? hb : 0 });
                }
            }
        }
        // State variable slots first (behaviours of one agent may read another's states only through series).
        for (const [agent, i] of this.agentTypeIndex) {
            agent.members.filter(ast.isStateVar).forEach((s, k) => { this.stateIndex.set(s, k); agentTypes[i].states.push({ name: s.name, init: -1 }); });
        }
        for (const [agent, i] of this.agentTypeIndex) {
            const spec = agentTypes[i];
            const ctx = (): Ctx => ({ deriv: false, entity: false, agent: true, locals: new Map() });
            const body = (): Ctx => ({ ...ctx(), infer: { calls: 0, agent: agent.name } });
            agent.members.filter(ast.isStateVar).forEach((s, k) => { spec.states[k].init = this.exprFn(s.value, ctx(), 'a, st, msg'); });
            for (const m of agent.members) {
                if (ast.isTimerBehaviour(m)) {
                    spec.timers.push({ interval: this.exprFn(m.interval, ctx(), 'a, st, msg'), body: this.block(m.body, body()), site: this.site(m) });
                } else if (ast.isMessageBehaviour(m)) {
                    const ch = m.channel?.ref ? this.channelIndex.get(m.channel.ref) : undefined;
                    if (ch === undefined) this.fail(m, 'unresolved channel');
                    const c = body();
                    if (m.message) c.locals.set(m.message, 'msg');
                    spec.handlers.push({ channel: ch, body: this.block(m.body, c), site: this.site(m) });
                } else if (ast.isConditionBehaviour(m)) {
                    spec.whens.push({ cond: this.exprFn(m.condition, ctx(), 'a, st, msg'), body: this.block(m.body, body()), site: this.site(m) });
                }
            }
        }
        for (const [d, i] of this.decisionIndex) {
            const spec = decisions[i];
            const criteria = d.members.filter(ast.isCriterion);
            for (const c of criteria) {
                const w = constantOf(c.weight);
                spec.criteria.push({ name: c.name, weight: typeof w === 'number' ? w : 0, sign: c.goal === 'minimize' ? -1 : 1 });
            }
            for (const o of d.members.filter(ast.isDecisionOption)) {
                const scores = criteria.map(c => {
                    const s = o.scores.find(x => x.criterion?.ref === c);
                    return s ? this.exprFn(s.value, { deriv: false, entity: false, agent: true, locals: new Map() }, 'a, st, msg') : -1;
                });
                spec.options.push({ name: o.name, scores });
            }
        }
        return { agentTypes, groups, channels, coordinators, decisions };
    }

    /** A behaviour body: an async function when it calls a model (each `infer` is awaited), a plain one otherwise. */
    private block(b: ast.Block, ctx: Ctx): number {
        const code = this.statements(b.statements, ctx);
        const async = (ctx.infer?.calls ?? 0) > 0;
        if (async) this.usesInference = true;
        return this.fn('a, st, msg', code, async);
    }

    // -------------------------------------------------------------- models

    /** The index of a model declaration in the program, registering it (file, tensors, settings) the first time. */
    private model(m: ast.Model): number {
        let i = this.modelIndex.get(m);
        if (i !== undefined) return i;
        const file = m.settings.find(ast.isModelFile);
        if (!file || file.path === undefined) this.fail(m, `model '${m.name}' has no 'file'`);
        const doc = AstUtils.getDocument(m).uri;
        const relative = unquote(file.path);
        const absolute = doc.scheme === 'file' ? path.resolve(path.dirname(doc.fsPath), relative) : path.resolve(this.options.cwd ?? process.cwd(), relative);
        const tensors = (kind: 'input' | 'output'): TensorDecl[] => m.settings.filter(ast.isTensorSpec).filter(t => t.kind === kind).map(t => ({
            name: unquote(t.name ?? ''),
            type: t.elementType,
            shape: t.dims.map(d => d.symbol ?? d.size ?? 0)
        }));
        const setting = (e: ast.Expression | undefined, what: string, check: (v: number) => boolean): number | undefined => {
            if (!e) return undefined;
            const v = constantOf(e);
            if (typeof v !== 'number' || !check(v)) this.fail(e, `the ${what} of model '${m.name}' must be a constant ${what.includes('time') || what.includes('wait') ? 'time ≥ 0' : 'whole number ≥ 0'}`);
            return v;
        };
        const whole = (v: number) => Number.isInteger(v) && v >= 0;
        const batch = m.settings.find(ast.isBatchSetting);
        const cache = m.settings.find(ast.isCacheSetting);
        const providers = m.settings.find(ast.isProviderList)?.providers ?? [];
        const decl = {
            name: m.name,
            file: absolute,
            inputs: tensors('input'),
            outputs: tensors('output'),
            providers: [...providers],
            batch: Math.max(1, setting(batch?.size, 'batch size', whole) ?? 1),
            maxWaitMs: (setting(batch?.maxWait, 'batch wait', v => v >= 0) ?? 0) * 1000,
            cacheSize: setting(cache?.size, 'cache size', whole) ?? 0,
            cacheTtl: setting(cache?.ttl, 'cache time-to-live', v => v > 0) ?? Infinity,
            callers: [] as string[],
            loc: this.loc(m)
        };
        i = this.models.length;
        this.models.push(decl);
        this.modelIndex.set(m, i);
        return i;
    }

    /** `infer Model(in: expr, …)` → `(await R.infer(model, { in: expr, … }, a, site))`; only in a behaviour body. */
    private inferCall(e: ast.InferExpr, ctx: Ctx): string {
        const m = e.model?.ref;
        if (!m) return this.fail(e, `unresolved model '${e.model?.$refText ?? '?'}'`);
        if (!ctx.infer) {
            return this.fail(e, `'infer ${m.name}' can only be used in a behaviour (every, on, when): not in a state's initial value, a condition, a decision's scores or the twin`);
        }
        const index = this.model(m);
        const decl = this.models[index];
        if (!decl.callers.includes(ctx.infer.agent)) decl.callers.push(ctx.infer.agent);
        const declared = decl.inputs.map(t => t.name);
        const seen = new Set<string>();
        const fields = e.args.map((arg, k) => {
            const name = arg.name ?? declared[k];
            if (name === undefined) this.fail(arg, `model '${m.name}' declares no input for argument ${k + 1}`);
            if (declared.length > 0 && !declared.includes(name)) this.fail(arg, `model '${m.name}' has no input '${name}' (its inputs: ${declared.join(', ')})`);
            if (seen.has(name)) this.fail(arg, `input '${name}' of model '${m.name}' is given twice`);
            seen.add(name);
            return `${JSON.stringify(name)}: ${this.gen(arg.value, ctx)}`;
        });
        const missing = declared.filter(n => !seen.has(n));
        if (missing.length > 0) this.fail(e, `'infer ${m.name}' is missing input${missing.length > 1 ? 's' : ''} ${missing.map(n => `'${n}'`).join(', ')}`);
        ctx.infer.calls++;
        return `(await R.infer(${index}, { ${fields.join(', ')} }, a, ${this.site(e)}))`;
    }

    private statements(list: ast.Statement[], ctx: Ctx): string {
        const out: string[] = [];
        for (const s of list) {
            switch (s.$type) {
                case 'LetStmt': {
                    const name = `L${this.letCounter++}`;
                    out.push(`let ${name} = ${this.gen(s.value, ctx)};`);
                    ctx.locals.set(s, name);
                    break;
                }
                case 'SetStmt':
                    out.push(this.assignment(s, s.target?.ref, s.op, s.value, ctx));
                    break;
                case 'IfStmt': {
                    const inner = (b: ast.Block) => this.statements(b.statements, { ...ctx, locals: new Map(ctx.locals) });
                    out.push(`if (${this.gen(s.condition, ctx)}) { ${inner(s.then)} }${s.else ? ` else { ${inner(s.else)} }` : ''}`);
                    break;
                }
                case 'LogStmt':
                    out.push(`R.log(a, st, ${this.gen(s.message, ctx)}, ${this.site(s)});`);
                    break;
                case 'SendStmt': {
                    const ch = s.channel?.ref ? this.channelIndex.get(s.channel.ref) : undefined;
                    if (ch === undefined) this.fail(s, 'unresolved channel');
                    const fields = s.args.map((a, i) => `${JSON.stringify(a.name ?? s.channel?.ref?.fields[i]?.name ?? `arg${i}`)}: ${this.gen(a.value, ctx)}`);
                    out.push(`R.send(${ch}, { ${fields.join(', ')} }, a, st, ${this.site(s)});`);
                    break;
                }
            }
        }
        return out.join('\n');
    }

    // -------------------------------------------------------------- expressions

    private gen(e: ast.Expression | undefined, ctx: Ctx): string {
        if (!e) return 'undefined';
        switch (e.$type) {
            case 'QuantityLiteral':
                return numberLiteral(e.value * unitSpecDim(e.unit).factor);
            case 'BooleanLiteral':
                return e.value === 'true' ? 'true' : 'false';
            case 'StringLiteral':
                return JSON.stringify(unquote(e.value));
            case 'ListLiteral':
                return `[${e.items.map(i => this.gen(i, ctx)).join(', ')}]`;
            case 'UnaryExpr':
                return e.op === 'not' ? `(!(${this.gen(e.operand, ctx)}))` : `(-(${this.gen(e.operand, ctx)}))`;
            case 'BinaryExpr': {
                const l = this.gen(e.left, ctx), r = this.gen(e.right, ctx);
                switch (e.operator) {
                    case 'and': return `(${l} && ${r})`;
                    case 'or': return `(${l} || ${r})`;
                    case '==': return `(${l} === ${r})`;
                    case '!=': return `(${l} !== ${r})`;
                    case '^': return `Math.pow(${l}, ${r})`;
                    case '/': return `R.div(${l}, ${r}, ${this.site(e)})`;
                    case '%': return `R.mod(${l}, ${r}, ${this.site(e)})`;
                    default: return `(${l} ${e.operator} ${r})`;
                }
            }
            case 'RefExpr':
                return this.ref(e, e.target?.ref, ctx);
            case 'MemberAccess': {
                const recv = e.receiver;
                if (ast.isRefExpr(recv)) {
                    const t = recv.target?.ref;
                    if (ast.isPopulation(t) || ast.isSwarm(t)) {
                        if (e.member === 'count') return `R.groupCount(${this.groupOf(e, t)})`;
                        return `R.series(${this.groupOf(e, t)}, ${JSON.stringify(e.member)}).final()`;
                    }
                }
                return `R.member(${this.gen(recv, ctx)}, ${JSON.stringify(e.member)}, ${this.site(e)})`;
            }
            case 'CallExpr':
                return this.call(e, ctx);
            case 'InferExpr':
                return this.inferCall(e, ctx);
            case 'DecideExpr': {
                const d = e.decision?.ref ? this.decisionIndex.get(e.decision.ref) : undefined;
                if (d === undefined) this.fail(e, 'unresolved decision');
                if (!ctx.agent) this.fail(e, 'a decision is made by an agent');
                return `R.decide(${d}, a, st, msg)`;
            }
        }
        return this.fail(e, 'unsupported expression');
    }

    private groupOf(node: AstNode, t: AstNode): number {
        const g = this.groupIndex.get(t);
        if (g === undefined) this.fail(node, 'this population or swarm does not live in this twin');
        return g;
    }

    private ref(node: AstNode, t: AstNode | undefined, ctx: Ctx): string {
        const local = t ? ctx.locals.get(t) : undefined;
        if (local) return local;
        if (!t) return this.fail(node, 'unresolved name');
        if (ast.isParam(t)) return `P[${this.paramIndex.get(t)}]`;
        if (ast.isStock(t)) {
            const i = this.stockIndex.get(t);
            if (i === undefined) this.fail(node, `stock '${t.name}' is not part of this twin`);
            return ctx.deriv ? (ctx.stockVar ? ctx.stockVar(i) : `y[${i}]`) : `R.stock(${i})`;
        }
        if (ast.isAux(t) || ast.isFlow(t)) {
            if (ctx.deriv) return this.fail(node, `'${t.name}' is used before it is computed`);
            return `R.fns[${this.lazyAuxFn(t)}]()`;
        }
        if (ast.isAttribute(t)) {
            if (!ctx.entity) this.fail(node, `attribute '${t.name}' is read outside a process`);
            return `AT[${this.attrIndex.get(t)}][e]`;
        }
        if (ast.isStateVar(t)) {
            const k = this.stateIndex.get(t);
            if (!ctx.agent || k === undefined) this.fail(node, `state '${t.name}' is read outside its agent`);
            return `st[${k}][a]`;
        }
        if (ast.isKpi(t)) return `R.fns[${this.kpiFnLazy(t)}]()`;
        if (ast.isDecisionOption(t)) return JSON.stringify(t.name);
        if (ast.isMessageParam(t)) return this.fail(node, `'${t.name}' is only in scope in its behaviour`);
        if (ast.isPopulation(t) || ast.isSwarm(t)) return `R.groupCount(${this.groupOf(node, t)})`;
        return this.fail(node, `a ${t.$type.toLowerCase()} has no value here`);
    }

    private lazyAuxFn(t: ast.Aux | ast.Flow): number {
        let i = this.auxFn.get(t);
        if (i === undefined) {
            // Placeholder id now; the function is the aux's own, compiled in compile().
            i = ast.isAux(t)
                ? this.exprFn(t.value, TWIN_CTX, '')
                : this.fn('', `return (${this.gen(t.rate, TWIN_CTX)}) * ${this.flowScale(t)};`);
            this.auxFn.set(t, i);
        }
        return i;
    }

    private readonly kpiFns = new Map<ast.Kpi, number>();
    private kpiFnLazy(k: ast.Kpi): number {
        let i = this.kpiFns.get(k);
        if (i === undefined) {
            i = this.exprFn(k.value, TWIN_CTX, '');
            this.kpiFns.set(k, i);
        }
        return i;
    }

    private fastSample(e: ast.Expression | undefined): FastSample | undefined {
        if (!ast.isCallExpr(e) || e.func !== 'exponential' || e.args.length !== 1) return undefined;
        const args = this.args(e);
        const kind = args.has('rate') ? 'rate' : args.has('mean') ? 'mean' : undefined;
        const x = kind ? args.get(kind) : undefined;
        if (!kind || !x) return undefined;
        const stream = this.stream(e);
        if (ast.isQuantityLiteral(x)) return { kind, stream, param: -1, value: x.value * unitSpecDim(x.unit).factor };
        if (ast.isRefExpr(x) && ast.isParam(x.target?.ref)) return { kind, stream, param: this.paramIndex.get(x.target.ref)!, value: 0 };
        return undefined;
    }

    /** Arguments of a built-in call, by parameter name. */
    private args(e: ast.CallExpr): Map<string, ast.Expression> {
        const b = findBuiltin(e.func);
        const out = new Map<string, ast.Expression>();
        if (!b) return out;
        const names = e.args.map(a => a.name);
        const overload = b.overloads.find(o => names.every((n, i) => n === undefined ? i < o.length : o.some(p => p.name === n)) && e.args.length <= o.length
            && o.filter(p => !p.optional).every((p, i) => names.includes(p.name) || i < e.args.length)) ?? b.overloads[0];
        e.args.forEach((a, i) => {
            const name = a.name ?? overload[i]?.name;
            if (name) out.set(name, a.value);
        });
        return out;
    }

    private call(e: ast.CallExpr, ctx: Ctx): string {
        const f = e.func;
        const b = findBuiltin(f);
        if (!b) return this.fail(e, `unknown function '${f}'`);
        const args = this.args(e);
        const arg = (name: string): string => {
            const x = args.get(name);
            if (!x) this.fail(e, `${f}() needs its '${name}' argument`);
            return this.gen(x, ctx);
        };
        const stream = () => `ST[${this.stream(e)}]`;
        switch (f) {
            case 'uniform': return `H.sampleUniform(${stream()}, ${arg('min')}, ${arg('max')})`;
            case 'normal': return `H.sampleNormal(${stream()}, ${arg('mean')}, ${arg('sd')})`;
            case 'exponential':
                return args.has('rate') ? `H.sampleExponentialRate(${stream()}, ${arg('rate')})` : `H.sampleExponentialMean(${stream()}, ${arg('mean')})`;
            case 'triangular': return `H.sampleTriangular(${stream()}, ${arg('min')}, ${arg('mode')}, ${arg('max')})`;
            case 'lognormal': return `H.sampleLognormal(${stream()}, ${arg('mean')}, ${arg('sd')})`;
            case 'poisson': return `H.samplePoisson(${stream()}, ${arg('mean')})`;
            case 'bernoulli': return `H.sampleBernoulli(${stream()}, ${arg('p')})`;
            case 'empirical': return `H.sampleEmpirical(${stream()}, ${arg('values')}${args.has('weights') ? `, ${arg('weights')}` : ''})`;
            case 'random': return `${stream()}.next()`;
            case 'now': return ctx.deriv ? (ctx.timeVar ?? 't') : 'R.now';
            case 'min': return `Math.min(${arg('a')}, ${arg('b')})`;
            case 'max': return `Math.max(${arg('a')}, ${arg('b')})`;
            case 'abs': return `Math.abs(${arg('x')})`;
            case 'sqrt': return `Math.sqrt(${arg('x')})`;
            case 'exp': return `Math.exp(${arg('x')})`;
            case 'ln': return `Math.log(${arg('x')})`;
            case 'floor': return `Math.floor(${arg('x')})`;
            case 'ceil': return `Math.ceil(${arg('x')})`;
            case 'round': return `Math.round(${arg('x')})`;
            case 'utilization': return `R.utilization(${this.resourceArg(e, args.get('resource'))})`;
            case 'throughput': return `R.throughput(${this.processArg(e, args.get('process'))})`;
            case 'completed': return `R.completed(${this.processArg(e, args.get('process'))})`;
            case 'waitTime': case 'timeInSystem': case 'queueLength': case 'wip': case 'level':
                return `${this.series(e, ctx)}.final()`;
            case 'mean': case 'stdev': case 'final': case 'sum': case 'fraction':
                return `${this.series(args.get('of'), ctx, e)}.${f}()`;
            case 'percentile': {
                const s = this.series(args.get('of'), ctx, e, true);
                return `${s}.percentile(${arg('p')})`;
            }
        }
        return this.fail(e, `${f}() is not supported by the engine yet`);
    }

    private resourceArg(e: AstNode, x: ast.Expression | undefined): number {
        const t = ast.isRefExpr(x) ? x.target?.ref : undefined;
        const i = ast.isResource(t) ? this.resourceIndex.get(t) : undefined;
        if (i === undefined) this.fail(e, 'expected a resource');
        return i;
    }

    private processArg(e: AstNode, x: ast.Expression | undefined): number {
        const t = ast.isRefExpr(x) ? x.target?.ref : undefined;
        const i = ast.isProcess(t) ? this.processIndex.get(t) : undefined;
        if (i === undefined) this.fail(e, 'expected a process');
        return i;
    }

    /** Code for a series object (a monitor), registering the monitor so the runtime keeps it. */
    private series(x: ast.Expression | undefined, ctx: Ctx, at?: AstNode, quantiles = false): string {
        const where = at ?? x;
        if (!x) return this.fail(where!, 'expected a series');
        if (ast.isCallExpr(x)) {
            const args = this.args(x);
            switch (x.func) {
                case 'waitTime': {
                    const p = this.processArg(x, args.get('process'));
                    this.waitMonitors.add(p);
                    if (quantiles) this.sketches.add(`W${p}`);
                    return `R.MW[${p}]`;
                }
                case 'timeInSystem': {
                    const p = this.processArg(x, args.get('process'));
                    if (!this.tisMonitors.includes(p)) this.tisMonitors.push(p);
                    if (quantiles) this.sketches.add(`T${p}`);
                    return `R.MT[${p}]`;
                }
                case 'queueLength': {
                    const r = this.resourceArg(x, args.get('resource'));
                    if (quantiles) this.sketches.add(`Q${r}`);
                    return `R.MQ[${r}]`;
                }
                case 'wip': {
                    const p = this.processArg(x, args.get('process'));
                    if (quantiles) this.sketches.add(`P${p}`);
                    this.wipMonitors.add(p);
                    return `R.MP[${p}]`;
                }
                case 'level': {
                    const s = args.get('stock');
                    const t = ast.isRefExpr(s) ? s.target?.ref : undefined;
                    if (!ast.isStock(t)) return this.fail(x, 'expected a stock');
                    return this.stockSeries(t, quantiles);
                }
            }
        }
        if (ast.isRefExpr(x) && ast.isStock(x.target?.ref)) return this.stockSeries(x.target.ref, quantiles);
        if (ast.isMemberAccess(x) && ast.isRefExpr(x.receiver)) {
            const t = x.receiver.target?.ref;
            if (ast.isPopulation(t) || ast.isSwarm(t)) return `R.series(${this.groupOf(x, t)}, ${JSON.stringify(x.member)})`;
        }
        void ctx;
        return this.fail(where!, 'expected a series: waitTime(…), timeInSystem(…), queueLength(…), wip(…), level(…) or a population\'s state');
    }

    private stockSeries(s: ast.Stock, quantiles: boolean): string {
        const i = this.stockIndex.get(s)!;
        if (!this.stockMonitors.includes(i)) this.stockMonitors.push(i);
        if (quantiles) this.sketches.add(`L${i}`);
        return `R.stockMonitor(${i})`;
    }
}

// ------------------------------------------------------------------ helpers

function numberLiteral(v: number): string {
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
    const s = String(v);
    return v < 0 ? `(${s})` : s;
}

function isNumericDim(d: Dim): boolean {
    return d.kind === 'quantity' || d.kind === 'unknown';
}

function paramKind(d: Dim): ParamKind {
    if (d.kind === 'bool') return 'bool';
    if (d.kind === 'string') return 'string';
    if (d.kind === 'quantity' && d.time === 1) return 'time';
    if (d.kind === 'quantity' && d.time === -1) return 'rate';
    return 'count';
}

/** Every declaration an expression refers to. */
function refsOf(e: AstNode | undefined): AstNode[] {
    if (!e) return [];
    const out: AstNode[] = [];
    for (const n of AstUtils.streamAst(e)) {
        if (ast.isRefExpr(n) && n.target?.ref) out.push(n.target.ref);
    }
    return out;
}

function orderByDependencies<T extends AstNode>(nodes: T[], deps: (n: T) => AstNode[], cycle: (n: T) => never): T[] {
    const set = new Set<AstNode>(nodes);
    const state = new Map<AstNode, number>();
    const out: T[] = [];
    const visit = (n: T) => {
        const s = state.get(n);
        if (s === 2) return;
        if (s === 1) cycle(n);
        state.set(n, 1);
        for (const d of deps(n)) if (set.has(d)) visit(d as T);
        state.set(n, 2);
        out.push(n);
    };
    nodes.forEach(visit);
    return out;
}

/** A constant (literals and parameter defaults only), or undefined. */
function constantOf(e: ast.Expression | undefined): Constant | undefined {
    if (!e) return undefined;
    const go = (x: ast.Expression): Constant | undefined => {
        switch (x.$type) {
            case 'QuantityLiteral': return x.value * unitSpecDim(x.unit).factor;
            case 'BooleanLiteral': return x.value === 'true';
            case 'StringLiteral': return unquote(x.value);
            case 'UnaryExpr': { const v = go(x.operand); return typeof v === 'number' && x.op === '-' ? -v : typeof v === 'boolean' ? !v : undefined; }
            case 'RefExpr': { const t = x.target?.ref; return ast.isParam(t) ? go(t.value) : undefined; }
            case 'BinaryExpr': {
                const l = go(x.left), r = go(x.right);
                if (typeof l !== 'number' || typeof r !== 'number') return undefined;
                switch (x.operator) {
                    case '+': return l + r; case '-': return l - r; case '*': return l * r;
                    case '/': return l / r; case '^': return Math.pow(l, r); case '%': return l % r;
                }
                return undefined;
            }
        }
        return undefined;
    };
    return go(e);
}

function isNamedDeclaration(n: AstNode): n is AstNode & { name: string } {
    return typeof (n as { name?: unknown }).name === 'string'
        && (ast.isTwin(n.$container) || ast.isAgent(n.$container) || ast.isSystem(n.$container) || ast.isDecision(n.$container) || ast.isTwin(n) || ast.isSystem(n) || ast.isAgent(n));
}

/**
 * The stable name of a sampling site: the nearest named declaration (qualified by the
 * agent or system around it) and the path from it to the node, e.g.
 * `Bank.Serve/steps@1/duration` or `Replenishment.Supplier/members@3/body/statements@0/…`.
 */
export function streamName(twin: ast.Twin, node: AstNode): string {
    const parts: string[] = [];
    let n: AstNode = node;
    while (n.$container && !isNamedDeclaration(n)) {
        parts.unshift(n.$containerIndex !== undefined ? `${n.$containerProperty}@${n.$containerIndex}` : `${n.$containerProperty ?? ''}`);
        n = n.$container;
    }
    const names: string[] = [];
    for (let m: AstNode | undefined = n; m; m = m.$container) {
        const name = (m as { name?: unknown }).name;
        if (typeof name === 'string') names.unshift(name);
    }
    if (names.length === 0) names.push(twin.name);
    return `${names.join('.')}/${parts.join('/')}`;
}
