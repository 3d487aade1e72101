/**
 * The editor services (completion, hover, formatting, …) shared by both languages.
 * Each service lives in its own file; this list wires them into the module.
 */
import type { Module } from 'langium';
import type { LangiumSharedServices, PartialLangiumServices, PartialLangiumSharedServices } from 'langium/lsp';
import { AiMatrixCodeActionProvider } from './aimatrix-code-actions.js';
import { AiMatrixCompletionProvider } from './aimatrix-completion-provider.js';
import { AiMatrixFormatter } from './aimatrix-formatter.js';
import { AiMatrixHoverProvider } from './aimatrix-hover-provider.js';
import { AiMatrixInlayHintProvider } from './aimatrix-inlay-hints.js';
import type { AiMatrixServices } from './aimatrix-module.js';
import { AiMatrixNodeKindProvider } from './aimatrix-node-kinds.js';
import { AiMatrixSemanticTokenProvider } from './aimatrix-semantic-tokens.js';
import { AiMatrixSignatureHelpProvider } from './aimatrix-signature-help.js';
import { AiMatrixWorkspaceSymbolProvider } from './aimatrix-workspace-symbols.js';

/**
 * Per-language editor services. Definition, references, rename, document symbols,
 * folding and highlights are Langium's defaults, which follow our scoping.
 */
export function registerLspServices(): Module<AiMatrixServices, Pick<PartialLangiumServices, 'lsp'>> {
    return {
        lsp: {
            CompletionProvider: services => new AiMatrixCompletionProvider(services),
            HoverProvider: services => new AiMatrixHoverProvider(services),
            SignatureHelp: () => new AiMatrixSignatureHelpProvider(),
            Formatter: () => new AiMatrixFormatter(),
            CodeActionProvider: services => new AiMatrixCodeActionProvider(services),
            InlayHintProvider: () => new AiMatrixInlayHintProvider(),
            SemanticTokenProvider: services => new AiMatrixSemanticTokenProvider(services)
        }
    };
}

/** Services shared by both languages: workspace symbols (nested members included) and symbol kinds. */
export const AiMatrixSharedLspModule: Module<LangiumSharedServices, PartialLangiumSharedServices> = {
    lsp: {
        WorkspaceSymbolProvider: services => new AiMatrixWorkspaceSymbolProvider(services),
        NodeKindProvider: () => new AiMatrixNodeKindProvider()
    }
};

export type { AiMatrixServices };
