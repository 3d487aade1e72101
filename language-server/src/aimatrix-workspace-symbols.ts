/**
 * Workspace symbols of both languages: every named declaration of every file, nested
 * ones included (a twin's parameters and processes, a system's agents and models, an
 * entity's attributes), each with the name of what contains it.
 */
import { AstUtils, type AstNode, type LangiumDocuments, type NameProvider, type URI } from 'langium';
import { DefaultWorkspaceSymbolProvider, type LangiumSharedServices } from 'langium/lsp';
import { CancellationToken, type WorkspaceSymbol, type WorkspaceSymbolParams } from 'vscode-languageserver';

export class AiMatrixWorkspaceSymbolProvider extends DefaultWorkspaceSymbolProvider {

    protected readonly documents: LangiumDocuments;
    protected readonly services: LangiumSharedServices;

    constructor(services: LangiumSharedServices) {
        super(services);
        this.services = services;
        this.documents = services.workspace.LangiumDocuments;
    }

    override async getSymbols(params: WorkspaceSymbolParams, cancelToken = CancellationToken.None): Promise<WorkspaceSymbol[]> {
        const query = params.query.toLowerCase();
        const symbols: WorkspaceSymbol[] = [];
        for (const document of this.documents.all) {
            if (cancelToken.isCancellationRequested) break;
            const root = document.parseResult?.value;
            if (!root) continue;
            const nameProvider = this.nameProviderFor(document.uri);
            if (!nameProvider) continue;
            for (const node of AstUtils.streamAst(root)) {
                const name = nameProvider.getName(node);
                if (!name || !this.fuzzyMatcher.match(query, name)) continue;
                const nameNode = nameProvider.getNameNode(node);
                if (!nameNode) continue;
                symbols.push({
                    name,
                    kind: this.nodeKindProvider.getSymbolKind(node),
                    containerName: this.containerName(node, nameProvider),
                    location: { uri: document.uri.toString(), range: nameNode.range }
                });
            }
        }
        return symbols;
    }

    private nameProviderFor(uri: URI): NameProvider | undefined {
        try {
            return this.services.ServiceRegistry.getServices(uri).references.NameProvider;
        } catch {
            return undefined;
        }
    }

    private containerName(node: AstNode, nameProvider: NameProvider): string | undefined {
        let current = node.$container;
        while (current) {
            const name = nameProvider.getName(current);
            if (name) return name;
            current = current.$container;
        }
        return undefined;
    }
}
