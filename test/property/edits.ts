/**
 * Random edits of source text, as `fast-check` arbitraries: what a person typing (or a
 * bad paste) does to a file. Offsets are drawn as natural numbers and taken modulo the
 * text length when the edit is applied, so one edit applies to any text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { AstUtils, GrammarAST, type Grammar } from 'langium';
import { TextDocument } from 'vscode-languageserver-textdocument';

export type Edit =
    | { kind: 'insert'; at: number; text: string }
    | { kind: 'delete'; at: number; length: number }
    | { kind: 'replace'; at: number; length: number; text: string }
    | { kind: 'duplicate-line'; line: number }
    | { kind: 'swap-lines'; a: number; b: number }
    | { kind: 'truncate'; at: number };

/** Every keyword of a grammar (both languages share one set of rules). */
export function grammarKeywords(grammar: Grammar): string[] {
    return [...new Set(AstUtils.streamAllContents(grammar).filter(GrammarAST.isKeyword).map(k => k.value))].sort();
}

/** Fragments a user types: partial declarations, expressions, units, distributions, brackets. */
const FRAGMENTS = [
    'param x = 1 min', 'param y = ', 'resource R capacity ', 'entity E { attr a = 1 }', 'process P for E {',
    'seize ', 'release ', 'delay exponential(mean: 2 min)', 'branch { prob 0.5 { dispose } otherwise { } }',
    'route to ', 'assign a += 1', 'wait until ', 'stock S = 100', 'flow F from S to ', 'rate 0.1 per d',
    'aux z = S * 2', 'integrate rk4 step 0.1 d', 'kpi k = mean(waitTime(P)) in min', 'kpi u = utilization(R)',
    'experiment X for ', 'horizon 8 h', 'sweep x in [1, 2]', 'set x = 3', 'report k', 'replications 30',
    'agent A { state s = 0 every 1 s { set s += 1 } }', 'on c as m { send c { v: 1 } }', 'channel c { v: number }',
    'model M { file "m.onnx" input x: float32 [1, 4] providers cuda, cpu batch 8 cache 100 }',
    'decision D { criterion cost weight 0.5 minimize option a { cost: 1 } }', 'decide D', 'infer M(x: 1)',
    'swarm W of A count 10', 'coordinator C over W strategy consensus heartbeat 1 s', 'system S observes ',
    'import "', 'import "missing.twin"', 'uniform(min: 1, max: ', 'normal(mean: -1 min, sd: 2)', 'bernoulli(p: 1.5)',
    '1e309', '0.', '.5', '-', '--', '"unterminated', '/* open comment', '*/', '// comment', '\n', '\r\n', '\t',
    '{', '}', '(', ')', '[', ']', ',', ':', '.', '=', '+=', '==', '<=', 'and', 'or', 'not', 'per', 'ms', 'min', 'h', 'd',
    'é', '→', '𝛌', '\u0000', '\u200b'
];

const RANDOM_CHARS = fc.string({
    unit: fc.constantFrom(...'abcxyzE_019 .,:;=+-*/%^<>!(){}[]"\'#@$\\\n\t'.split('')),
    minLength: 1, maxLength: 12
});

export function editArbitrary(keywords: readonly string[]): fc.Arbitrary<Edit> {
    const token = fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...keywords).map(k => ` ${k} `) },
        { weight: 3, arbitrary: fc.constantFrom(...FRAGMENTS) },
        { weight: 2, arbitrary: RANDOM_CHARS },
        { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }
    );
    return fc.oneof(
        { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: token }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }) },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 12 }), text: token }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate-line' as const), line: fc.nat() }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('swap-lines' as const), a: fc.nat(), b: fc.nat() }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) }
    );
}

export function applyEdit(text: string, edit: Edit): string {
    const at = (n: number): number => n % (text.length + 1);
    switch (edit.kind) {
        case 'insert': {
            const i = at(edit.at);
            return text.slice(0, i) + edit.text + text.slice(i);
        }
        case 'delete': {
            const i = at(edit.at);
            return text.slice(0, i) + text.slice(i + edit.length);
        }
        case 'replace': {
            const i = at(edit.at);
            return text.slice(0, i) + edit.text + text.slice(i + edit.length);
        }
        case 'truncate':
            return text.slice(0, at(edit.at));
        case 'duplicate-line': {
            const lines = text.split('\n');
            const i = edit.line % lines.length;
            lines.splice(i, 0, lines[i]);
            return lines.join('\n');
        }
        case 'swap-lines': {
            const lines = text.split('\n');
            const a = edit.a % lines.length;
            const b = edit.b % lines.length;
            [lines[a], lines[b]] = [lines[b], lines[a]];
            return lines.join('\n');
        }
    }
}

/** 0-based line and character of an offset, counting line breaks as LSP does (LF, CRLF, CR). */
export function positionAt(text: string, offset: number): { line: number; character: number } {
    return TextDocument.create('file:///x', 'twin', 1, text).positionAt(offset);
}

/** Every `.twin` and `.agent` file under a folder, found now (the examples grow). */
export function sourceFiles(folder: string): string[] {
    const found: string[] = [];
    const walk = (dir: string): void => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules') walk(full);
            else if (entry.isFile() && /\.(twin|agent)$/.test(entry.name)) found.push(full);
        }
    };
    walk(folder);
    return found;
}
