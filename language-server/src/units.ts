/**
 * Dimensions and units of the shared expression language.
 *
 * A quantity has a power of time: 0 is a plain count (or a ratio), 1 a time, -1 a rate
 * (a count per time). Times convert between ms, s, min, h and d; values are held in
 * seconds. Adding a time to a count is an error; a rate times a time is a count.
 */
import type { AstNode } from 'langium';
import * as ast from '../generated/ast.js';
import { findBuiltin } from './builtins.js';

export type Dim =
    | { readonly kind: 'quantity'; readonly time: number }
    | { readonly kind: 'bool' }
    | { readonly kind: 'string' }
    | { readonly kind: 'list'; readonly item: Dim }
    | { readonly kind: 'series'; readonly item: Dim }
    | { readonly kind: 'ref'; readonly type: string }
    | { readonly kind: 'unknown' };

export const COUNT: Dim = { kind: 'quantity', time: 0 };
export const TIME: Dim = { kind: 'quantity', time: 1 };
export const RATE: Dim = { kind: 'quantity', time: -1 };
export const BOOL: Dim = { kind: 'bool' };
export const STRING: Dim = { kind: 'string' };
export const UNKNOWN: Dim = { kind: 'unknown' };

export const TIME_UNITS = ['ms', 's', 'min', 'h', 'd'] as const;
export type TimeUnitName = typeof TIME_UNITS[number];

/** Seconds in one of each time unit. */
export const SECONDS_PER: Record<TimeUnitName, number> = { ms: 0.001, s: 1, min: 60, h: 3600, d: 86400 };

export const TIME_UNIT_NAMES: Record<TimeUnitName, string> = {
    ms: 'milliseconds', s: 'seconds', min: 'minutes', h: 'hours', d: 'days'
};

export function quantity(time: number): Dim {
    return { kind: 'quantity', time };
}

export function isQuantity(d: Dim): d is { kind: 'quantity'; time: number } {
    return d.kind === 'quantity';
}

export function isTime(d: Dim): boolean {
    return d.kind === 'quantity' && d.time === 1;
}

export function isCount(d: Dim): boolean {
    return d.kind === 'quantity' && d.time === 0;
}

export function isRate(d: Dim): boolean {
    return d.kind === 'quantity' && d.time === -1;
}

export function sameDim(a: Dim, b: Dim): boolean {
    if (a.kind === 'unknown' || b.kind === 'unknown') return true;
    if (a.kind !== b.kind) return false;
    if (a.kind === 'quantity' && b.kind === 'quantity') return a.time === b.time;
    if ((a.kind === 'list' || a.kind === 'series') && (b.kind === 'list' || b.kind === 'series')) return sameDim(a.item, b.item);
    if (a.kind === 'ref' && b.kind === 'ref') return a.type === b.type;
    return true;
}

/** How a dimension reads in a message: "a time", "a count", "a rate (count per time)", … */
export function describeDim(d: Dim): string {
    switch (d.kind) {
        case 'quantity':
            if (d.time === 0) return 'a count';
            if (d.time === 1) return 'a time';
            if (d.time === -1) return 'a rate (count per time)';
            return `a quantity of time^${d.time}`;
        case 'bool': return 'a condition (true/false)';
        case 'string': return 'a string';
        case 'list': return `a list of ${describeDim(d.item).replace(/^an? /, '')}s`;
        case 'series': return `a series of ${describeDim(d.item).replace(/^an? /, '')}s`;
        case 'ref': return `a reference to a ${d.type.toLowerCase()}`;
        case 'unknown': return 'an unknown quantity';
    }
}

/** The unit a quantity literal carries, as a dimension, and its factor to base units (seconds). */
export function unitSpecDim(unit: ast.UnitSpec | undefined): { dim: Dim; factor: number } {
    if (!unit) return { dim: COUNT, factor: 1 };
    const seconds = SECONDS_PER[unit.unit as TimeUnitName] ?? 1;
    return unit.per ? { dim: RATE, factor: 1 / seconds } : { dim: TIME, factor: seconds };
}

/** Text of a unit spec, as written: `min`, `per h`. */
export function unitSpecText(unit: ast.UnitSpec): string {
    return unit.per ? `per ${unit.unit}` : unit.unit;
}

/**
 * Infers the dimension of an expression. Never throws; what cannot be inferred
 * (a cycle, an unresolved name) is `unknown`, which agrees with everything, so one
 * error is reported once and does not cascade.
 */
export function inferDim(expr: ast.Expression | undefined, visiting: Set<AstNode> = new Set()): Dim {
    if (!expr) return UNKNOWN;
    switch (expr.$type) {
        case 'QuantityLiteral':
            return unitSpecDim(expr.unit).dim;
        case 'BooleanLiteral':
            return BOOL;
        case 'StringLiteral':
            return STRING;
        case 'ListLiteral': {
            const item = expr.items.length > 0 ? inferDim(expr.items[0], visiting) : UNKNOWN;
            return { kind: 'list', item };
        }
        case 'UnaryExpr':
            return expr.op === 'not' ? BOOL : inferDim(expr.operand, visiting);
        case 'BinaryExpr':
            return binaryDim(expr, visiting);
        case 'RefExpr':
            return declarationDim(expr.target?.ref, visiting);
        case 'MemberAccess':
            return memberDim(expr, visiting);
        case 'CallExpr': {
            const builtin = findBuiltin(expr.func);
            if (!builtin) return UNKNOWN;
            return builtin.result(expr.args.map(a => inferDim(a.value, visiting)), expr.args.map(a => a.name));
        }
        case 'InferExpr':
            return UNKNOWN;
        case 'DecideExpr':
            return STRING;
        default:
            return UNKNOWN;
    }
}

function binaryDim(expr: ast.BinaryExpr, visiting: Set<AstNode>): Dim {
    const left = inferDim(expr.left, visiting);
    const right = inferDim(expr.right, visiting);
    switch (expr.operator) {
        case 'and': case 'or':
        case '<': case '<=': case '>': case '>=': case '==': case '!=':
            return BOOL;
        case '+': case '-': case '%':
            return left.kind === 'unknown' ? right : left;
        case '*':
            if (isQuantity(left) && isQuantity(right)) return quantity(left.time + right.time);
            return UNKNOWN;
        case '/':
            if (isQuantity(left) && isQuantity(right)) return quantity(left.time - right.time);
            return UNKNOWN;
        case '^':
            return isQuantity(left) && left.time === 0 ? COUNT : UNKNOWN;
        default:
            return UNKNOWN;
    }
}

function memberDim(expr: ast.MemberAccess, visiting: Set<AstNode>): Dim {
    const receiver = expr.receiver;
    if (ast.isRefExpr(receiver)) {
        const target = receiver.target?.ref;
        if (ast.isMessageParam(target)) {
            const behaviour = target.$container;
            const field = behaviour.channel?.ref?.fields.find(f => f.name === expr.member);
            return field ? valueTypeDim(field.type) : UNKNOWN;
        }
        if (ast.isSwarm(target) || ast.isPopulation(target)) {
            const agent = target.agent?.ref;
            const state = agent?.members.find((m): m is ast.StateVar => ast.isStateVar(m) && m.name === expr.member);
            return { kind: 'series', item: state ? declarationDim(state, visiting) : UNKNOWN };
        }
    }
    return UNKNOWN;
}

export function valueTypeDim(type: ast.ValueType): Dim {
    switch (type) {
        case 'number': case 'int': return COUNT;
        case 'duration': return TIME;
        case 'bool': return BOOL;
        case 'string': return STRING;
        // A field whose type did not parse (the file is being edited).
        default: return UNKNOWN;
    }
}

/** The dimension of a declaration when it is read in an expression. */
export function declarationDim(decl: AstNode | undefined, visiting: Set<AstNode> = new Set()): Dim {
    if (!decl || visiting.has(decl)) return UNKNOWN;
    visiting.add(decl);
    try {
        switch (decl.$type) {
            case 'Param': return inferDim((decl as ast.Param).value, visiting);
            case 'Attribute': return inferDim((decl as ast.Attribute).value, visiting);
            case 'StateVar': return inferDim((decl as ast.StateVar).value, visiting);
            case 'LetStmt': return inferDim((decl as ast.LetStmt).value, visiting);
            case 'Aux': return inferDim((decl as ast.Aux).value, visiting);
            case 'Stock': return inferDim((decl as ast.Stock).initial, visiting);
            case 'Flow': {
                // A flow is a rate; a rate written as a plain count is per model time unit.
                const d = inferDim((decl as ast.Flow).rate, visiting);
                return isCount(d) ? RATE : d;
            }
            case 'Kpi': {
                const kpi = decl as ast.Kpi;
                return inferDim(kpi.value, visiting);
            }
            case 'Population': case 'Swarm': return { kind: 'ref', type: decl.$type };
            case 'Resource': case 'Process': case 'Entity': case 'Source': case 'Twin':
            case 'Channel': case 'Agent': case 'Model': case 'Decision':
                return { kind: 'ref', type: decl.$type };
            case 'MessageParam': return { kind: 'ref', type: 'Message' };
            case 'DecisionOption': return STRING;
            case 'Criterion': return COUNT;
            default: return UNKNOWN;
        }
    } finally {
        visiting.delete(decl);
    }
}

/** A constant value: a number in base units (seconds for times, per second for rates), a boolean, or a string. */
export type Constant = number | boolean | string;

/**
 * Evaluates an expression that depends only on literals and parameters (after
 * experiment overrides are applied by the caller through `overrides`). Returns
 * undefined when the value is not constant (a distribution, a stock, a call).
 */
export function evaluateConstant(expr: ast.Expression | undefined, overrides?: ReadonlyMap<ast.Param, Constant>, visiting: Set<AstNode> = new Set()): Constant | undefined {
    if (!expr) return undefined;
    switch (expr.$type) {
        case 'QuantityLiteral':
            return expr.value * unitSpecDim(expr.unit).factor;
        case 'BooleanLiteral':
            return expr.value === 'true';
        case 'StringLiteral':
            return unquote(expr.value);
        case 'UnaryExpr': {
            const v = evaluateConstant(expr.operand, overrides, visiting);
            if (expr.op === 'not') return typeof v === 'boolean' ? !v : undefined;
            return typeof v === 'number' ? -v : undefined;
        }
        case 'RefExpr': {
            const target = expr.target?.ref;
            if (ast.isParam(target)) {
                if (overrides?.has(target)) return overrides.get(target);
                if (visiting.has(target)) return undefined;
                visiting.add(target);
                try {
                    return evaluateConstant(target.value, overrides, visiting);
                } finally {
                    visiting.delete(target);
                }
            }
            return undefined;
        }
        case 'BinaryExpr': {
            const l = evaluateConstant(expr.left, overrides, visiting);
            const r = evaluateConstant(expr.right, overrides, visiting);
            if (l === undefined || r === undefined) return undefined;
            if (typeof l === 'number' && typeof r === 'number') {
                switch (expr.operator) {
                    case '+': return l + r;
                    case '-': return l - r;
                    case '*': return l * r;
                    case '/': return r === 0 ? undefined : l / r;
                    case '%': return r === 0 ? undefined : l % r;
                    case '^': return Math.pow(l, r);
                    case '<': return l < r;
                    case '<=': return l <= r;
                    case '>': return l > r;
                    case '>=': return l >= r;
                    case '==': return l === r;
                    case '!=': return l !== r;
                }
                return undefined;
            }
            if (typeof l === 'boolean' && typeof r === 'boolean') {
                switch (expr.operator) {
                    case 'and': return l && r;
                    case 'or': return l || r;
                    case '==': return l === r;
                    case '!=': return l !== r;
                }
            }
            return undefined;
        }
        default:
            return undefined;
    }
}

/** Formats a base-unit value in a given unit: `formatIn(162, TIME, 'min')` is `2.7 min`. */
export function formatQuantity(value: number, dim: Dim, unit?: TimeUnitName): string {
    const n = (x: number) => Number(x.toPrecision(6)).toString();
    if (isTime(dim)) {
        const u = unit ?? bestTimeUnit(value);
        return `${n(value / SECONDS_PER[u])} ${u}`;
    }
    if (isRate(dim)) {
        const u = unit ?? 'min';
        return `${n(value * SECONDS_PER[u])} per ${u}`;
    }
    return n(value);
}

/** The largest time unit in which a value is at least 1. */
export function bestTimeUnit(seconds: number): TimeUnitName {
    const abs = Math.abs(seconds);
    for (const u of ['d', 'h', 'min', 's'] as const) {
        if (abs >= SECONDS_PER[u]) return u;
    }
    return abs === 0 ? 's' : 'ms';
}

export function unquote(s: string): string {
    if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) {
        return s.slice(1, -1).replace(/\\(.)/g, '$1');
    }
    return s;
}
