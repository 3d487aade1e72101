/**
 * Re-parsing by top-level block must be invisible: after random edits of files of many
 * blocks, the incrementally updated document equals a fresh full parse of the same text
 * — the same AST (with its text regions and resolved references), the same CST leaves
 * (offsets, ranges, token types), the same syntax errors and the same diagnostics — and
 * linking only what can have changed resolves every reference to the same target (path,
 * description, error) as linking the whole document.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { AstUtils, CstUtils, EmptyFileSystem, URI, isLeafCstNode, isReference, type AstNode, type LangiumDocument } from 'langium';
import { describe, expect, test } from 'vitest';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { twinFile } from '../../bench/generate.js';
import { AiMatrixDocumentFactory } from '../../language-server/src/aimatrix-document-factory.js';
import { createAiMatrixServices, type AiMatrixLanguages } from '../../language-server/src/aimatrix-module.js';

const ROOT = path.resolve(__dirname, '..', '..');

function server(minLines: number): { services: AiMatrixLanguages; factory: AiMatrixDocumentFactory; version: number } {
    const services = createAiMatrixServices(EmptyFileSystem);
    const factory = services.shared.workspace.LangiumDocumentFactory as AiMatrixDocumentFactory;
    factory.minLines = minLines;
    return { services, factory, version: 0 };
}

/** The incremental server (every document counts as large) and the reference (always a full parse). */
const incremental = server(0);
const reference = server(Number.MAX_SAFE_INTEGER);

async function setText(s: ReturnType<typeof server>, uri: string, text: string): Promise<LangiumDocument> {
    s.services.shared.workspace.TextDocuments!.set(TextDocument.create(uri, uri.endsWith('.agent') ? 'agent' : 'twin', ++s.version, text));
    await s.services.shared.workspace.DocumentBuilder.update([URI.parse(uri)], []);
    return s.services.shared.workspace.LangiumDocuments.getDocument(URI.parse(uri))!;
}

/** Everything observable about a parsed, linked and validated document. */
function snapshot(s: ReturnType<typeof server>, document: LangiumDocument): Record<string, unknown> {
    const root = document.parseResult.value;
    const containment: string[] = [];
    for (const node of AstUtils.streamAst(root)) {
        const container = node.$container as (AstNode & Record<string, unknown>) | undefined;
        if (!container) continue;
        const value = container[node.$containerProperty!];
        const ok = Array.isArray(value) ? value[node.$containerIndex!] === node : value === node;
        if (!ok) containment.push(`${node.$type} in ${container.$type}.${node.$containerProperty}[${node.$containerIndex}]`);
    }
    const cst = root.$cstNode!;
    return {
        ast: s.services.twin.serializer.JsonSerializer.serialize(root, { textRegions: true }),
        containment,
        leaves: CstUtils.flattenCst(cst).map(l => [l.offset, l.end, l.range, l.hidden, l.tokenType.name, l.text, l.astNode.$type]).toArray(),
        composites: CstUtils.streamCst(cst).filter(n => !isLeafCstNode(n)).map(n => [n.offset, n.end, n.range, n.astNode.$type, n.container?.astNode.$type]).toArray(),
        fullText: cst.root.fullText === document.textDocument.getText(),
        lexerErrors: document.parseResult.lexerErrors.map(e => [e.offset, e.length, e.line, e.column, e.message]),
        parserErrors: document.parseResult.parserErrors.map(e => [e.token.startOffset, e.token.image, e.message]),
        diagnostics: (document.diagnostics ?? []).map(d => [d.range, d.severity, d.code, d.message, d.data]),
        references: resolvedReferences(s, document)
    };
}

/** Every reference of the document: where it is, what it resolved to (target path, description) or its error. */
function resolvedReferences(s: ReturnType<typeof server>, document: LangiumDocument): unknown[] {
    const locator = s.services.twin.workspace.AstNodeLocator;
    const result: unknown[] = [];
    for (const node of AstUtils.streamAst(document.parseResult.value)) {
        for (const { reference, container, property } of AstUtils.streamReferences(node)) {
            if (!isReference(reference)) continue;
            const target = reference.ref;
            const description = reference.$nodeDescription;
            result.push([
                locator.getAstNodePath(container), property, reference.$refText,
                target ? [AstUtils.getDocument(target).uri.toString(), locator.getAstNodePath(target)] : reference.error?.message,
                description && [description.name, description.type, description.documentUri.toString(), description.path,
                    description.nameSegment?.range, description.selectionSegment?.range]
            ]);
        }
    }
    // The references the document lists (what the builder checks before relinking), as a set.
    const listed = document.references.filter(r => isReference(r)).map(r => `${r.$refText}@${r.$refNode?.offset}:${r.ref ? 'ok' : 'error'}`).sort();
    return [result, listed];
}

/** Files of many blocks: the bench generator's (small plants) and the twin examples concatenated. */
function exampleTwins(): string {
    const files = ['bank/bank.twin', 'epidemic/epidemic.twin', 'montecarlo/callcentre.twin', 'swarm/sky.twin'];
    return files.map(f => fs.readFileSync(path.join(ROOT, 'examples', f), 'utf8').replace(/^import .*$/gm, '')).join('\n');
}

const SNIPPETS = ['x', '1', ' ', '\n', '}', '{', '\n}\n', 'twin Q {\n  param z = 2 min\n}\n', '  param q = 3 min\n', '// c\n', '"',
    'seize ', 'Machine0', 'experiment E for Plant0 { horizon 1 h }\n', '\n\n', '/* x */', 'process P for Part0 {\n  dispose\n}\n'];

const edit = fc.record({
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    lineStart: fc.boolean(),
    remove: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 9, max: 200 })),
    insert: fc.oneof(fc.constantFrom(...SNIPPETS), fc.constant(''), fc.string({ maxLength: 6 })),
    copyLine: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
    rename: fc.option(fc.record({ which: fc.double({ min: 0, max: 1, noNaN: true }), to: fc.double({ min: 0, max: 1, noNaN: true }), fresh: fc.boolean() }),
        { nil: undefined, freq: 3 }),
    revalue: fc.option(fc.record({ which: fc.double({ min: 0, max: 1, noNaN: true }), value: fc.constantFrom('2 min', '3', '2.5', '0.5 per h', '-1 min', 'true') }),
        { nil: undefined, freq: 3 })
});

interface Rename { which: number; to: number; fresh: boolean }
interface Revalue { which: number; value: string }
interface Edit {
    at: number; lineStart: boolean; remove: number; insert: string; copyLine: number | undefined;
    rename: Rename | undefined; revalue: Revalue | undefined;
}

const DECLARATION = /\b(?:twin|experiment|param|resource|entity|attr|process|source|stock|flow|aux|kpi) ([A-Za-z_]\w*)/g;

/**
 * Renames a declaration (a twin, a parameter, a resource…) without touching its uses: to
 * a new name (its uses in other blocks no longer resolve) or to the name of another
 * declaration (a duplicate that may take over references elsewhere).
 */
function rename(text: string, r: Rename): string {
    const declarations = [...text.matchAll(DECLARATION)];
    if (declarations.length === 0) return text;
    const chosen = declarations[Math.floor(r.which * declarations.length) % declarations.length];
    const name = chosen[1];
    const to = r.fresh ? `${name}x` : declarations[Math.floor(r.to * declarations.length) % declarations.length][1];
    const at = chosen.index + chosen[0].length - name.length;
    return text.slice(0, at) + to + text.slice(at + name.length);
}

const PARAM_VALUE = /^(\s*param \w+ = )(.*)$/gm;

/**
 * Gives a parameter another value (another unit, a fraction, a negative time): what
 * other blocks check against it changes (an experiment's `set` and `sweep`, capacities).
 */
function revalue(text: string, r: Revalue): string {
    const params = [...text.matchAll(PARAM_VALUE)];
    if (params.length === 0) return text;
    const chosen = params[Math.floor(r.which * params.length) % params.length];
    const at = chosen.index + chosen[1].length;
    return text.slice(0, at) + r.value + text.slice(at + chosen[2].length);
}

function apply(text: string, e: Edit): string {
    if (e.rename) return rename(text, e.rename);
    if (e.revalue) return revalue(text, e.revalue);
    let at = Math.floor(e.at * text.length);
    if (e.lineStart) at = text.lastIndexOf('\n', at - 1) + 1;
    let insert = e.insert;
    if (e.copyLine !== undefined) {
        const lines = text.split('\n');
        insert = lines[Math.floor(e.copyLine * lines.length) % lines.length] + '\n';
    }
    return text.slice(0, at) + insert + text.slice(Math.min(text.length, at + e.remove));
}

let fileCounter = 0;

async function check(base: string, edits: Edit[], uriBase: string): Promise<number> {
    const uri = `file:///incremental/${uriBase}${fileCounter++}.twin`;
    let text = base;
    await setText(incremental, uri, text);
    await setText(reference, uri, text);
    let spliced = 0;
    for (const e of edits) {
        text = apply(text, e);
        const a = await setText(incremental, uri, text);
        if (incremental.factory.lastUpdate === 'incremental') spliced++;
        const b = await setText(reference, uri, text);
        expect(reference.factory.lastUpdate).not.toBe('incremental');
        expect(snapshot(incremental, a)).toEqual(snapshot(reference, b));
    }
    await incremental.services.shared.workspace.DocumentBuilder.update([], [URI.parse(uri)]);
    await reference.services.shared.workspace.DocumentBuilder.update([], [URI.parse(uri)]);
    return spliced;
}

describe('incremental re-parse by top-level block', () => {
    const generated = twinFile(500, 2);
    const examples = exampleTwins();

    test('random edits of the bench generator output equal a full parse', async () => {
        let spliced = 0;
        let total = 0;
        await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 6 }), async edits => {
            spliced += await check(generated, edits, 'gen');
            total += edits.length;
        }), { numRuns: 60 });
        // The splice is taken for a share of the edits (most random snippets are syntax errors: those fall back).
        expect(spliced).toBeGreaterThan(total / 10);
    }, 240_000);

    test('random edits of the examples concatenated equal a full parse', async () => {
        let spliced = 0;
        await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 6 }), async edits => {
            spliced += await check(examples, edits, 'ex');
        }), { numRuns: 40 });
        expect(spliced).toBeGreaterThan(0);
    }, 240_000);

    test('a typo in a deep block and its fix: spliced, then the same as a full parse', async () => {
        const text = twinFile(2100);
        const uri = 'file:///incremental/large.twin';
        const large = server(2000);
        await setText(large, uri, text);
        const at = text.indexOf('    seize Machine3', text.length / 2);
        const typo = text.slice(0, at) + '    seize Machine3x' + text.slice(at + '    seize Machine3'.length);
        const a = await setText(large, uri, typo);
        expect(large.factory.lastUpdate).toBe('incremental');
        const b = await setText(reference, uri, typo);
        expect(snapshot(large, a)).toEqual(snapshot(reference, b));
        expect((a.diagnostics ?? []).some(d => d.message.includes('Machine3x'))).toBe(true);
        const fixed = await setText(large, uri, text);
        expect(large.factory.lastUpdate).toBe('incremental');
        expect(fixed.diagnostics ?? []).toEqual([]);

        // After an edit that adds lines before them, references to a resource in a later block are found where they now are.
        const moved = text.slice(0, at) + '    delay 1 min\n    delay 2 min\n' + text.slice(at);
        const c = await setText(large, uri, moved);
        expect(large.factory.lastUpdate).toBe('incremental');
        const d = await setText(reference, uri, moved);
        const references = (s: ReturnType<typeof server>, doc: LangiumDocument): unknown[] => {
            const target = [...AstUtils.streamAst(doc.parseResult.value)].filter(n => n.$type === 'Resource' && (n as unknown as { name: string }).name === 'Machine9').pop()!;
            return s.services.twin.references.References.findReferences(target, { includeDeclaration: true })
                .map(r => [r.sourceUri.toString(), r.sourcePath, r.targetPath, r.segment.range, r.segment.offset]).toArray();
        };
        const found = references(large, c);
        expect(found.length).toBeGreaterThan(2);
        expect(found).toEqual(references(reference, d));
    }, 60_000);

    test('a parameter given a time unit: the kept experiment that sweeps it is checked again, kept twins keep their diagnostics', async () => {
        const text = twinFile(2100);
        const uri = 'file:///incremental/revalue.twin';
        const large = server(2000);
        await setText(large, uri, text);
        // The last twin's `machines0` becomes a time; its experiment (after it, kept by the splice) sweeps it over counts.
        const at = text.lastIndexOf('param machines0 = ');
        const lineEnd = text.indexOf('\n', at);
        const changed = text.slice(0, at) + 'param machines0 = 2 min' + text.slice(lineEnd);
        const a = await setText(large, uri, changed);
        expect(large.factory.lastUpdate).toBe('incremental');
        const experimentLine = changed.slice(0, changed.lastIndexOf('experiment ')).split('\n').length - 1;
        expect((a.diagnostics ?? []).some(d => d.range.start.line > experimentLine && d.message.includes('machines0'))).toBe(true);
        expect(snapshot(large, a)).toEqual(snapshot(reference, await setText(reference, uri, changed)));

        // Lines added in an earlier twin move the diagnostics of the twins and the experiment after it.
        const earlier = text.indexOf('  param machines0 = ');
        const moved = changed.slice(0, earlier) + '  param extra1 = 1\n  param extra2 = 2\n' + changed.slice(earlier);
        const b = await setText(large, uri, moved);
        expect(large.factory.lastUpdate).toBe('incremental');
        expect((b.diagnostics ?? []).length).toBeGreaterThan(0);
        expect(snapshot(large, b)).toEqual(snapshot(reference, await setText(reference, uri, moved)));
    }, 60_000);
});
