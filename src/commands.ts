/**
 * Commands are small factories over the context.
 */
import * as vscode from 'vscode';
import type { Ctx } from './ctx.js';

export type CommandFactory = (ctx: Ctx) => (...args: unknown[]) => unknown;

export const restartLanguageServer: CommandFactory = ctx => async () => {
    await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: 'AIMatrix: restarting the language server' },
        () => ctx.restartLanguageServer()
    );
};

export const COMMANDS: Record<string, CommandFactory> = {
    'aimatrix.restartLanguageServer': restartLanguageServer
};
