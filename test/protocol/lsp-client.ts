/**
 * A real LSP client for the bundled language server over stdio, for protocol tests and
 * the LSP benchmark: spawns `node dist/language-server.cjs --stdio` and speaks JSON-RPC
 * to it through `vscode-languageserver-protocol`. Waits are event-driven: a promise that
 * a `textDocument/publishDiagnostics` notification resolves.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';
import {
    createProtocolConnection, StreamMessageReader, StreamMessageWriter,
    ConfigurationRequest, ExitNotification, InitializedNotification, InitializeRequest,
    PublishDiagnosticsNotification, RegistrationRequest, ShutdownRequest, WorkDoneProgressCreateRequest,
    DidOpenTextDocumentNotification, DidChangeTextDocumentNotification, DidCloseTextDocumentNotification,
    LogMessageNotification,
    type ClientCapabilities, type Diagnostic, type InitializeResult, type ProtocolConnection,
    type PublishDiagnosticsParams, type Range, type WorkspaceFolder
} from 'vscode-languageserver-protocol/node.js';

export const SERVER_BUNDLE = path.resolve(__dirname, '..', '..', 'dist', 'language-server.cjs');

/** What a full-featured editor announces (the server enables features from these). */
export const CLIENT_CAPABILITIES: ClientCapabilities = {
    workspace: {
        workspaceFolders: true,
        symbol: { dynamicRegistration: false },
        applyEdit: true,
        workspaceEdit: { documentChanges: true }
    },
    textDocument: {
        synchronization: { didSave: true, dynamicRegistration: false },
        publishDiagnostics: { relatedInformation: true, versionSupport: true, codeDescriptionSupport: true, dataSupport: true },
        completion: { completionItem: { snippetSupport: true, documentationFormat: ['markdown', 'plaintext'], labelDetailsSupport: true } },
        hover: { contentFormat: ['markdown', 'plaintext'] },
        signatureHelp: { signatureInformation: { documentationFormat: ['markdown', 'plaintext'], parameterInformation: { labelOffsetSupport: true } } },
        definition: { linkSupport: true },
        references: {},
        rename: { prepareSupport: true },
        documentSymbol: { hierarchicalDocumentSymbolSupport: true },
        formatting: {},
        rangeFormatting: {},
        onTypeFormatting: {},
        foldingRange: { lineFoldingOnly: false },
        codeAction: { codeActionLiteralSupport: { codeActionKind: { valueSet: ['quickfix', 'refactor', 'source'] } }, isPreferredSupport: true, dataSupport: true },
        semanticTokens: {
            requests: { full: { delta: true }, range: true },
            tokenTypes: ['namespace', 'type', 'class', 'enum', 'interface', 'struct', 'typeParameter', 'parameter', 'variable', 'property',
                'enumMember', 'event', 'function', 'method', 'macro', 'keyword', 'modifier', 'comment', 'string', 'number', 'regexp', 'operator', 'decorator'],
            tokenModifiers: ['declaration', 'definition', 'readonly', 'static', 'deprecated', 'abstract', 'async', 'modification', 'documentation', 'defaultLibrary'],
            formats: ['relative']
        },
        inlayHint: {},
        codeLens: {}
    },
    window: { workDoneProgress: false }
};

type DiagnosticsWaiter = { uri: string; accept: (p: PublishDiagnosticsParams) => boolean; resolve: (p: PublishDiagnosticsParams) => void };

export class LspTestClient {
    readonly connection: ProtocolConnection;
    /** The last diagnostics published for each URI. */
    readonly diagnostics = new Map<string, Diagnostic[]>();
    /** Every publishDiagnostics notification received, in order. */
    readonly published: PublishDiagnosticsParams[] = [];
    private readonly waiters: DiagnosticsWaiter[] = [];
    /** Called on every publishDiagnostics (one JSON-RPC handler per method: a second one would replace the first); true removes it. */
    private readonly listeners: Array<(p: PublishDiagnosticsParams) => boolean> = [];
    private readonly versions = new Map<string, number>();
    private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    stderr = '';
    logs: string[] = [];

    private constructor(readonly child: ChildProcessWithoutNullStreams) {
        child.stderr.setEncoding('utf8').on('data', (s: string) => { this.stderr += s; });
        this.exited = new Promise(resolve => child.on('exit', (code, signal) => resolve({ code, signal })));
        this.connection = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
        this.connection.onNotification(PublishDiagnosticsNotification.type, params => {
            this.published.push(params);
            this.diagnostics.set(params.uri, params.diagnostics);
            for (let i = 0; i < this.waiters.length; i++) {
                const w = this.waiters[i];
                if (w.uri === params.uri && w.accept(params)) {
                    this.waiters.splice(i--, 1);
                    w.resolve(params);
                }
            }
            for (let i = 0; i < this.listeners.length; i++) {
                if (this.listeners[i](params)) this.listeners.splice(i--, 1);
            }
        });
        this.connection.onNotification(LogMessageNotification.type, params => { this.logs.push(params.message); });
        // Requests a server may send to its client: answer them as an editor would.
        this.connection.onRequest(ConfigurationRequest.type, params => params.items.map(() => null));
        this.connection.onRequest(RegistrationRequest.type, () => undefined);
        this.connection.onRequest(WorkDoneProgressCreateRequest.type, () => undefined);
        this.connection.listen();
    }

    /** Starts the bundled server (`node dist/language-server.cjs --stdio`). */
    static start(nodeArgs: string[] = []): LspTestClient {
        const child = spawn(process.execPath, [...nodeArgs, SERVER_BUNDLE, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
        return new LspTestClient(child);
    }

    /** initialize → initialized, with the given workspace folders. */
    async initialize(folders: WorkspaceFolder[]): Promise<InitializeResult> {
        const result = await this.connection.sendRequest(InitializeRequest.type, {
            processId: process.pid,
            rootUri: folders[0]?.uri ?? null,
            workspaceFolders: folders,
            capabilities: CLIENT_CAPABILITIES,
            clientInfo: { name: 'aimatrix-test-client' }
        });
        await this.connection.sendNotification(InitializedNotification.type, {});
        return result;
    }

    /**
     * The next diagnostics published for `uri` that `accept` accepts (by default, any).
     * Register the wait before the action that causes the diagnostics.
     */
    nextDiagnostics(uri: string, accept: (p: PublishDiagnosticsParams) => boolean = () => true): Promise<PublishDiagnosticsParams> {
        return new Promise(resolve => this.waiters.push({ uri, accept, resolve }));
    }

    /** Resolves once diagnostics have been published (at least once) for every URI given. */
    allDiagnostics(uris: Iterable<string>): Promise<void> {
        const missing = new Set([...uris].filter(u => !this.published.some(p => p.uri === u)));
        if (missing.size === 0) return Promise.resolve();
        return new Promise(resolve => {
            this.listeners.push(params => {
                missing.delete(params.uri);
                if (missing.size > 0) return false;
                resolve();
                return true;
            });
        });
    }

    async open(uri: string, text: string, languageId = uri.endsWith('.agent') ? 'agent' : 'twin'): Promise<void> {
        this.versions.set(uri, 1);
        await this.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId, version: 1, text } });
    }

    /** Replaces the whole text of an open document; returns the new version. */
    async change(uri: string, text: string): Promise<number> {
        const version = (this.versions.get(uri) ?? 1) + 1;
        this.versions.set(uri, version);
        await this.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version }, contentChanges: [{ text }] });
        return version;
    }

    /** An incremental change, as an editor sends a keystroke: `text` replaces `range`. Returns the new version. */
    async changeRange(uri: string, range: Range, text: string): Promise<number> {
        const version = (this.versions.get(uri) ?? 1) + 1;
        this.versions.set(uri, version);
        await this.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version }, contentChanges: [{ range, text }] });
        return version;
    }

    async close(uri: string): Promise<void> {
        await this.connection.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
    }

    /** shutdown → exit; resolves with the process's exit status. */
    async shutdown(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
        await this.connection.sendRequest(ShutdownRequest.type);
        await this.connection.sendNotification(ExitNotification.type);
        const status = await this.exited;
        this.connection.dispose();
        return status;
    }

    /** Whether the server process is still running. */
    get alive(): boolean {
        return this.child.exitCode === null && this.child.signalCode === null;
    }

    /** Ends the server if a test failed half-way. */
    kill(): void {
        if (this.alive) this.child.kill();
        this.connection.dispose();
    }
}
