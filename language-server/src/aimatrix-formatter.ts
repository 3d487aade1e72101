/**
 * Formatting of both languages: one member per line, two spaces of indentation per
 * block, one space around `=` and binary operators, `name: value` in arguments, no
 * space before `,` and one after, at most one blank line kept between members.
 *
 * The layout is a function of the token sequence alone (plus the number of line
 * breaks already between members and before comments, capped at one blank line), so
 * formatting a formatted file changes nothing. Langium's `AbstractFormatter` supplies
 * the plumbing (whole document, range, refusal on syntax errors); the edits are
 * computed here over the gaps between tokens rather than through per-node rules,
 * which keeps comments and idempotence under control.
 */
import { AstUtils, CstUtils, type AstNode, type LangiumDocument, type LeafCstNode } from 'langium';
import { AbstractFormatter } from 'langium/lsp';
import type { FormattingOptions, Range, TextEdit } from 'vscode-languageserver';
import * as ast from '../generated/ast.js';

const INDENT = '  ';

/** Nodes whose `{ … }` holds one member per line. Other braces (channel fields, message arguments, scores) stay inline. */
const BLOCK_TYPES = new Set<string>([
    ast.Twin.$type, ast.Entity.$type, ast.Process.$type, ast.BranchStep.$type, ast.BranchArm.$type, ast.Experiment.$type,
    ast.System.$type, ast.Agent.$type, ast.Block.$type, ast.Model.$type, ast.Decision.$type
]);

/** Container properties whose items each start a line. */
const LINE_PROPERTIES = new Set(['imports', 'elements', 'systems', 'members', 'attributes', 'steps', 'arms', 'settings', 'statements']);

const COMMENTS = new Set(['ML_COMMENT', 'SL_COMMENT']);

function isComment(leaf: LeafCstNode): boolean {
    return leaf.hidden && COMMENTS.has(leaf.tokenType.name);
}

function newlines(text: string): number {
    let n = 0;
    for (const c of text) if (c === '\n') n++;
    return n;
}

export class AiMatrixFormatter extends AbstractFormatter {

    protected format(_node: AstNode): void {
        // Layout is computed over the tokens in `doDocumentFormat`.
    }

    protected override doDocumentFormat(document: LangiumDocument, _options: FormattingOptions, range?: Range): TextEdit[] {
        try {
            return this.layout(document, range);
        } catch {
            return []; // never break a file because of a formatter bug
        }
    }

    private layout(document: LangiumDocument, range?: Range): TextEdit[] {
        const root = document.parseResult.value;
        const cst = root.$cstNode;
        if (!cst) return [];
        const text = document.textDocument.getText();
        const tokens = CstUtils.flattenCst(cst).filter(l => !l.hidden || isComment(l)).toArray();
        if (tokens.length === 0) return [];

        // Offsets of the first token of every node that starts a line.
        const lineStarts = new Set<number>();
        for (const node of AstUtils.streamAst(root)) {
            if (node.$containerProperty && LINE_PROPERTIES.has(node.$containerProperty) && node.$cstNode) {
                const first = CstUtils.flattenCst(node.$cstNode).find(l => !l.hidden);
                if (first) lineStarts.add(first.offset);
            }
        }

        const desired: Array<{ start: number; end: number; text: string }> = [];
        let depth = 0;
        desired.push({ start: 0, end: tokens[0].offset, text: '' });
        for (let i = 1; i < tokens.length; i++) {
            const p = tokens[i - 1];
            const n = tokens[i];
            const gap = text.slice(p.end, n.offset);
            if (this.isBlockBrace(p, '{')) depth++;
            if (this.isBlockBrace(n, '}')) depth = Math.max(0, depth - 1);
            desired.push({ start: p.end, end: n.offset, text: this.gapText(p, n, gap, depth, lineStarts) });
        }
        const last = tokens[tokens.length - 1];
        desired.push({ start: last.end, end: text.length, text: '\n' });

        const edits: TextEdit[] = [];
        for (const d of desired) {
            const current = text.slice(d.start, d.end);
            if (current === d.text || /\S/.test(current)) continue; // unchanged, or text the parser skipped: leave it
            const editRange = { start: document.textDocument.positionAt(d.start), end: document.textDocument.positionAt(d.end) };
            if (range && !this.overlaps(editRange, range)) continue;
            edits.push({ range: editRange, newText: d.text });
        }
        return edits;
    }

    private overlaps(a: Range, b: Range): boolean {
        const before = (x: Range['start'], y: Range['start']) => x.line < y.line || (x.line === y.line && x.character <= y.character);
        return before(a.start, b.end) && before(b.start, a.end);
    }

    private isBlockBrace(leaf: LeafCstNode, brace: '{' | '}'): boolean {
        return !leaf.hidden && leaf.text === brace && BLOCK_TYPES.has(leaf.astNode.$type);
    }

    private gapText(p: LeafCstNode, n: LeafCstNode, gap: string, depth: number, lineStarts: Set<number>): string {
        const existing = newlines(gap);
        const line = (count: number, extra = 0) => '\n'.repeat(count) + INDENT.repeat(depth + extra);
        const kept = () => line(Math.min(2, Math.max(1, existing)));

        if (isComment(n)) {
            // A comment stays at the end of its line, or on its own line(s).
            if (existing === 0) return ' ';
            return this.isBlockBrace(p, '{') ? line(1) : kept();
        }
        if (this.isBlockBrace(n, '}')) {
            if (this.isBlockBrace(p, '{')) return ' ';
            return line(1);
        }
        if (lineStarts.has(n.offset)) {
            return this.isBlockBrace(p, '{') ? line(1) : kept();
        }
        if (isComment(p) && (existing > 0 || p.tokenType.name === 'SL_COMMENT')) {
            // Code continued after a comment on its own line: indent it as a continuation.
            return line(1, 1);
        }
        return this.spaces(p, n);
    }

    /** Spaces between two tokens of one line. */
    private spaces(p: LeafCstNode, n: LeafCstNode): string {
        const a = p.text;
        const b = n.text;
        if (b === ',' || b === ')' || b === ']' || b === '.' || b === ':') return '';
        if (a === '(' || a === '[' || a === '.') return '';
        if (b === '(' && (ast.isCallExpr(n.astNode) || ast.isInferExpr(n.astNode)) && !p.hidden && p.astNode === n.astNode) return '';
        if (b === '[' && ast.isTensorSpec(n.astNode)) return '';
        if (a === '-' && ast.isUnaryExpr(p.astNode) && p.astNode.$cstNode?.offset === p.offset) return '';
        return ' ';
    }
}
