/**
 * Small helpers shared by the validators: reporting with an issue code and its data,
 * nearest-name suggestions, and duplicate detection within one scope.
 */
import type { AstNode, Properties, ValidationAcceptor } from 'langium';
import type { IssueCode, IssueData } from './issue-codes.js';

export type Severity = 'error' | 'warning' | 'info' | 'hint';

/** Reports a diagnostic with a stable code; `data` always repeats the code for quick fixes. */
export function report<N extends AstNode>(
    accept: ValidationAcceptor, severity: Severity, code: IssueCode, message: string,
    node: N, property?: Properties<N>, extra: Omit<IssueData, 'code'> = {}, index?: number
): void {
    const data: IssueData = { code, ...extra };
    accept(severity, message, { node, property, index, code, data });
}

/**
 * Edit distance with adjacent transpositions (optimal string alignment), bounded:
 * returns `limit + 1` as soon as the distance exceeds `limit`.
 */
export function editDistance(a: string, b: string, limit = Number.MAX_SAFE_INTEGER): number {
    if (Math.abs(a.length - b.length) > limit) return limit + 1;
    let before = new Array<number>(b.length + 1).fill(0);
    let prev = new Array<number>(b.length + 1);
    let curr = new Array<number>(b.length + 1);
    for (let j = 0; j <= b.length; j++) prev[j] = j;
    for (let i = 1; i <= a.length; i++) {
        curr[0] = i;
        let rowMin = curr[0];
        for (let j = 1; j <= b.length; j++) {
            const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
            let d = Math.min(prev[j] + 1, curr[j - 1] + 1, prev[j - 1] + cost);
            if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) {
                d = Math.min(d, before[j - 2] + 1);
            }
            curr[j] = d;
            if (d < rowMin) rowMin = d;
        }
        if (rowMin > limit) return limit + 1;
        [before, prev, curr] = [prev, curr, before];
    }
    return prev[b.length];
}

/**
 * The candidate nearest to `name` by edit distance, if it is near enough to be a
 * plausible typo (at most a third of the name's length, at least 1; case differences are cheap).
 */
export function nearestName(name: string | undefined, candidates: Iterable<string | undefined>): string | undefined {
    if (!name) return undefined;
    const limit = Math.max(1, Math.floor(name.length / 3));
    let best: string | undefined;
    let bestDistance = limit + 1;
    const lower = name.toLowerCase();
    for (const candidate of candidates) {
        if (!candidate || candidate === name) continue;
        const d = candidate.toLowerCase() === lower ? 0.5 : editDistance(name, candidate, limit);
        if (d < bestDistance) {
            best = candidate;
            bestDistance = d;
        }
    }
    return best;
}

/** `Did you mean 'X'?` or nothing. */
export function didYouMean(suggestion: string | undefined): string {
    return suggestion === undefined ? '' : ` Did you mean '${suggestion}'?`;
}

/** Reports every named node whose name repeats an earlier one in the same list (one pass). */
export function checkDuplicates<N extends AstNode & { name?: string }>(
    nodes: readonly N[], what: (node: N) => string, scope: string, accept: ValidationAcceptor
): void {
    const seen = new Map<string, N>();
    for (const node of nodes) {
        const name = node.name;
        if (!name) continue;
        if (seen.has(name)) {
            report(accept, 'error', 'duplicate-name', `Duplicate ${what(node)} '${name}' in ${scope}.`, node, 'name' as Properties<N>);
        } else {
            seen.set(name, node);
        }
    }
}

/** `Resource` → `resource`, `DecisionOption` → `decision option`. */
export function kindName(type: string): string {
    return type.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}
