/**
 * The AIMatrix language server: both languages over LSP on stdio (or node IPC when
 * started by VS Code). Usable from any LSP editor: `node dist/language-server.cjs --stdio`.
 */
import { startLanguageServer } from 'langium/lsp';
import { NodeFileSystem } from 'langium/node';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node.js';
import { createAiMatrixServices } from './aimatrix-module.js';

const connection = createConnection(ProposedFeatures.all);

// A bug in a service must not take the editor's help away: report it and keep serving.
process.on('uncaughtException', error => {
    connection.console.error(`AIMatrix language server: uncaught exception: ${error.stack ?? String(error)}`);
});
process.on('unhandledRejection', reason => {
    connection.console.error(`AIMatrix language server: unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
});

const { shared } = createAiMatrixServices({ connection, ...NodeFileSystem });
// Validate every file of the workspace when it opens (Langium only parses and links them by
// default), so that the editor lists the same problems as `aimatrix check` before a file is opened.
shared.workspace.WorkspaceManager.initialBuildOptions = { validation: true };
startLanguageServer(shared);
