/**
 * An experiment plan: what to run, resolved from an `experiment` declaration (or a twin
 * with no experiment: defaults) and the command-line options. Every value is in base
 * units (seconds for times, per second for rates); the points are the cartesian product
 * of the sweeps, in declaration order (the last sweep varies fastest).
 */
import * as ast from '../../language-server/generated/ast.js';
import {
    declarationDim, evaluateConstant, inferDim, isRate, isTime, SECONDS_PER, bestTimeUnit,
    type Constant, type TimeUnitName
} from '../../language-server/src/units.js';

export type { Constant };

/** What the command line may change. */
export interface PlanOptions {
    readonly experiment?: string;
    readonly replications?: number;
    readonly seed?: number;
    /** `NAME=VALUE`, the value with a unit when the parameter is a time or a rate (`3min`, `2.7 per min`). */
    readonly set?: readonly string[];
    /** A time: `8h`, `8 h`, `30min`. */
    readonly horizon?: string;
}

export interface ParamUnit {
    /** How values of this parameter are shown: `min`, `per h`, or undefined (a count, a flag, a string). */
    readonly unit: string | undefined;
    /** Base units per shown unit (60 for `min`; 1/3600 for `per h`). */
    readonly factor: number;
    readonly kind: 'count' | 'time' | 'rate' | 'bool' | 'string';
}

export interface PlanPoint {
    readonly index: number;
    /** The parameters this point sets (experiment `set`, `--set`, sweeps), in each parameter's shown unit. */
    readonly set: Readonly<Record<string, Constant>>;
    /** The same, in base units: what the engine receives. */
    readonly overrides: Readonly<Record<string, Constant>>;
}

export interface ExperimentPlan {
    readonly twin: string;
    /** The experiment's name, or undefined when the twin runs with defaults. */
    readonly experiment: string | undefined;
    readonly points: readonly PlanPoint[];
    /** Seconds; Infinity when the model ends by itself. */
    readonly horizon: number;
    /** The horizon as shown: `{ value: 8, unit: 'h' }`; value null for "until no event is left". */
    readonly horizonShown: { readonly value: number | null; readonly unit: string };
    /** Seconds. */
    readonly warmup: number;
    readonly replications: number;
    readonly seed: number;
    /** The KPIs to report (the experiment's `report`), or undefined for all. */
    readonly report: readonly string[] | undefined;
    /** Every parameter of the twin with its declared default (base units; undefined when not constant) and shown unit. */
    readonly params: ReadonlyArray<{ readonly name: string; readonly default: Constant | undefined } & ParamUnit>;
}

/** A mistake in what was asked (an unknown parameter, a horizon without a unit): a usage error. */
export class PlanError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'PlanError';
    }
}

/** The twin and experiment a file asks to run. */
export interface Target {
    readonly twin: ast.Twin;
    readonly experiment: ast.Experiment | undefined;
}

/**
 * Picks what to run in a file: the experiment named by `--experiment`; without it the
 * file's first experiment; without any, the file's only twin.
 */
export function selectTarget(file: ast.TwinFile, fileName: string, experimentName: string | undefined): Target {
    const experiments = file.elements.filter(ast.isExperiment);
    const twins = file.elements.filter(ast.isTwin);
    let experiment: ast.Experiment | undefined;
    if (experimentName !== undefined) {
        experiment = experiments.find(e => e.name === experimentName);
        if (!experiment) {
            throw new PlanError(experiments.length === 0
                ? `${fileName} declares no experiment (asked for '${experimentName}')`
                : `no experiment '${experimentName}' in ${fileName} (known: ${experiments.map(e => e.name).join(', ')})`);
        }
    } else if (experiments.length > 0) {
        experiment = experiments[0];
    }
    if (experiment) {
        const twin = experiment.twin.ref;
        if (!twin) throw new PlanError(`experiment '${experiment.name}' refers to an unknown twin '${experiment.twin.$refText}'`);
        return { twin, experiment };
    }
    if (twins.length === 0) throw new PlanError(`${fileName} declares no twin and no experiment to run`);
    if (twins.length > 1) {
        throw new PlanError(`${fileName} declares several twins (${twins.map(t => t.name).join(', ')}) and no experiment: add an experiment for the one to run`);
    }
    return { twin: twins[0], experiment: undefined };
}

export function buildPlan(target: Target, options: PlanOptions = {}): ExperimentPlan {
    const { twin, experiment } = target;
    const params = twin.members.filter(ast.isParam);
    const byName = new Map(params.map(p => [p.name, p]));
    const settings = experiment?.settings ?? [];

    // Fixed overrides: the experiment's `set`, then `--set` (which also replaces a sweep of the same parameter).
    const fixed = new Map<ast.Param, Constant>();
    for (const s of settings.filter(ast.isOverride)) {
        const param = s.param.ref;
        if (!param) continue;
        const value = evaluateConstant(s.value, fixed);
        if (value === undefined) throw new PlanError(`experiment '${experiment?.name}': the value of 'set ${param.name}' is not a constant`);
        fixed.set(param, value);
    }
    const setOnCommandLine = new Set<ast.Param>();
    for (const assignment of options.set ?? []) {
        const eq = assignment.indexOf('=');
        if (eq <= 0) throw new PlanError(`--set expects NAME=VALUE, got '${assignment}'`);
        const name = assignment.slice(0, eq).trim();
        const param = byName.get(name);
        if (!param) {
            throw new PlanError(`--set ${name}: ${twin.name} has no parameter '${name}' (known: ${params.map(p => p.name).join(', ') || 'none'})`);
        }
        fixed.set(param, parseParamValue(assignment.slice(eq + 1), param, `--set ${name}`));
        setOnCommandLine.add(param);
    }

    // Sweeps (a parameter set on the command line is not swept).
    const sweeps: Array<{ param: ast.Param; values: Constant[] }> = [];
    for (const s of settings.filter(ast.isSweep)) {
        const param = s.param.ref;
        if (!param || setOnCommandLine.has(param)) continue;
        sweeps.push({ param, values: sweepValues(s, param, fixed) });
    }

    const combos: Array<Map<ast.Param, Constant>> = [new Map()];
    for (const sweep of sweeps) {
        const next: Array<Map<ast.Param, Constant>> = [];
        for (const combo of combos) {
            for (const v of sweep.values) next.push(new Map([...combo, [sweep.param, v]]));
        }
        combos.splice(0, combos.length, ...next);
    }
    const points: PlanPoint[] = combos.map((combo, index) => {
        const all = new Map([...fixed, ...combo]);
        const set: Record<string, Constant> = {};
        const overrides: Record<string, Constant> = {};
        for (const [param, value] of all) {
            overrides[param.name] = value;
            set[param.name] = shown(value, paramUnit(param));
        }
        return { index, set, overrides };
    });

    const replications = options.replications ?? integerSetting(settings.find(ast.isReplications)?.value, fixed, 'replications', 1);
    if (!Number.isInteger(replications) || replications < 1) throw new PlanError(`replications must be a whole number ≥ 1, got ${replications}`);
    const seed = options.seed ?? integerSetting(settings.find(ast.isSeed)?.value, fixed, 'seed', 1);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new PlanError(`seed must be a whole number ≥ 0, got ${seed}`);

    const warmupSetting = settings.find(ast.isWarmup);
    const warmup = warmupSetting ? timeSetting(warmupSetting.value, fixed, 'warmup') : 0;

    let horizon: number;
    let horizonShown: { value: number | null; unit: string };
    if (options.horizon !== undefined) {
        const parsed = parseQuantity(options.horizon);
        if (!parsed || parsed.kind !== 'time') {
            throw new PlanError(`--horizon expects a time with a unit (e.g. 8h, "8 h", 30min), got '${options.horizon}'`);
        }
        horizon = parsed.value;
        horizonShown = { value: parsed.shown, unit: parsed.unit };
    } else {
        const setting = settings.find(ast.isHorizon);
        if (setting) {
            horizon = timeSetting(setting.value, fixed, 'horizon');
            const unit = ast.isQuantityLiteral(setting.value) && setting.value.unit && !setting.value.unit.per
                ? setting.value.unit.unit as TimeUnitName
                : bestTimeUnit(horizon);
            horizonShown = { value: round(horizon / SECONDS_PER[unit]), unit };
        } else if (endsByItself(twin)) {
            horizon = Infinity;
            horizonShown = { value: null, unit: 's' };
        } else {
            throw new PlanError(`${twin.name} does not end by itself (a source without a limit, stocks or agents): give a horizon, e.g. --horizon 8h, or 'horizon 8 h' in an experiment`);
        }
    }
    if (!(horizon > 0)) throw new PlanError(`the horizon must be positive, got ${horizon} s`);
    if (warmup < 0 || warmup >= horizon) throw new PlanError(`the warm-up (${warmup} s) must be ≥ 0 and shorter than the horizon (${horizon} s)`);

    const reportSetting = settings.find(ast.isReport);
    const report = reportSetting ? reportSetting.kpis.map(k => k.ref?.name ?? k.$refText) : undefined;

    return {
        twin: twin.name,
        experiment: experiment?.name,
        points,
        horizon,
        horizonShown,
        warmup,
        replications,
        seed,
        report,
        params: params.map(p => ({ name: p.name, default: evaluateConstant(p.value), ...paramUnit(p) }))
    };
}

/** True when a twin stops on its own: every source has a limit, and nothing runs forever (stocks, agents). */
export function endsByItself(twin: ast.Twin): boolean {
    return twin.members.every(m => ast.isSource(m) ? m.limit !== undefined || m.until !== undefined
        : !(ast.isStock(m) || ast.isFlow(m) || ast.isIntegration(m) || ast.isPopulation(m)));
}

/** How a parameter's values are shown: in the unit its declaration was written in. */
export function paramUnit(param: ast.Param): ParamUnit {
    const dim = declarationDim(param);
    const kind = isTime(dim) ? 'time' : isRate(dim) ? 'rate' : dim.kind === 'bool' ? 'bool' : dim.kind === 'string' ? 'string' : 'count';
    const literal = ast.isQuantityLiteral(param.value) ? param.value : undefined;
    if (kind === 'time') {
        const unit = (literal?.unit && !literal.unit.per ? literal.unit.unit : 's') as TimeUnitName;
        return { unit, factor: SECONDS_PER[unit], kind };
    }
    if (kind === 'rate') {
        const unit = (literal?.unit?.per ? literal.unit.unit : 's') as TimeUnitName;
        return { unit: `per ${unit}`, factor: 1 / SECONDS_PER[unit], kind };
    }
    return { unit: undefined, factor: 1, kind };
}

export interface ParsedQuantity {
    readonly kind: 'count' | 'time' | 'rate';
    /** Base units. */
    readonly value: number;
    /** As written, and its unit (`per min` for a rate; '' for a count). */
    readonly shown: number;
    readonly unit: string;
}

const QUANTITY = /^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?:(per\s+|\/\s*)?(ms|s|min|h|d))?\s*$/;

/** Parses `8h`, `8 h`, `30min`, `2.7 per min`, `2.7/min`, `3`; undefined when it is none of these. */
export function parseQuantity(text: string): ParsedQuantity | undefined {
    const m = QUANTITY.exec(text);
    if (!m) return undefined;
    const shownValue = Number(m[1]);
    if (!Number.isFinite(shownValue)) return undefined;
    const unit = m[3] as TimeUnitName | undefined;
    if (!unit) return { kind: 'count', value: shownValue, shown: shownValue, unit: '' };
    if (m[2]) return { kind: 'rate', value: shownValue / SECONDS_PER[unit], shown: shownValue, unit: `per ${unit}` };
    return { kind: 'time', value: shownValue * SECONDS_PER[unit], shown: shownValue, unit };
}

/** A `--set` value for a parameter, checked against the parameter's kind; base units. */
export function parseParamValue(text: string, param: ast.Param, what: string): Constant {
    const { kind } = paramUnit(param);
    const value = text.trim();
    if (kind === 'string') return value;
    if (kind === 'bool') {
        if (value === 'true' || value === 'false') return value === 'true';
        throw new PlanError(`${what}: '${param.name}' is true or false, got '${text}'`);
    }
    const q = parseQuantity(value);
    const example = kind === 'time' ? '3min' : kind === 'rate' ? '2.7 per min' : '4';
    const noun = kind === 'time' ? 'a time' : kind === 'rate' ? 'a rate' : 'a number';
    if (!q) throw new PlanError(`${what}: '${param.name}' is ${noun}, got '${text}' (e.g. ${param.name}=${example})`);
    if (q.kind !== kind) {
        const hint = kind === 'time' ? ' with a time unit (ms, s, min, h, d)' : kind === 'rate' ? ' with a rate unit (per s, per min, per h…)' : ' without a unit';
        throw new PlanError(`${what}: '${param.name}' is ${noun}: give it${hint}, e.g. ${param.name}=${example}`);
    }
    return q.value;
}

function sweepValues(sweep: ast.Sweep, param: ast.Param, fixed: ReadonlyMap<ast.Param, Constant>): Constant[] {
    const what = `sweep ${param.name}`;
    if (sweep.values) {
        const values = sweep.values.items.map(item => evaluateConstant(item, fixed));
        if (values.length === 0) throw new PlanError(`${what}: the list of values is empty`);
        if (values.some(v => v === undefined)) throw new PlanError(`${what}: every value must be a constant`);
        return values as Constant[];
    }
    const from = evaluateConstant(sweep.from, fixed);
    const to = evaluateConstant(sweep.to, fixed);
    const step = evaluateConstant(sweep.step, fixed);
    if (typeof from !== 'number' || typeof to !== 'number' || typeof step !== 'number') {
        throw new PlanError(`${what}: from, to and step must be constant numbers`);
    }
    if (!(step > 0)) throw new PlanError(`${what}: the step must be positive, got ${step}`);
    if (to < from) throw new PlanError(`${what}: 'to' (${to}) is below 'from' (${from})`);
    const count = Math.floor((to - from) / step + 1e-9) + 1;
    if (count > 100_000) throw new PlanError(`${what}: ${count} values is too many`);
    return Array.from({ length: count }, (_, i) => from + i * step);
}

function integerSetting(expr: ast.Expression | undefined, fixed: ReadonlyMap<ast.Param, Constant>, what: string, fallback: number): number {
    if (!expr) return fallback;
    const v = evaluateConstant(expr, fixed);
    if (typeof v !== 'number') throw new PlanError(`the experiment's ${what} is not a constant number`);
    return v;
}

function timeSetting(expr: ast.Expression, fixed: ReadonlyMap<ast.Param, Constant>, what: string): number {
    const v = evaluateConstant(expr, fixed);
    const dim = inferDim(expr);
    if (typeof v !== 'number' || dim.kind !== 'unknown' && !isTime(dim)) throw new PlanError(`the experiment's ${what} must be a constant time (e.g. 8 h)`);
    return v;
}

function shown(value: Constant, unit: ParamUnit): Constant {
    return typeof value === 'number' ? round(value / unit.factor) : value;
}

/** Drops the floating-point noise of unit conversions (0.1 × 3 → 0.3). */
function round(x: number): number {
    return Number(x.toPrecision(12));
}
