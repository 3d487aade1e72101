/**
 * Checks of the twin language: names, capacities, the structure of processes
 * (resources held on every path, reachability, entity types), system dynamics
 * (flows between stocks), KPIs and experiments.
 */
import type { AstNode, ValidationAcceptor } from 'langium';
import * as ast from '../generated/ast.js';
import { IssueCodes } from './issue-codes.js';
import type { ExpressionValidator } from './expression-validator.js';
import {
    declarationDim, describeDim, evaluateConstant, formatQuantity, inferDim, isQuantity, TIME,
    unitSpecDim, unitSpecText, type Constant, type Dim
} from './units.js';
import { checkDuplicates, kindName, report } from './validation-util.js';

/** Resources held on one path, each with the step that seized it. */
type Held = ReadonlyMap<ast.Resource, ast.SeizeStep>;

/** Upper bound on (process, held set) analyses per twin: the held sets are finite, this only guards pathological files. */
const MAX_ANALYSES = 5000;

function heldKey(held: Held): string {
    if (held.size === 0) return '';
    if (held.size === 1) return held.keys().next().value!.name;
    return [...held.keys()].map(r => r.name).sort().join(',');
}

function dedupe(states: Held[]): Held[] {
    if (states.length < 2) return states;
    const byKey = new Map<string, Held>();
    for (const s of states) {
        const key = heldKey(s);
        if (!byKey.has(key)) byKey.set(key, s);
    }
    return [...byKey.values()];
}

interface FlowAnalysis {
    /** Seize steps whose resource is still held where a path ends, with where it ends. */
    readonly unreleased: Map<ast.SeizeStep, string>;
    readonly releaseWithoutSeize: Set<ast.ReleaseStep>;
    readonly routes: { step: ast.RouteStep; target: ast.Process; held: Held }[];
}

export class TwinValidator {
    constructor(private readonly expressions: ExpressionValidator) {}

    checkTwin(twin: ast.Twin, accept: ValidationAcceptor): void {
        checkDuplicates(twin.members.filter((m): m is Exclude<ast.TwinMember, ast.Integration> => !ast.isIntegration(m)),
            m => kindName(m.$type), `twin ${twin.name}`, accept);
        const integrations = twin.members.filter(ast.isIntegration);
        for (const extra of integrations.slice(1)) {
            report(accept, 'error', IssueCodes.DuplicateSetting, `Twin ${twin.name} has more than one 'integrate' setting.`, extra, 'method');
        }
        this.checkReachability(twin, accept);
        this.checkResourceFlow(twin, accept);
    }

    checkEntity(entity: ast.Entity, accept: ValidationAcceptor): void {
        checkDuplicates(entity.attributes, () => 'attribute', `entity ${entity.name}`, accept);
    }

    checkResource(resource: ast.Resource, accept: ValidationAcceptor): void {
        this.expressions.expectCount(resource.capacity, 'The capacity of a resource', accept, resource, 'capacity');
        this.checkPositiveInteger(resource.capacity, `The capacity of resource '${resource.name}'`, IssueCodes.InvalidCapacity, accept, resource, 'capacity');
    }

    checkPopulation(population: ast.Population, accept: ValidationAcceptor): void {
        this.expressions.expectCount(population.count, 'The count of a population', accept, population, 'count');
        this.checkPositiveInteger(population.count, `The count of population '${population.name}'`, IssueCodes.InvalidCapacity, accept, population, 'count');
    }

    /** A constant that must be a whole number above zero. */
    checkPositiveInteger<N extends AstNode>(expr: ast.Expression | undefined, what: string, code: typeof IssueCodes.InvalidCapacity | typeof IssueCodes.InvalidExperimentSetting,
        accept: ValidationAcceptor, node: N, property: Parameters<typeof report<N>>[5], overrides?: ReadonlyMap<ast.Param, Constant>): boolean {
        const value = evaluateConstant(expr, overrides);
        if (typeof value !== 'number') return true;
        if (value > 0 && Number.isInteger(value)) return true;
        const suggestion = value > 0 ? String(Math.max(1, Math.round(value))) : '1';
        report(accept, 'error', code, `${what} must be a whole number above 0, but it is ${formatQuantity(value, inferDim(expr))}.`, node, property, { suggestion });
        return false;
    }

    checkSource(source: ast.Source, accept: ValidationAcceptor): void {
        this.expressions.expectTime(source.interarrival, 'The inter-arrival time of a source', accept, source, 'interarrival');
        this.expressions.expectTime(source.until, `The 'until' of a source`, accept, source, 'until');
        this.expressions.expectCount(source.limit, `The 'limit' of a source`, accept, source, 'limit');
        const entity = source.entity?.ref;
        const process = source.target?.ref;
        const processEntity = process?.entity?.ref;
        if (entity && processEntity && entity !== processEntity) {
            report(accept, 'error', IssueCodes.EntityMismatch,
                `Source '${source.name}' creates ${entity.name} entities, but process '${process.name}' is for ${processEntity.name}.`,
                source, 'target', { suggestion: processEntity.name });
        }
    }

    checkDelayStep(step: ast.DelayStep, accept: ValidationAcceptor): void {
        this.expressions.expectTime(step.duration, 'The duration of a delay', accept, step, 'duration');
    }

    checkWaitStep(step: ast.WaitStep, accept: ValidationAcceptor): void {
        this.expressions.expectCondition(step.condition, `'wait until'`, accept, step, 'condition');
    }

    checkSeizeStep(step: ast.SeizeStep, accept: ValidationAcceptor): void {
        this.expressions.expectCount(step.amount, 'The amount seized', accept, step, 'amount');
        this.checkPositiveInteger(step.amount, 'The amount seized', IssueCodes.InvalidCapacity, accept, step, 'amount');
    }

    checkReleaseStep(step: ast.ReleaseStep, accept: ValidationAcceptor): void {
        this.expressions.expectCount(step.amount, 'The amount released', accept, step, 'amount');
    }

    checkRouteStep(step: ast.RouteStep, accept: ValidationAcceptor): void {
        const from = step.$container ? containingProcess(step) : undefined;
        const target = step.target?.ref;
        const fromEntity = from?.entity?.ref;
        const toEntity = target?.entity?.ref;
        if (from && target && fromEntity && toEntity && fromEntity !== toEntity) {
            report(accept, 'error', IssueCodes.EntityMismatch,
                `Process '${from.name}' is for ${fromEntity.name}, but it routes to '${target.name}', which is for ${toEntity.name}.`, step, 'target');
        }
    }

    checkBranchStep(branch: ast.BranchStep, accept: ValidationAcceptor): void {
        const arms = branch.arms;
        const probArms = arms.filter(a => a.probability !== undefined);
        const whenArms = arms.filter(a => a.condition !== undefined);
        if (probArms.length > 0 && whenArms.length > 0) {
            report(accept, 'error', IssueCodes.MixedBranchArms,
                `A branch chooses either by probability ('prob') or by condition ('when'), not both.`, whenArms[0], 'condition');
        }
        arms.forEach((arm, i) => {
            if (arm.otherwise && i !== arms.length - 1) {
                report(accept, 'error', IssueCodes.MixedBranchArms, `'otherwise' must be the last arm of a branch.`, arm, 'otherwise');
            }
            if (arm.condition) this.expressions.expectCondition(arm.condition, `A 'when' arm`, accept, arm, 'condition');
        });
        let sum = 0;
        let allConstant = true;
        for (const arm of probArms) {
            const value = evaluateConstant(arm.probability);
            if (typeof value !== 'number') {
                allConstant = false;
                this.expressions.expectCount(arm.probability, 'A branch probability', accept, arm, 'probability');
                continue;
            }
            if (value < 0 || value > 1) {
                report(accept, 'error', IssueCodes.ProbabilityOutOfRange, `A branch probability must be between 0 and 1, but it is ${value}.`, arm, 'probability');
                allConstant = false;
                continue;
            }
            sum += value;
        }
        if (probArms.length > 0 && whenArms.length === 0 && allConstant) {
            const hasOtherwise = arms.some(a => a.otherwise);
            if (hasOtherwise ? sum > 1 + 1e-9 : Math.abs(sum - 1) > 1e-9) {
                const shown = Number(sum.toPrecision(12));
                report(accept, 'error', IssueCodes.BranchProbabilitySum,
                    hasOtherwise
                        ? `The probabilities of a branch add up to ${shown}; with 'otherwise' they must add up to at most 1.`
                        : `The probabilities of a branch must add up to 1, but they add up to ${shown}.`,
                    branch, 'arms');
            }
        }
    }

    checkAssignStep(step: ast.AssignStep, accept: ValidationAcceptor): void {
        checkAssignable(step.target, step.value, step, accept, this.expressions);
    }

    checkFlow(flow: ast.Flow, accept: ValidationAcceptor): void {
        for (const end of ['source', 'target'] as const) {
            const ref = flow[end];
            const target = ref?.ref;
            if (target && !ast.isStock(target)) {
                report(accept, 'error', IssueCodes.FlowEndNotStock,
                    `A flow runs ${end === 'source' ? 'from' : 'to'} a stock, but '${ref!.$refText}' is ${article(kindName(target.$type))}.`, flow, end);
            }
        }
        if (!flow.source && !flow.target) {
            report(accept, 'warning', IssueCodes.FlowWithoutEnds, `Flow '${flow.name}' has neither 'from' nor 'to': it changes no stock.`, flow, 'name');
        }
    }

    checkIntegration(integration: ast.Integration, accept: ValidationAcceptor): void {
        this.expressions.expectTime(integration.step, 'The integration step', accept, integration, 'step');
        const step = evaluateConstant(integration.step);
        if (typeof step === 'number' && step <= 0) {
            report(accept, 'error', IssueCodes.InvalidExperimentSetting, 'The integration step must be greater than 0.', integration, 'step');
        }
    }

    checkKpi(kpi: ast.Kpi, accept: ValidationAcceptor): void {
        if (!kpi.unit) return;
        let dim = inferDim(kpi.value);
        if (dim.kind === 'series' || dim.kind === 'list') dim = dim.item;
        if (dim.kind === 'unknown') return;
        const wanted = unitSpecDim(kpi.unit).dim;
        if (isQuantity(dim) && isQuantity(wanted) && dim.time === wanted.time) return;
        const unit = unitSpecText(kpi.unit);
        report(accept, 'error', IssueCodes.UnitMismatch,
            `KPI '${kpi.name}' is shown in ${unit}, which needs ${describeDim(wanted)}, but its value is ${describeDim(dim)}.`, kpi, 'unit');
    }

    // ------------------------------------------------------------ experiments

    checkExperiment(experiment: ast.Experiment, accept: ValidationAcceptor): void {
        const firstOf = new Map<string, ast.ExperimentSetting>();
        const params = new Map<ast.Param, ast.Override | ast.Sweep>();
        for (const setting of experiment.settings) {
            if (ast.isOverride(setting) || ast.isSweep(setting)) {
                const param = setting.param?.ref;
                if (!param) continue;
                if (params.has(param)) {
                    report(accept, 'error', IssueCodes.DuplicateSetting, `Parameter '${param.name}' is set or swept more than once in experiment ${experiment.name}.`, setting, 'param');
                } else {
                    params.set(param, setting);
                }
            } else if (!ast.isReport(setting)) {
                const keyword = setting.$type.toLowerCase();
                if (firstOf.has(keyword)) {
                    report(accept, 'error', IssueCodes.DuplicateSetting, `Experiment ${experiment.name} has more than one '${keyword}'.`, setting, 'value');
                } else {
                    firstOf.set(keyword, setting);
                }
            }
        }
        const horizon = firstOf.get('horizon') as ast.Horizon | undefined;
        const warmup = firstOf.get('warmup') as ast.Warmup | undefined;
        const horizonValue = evaluateConstant(horizon?.value);
        const warmupValue = evaluateConstant(warmup?.value);
        if (horizon && typeof horizonValue === 'number' && horizonValue <= 0) {
            report(accept, 'error', IssueCodes.InvalidExperimentSetting, 'The horizon must be greater than 0.', horizon, 'value');
        }
        if (warmup && typeof warmupValue === 'number') {
            if (warmupValue < 0) {
                report(accept, 'error', IssueCodes.InvalidExperimentSetting, 'The warm-up must not be negative.', warmup, 'value');
            } else if (typeof horizonValue === 'number' && horizonValue > 0 && warmupValue >= horizonValue) {
                report(accept, 'error', IssueCodes.InvalidExperimentSetting,
                    `The warm-up (${formatQuantity(warmupValue, TIME)}) must be shorter than the horizon (${formatQuantity(horizonValue, TIME)}).`, warmup, 'value');
            }
        }
        this.checkOverrideEffects(experiment, accept);
    }

    checkHorizon(setting: ast.Horizon, accept: ValidationAcceptor): void {
        this.expressions.expectTime(setting.value, 'The horizon', accept, setting, 'value');
    }

    checkWarmup(setting: ast.Warmup, accept: ValidationAcceptor): void {
        this.expressions.expectTime(setting.value, 'The warm-up', accept, setting, 'value');
    }

    checkReplications(setting: ast.Replications, accept: ValidationAcceptor): void {
        this.expressions.expectCount(setting.value, 'The number of replications', accept, setting, 'value');
        this.checkPositiveInteger(setting.value, 'The number of replications', IssueCodes.InvalidExperimentSetting, accept, setting, 'value');
    }

    checkSeed(setting: ast.Seed, accept: ValidationAcceptor): void {
        this.expressions.expectCount(setting.value, 'The seed', accept, setting, 'value');
        const value = evaluateConstant(setting.value);
        if (typeof value === 'number' && (value < 0 || !Number.isInteger(value))) {
            report(accept, 'error', IssueCodes.InvalidExperimentSetting, `The seed must be a whole number of 0 or more, but it is ${value}.`, setting, 'value');
        }
    }

    checkOverride(override: ast.Override, accept: ValidationAcceptor): void {
        const param = override.param?.ref;
        if (!param) return;
        this.expressions.expectSameDim(override.value, declarationDim(param), `Parameter '${param.name}'`, accept, override, 'value');
    }

    checkSweep(sweep: ast.Sweep, accept: ValidationAcceptor): void {
        const param = sweep.param?.ref;
        if (!param) return;
        const dim = declarationDim(param);
        const what = `Parameter '${param.name}'`;
        if (sweep.values) {
            sweep.values.items.forEach((item, i) => this.expressions.expectSameDim(item, dim, what, accept, sweep.values!, 'items', i));
            if (sweep.values.items.length === 0) {
                report(accept, 'error', IssueCodes.InvalidExperimentSetting, `A sweep needs at least one value.`, sweep, 'values');
            }
        } else {
            this.expressions.expectSameDim(sweep.from, dim, what, accept, sweep, 'from');
            this.expressions.expectSameDim(sweep.to, dim, what, accept, sweep, 'to');
            this.expressions.expectSameDim(sweep.step, dim, what, accept, sweep, 'step');
            const step = evaluateConstant(sweep.step);
            if (typeof step === 'number' && step <= 0) {
                report(accept, 'error', IssueCodes.InvalidExperimentSetting, 'The step of a sweep must be greater than 0.', sweep, 'step');
            }
        }
    }

    /** Values an experiment gives to parameters must keep capacities and counts valid. */
    private checkOverrideEffects(experiment: ast.Experiment, accept: ValidationAcceptor): void {
        const twin = experiment.twin?.ref;
        if (!twin) return;
        const sized = twin.members.filter((m): m is ast.Resource | ast.Population => ast.isResource(m) || ast.isPopulation(m));
        if (sized.length === 0) return;
        const check = (param: ast.Param, value: ast.Expression, node: ast.Override | ast.ListLiteral, property: 'value' | 'items', index?: number) => {
            const constant = evaluateConstant(value);
            if (constant === undefined) return;
            const overrides = new Map<ast.Param, Constant>([[param, constant]]);
            for (const member of sized) {
                const expr = ast.isResource(member) ? member.capacity : member.count;
                if (!dependsOn(expr, param)) continue;
                const v = evaluateConstant(expr, overrides);
                if (typeof v === 'number' && !(v > 0 && Number.isInteger(v))) {
                    const what = ast.isResource(member) ? `the capacity of resource '${member.name}'` : `the count of population '${member.name}'`;
                    report(accept, 'error', IssueCodes.InvalidCapacity,
                        `With ${param.name} = ${formatQuantity(constant as number, inferDim(value))}, ${what} would be ${v}; it must be a whole number above 0.`, node, property, {}, index);
                    return;
                }
            }
        };
        for (const setting of experiment.settings) {
            const param = (ast.isOverride(setting) || ast.isSweep(setting)) ? setting.param?.ref : undefined;
            if (!param) continue;
            if (ast.isOverride(setting) && setting.value) check(param, setting.value, setting, 'value');
            if (ast.isSweep(setting) && setting.values) setting.values.items.forEach((item, i) => check(param, item, setting.values!, 'items', i));
        }
    }

    // ------------------------------------------------------------ process structure

    /** Processes that no source feeds and no chain of routes from a fed process reaches. */
    private checkReachability(twin: ast.Twin, accept: ValidationAcceptor): void {
        const processes = twin.members.filter(ast.isProcess);
        if (processes.length === 0) return;
        const reached = new Set<ast.Process>();
        const queue: ast.Process[] = [];
        for (const source of twin.members.filter(ast.isSource)) {
            const target = source.target?.ref;
            if (target && !reached.has(target)) {
                reached.add(target);
                queue.push(target);
            }
        }
        const routesOf = new Map<ast.Process, ast.Process[]>();
        for (const process of processes) {
            const targets: ast.Process[] = [];
            for (const step of routesIn(process.steps)) {
                if (step.target?.ref) targets.push(step.target.ref);
            }
            routesOf.set(process, targets);
        }
        while (queue.length > 0) {
            const process = queue.pop()!;
            for (const target of routesOf.get(process) ?? []) {
                if (!reached.has(target)) {
                    reached.add(target);
                    queue.push(target);
                }
            }
        }
        for (const process of processes) {
            if (!reached.has(process)) {
                report(accept, 'warning', IssueCodes.UnreachableProcess,
                    `Process '${process.name}' is never reached: no source creates entities into it and no route leads to it.`, process, 'name');
            }
        }
    }

    /**
     * Follows every path of every process with the set of resources it holds. A path
     * ends at the end of a process, at `dispose`, or at `route to`, which hands the held
     * resources to the target process (analysed again with them held).
     */
    private checkResourceFlow(twin: ast.Twin, accept: ValidationAcceptor): void {
        const processes = twin.members.filter(ast.isProcess);
        if (processes.length === 0) return;
        const routed = new Set<ast.Process>();
        for (const process of processes) {
            for (const step of routesIn(process.steps)) {
                if (step.target?.ref && step.target.ref !== process) routed.add(step.target.ref);
            }
        }
        const fed = new Set(twin.members.filter(ast.isSource).map(s => s.target?.ref));
        const result: FlowAnalysis = { unreleased: new Map(), releaseWithoutSeize: new Set(), routes: [] };
        const done = new Set<string>();
        const work: { process: ast.Process; held: Held }[] = processes
            .filter(p => fed.has(p) || !routed.has(p))
            .map(process => ({ process, held: new Map() }));
        let analyses = 0;
        while (work.length > 0 && analyses < MAX_ANALYSES) {
            const { process, held } = work.pop()!;
            const key = `${process.name}|${heldKey(held)}`;
            if (done.has(key)) continue;
            done.add(key);
            analyses++;
            result.routes.length = 0;
            const ends = this.walk(process.steps, [held], result, `'dispose' in process '${process.name}'`);
            for (const state of ends) {
                for (const seize of state.values()) {
                    if (!result.unreleased.has(seize)) result.unreleased.set(seize, `at the end of process '${process.name}'`);
                }
            }
            for (const route of result.routes) work.push({ process: route.target, held: route.held });
        }
        for (const [seize, where] of result.unreleased) {
            const name = seize.resource?.$refText ?? 'the resource';
            report(accept, 'error', IssueCodes.UnreleasedResource,
                `'${name}' is seized here but not released on some path: it is still held ${where}.`, seize, 'resource', { suggestion: `release ${name}` });
        }
        for (const release of result.releaseWithoutSeize) {
            const name = release.resource?.$refText ?? 'the resource';
            report(accept, 'warning', IssueCodes.ReleaseWithoutSeize,
                `'${name}' is released on a path where it is not held (no earlier 'seize ${name}').`, release, 'resource');
        }
    }

    private walk(steps: readonly ast.Step[], start: Held[], result: FlowAnalysis, disposeWhere: string): Held[] {
        let states = start;
        for (const step of steps) {
            if (states.length === 0) break;
            switch (step.$type) {
                case 'SeizeStep': {
                    const resource = step.resource?.ref;
                    if (!resource) break;
                    states = dedupe(states.map(s => s.has(resource) ? s : new Map(s).set(resource, step)));
                    break;
                }
                case 'ReleaseStep': {
                    const resource = step.resource?.ref;
                    if (!resource) break;
                    states = dedupe(states.map(s => {
                        if (!s.has(resource)) {
                            result.releaseWithoutSeize.add(step);
                            return s;
                        }
                        const next = new Map(s);
                        next.delete(resource);
                        return next;
                    }));
                    break;
                }
                case 'DisposeStep':
                    for (const s of states) {
                        for (const seize of s.values()) {
                            if (!result.unreleased.has(seize)) result.unreleased.set(seize, `at ${disposeWhere}`);
                        }
                    }
                    states = [];
                    break;
                case 'RouteStep': {
                    const target = step.target?.ref;
                    if (target) for (const s of states) result.routes.push({ step, target, held: s });
                    states = [];
                    break;
                }
                case 'BranchStep': {
                    const next: Held[] = [];
                    for (const arm of step.arms) next.push(...this.walk(arm.steps, states, result, disposeWhere));
                    const exhaustive = step.arms.some(a => a.otherwise) || (step.arms.length > 0 && step.arms.every(a => a.probability !== undefined));
                    if (!exhaustive) next.push(...states);
                    states = dedupe(next);
                    break;
                }
                default:
                    break;
            }
        }
        return states;
    }
}

function containingProcess(node: AstNode): ast.Process | undefined {
    let current: AstNode | undefined = node;
    while (current && !ast.isProcess(current)) current = current.$container;
    return current;
}

/** The route steps of a list of steps, including those inside branches. */
function routesIn(steps: readonly ast.Step[], into: ast.RouteStep[] = []): ast.RouteStep[] {
    for (const step of steps) {
        if (step.$type === 'RouteStep') into.push(step);
        else if (step.$type === 'BranchStep') for (const arm of step.arms) routesIn(arm.steps, into);
    }
    return into;
}

function article(noun: string): string {
    return /^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`;
}

/** True when an expression reads a parameter, directly or through other parameters. */
function dependsOn(expr: ast.Expression | undefined, param: ast.Param, visiting = new Set<ast.Param>()): boolean {
    if (!expr) return false;
    if (ast.isRefExpr(expr)) {
        const target = expr.target?.ref;
        if (target === param) return true;
        if (ast.isParam(target) && !visiting.has(target)) {
            visiting.add(target);
            return dependsOn(target.value, param, visiting);
        }
        return false;
    }
    if (ast.isBinaryExpr(expr)) return dependsOn(expr.left, param, visiting) || dependsOn(expr.right, param, visiting);
    if (ast.isUnaryExpr(expr)) return dependsOn(expr.operand, param, visiting);
    return false;
}

/** `assign` and `set`: the target must be a variable (an attribute, a stock, a state), and the value of its unit. */
export function checkAssignable(
    target: ast.AssignStep['target'] | undefined, value: ast.Expression | undefined,
    node: ast.AssignStep | ast.SetStmt, accept: ValidationAcceptor, expressions: ExpressionValidator
): void {
    const decl = target?.ref;
    if (!decl) return;
    if (ast.isParam(decl) || ast.isAux(decl) || ast.isLetStmt(decl)) {
        const why = ast.isParam(decl) ? 'a parameter is fixed for a run (an experiment can set it)'
            : ast.isAux(decl) ? 'an auxiliary is computed from its formula'
            : `a 'let' value is constant`;
        report(accept, 'error', IssueCodes.NotAssignable,
            `Cannot assign to '${target!.$refText}': ${why}. Only attributes, stocks and agent states can change.`, node, 'target');
        return;
    }
    const dim: Dim = declarationDim(decl);
    expressions.expectSameDim(value, dim, `'${target!.$refText}'`, accept, node, 'value');
}
