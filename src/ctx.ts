/**
 * The one object that owns the extension's lifecycles: the log channel, the language
 * client and every disposable. Restart is stop (with a grace period), dispose, start.
 */
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, Trace, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { LANGUAGES } from '../protocol/index.js';
import { Config } from './config.js';

const STOP_GRACE_MS = 2000;

export class Ctx implements vscode.Disposable {
    readonly log: vscode.LogOutputChannel;
    readonly config = new Config();
    private client: LanguageClient | undefined;
    private readonly disposables: vscode.Disposable[] = [];

    constructor(readonly extension: vscode.ExtensionContext) {
        this.log = vscode.window.createOutputChannel('AIMatrix', { log: true });
        this.disposables.push(this.log);
        this.disposables.push(vscode.workspace.onDidChangeConfiguration(event => {
            const changed = this.config.restartNeeded(event);
            if (changed.length > 0) {
                this.log.info(`settings changed (${changed.join(', ')}): restarting the language server`);
                void this.restartLanguageServer();
            } else if (event.affectsConfiguration('aimatrix.languageServer.trace')) {
                void this.client?.setTrace(Trace.fromString(this.config.languageServerTrace));
            }
        }));
    }

    get languageClient(): LanguageClient | undefined {
        return this.client;
    }

    async startLanguageServer(): Promise<void> {
        if (this.client) return;
        const module = this.extension.asAbsolutePath('dist/language-server.cjs');
        const execArgv = this.config.languageServerNodeArgs;
        const serverOptions: ServerOptions = {
            run: { module, transport: TransportKind.ipc, options: { execArgv } },
            debug: { module, transport: TransportKind.ipc, options: { execArgv: [...execArgv, '--nolazy', '--inspect=6009'] } }
        };
        const clientOptions: LanguageClientOptions = {
            documentSelector: LANGUAGES.map(l => ({ scheme: 'file', language: l.id })),
            synchronize: {
                fileEvents: vscode.workspace.createFileSystemWatcher('**/*.{twin,agent,onnx}')
            },
            outputChannel: this.log
        };
        const client = new LanguageClient('aimatrix', 'AIMatrix Language Server', serverOptions, clientOptions);
        this.client = client;
        this.log.info(`starting the language server (${module})`);
        await client.start();
        await client.setTrace(Trace.fromString(this.config.languageServerTrace));
    }

    async stopLanguageServer(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        if (!client) return;
        try {
            await client.stop(STOP_GRACE_MS);
        } catch (error) {
            this.log.warn(`language server did not stop cleanly: ${error instanceof Error ? error.message : String(error)}`);
        }
        await client.dispose();
    }

    async restartLanguageServer(): Promise<void> {
        await this.stopLanguageServer();
        await this.startLanguageServer();
    }

    push(...disposables: vscode.Disposable[]): void {
        this.disposables.push(...disposables);
    }

    async dispose(): Promise<void> {
        await this.stopLanguageServer();
        for (const d of this.disposables.splice(0).reverse()) d.dispose();
    }
}
