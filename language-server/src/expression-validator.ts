/**
 * Checks of the shared expression language: units (a time added to a count, a count
 * where a time is required), calls of built-in functions (names, arguments, overloads,
 * argument units) and constant distribution parameters (negative means, min > max,
 * probabilities outside [0, 1]).
 */
import { type AstNode, type Properties, type ValidationAcceptor } from 'langium';
import * as ast from '../generated/ast.js';
import { BUILTINS, findBuiltin, type Builtin, type BuiltinParam } from './builtins.js';
import { IssueCodes } from './issue-codes.js';
import {
    describeDim, evaluateConstant, formatQuantity, inferDim, isCount, isQuantity, isRate, isTime, sameDim,
    type Dim, UNKNOWN
} from './units.js';
import { didYouMean, nearestName, report } from './validation-util.js';

const ADDITIVE = new Set(['+', '-', '%']);
const COMPARISON = new Set(['<', '<=', '>', '>=', '==', '!=']);
const BUILTIN_NAMES = BUILTINS.map(b => b.name);

/** True when an expression is the constant plain number 0 (allowed wherever a time or a rate is expected). */
export function isConstantZero(expr: ast.Expression | undefined): boolean {
    return isCount(inferDim(expr)) && evaluateConstant(expr) === 0;
}

/** True when an expression contains a unit mismatch that is reported on its own. */
function containsMismatch(expr: ast.Expression | undefined): boolean {
    if (!expr) return false;
    switch (expr.$type) {
        case 'BinaryExpr':
            if ((ADDITIVE.has(expr.operator) || COMPARISON.has(expr.operator)) && binaryMismatch(expr)) return true;
            return containsMismatch(expr.left) || containsMismatch(expr.right);
        case 'UnaryExpr': return containsMismatch(expr.operand);
        case 'CallExpr': return expr.args.some(a => containsMismatch(a.value));
        case 'ListLiteral': return expr.items.some(containsMismatch);
        case 'MemberAccess': return containsMismatch(expr.receiver);
        default: return false;
    }
}

function binaryMismatch(expr: ast.BinaryExpr): boolean {
    const left = inferDim(expr.left) ?? UNKNOWN;
    const right = inferDim(expr.right) ?? UNKNOWN;
    if (!isQuantity(left) || !isQuantity(right) || left.time === right.time) return false;
    return !isConstantZero(expr.left) && !isConstantZero(expr.right);
}

/** The dimension of an expression for a slot check, or unknown when a mismatch inside it is already reported. */
function slotDim(expr: ast.Expression): Dim {
    return containsMismatch(expr) ? UNKNOWN : inferDim(expr);
}

function unitSuggestion(expr: ast.Expression | undefined, unit: string): string | undefined {
    return ast.isQuantityLiteral(expr) && !expr.unit ? `${expr.value} ${unit}` : undefined;
}

export class ExpressionValidator {

    /** A slot that needs a time (a delay, an inter-arrival time, a horizon, …). A constant 0 is allowed. */
    expectTime<N extends AstNode>(expr: ast.Expression | undefined, what: string, accept: ValidationAcceptor, node: N, property: Properties<N>): void {
        if (!expr) return;
        const dim = slotDim(expr);
        if (dim.kind === 'unknown' || dim.kind === 'ref' || isTime(dim)) return;
        if (isConstantZero(expr)) return;
        report(accept, 'error', IssueCodes.ExpectedTime,
            `${what} must be a time (for example \`5 min\`), not ${describeDim(dim)}.`,
            node, property, { suggestion: unitSuggestion(expr, 'min') });
    }

    /** A slot that needs a plain count (a capacity, a number of replications, a batch size, …). */
    expectCount<N extends AstNode>(expr: ast.Expression | undefined, what: string, accept: ValidationAcceptor, node: N, property: Properties<N>): void {
        if (!expr) return;
        const dim = slotDim(expr);
        if (dim.kind === 'unknown' || dim.kind === 'ref' || isCount(dim)) return;
        const suggestion = ast.isQuantityLiteral(expr) ? String(expr.value) : undefined;
        report(accept, 'error', IssueCodes.ExpectedCount, `${what} must be a plain count, not ${describeDim(dim)}.`, node, property, { suggestion });
    }

    /** A slot that needs a condition (a branch arm's `when`, `wait until`, `if`, a `when` behaviour). */
    expectCondition<N extends AstNode>(expr: ast.Expression | undefined, what: string, accept: ValidationAcceptor, node: N, property: Properties<N>): void {
        if (!expr) return;
        const dim = slotDim(expr);
        if (dim.kind === 'unknown' || dim.kind === 'bool') return;
        if (dim.kind === 'series' && dim.item.kind === 'bool') return;
        report(accept, 'error', IssueCodes.ExpectedCondition, `${what} must be a condition (true or false), not ${describeDim(dim)}.`, node, property);
    }

    /** A value that must have the same dimension as a declaration (an assignment, an override, a message field). */
    expectSameDim<N extends AstNode>(expr: ast.Expression | undefined, expected: Dim, what: string, accept: ValidationAcceptor, node: N, property: Properties<N>, index?: number): void {
        if (!expr || !expected) return;
        const dim = slotDim(expr);
        if (expected.kind === 'unknown' || dim.kind === 'unknown' || expected.kind === 'ref' || dim.kind === 'ref') return;
        if (sameDim(dim, expected)) return;
        if (isQuantity(expected) && expected.time !== 0 && isConstantZero(expr)) return;
        report(accept, 'error', IssueCodes.UnitMismatch, `${what} is ${describeDim(expected)}, but this value is ${describeDim(dim)}.`, node, property, {}, index);
    }

    checkBinaryExpr(expr: ast.BinaryExpr, accept: ValidationAcceptor): void {
        if (ADDITIVE.has(expr.operator) || COMPARISON.has(expr.operator)) {
            if (!binaryMismatch(expr)) return;
            const left = inferDim(expr.left);
            const right = inferDim(expr.right);
            const verb = expr.operator === '+' ? 'add' : expr.operator === '-' ? 'subtract' : expr.operator === '%' ? 'take the remainder of' : 'compare';
            const leftUnit = ast.isQuantityLiteral(expr.left) ? expr.left.unit : undefined;
            const rightUnit = ast.isQuantityLiteral(expr.right) ? expr.right.unit : undefined;
            const suggestion = (rightUnit && !rightUnit.per && unitSuggestion(expr.left, rightUnit.unit))
                || (leftUnit && !leftUnit.per && unitSuggestion(expr.right, leftUnit.unit)) || undefined;
            report(accept, 'error', IssueCodes.UnitMismatch,
                `Cannot ${verb} ${describeDim(left)} and ${describeDim(right)} with '${expr.operator}': give both sides the same unit.`,
                expr, 'operator', { suggestion });
            return;
        }
        if (expr.operator === 'and' || expr.operator === 'or') {
            for (const side of ['left', 'right'] as const) {
                const dim = inferDim(expr[side]);
                if (dim.kind !== 'unknown' && dim.kind !== 'bool') {
                    report(accept, 'error', IssueCodes.ExpectedCondition, `The operands of '${expr.operator}' must be conditions, not ${describeDim(dim)}.`, expr, side);
                }
            }
        }
    }

    checkUnaryExpr(expr: ast.UnaryExpr, accept: ValidationAcceptor): void {
        if (expr.op !== 'not') return;
        const dim = inferDim(expr.operand);
        if (dim.kind !== 'unknown' && dim.kind !== 'bool') {
            report(accept, 'error', IssueCodes.ExpectedCondition, `The operand of 'not' must be a condition, not ${describeDim(dim)}.`, expr, 'operand');
        }
    }

    checkCallExpr(call: ast.CallExpr, accept: ValidationAcceptor): void {
        if (call.func === undefined) return;
        const builtin = findBuiltin(call.func);
        if (!builtin) {
            const suggestion = nearestName(call.func, BUILTIN_NAMES);
            report(accept, 'error', IssueCodes.UnknownFunction, `Unknown function '${call.func}'.${didYouMean(suggestion)}`, call, 'func', { suggestion });
            return;
        }
        const binding = this.bindArguments(builtin, call, accept);
        if (!binding) return;
        this.checkArgumentKinds(builtin, binding, call, accept);
        this.checkConstraints(builtin, binding, accept);
    }

    /** Chooses the overload the arguments fit and maps each parameter to its argument; reports what does not fit. */
    private bindArguments(builtin: Builtin, call: ast.CallExpr, accept: ValidationAcceptor): Map<BuiltinParam, ast.Argument> | undefined {
        const args = call.args;
        const fits = (overload: readonly BuiltinParam[]): Map<BuiltinParam, ast.Argument> | undefined => {
            const binding = new Map<BuiltinParam, ast.Argument>();
            let position = 0;
            for (const arg of args) {
                const param = arg.name === undefined ? overload[position++] : overload.find(p => p.name === arg.name);
                if (!param || binding.has(param)) return undefined;
                binding.set(param, arg);
            }
            return binding;
        };
        const candidates = builtin.overloads.map(o => ({ overload: o, binding: fits(o) })).filter(c => c.binding !== undefined);
        if (candidates.length === 0) {
            this.reportUnfitArguments(builtin, call, accept);
            return undefined;
        }
        const complete = candidates.find(c => c.overload.every(p => p.optional || c.binding!.has(p)));
        if (!complete) {
            const missing = candidates.map(c => c.overload.filter(p => !p.optional && !c.binding!.has(p)).map(p => `'${p.name}'`).join(' and '));
            const first = candidates[0].overload.find(p => !p.optional && !candidates[0].binding!.has(p));
            report(accept, 'error', IssueCodes.MissingArgument,
                `${builtin.name} needs ${missing.join(' or ')}.`, call, 'func', { suggestion: first?.name });
            return undefined;
        }
        return complete.binding;
    }

    private reportUnfitArguments(builtin: Builtin, call: ast.CallExpr, accept: ValidationAcceptor): void {
        const allNames = new Set(builtin.overloads.flatMap(o => o.map(p => p.name)));
        const signatures = builtin.overloads.map(o => `${builtin.name}(${o.map(p => p.name).join(', ')})`).join(' or ');
        const seen = new Set<string>();
        for (let i = 0; i < call.args.length; i++) {
            const arg = call.args[i];
            if (arg.name === undefined) continue;
            if (!allNames.has(arg.name)) {
                const suggestion = nearestName(arg.name, allNames);
                report(accept, 'error', IssueCodes.UnknownArgument,
                    `${builtin.name} has no argument '${arg.name}'.${didYouMean(suggestion)} Expected ${signatures}.`, arg, 'name', { suggestion });
                return;
            }
            if (seen.has(arg.name)) {
                report(accept, 'error', IssueCodes.UnknownArgument, `'${arg.name}' is given twice.`, arg, 'name');
                return;
            }
            seen.add(arg.name);
        }
        const named = call.args.filter(a => a.name !== undefined);
        const home = named.length > 0 ? builtin.overloads.find(o => o.some(p => p.name === named[0].name)) : undefined;
        const stranger = home ? named.find(a => !home.some(p => p.name === a.name)) : undefined;
        if (stranger) {
            report(accept, 'error', IssueCodes.UnknownArgument,
                `'${stranger.name}' cannot be combined with '${named[0].name}': ${signatures}.`, stranger, 'name');
            return;
        }
        const maxArgs = Math.max(...builtin.overloads.map(o => o.length));
        if (call.args.length > maxArgs) {
            report(accept, 'error', IssueCodes.UnknownArgument,
                `${builtin.name} takes at most ${maxArgs} argument${maxArgs === 1 ? '' : 's'}: ${signatures}.`, call.args[maxArgs], 'value');
            return;
        }
        const last = call.args[call.args.length - 1];
        if (last) report(accept, 'error', IssueCodes.UnknownArgument, `These arguments do not fit ${signatures}.`, last, 'value');
        else report(accept, 'error', IssueCodes.UnknownArgument, `These arguments do not fit ${signatures}.`, call, 'func');
    }

    private checkArgumentKinds(builtin: Builtin, binding: Map<BuiltinParam, ast.Argument>, _call: ast.CallExpr, accept: ValidationAcceptor): void {
        let sameDimSeen: { param: BuiltinParam; dim: Dim } | undefined;
        for (const [param, arg] of binding) {
            const expr = arg.value;
            if (!expr) continue;
            const label = `'${param.name}' of ${builtin.name}`;
            switch (param.kind) {
                case 'time': this.expectArgDim(expr, 'time', label, isTime, arg, accept); break;
                case 'rate': this.expectArgDim(expr, 'rate', label, isRate, arg, accept); break;
                case 'count': case 'probability': this.expectArgDim(expr, 'count', label, isCount, arg, accept); break;
                case 'same': {
                    const dim = slotDim(expr);
                    if (!isQuantity(dim)) break;
                    if (sameDimSeen && !sameDim(sameDimSeen.dim, dim)) {
                        report(accept, 'error', IssueCodes.UnitMismatch,
                            `${label} is ${describeDim(dim)}, but '${sameDimSeen.param.name}' is ${describeDim(sameDimSeen.dim)}: they must have the same unit.`, arg, 'value');
                    } else if (!sameDimSeen) {
                        sameDimSeen = { param, dim };
                    }
                    break;
                }
                case 'list': this.checkListArg(expr, label, arg, accept); break;
                case 'process': case 'resource': case 'stock': case 'swarm': this.checkRefArg(expr, param.kind, label, arg, accept); break;
                default: break;
            }
        }
    }

    private expectArgDim(expr: ast.Expression, want: string, label: string, ok: (d: Dim) => boolean, arg: ast.Argument, accept: ValidationAcceptor): void {
        const dim = slotDim(expr);
        if (dim.kind === 'unknown' || ok(dim)) return;
        if (want === 'rate' && ast.isQuantityLiteral(expr) && !expr.unit) {
            report(accept, 'error', IssueCodes.UnitMismatch, `${label} must be a rate (for example \`30 per h\`), not ${describeDim(dim)}.`, arg, 'value', { suggestion: `${expr.value} per h` });
            return;
        }
        report(accept, 'error', IssueCodes.UnitMismatch, `${label} must be a ${want}, not ${describeDim(dim)}.`, arg, 'value',
            { suggestion: want === 'time' ? unitSuggestion(expr, 'min') : undefined });
    }

    private checkListArg(expr: ast.Expression, label: string, arg: ast.Argument, accept: ValidationAcceptor): void {
        if (!ast.isListLiteral(expr)) {
            const dim = inferDim(expr);
            if (dim.kind !== 'unknown' && dim.kind !== 'list') {
                report(accept, 'error', IssueCodes.InvalidArgument, `${label} must be a list like [1, 2, 3], not ${describeDim(dim)}.`, arg, 'value');
            }
            return;
        }
        let first: Dim | undefined;
        for (let i = 0; i < expr.items.length; i++) {
            const dim = inferDim(expr.items[i]);
            if (!isQuantity(dim)) continue;
            if (first && !sameDim(first, dim)) {
                report(accept, 'error', IssueCodes.UnitMismatch, `The items of ${label} must share one unit: this one is ${describeDim(dim)}, the first is ${describeDim(first)}.`, expr, 'items', {}, i);
                return;
            }
            first ??= dim;
        }
    }

    private checkRefArg(expr: ast.Expression, kind: 'process' | 'resource' | 'stock' | 'swarm', label: string, arg: ast.Argument, accept: ValidationAcceptor): void {
        const wanted = kind === 'swarm' ? 'a swarm or population' : `a ${kind}`;
        if (!ast.isRefExpr(expr)) {
            report(accept, 'error', IssueCodes.InvalidArgument, `${label} must name ${wanted}.`, arg, 'value');
            return;
        }
        const target = expr.target?.ref;
        if (!target) return;
        const ok = kind === 'process' ? ast.isProcess(target)
            : kind === 'resource' ? ast.isResource(target)
            : kind === 'stock' ? ast.isStock(target)
            : ast.isSwarm(target) || ast.isPopulation(target);
        if (!ok) {
            report(accept, 'error', IssueCodes.InvalidArgument, `${label} must name ${wanted}, but '${expr.target.$refText}' is a ${target.$type.toLowerCase()}.`, arg, 'value');
        }
    }

    /** Constraints on constant arguments: positive means, non-negative deviations, probabilities, min ≤ mode ≤ max, empirical weights. */
    private checkConstraints(builtin: Builtin, binding: Map<BuiltinParam, ast.Argument>, accept: ValidationAcceptor): void {
        const values = new Map<string, { value: number; arg: ast.Argument }>();
        const related = new Set((builtin.relations ?? []).flatMap(r => [r.lower, r.upper]));
        for (const [param, arg] of binding) {
            if (!param.constraints && !related.has(param.name)) continue;
            const value = evaluateConstant(arg.value);
            if (typeof value !== 'number') continue;
            values.set(param.name, { value, arg });
            const shown = () => formatQuantity(value, inferDim(arg.value));
            for (const constraint of param.constraints ?? []) {
                if (constraint === 'positive' && !(value > 0)) {
                    report(accept, 'error', IssueCodes.InvalidDistributionParameter, `'${param.name}' of ${builtin.name} must be positive, but it is ${shown()}.`, arg, 'value');
                } else if (constraint === 'nonNegative' && value < 0) {
                    report(accept, 'error', IssueCodes.InvalidDistributionParameter, `'${param.name}' of ${builtin.name} must not be negative, but it is ${shown()}.`, arg, 'value');
                } else if (constraint === 'probability' && (value < 0 || value > 1)) {
                    report(accept, 'error', IssueCodes.ProbabilityOutOfRange, `'${param.name}' of ${builtin.name} is a probability and must be between 0 and 1, but it is ${shown()}.`, arg, 'value',
                        { suggestion: String(Math.min(1, Math.max(0, value))) });
                } else if (constraint === 'integer' && !Number.isInteger(value)) {
                    report(accept, 'error', IssueCodes.InvalidDistributionParameter, `'${param.name}' of ${builtin.name} must be a whole number, but it is ${shown()}.`, arg, 'value');
                }
            }
        }
        for (const relation of builtin.relations ?? []) {
            const lower = values.get(relation.lower);
            const upper = values.get(relation.upper);
            if (lower && upper && lower.value > upper.value) {
                report(accept, 'error', IssueCodes.InvalidDistributionParameter,
                    `${builtin.name}: ${relation.message} (${relation.lower} is ${formatQuantity(lower.value, inferDim(lower.arg.value))}, ${relation.upper} is ${formatQuantity(upper.value, inferDim(upper.arg.value))}).`,
                    upper.arg, 'value');
            }
        }
        if (builtin.name === 'empirical') this.checkEmpirical(binding, accept);
    }

    private checkEmpirical(binding: Map<BuiltinParam, ast.Argument>, accept: ValidationAcceptor): void {
        let valuesArg: ast.Argument | undefined;
        let weightsArg: ast.Argument | undefined;
        for (const [param, arg] of binding) {
            if (param.name === 'values') valuesArg = arg;
            if (param.name === 'weights') weightsArg = arg;
        }
        const values = valuesArg?.value;
        if (valuesArg && ast.isListLiteral(values) && values.items.length === 0) {
            report(accept, 'error', IssueCodes.InvalidDistributionParameter, `'values' of empirical must not be empty.`, valuesArg, 'value');
        }
        const weights = weightsArg?.value;
        if (!weightsArg || !ast.isListLiteral(weights)) return;
        if (ast.isListLiteral(values) && weights.items.length !== values.items.length) {
            report(accept, 'error', IssueCodes.InvalidDistributionParameter,
                `empirical needs one weight per value: ${values.items.length} value${values.items.length === 1 ? '' : 's'} but ${weights.items.length} weight${weights.items.length === 1 ? '' : 's'}.`,
                weightsArg, 'value');
        }
        let total = 0;
        let allConstant = true;
        for (let i = 0; i < weights.items.length; i++) {
            const w = evaluateConstant(weights.items[i]);
            if (typeof w !== 'number') {
                allConstant = false;
                continue;
            }
            total += w;
            if (w < 0) {
                report(accept, 'error', IssueCodes.InvalidDistributionParameter, `Weights of empirical must not be negative (this one is ${w}).`, weights, 'items', {}, i);
            }
        }
        if (allConstant && weights.items.length > 0 && total <= 0) {
            report(accept, 'error', IssueCodes.InvalidDistributionParameter, `The weights of empirical must not all be zero.`, weightsArg, 'value');
        }
    }
}
