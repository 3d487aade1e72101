/**
 * The bundled language server over its real transport: `node dist/language-server.cjs
 * --stdio` with a real LSP client. initialize → initialized → didOpen → diagnostics →
 * completion → hover → didChange → diagnostics → shutdown → exit; then a few hundred
 * random edits, each followed by a request the server must answer.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { EmptyFileSystem } from 'langium';
import { URI } from 'vscode-uri';
import {
    CompletionRequest, DefinitionRequest, DocumentFormattingRequest, DocumentSymbolRequest, FoldingRangeRequest,
    HoverRequest, InlayHintRequest, SemanticTokensRequest, SignatureHelpRequest, CodeActionRequest,
    type CompletionItem, type CompletionList, type Hover, type InitializeResult, type Location, type LocationLink,
    type MarkupContent, type MarkedString, type ServerCapabilities
} from 'vscode-languageserver-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAiMatrixServices } from '../../language-server/src/aimatrix-module.js';
import { applyEdit, editArbitrary, grammarKeywords, positionAt, sourceFiles } from '../property/edits.js';
import { ensureBuilt, ROOT } from '../support/build.js';
import { LspTestClient } from './lsp-client.js';

const BANK = `// A bank branch: customers queue for tellers.
twin Bank {
  param tellers = 3
  param serviceMean = 2.7 min
  resource Teller capacity tellers
  entity Customer
  source Arrivals creates Customer every exponential(mean: 1 min) into Serve
  process Serve for Customer {
    seize Teller
    delay exponential(mean: serviceMean)
    release Teller
  }
  kpi busy = utilization(Teller)
}
`;

/** The same twin with a typo: `Cashier` names no resource. */
const BANK_WITH_ERROR = BANK.replace('seize Teller', 'seize Cashier');

const EXPERIMENTS = `import "bank.twin"

experiment Baseline for Bank {
  horizon 8 h
  replications 10
  seed 7
  sweep tellers in [3, 4]
}
`;

function offsetPosition(text: string, needle: string, delta = 0): { line: number; character: number } {
    const offset = text.indexOf(needle);
    expect(offset, `'${needle}' not in the text`).toBeGreaterThanOrEqual(0);
    return positionAt(text, offset + delta);
}

function hoverText(hover: Hover | null): string {
    if (!hover) return '';
    const part = (c: MarkupContent | MarkedString): string => typeof c === 'string' ? c : c.value;
    return Array.isArray(hover.contents) ? hover.contents.map(part).join('\n') : part(hover.contents as MarkupContent | MarkedString);
}

function labels(result: CompletionItem[] | CompletionList | null): string[] {
    if (!result) return [];
    return (Array.isArray(result) ? result : result.items).map(i => i.label);
}

/** Overall safety net for one wait; the waits themselves are event-driven. */
function within<T>(promise: Promise<T>, what: string, ms = 30_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms / 1000} s`)), ms); });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let tmp: string;

beforeAll(async () => {
    await ensureBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-lsp-'));
}, 120_000);

afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('language server over stdio', () => {
    let client: LspTestClient;
    let workspace: string;
    let bankUri: string;
    let experimentsUri: string;
    let init: InitializeResult;

    beforeAll(async () => {
        workspace = path.join(tmp, 'workspace');
        fs.mkdirSync(workspace);
        fs.writeFileSync(path.join(workspace, 'bank.twin'), BANK);
        fs.writeFileSync(path.join(workspace, 'experiments.twin'), EXPERIMENTS);
        bankUri = URI.file(path.join(workspace, 'bank.twin')).toString();
        experimentsUri = URI.file(path.join(workspace, 'experiments.twin')).toString();
        client = LspTestClient.start();
        // Both files on disk are indexed and validated when the workspace opens.
        const indexed = client.allDiagnostics([bankUri, experimentsUri]);
        init = await within(client.initialize([{ uri: URI.file(workspace).toString(), name: 'workspace' }]), 'initialize result');
        await within(indexed, 'diagnostics of the workspace files');
    });

    afterAll(() => client?.kill());

    it('advertises every editor feature of the issue', () => {
        const caps: ServerCapabilities = init.capabilities;
        const advertised = {
            completion: caps.completionProvider, hover: caps.hoverProvider, definition: caps.definitionProvider,
            references: caps.referencesProvider, rename: caps.renameProvider, formatting: caps.documentFormattingProvider,
            semanticTokens: caps.semanticTokensProvider, codeAction: caps.codeActionProvider, signatureHelp: caps.signatureHelpProvider,
            inlayHint: caps.inlayHintProvider, documentSymbol: caps.documentSymbolProvider, workspaceSymbol: caps.workspaceSymbolProvider,
            foldingRange: caps.foldingRangeProvider
        };
        const missing = Object.entries(advertised).filter(([, v]) => !v).map(([k]) => k);
        expect(missing).toEqual([]);
        expect(caps.textDocumentSync).toBeTruthy();
    });

    it('indexed the workspace files on disk: both clean, and the experiment links across files', async () => {
        expect(client.diagnostics.get(bankUri)).toEqual([]);
        expect(client.diagnostics.get(experimentsUri)).toEqual([]);
        const definition = await client.connection.sendRequest(DefinitionRequest.type, {
            textDocument: { uri: experimentsUri }, position: offsetPosition(EXPERIMENTS, 'Bank {', 1)
        }) as Location[] | LocationLink[] | null;
        const targets = (definition ?? []).map(d => 'targetUri' in d ? d.targetUri : d.uri);
        expect(targets).toEqual([bankUri]);
    });

    it('didOpen with an error → publishDiagnostics with our code at the right place', async () => {
        const published = client.nextDiagnostics(bankUri, p => p.diagnostics.length > 0);
        await client.open(bankUri, BANK_WITH_ERROR);
        const { diagnostics } = await within(published, 'diagnostics after didOpen');
        const unresolved = diagnostics.filter(d => d.code === 'unresolved-reference');
        expect(unresolved).toHaveLength(1);
        expect(unresolved[0].severity).toBe(1);
        expect(unresolved[0].range.start).toEqual(offsetPosition(BANK_WITH_ERROR, 'Cashier'));
        expect(unresolved[0].range.end).toEqual(offsetPosition(BANK_WITH_ERROR, 'Cashier', 'Cashier'.length));
        expect(unresolved[0].message).toContain('Cashier');
    });

    it('completion offers the resources in scope after `seize`, and keywords for a new member', async () => {
        const afterSeize = await client.connection.sendRequest(CompletionRequest.type, {
            textDocument: { uri: bankUri }, position: offsetPosition(BANK_WITH_ERROR, 'Cashier')
        });
        expect(labels(afterSeize)).toContain('Teller');
        expect(labels(afterSeize)).not.toContain('Customer');
        const memberStart = await client.connection.sendRequest(CompletionRequest.type, {
            textDocument: { uri: bankUri }, position: offsetPosition(BANK_WITH_ERROR, '  kpi busy', 2)
        });
        expect(labels(memberStart)).toEqual(expect.arrayContaining(['param', 'resource', 'process', 'stock', 'kpi']));
    });

    it('hover on a parameter shows its value with its unit; hover on a keyword documents it', async () => {
        const onParam = await client.connection.sendRequest(HoverRequest.type, {
            textDocument: { uri: bankUri }, position: offsetPosition(BANK_WITH_ERROR, 'serviceMean)', 3)
        });
        const text = hoverText(onParam);
        expect(text).toContain('serviceMean');
        expect(text).toMatch(/2\.7\s*min/);
        const onKeyword = await client.connection.sendRequest(HoverRequest.type, {
            textDocument: { uri: bankUri }, position: offsetPosition(BANK_WITH_ERROR, 'release', 2)
        });
        expect(hoverText(onKeyword).length).toBeGreaterThan(0);
    });

    it('didChange that fixes the error → the diagnostics become empty', async () => {
        const published = client.nextDiagnostics(bankUri);
        await client.change(bankUri, BANK);
        const { diagnostics } = await within(published, 'diagnostics after didChange');
        expect(diagnostics).toEqual([]);
    });

    it('the server logged no internal error', () => {
        expect(client.logs.filter(l => /error occurred|uncaught|unhandled/i.test(l))).toEqual([]);
    });

    it('shutdown → exit ends the process with status 0', async () => {
        const status = await within(client.shutdown(), 'exit after shutdown');
        expect(status).toEqual({ code: 0, signal: null });
    });
});

describe('language server over stdio: random edits', () => {
    let client: LspTestClient;
    let capabilities: ServerCapabilities;

    beforeAll(async () => {
        client = LspTestClient.start();
        capabilities = (await within(client.initialize([]), 'initialize result')).capabilities;
    });

    afterAll(() => client?.kill());

    it('answers every request after each of 200 random edits of the example files, and stays alive', async () => {
        const { twin } = createAiMatrixServices(EmptyFileSystem);
        const edits = fc.sample(editArbitrary(grammarKeywords(twin.Grammar)), { numRuns: 200, seed: 20240602 });
        const offsets = fc.sample(fc.nat(), { numRuns: 200, seed: 7 });
        const files = sourceFiles(path.join(ROOT, 'examples'));
        expect(files.length).toBeGreaterThan(0);

        // The request kinds this server advertises (a missing capability is reported by the test above).
        type Ask = (uri: string, position: { line: number; character: number }) => Promise<unknown>;
        const asks: Array<[string, Ask]> = [];
        const c = client.connection;
        if (capabilities.completionProvider) asks.push(['completion', (uri, position) => c.sendRequest(CompletionRequest.type, { textDocument: { uri }, position })]);
        if (capabilities.hoverProvider) asks.push(['hover', (uri, position) => c.sendRequest(HoverRequest.type, { textDocument: { uri }, position })]);
        if (capabilities.documentSymbolProvider) asks.push(['documentSymbol', uri => c.sendRequest(DocumentSymbolRequest.type, { textDocument: { uri } })]);
        if (capabilities.foldingRangeProvider) asks.push(['foldingRange', uri => c.sendRequest(FoldingRangeRequest.type, { textDocument: { uri } })]);
        if (capabilities.definitionProvider) asks.push(['definition', (uri, position) => c.sendRequest(DefinitionRequest.type, { textDocument: { uri }, position })]);
        if (capabilities.documentFormattingProvider) asks.push(['formatting', uri => c.sendRequest(DocumentFormattingRequest.type, { textDocument: { uri }, options: { tabSize: 2, insertSpaces: true } })]);
        if (capabilities.semanticTokensProvider) asks.push(['semanticTokens', uri => c.sendRequest(SemanticTokensRequest.type, { textDocument: { uri } })]);
        if (capabilities.signatureHelpProvider) asks.push(['signatureHelp', (uri, position) => c.sendRequest(SignatureHelpRequest.type, { textDocument: { uri }, position })]);
        if (capabilities.inlayHintProvider) asks.push(['inlayHint', (uri, position) => c.sendRequest(InlayHintRequest.type, { textDocument: { uri }, range: { start: { line: 0, character: 0 }, end: position } })]);
        if (capabilities.codeActionProvider) asks.push(['codeAction', (uri, position) => c.sendRequest(CodeActionRequest.type, {
            textDocument: { uri }, range: { start: position, end: position }, context: { diagnostics: client.diagnostics.get(uri) ?? [] }
        })]);
        expect(asks.length).toBeGreaterThanOrEqual(4);

        const texts = new Map<string, string>();
        for (const file of files) {
            const uri = URI.file(file).toString();
            const text = fs.readFileSync(file, 'utf8');
            texts.set(uri, text);
            const published = client.nextDiagnostics(uri);
            await client.open(uri, text);
            await within(published, `diagnostics of ${path.basename(file)}`);
        }
        const uris = [...texts.keys()];
        const failures: string[] = [];
        for (let i = 0; i < edits.length; i++) {
            const uri = uris[i % uris.length];
            const text = applyEdit(texts.get(uri)!, edits[i]);
            texts.set(uri, text);
            const published = client.nextDiagnostics(uri);
            await client.change(uri, text);
            const [name, ask] = asks[i % asks.length];
            try {
                await within(ask(uri, positionAt(text, offsets[i] % (text.length + 1))), `${name} answer`);
            } catch (error) {
                failures.push(`edit ${i} (${JSON.stringify(edits[i])}) → ${name}: ${error instanceof Error ? error.message : String(error)}`);
            }
            // Every edit is validated and published: the server is not wedged.
            await within(published, `diagnostics after edit ${i}`);
            expect(client.alive).toBe(true);
        }
        expect(failures).toEqual([]);
        expect(client.logs.filter(l => /error occurred|uncaught|unhandled/i.test(l))).toEqual([]);
        expect(await within(client.shutdown(), 'exit after shutdown')).toEqual({ code: 0, signal: null });
    }, 240_000);
});
