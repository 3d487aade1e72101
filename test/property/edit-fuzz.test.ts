/**
 * Property: whatever random edits do to an example file, parsing, linking, validation
 * and every editor service answer without throwing. In-process, through the Langium
 * services the server uses, the way the server applies a didChange (text document set,
 * then `DocumentBuilder.update`). A failure inside a service that Langium swallows (it
 * logs with console.error and turns it into an "An error occurred…" diagnostic) counts
 * as a failure too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { DocumentState, EmptyFileSystem, type LangiumDocument } from 'langium';
import type { Diagnostic, Position, Range } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { URI } from 'vscode-uri';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { createAiMatrixServices, type AiMatrixLanguages } from '../../language-server/src/aimatrix-module.js';
import { ROOT } from '../support/build.js';
import { applyEdit, editArbitrary, grammarKeywords, positionAt, sourceFiles, type Edit } from './edits.js';

/** Edits in total over all example files (each run applies a sequence of edits, checking after each). */
const TOTAL_EDITS = 2000;
const MAX_EDITS_PER_RUN = 8;

const files = sourceFiles(path.join(ROOT, 'examples'));
let services: AiMatrixLanguages;
let consoleError: MockInstance<typeof console.error>;
let consoleWarn: MockInstance<typeof console.warn>;
const versions = new Map<string, number>();
const exercised = new Map<string, number>();

function languageId(uri: string): string {
    return uri.endsWith('.agent') ? 'agent' : 'twin';
}

/** What the server does on didOpen/didChange: new text in the text documents, then an update build. */
async function setText(uri: string, text: string): Promise<LangiumDocument> {
    const version = (versions.get(uri) ?? 0) + 1;
    versions.set(uri, version);
    services.shared.workspace.TextDocuments.set(TextDocument.create(uri, languageId(uri), version, text));
    await services.shared.workspace.DocumentBuilder.update([URI.parse(uri)], []);
    const document = services.shared.workspace.LangiumDocuments.getDocument(URI.parse(uri));
    expect(document).toBeDefined();
    return document!;
}

function count(service: string): void {
    exercised.set(service, (exercised.get(service) ?? 0) + 1);
}

/** Asks every editor service about the document; each must answer (any answer) without throwing. */
async function exerciseServices(document: LangiumDocument, offset: number): Promise<void> {
    const uri = document.uri.toString();
    const text = document.textDocument.getText();
    const lsp = (languageId(uri) === 'agent' ? services.agent : services.twin).lsp;
    const textDocument = { uri };
    const position: Position = positionAt(text, offset % (text.length + 1));
    const whole: Range = { start: { line: 0, character: 0 }, end: document.textDocument.positionAt(text.length) };
    const diagnostics: Diagnostic[] = document.diagnostics ?? [];

    if (lsp.CompletionProvider) { await lsp.CompletionProvider.getCompletion(document, { textDocument, position }); count('completion'); }
    if (lsp.HoverProvider) { await lsp.HoverProvider.getHoverContent(document, { textDocument, position }); count('hover'); }
    if (lsp.SignatureHelp) { await lsp.SignatureHelp.provideSignatureHelp(document, { textDocument, position }); count('signatureHelp'); }
    if (lsp.DefinitionProvider) { await lsp.DefinitionProvider.getDefinition(document, { textDocument, position }); count('definition'); }
    if (lsp.ReferencesProvider) { await lsp.ReferencesProvider.findReferences(document, { textDocument, position, context: { includeDeclaration: true } }); count('references'); }
    if (lsp.DocumentHighlightProvider) { await lsp.DocumentHighlightProvider.getDocumentHighlight(document, { textDocument, position }); count('documentHighlight'); }
    if (lsp.RenameProvider) {
        const range = await lsp.RenameProvider.prepareRename(document, { textDocument, position });
        if (range) await lsp.RenameProvider.rename(document, { textDocument, position, newName: 'renamed_1' });
        count('rename');
    }
    if (lsp.DocumentSymbolProvider) { await lsp.DocumentSymbolProvider.getSymbols(document, { textDocument }); count('documentSymbol'); }
    if (lsp.FoldingRangeProvider) { await lsp.FoldingRangeProvider.getFoldingRanges(document, { textDocument }); count('foldingRange'); }
    if (lsp.Formatter) { await lsp.Formatter.formatDocument(document, { textDocument, options: { tabSize: 2, insertSpaces: true } }); count('formatting'); }
    if (lsp.SemanticTokenProvider) { await lsp.SemanticTokenProvider.semanticHighlight(document, { textDocument }); count('semanticTokens'); }
    if (lsp.InlayHintProvider) { await lsp.InlayHintProvider.getInlayHints(document, { textDocument, range: whole }); count('inlayHint'); }
    if (lsp.CodeActionProvider) {
        // The quick fixes of each diagnostic (as an editor asks for them), and of all at once.
        for (const d of diagnostics.slice(0, 6)) {
            await lsp.CodeActionProvider.getCodeActions(document, { textDocument, range: d.range, context: { diagnostics: [d] } });
        }
        await lsp.CodeActionProvider.getCodeActions(document, { textDocument, range: whole, context: { diagnostics } });
        count('codeAction');
    }
    const workspaceSymbols = services.shared.lsp.WorkspaceSymbolProvider;
    if (workspaceSymbols) { await workspaceSymbols.getSymbols({ query: text.slice(offset % (text.length + 1)).match(/^\w{0,3}/)?.[0] ?? '' }); count('workspaceSymbol'); }
}

/** Langium catches exceptions of validators and linking, logs them and makes them diagnostics. */
function expectNoSwallowedError(document: LangiumDocument, edits: readonly Edit[]): void {
    const internal = (document.diagnostics ?? []).filter(d => /An error occurred/.test(d.message)).map(d => d.message);
    const logged = consoleError.mock.calls.map(args => args.map(a => a instanceof Error ? a.stack : String(a)).join(' '));
    if (internal.length > 0 || logged.length > 0) {
        throw new Error(`internal error after edits ${JSON.stringify(edits)}:\n${[...internal, ...logged].join('\n')}`);
    }
}

beforeAll(async () => {
    services = createAiMatrixServices(EmptyFileSystem);
    // Run every validation category on each update (the server's default runs only the fast ones).
    services.shared.workspace.DocumentBuilder.updateBuildOptions = { validation: true };
    consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    consoleWarn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    // The whole example workspace is open, so that imports between the files resolve.
    for (const file of files) {
        const uri = URI.file(file).toString();
        versions.set(uri, 1);
        services.shared.workspace.TextDocuments.set(TextDocument.create(uri, languageId(uri), 1, fs.readFileSync(file, 'utf8')));
    }
    await services.shared.workspace.DocumentBuilder.update(files.map(f => URI.file(f)), []);
});

afterAll(() => {
    consoleError.mockRestore();
    consoleWarn.mockRestore();
});

describe('random edits of the example files', () => {
    it('finds the example files', () => {
        expect(files.length).toBeGreaterThanOrEqual(1);
        expect(files.map(f => path.basename(f))).toContain('bank.twin');
    });

    const keywords = grammarKeywords(createAiMatrixServices(EmptyFileSystem).twin.Grammar);
    const runsPerFile = Math.max(10, Math.ceil(TOTAL_EDITS / Math.max(1, files.length) / ((1 + MAX_EDITS_PER_RUN) / 2)));

    for (const file of files) {
        const rel = path.relative(ROOT, file);
        it(`${rel}: parsing, linking, validation and the editor services never throw (${runsPerFile} runs of 1–${MAX_EDITS_PER_RUN} edits)`, async () => {
            const uri = URI.file(file).toString();
            const original = fs.readFileSync(file, 'utf8');
            let edits = 0;
            try {
                await fc.assert(fc.asyncProperty(
                    fc.array(fc.tuple(editArbitrary(keywords), fc.nat()), { minLength: 1, maxLength: MAX_EDITS_PER_RUN }),
                    async steps => {
                        let text = original;
                        const applied: Edit[] = [];
                        for (const [edit, offset] of steps) {
                            text = applyEdit(text, edit);
                            applied.push(edit);
                            edits++;
                            consoleError.mockClear();
                            const document = await setText(uri, text);
                            expect(document.state).toBeGreaterThanOrEqual(DocumentState.Validated);
                            expect(document.textDocument.getText()).toBe(text);
                            expectNoSwallowedError(document, applied);
                            await exerciseServices(document, offset);
                            expectNoSwallowedError(document, applied);
                        }
                    }
                ), { numRuns: runsPerFile, seed: 0x5eed + rel.length });
            } finally {
                // Put the file back for the next file's runs (imports between examples).
                await setText(uri, original);
            }
            expect(edits).toBeGreaterThanOrEqual(runsPerFile);
        }, 180_000);
    }

    it('exercised every editor service the issue asks for', () => {
        const expected = ['completion', 'hover', 'documentSymbol', 'formatting', 'foldingRange', 'semanticTokens', 'codeAction', 'inlayHint', 'signatureHelp', 'definition', 'references', 'rename'];
        expect(expected.filter(s => !exercised.has(s))).toEqual([]);
    });
});
