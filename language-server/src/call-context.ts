/**
 * Finds the call around a cursor from the text alone, so that completion and signature
 * help work while the user is typing (`exponential(` does not parse yet). Scans back
 * from the cursor a bounded distance: the cost does not grow with the file.
 */
import { findBuiltin, type Builtin, type BuiltinParam } from './builtins.js';

export interface CallContext {
    /** The name before the `(`. */
    readonly func: string;
    /** Offset of the `(`. */
    readonly open: number;
    /** Index of the argument the cursor is in (commas at depth 0 before it). */
    readonly argIndex: number;
    /** Names of the arguments, in order, up to and including the current one (undefined for positional ones). */
    readonly argNames: readonly (string | undefined)[];
    /** The text of the current argument from its start to the cursor. */
    readonly currentText: string;
}

const MAX_SCAN = 4000;

export function findCallContext(text: string, offset: number): CallContext | undefined {
    let depth = 0;
    const commas: number[] = [];
    const stop = Math.max(0, offset - MAX_SCAN);
    let open = -1;
    for (let i = Math.min(offset, text.length) - 1; i >= stop; i--) {
        const c = text[i];
        if (c === ')' || c === ']') depth++;
        else if (c === '[') {
            if (depth === 0) return undefined; // inside a list literal, not directly in the call
            depth--;
        } else if (c === '(') {
            if (depth === 0) { open = i; break; }
            depth--;
        } else if (c === '{' || c === '}') {
            return undefined; // calls do not span blocks
        } else if (c === ',' && depth === 0) commas.push(i);
    }
    if (open < 0) return undefined;
    const before = text.slice(Math.max(0, open - 64), open);
    const m = /([A-Za-z_]\w*)\s*$/.exec(before);
    if (!m) return undefined;
    const bounds = [open, ...commas.reverse(), offset];
    const argNames: (string | undefined)[] = [];
    for (let k = 0; k + 1 < bounds.length; k++) {
        const segment = text.slice(bounds[k] + 1, bounds[k + 1]);
        argNames.push(/^\s*([A-Za-z_]\w*)\s*:/.exec(segment)?.[1]);
    }
    return {
        func: m[1],
        open,
        argIndex: commas.length,
        argNames,
        currentText: text.slice(bounds[bounds.length - 2] + 1, offset)
    };
}

/** The builtin of a call context, if the called name is one. */
export function builtinOf(call: CallContext | undefined): Builtin | undefined {
    return call ? findBuiltin(call.func) : undefined;
}

/**
 * The overload that fits the arguments written so far: the first whose parameters
 * include every name given and that has room for the positional ones.
 */
export function chooseOverload(builtin: Builtin, argNames: readonly (string | undefined)[]): number {
    const named = argNames.filter((n): n is string => n !== undefined);
    for (let i = 0; i < builtin.overloads.length; i++) {
        const params = builtin.overloads[i];
        if (named.every(n => params.some(p => p.name === n)) && argNames.length <= Math.max(1, params.length)) return i;
    }
    return 0;
}

/** The parameter the current argument fills: by its name when it has one, else by position. */
export function activeParam(params: readonly BuiltinParam[], argNames: readonly (string | undefined)[], argIndex: number): number {
    const name = argNames[argIndex];
    if (name !== undefined) {
        const i = params.findIndex(p => p.name === name);
        if (i >= 0) return i;
    }
    // Positional: the first parameter not named by another argument, counting positional ones before.
    const taken = new Set(argNames.filter((n, i) => n !== undefined && i !== argIndex));
    let position = 0;
    for (let i = 0; i < argIndex; i++) if (argNames[i] === undefined) position++;
    const free = params.map((p, i) => ({ p, i })).filter(x => !taken.has(x.p.name));
    return free[position]?.i ?? Math.min(argIndex, params.length - 1);
}
