/**
 * AIMatrix Studio: the extension's entry point. Activation creates the context, which
 * owns everything else, starts the language server and registers the commands.
 */
import * as vscode from 'vscode';
import { COMMANDS } from './commands.js';
import { Ctx } from './ctx.js';

let ctx: Ctx | undefined;

/** What the extension exports: tests await this instead of sleeping. */
export interface AiMatrixApi {
    readonly ctx: Ctx;
}

export async function activate(context: vscode.ExtensionContext): Promise<AiMatrixApi> {
    ctx = new Ctx(context);
    for (const [id, factory] of Object.entries(COMMANDS)) {
        ctx.push(vscode.commands.registerCommand(id, factory(ctx)));
    }
    try {
        await ctx.startLanguageServer();
    } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        ctx.log.error(`the language server did not start: ${message}`);
        void vscode.window.showErrorMessage(`AIMatrix: the language server did not start: ${message}`);
    }
    return { ctx };
}

export async function deactivate(): Promise<void> {
    await ctx?.dispose();
    ctx = undefined;
}
