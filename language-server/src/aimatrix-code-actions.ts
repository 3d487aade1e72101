/**
 * Quick fixes, keyed on the diagnostic's code and the `IssueData` the validator
 * attaches. Where the data carries no suggestion (Langium's own linking errors), the
 * fix computes one: the nearest name in scope, or the file to import.
 */
import {
    AstUtils, CstUtils, GrammarUtils, UriUtils, type AstNode, type IndexManager, type LangiumDocument,
    type NameProvider, type Reference, type ScopeProvider
} from 'langium';
import type { CodeActionProvider, LangiumServices } from 'langium/lsp';
import { CodeActionKind, type CodeAction, type CodeActionParams, type Command, type Diagnostic, type Range, type TextEdit } from 'vscode-languageserver';
import * as ast from '../generated/ast.js';
import { diagnosticCode } from './aimatrix-document-validator.js';
import { IssueCodes, type IssueData } from './issue-codes.js';
import { TIME_UNITS } from './units.js';

const NUMBER_TEXT = /^\s*-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** Edit distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        let prev = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const tmp = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
            prev = tmp;
        }
    }
    return row[b.length];
}

/** The closest of some names to a misspelt one, if close enough to be a likely typo. */
export function nearestName(name: string, candidates: Iterable<string>): string | undefined {
    let best: string | undefined;
    let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
    for (const candidate of candidates) {
        if (candidate === name) continue;
        const d = editDistance(name, candidate);
        if (d < bestDistance) { best = candidate; bestDistance = d; }
    }
    return best;
}

function formatNumber(x: number): string {
    return Number(x.toPrecision(12)).toString();
}

export class AiMatrixCodeActionProvider implements CodeActionProvider {

    protected readonly scopeProvider: ScopeProvider;
    protected readonly indexManager: IndexManager;
    protected readonly nameProvider: NameProvider;

    constructor(services: LangiumServices) {
        this.scopeProvider = services.references.ScopeProvider;
        this.indexManager = services.shared.workspace.IndexManager;
        this.nameProvider = services.references.NameProvider;
    }

    getCodeActions(document: LangiumDocument, params: CodeActionParams): Array<Command | CodeAction> {
        const actions: CodeAction[] = [];
        for (const diagnostic of params.context.diagnostics) {
            try {
                this.fixesFor(document, diagnostic, actions);
            } catch {
                // no fix for a diagnostic on a tree we cannot read
            }
        }
        return actions;
    }

    private fixesFor(document: LangiumDocument, d: Diagnostic, actions: CodeAction[]): void {
        const code = diagnosticCode(d);
        const data = (typeof d.data === 'object' && d.data !== null ? d.data : {}) as Partial<IssueData>;
        const text = document.textDocument.getText(d.range);
        const fix = (title: string, edits: TextEdit[], preferred = false) =>
            actions.push(this.action(document, d, title, edits, preferred));
        const replace = (newText: string): TextEdit => ({ range: d.range, newText });
        const count = actions.length;

        switch (code) {
            case IssueCodes.UnresolvedReference: {
                const suggestion = data.suggestion ?? this.nearestInScope(document, d.range, text);
                if (suggestion && suggestion !== text) fix(`Did you mean '${suggestion}'?`, [replace(suggestion)], true);
                const importPath = data.importPath ?? this.importPathFor(document, text);
                if (importPath) fix(`Add import "${importPath}"`, [this.importEdit(document, importPath)], !suggestion);
                break;
            }
            case IssueCodes.UnitMismatch:
            case IssueCodes.ExpectedTime: {
                if (!NUMBER_TEXT.test(text)) break;
                // The suggestion is a unit (`min`, `per h`) or the whole corrected text (`3 min`).
                const suggested = data.suggestion?.replace(/^\s*-?[\d.]+(?:[eE][+-]?\d+)?\s*/, '').trim();
                const rate = suggested?.startsWith('per ') ?? false;
                const units = TIME_UNITS.map(u => rate ? `per ${u}` : u);
                const first = suggested && units.includes(suggested) ? suggested : (rate ? 'per min' : 'min');
                for (const unit of [first, ...units.filter(u => u !== first)]) {
                    fix(`Add unit '${unit}'`, [{ range: { start: d.range.end, end: d.range.end }, newText: ` ${unit}` }], unit === first);
                }
                break;
            }
            case IssueCodes.ProbabilityOutOfRange: {
                const value = Number(text);
                if (NUMBER_TEXT.test(text) && Number.isFinite(value)) {
                    const clamped = formatNumber(Math.min(1, Math.max(0, value)));
                    fix(`Clamp to ${clamped}`, [replace(clamped)], true);
                }
                break;
            }
            case IssueCodes.InvalidCapacity: {
                const value = Number(text);
                if (NUMBER_TEXT.test(text) && Number.isFinite(value)) {
                    const fixed = String(Math.max(1, Math.round(value)));
                    fix(`Change the capacity to ${fixed}`, [replace(fixed)], true);
                }
                break;
            }
            case IssueCodes.UnreleasedResource:
                this.addRelease(document, d, data, fix);
                break;
            case IssueCodes.DuplicateName:
                this.renameDuplicate(document, d, data, fix);
                break;
            case IssueCodes.ImportNotNeeded: {
                const edit = this.removeImport(document, d.range);
                if (edit) fix('Remove the unused import', [edit], true);
                break;
            }
            default:
                break;
        }
        // Any other diagnostic that carries a suggestion (a near tensor name, a known argument …).
        if (actions.length === count && data.suggestion && data.suggestion !== text) {
            fix(`Replace with '${data.suggestion}'`, [replace(data.suggestion)], true);
        }
    }

    private action(document: LangiumDocument, d: Diagnostic, title: string, edits: TextEdit[], preferred: boolean): CodeAction {
        return {
            title,
            kind: CodeActionKind.QuickFix,
            diagnostics: [d],
            isPreferred: preferred,
            edit: { changes: { [document.textDocument.uri]: edits } }
        };
    }

    private nodeAt(document: LangiumDocument, range: Range): AstNode | undefined {
        const cst = document.parseResult.value.$cstNode;
        if (!cst) return undefined;
        return CstUtils.findLeafNodeAtOffset(cst, document.textDocument.offsetAt(range.start))?.astNode;
    }

    /** The reference of a node whose text sits at the range. */
    private referenceAt(document: LangiumDocument, range: Range): { node: AstNode; reference: Reference; property: string } | undefined {
        const offset = document.textDocument.offsetAt(range.start);
        for (let node = this.nodeAt(document, range); node; node = node.$container) {
            for (const info of AstUtils.streamReferences(node)) {
                const refNode = info.reference.$refNode;
                if (refNode && refNode.offset <= offset && offset < refNode.end) {
                    return { node, reference: info.reference as Reference, property: info.property };
                }
            }
        }
        return undefined;
    }

    private nearestInScope(document: LangiumDocument, range: Range, text: string): string | undefined {
        const found = this.referenceAt(document, range);
        if (!found) return undefined;
        const scope = this.scopeProvider.getScope({ reference: found.reference, container: found.node, property: found.property });
        return nearestName(text, scope.getAllElements().map(e => e.name));
    }

    /** A file of the workspace (not this one) that declares the name, as a path relative to this file. */
    private importPathFor(document: LangiumDocument, name: string): string | undefined {
        const self = document.uri.toString();
        const target = this.indexManager.allElements().find(e => e.name === name && e.documentUri.toString() !== self);
        if (!target) return undefined;
        return UriUtils.relative(UriUtils.dirname(document.uri), target.documentUri).replace(/^\.\//, '');
    }

    private importEdit(document: LangiumDocument, path: string): TextEdit {
        const root = document.parseResult.value as Partial<ast.TwinFile | ast.AgentFile>;
        const imports = root.imports ?? [];
        const last = imports[imports.length - 1]?.$cstNode;
        if (last) {
            return { range: { start: last.range.end, end: last.range.end }, newText: `\nimport "${path}"` };
        }
        return { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, newText: `import "${path}"\n\n` };
    }

    private removeImport(document: LangiumDocument, range: Range): TextEdit | undefined {
        const node = this.nodeAt(document, range);
        const imp = node ? AstUtils.getContainerOfType(node, ast.isImport) : undefined;
        const cst = imp?.$cstNode;
        if (!cst) return undefined;
        const text = document.textDocument.getText();
        let end = cst.end;
        while (end < text.length && (text[end] === ' ' || text[end] === '\t')) end++;
        if (text[end] === '\r') end++;
        if (text[end] === '\n') end++;
        const start = document.textDocument.offsetAt({ line: cst.range.start.line, character: 0 });
        return { range: { start: document.textDocument.positionAt(start), end: document.textDocument.positionAt(end) }, newText: '' };
    }

    private addRelease(document: LangiumDocument, d: Diagnostic, data: Partial<IssueData>, fix: (title: string, edits: TextEdit[], preferred?: boolean) => void): void {
        const node = this.nodeAt(document, d.range);
        const process = node ? AstUtils.getContainerOfType(node, ast.isProcess) : undefined;
        if (!process || process.steps.length === 0) return;
        let resources: string[];
        const seize = node ? AstUtils.getContainerOfType(node, ast.isSeizeStep) : undefined;
        if (data.suggestion) resources = [data.suggestion.replace(/^\s*release\s+/, '').trim()];
        else if (seize?.resource?.$refText) resources = [seize.resource.$refText];
        else {
            const seized = new Set<string>();
            const released = new Set<string>();
            for (const n of AstUtils.streamAllContents(process)) {
                if (ast.isSeizeStep(n) && n.resource?.$refText) seized.add(n.resource.$refText);
                if (ast.isReleaseStep(n) && n.resource?.$refText) released.add(n.resource.$refText);
            }
            resources = [...seized].filter(r => !released.has(r));
        }
        const last = process.steps[process.steps.length - 1].$cstNode;
        if (!last) return;
        const lineText = document.textDocument.getText({ start: { line: last.range.start.line, character: 0 }, end: last.range.start });
        const indent = /^\s*$/.test(lineText) ? lineText : '    ';
        for (const resource of resources) {
            fix(`Release '${resource}' at the end of process '${process.name}'`,
                [{ range: { start: last.range.end, end: last.range.end }, newText: `\n${indent}release ${resource}` }], true);
        }
    }

    private renameDuplicate(document: LangiumDocument, d: Diagnostic, data: Partial<IssueData>, fix: (title: string, edits: TextEdit[], preferred?: boolean) => void): void {
        let node = this.nodeAt(document, d.range);
        while (node && !this.nameProvider.getName(node)) node = node.$container;
        const name = node ? this.nameProvider.getName(node) : undefined;
        const nameNode = node ? this.nameProvider.getNameNode(node) ?? GrammarUtils.findNodeForProperty(node.$cstNode, 'name') : undefined;
        if (!node || !name || !nameNode) return;
        const taken = new Set<string>();
        for (const n of AstUtils.streamAst(document.parseResult.value)) {
            const other = this.nameProvider.getName(n);
            if (other) taken.add(other);
        }
        let fresh = data.suggestion;
        if (!fresh || taken.has(fresh)) {
            const base = name.replace(/\d+$/, '');
            for (let i = 2; ; i++) {
                if (!taken.has(`${base}${i}`)) { fresh = `${base}${i}`; break; }
            }
        }
        fix(`Rename to '${fresh}'`, [{ range: nameNode.range, newText: fresh }], true);
    }
}
