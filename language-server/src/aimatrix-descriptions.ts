/**
 * Descriptions of named nodes (what scopes and the index hold) that compute their
 * document segments and their path only when asked. Langium computes the node's full
 * range (`selectionSegment`) and its path for every description it creates, and most
 * descriptions (every local name of every block, on every change) are never asked for
 * either: linking reads `node` and `name`.
 */
import {
    AstUtils, CstUtils, DefaultAstNodeDescriptionProvider, DefaultReferenceDescriptionProvider, UriUtils, interruptAndCheck,
    isMultiReference, isReference,
    type AstNode, type AstNodeDescription, type DocumentSegment, type LangiumDocument, type ReferenceDescription, type ReferenceInfo
} from 'langium';
import { CancellationToken } from 'vscode-languageserver';

export class AiMatrixAstNodeDescriptionProvider extends DefaultAstNodeDescriptionProvider {
    override createDescription(node: AstNode, name: string | undefined, document?: LangiumDocument): AstNodeDescription {
        const doc = document ?? AstUtils.getDocument(node);
        name ??= this.nameProvider.getName(node);
        if (!name) {
            throw new Error(`Node at path ${this.astNodeLocator.getAstNodePath(node)} has no name.`);
        }
        const locator = this.astNodeLocator;
        const nameProvider = this.nameProvider;
        let nameSegment: DocumentSegment | undefined;
        let selectionSegment: DocumentSegment | undefined;
        let path: string | undefined;
        return {
            node,
            name,
            get nameSegment() {
                return nameSegment ??= CstUtils.toDocumentSegment(nameProvider.getNameNode(node) ?? node.$cstNode);
            },
            get selectionSegment() {
                return selectionSegment ??= CstUtils.toDocumentSegment(node.$cstNode);
            },
            type: node.$type,
            documentUri: doc.uri,
            get path() {
                return path ??= locator.getAstNodePath(node);
            }
        };
    }
}

/**
 * Descriptions of references (the index behind find references, rename and document
 * highlight) that compute the source path, the target path and the segment when asked:
 * Langium computes all three for every reference of a document on every change, and they
 * are read only by those requests.
 */
export class AiMatrixReferenceDescriptionProvider extends DefaultReferenceDescriptionProvider {
    /**
     * The linker has already collected every reference of the document, in AST order:
     * read that list instead of walking every node of the syntax tree again. A reference's
     * container is the node its name belongs to.
     */
    override async createDescriptions(document: LangiumDocument, cancelToken = CancellationToken.None): Promise<ReferenceDescription[]> {
        const descriptions: ReferenceDescription[] = [];
        let n = 0;
        for (const reference of document.references) {
            if (++n % 1000 === 0) await interruptAndCheck(cancelToken);
            const container = reference.$refNode?.astNode;
            if (reference.error || !container) continue;
            descriptions.push(...this.createInfoDescriptions({ reference, container, property: '' }));
        }
        return descriptions;
    }

    protected override createInfoDescriptions(refInfo: ReferenceInfo): ReferenceDescription[] {
        const reference = refInfo.reference;
        if (reference.error || !reference.$refNode) return [];
        let items: AstNodeDescription[] = [];
        if (isReference(reference) && reference.$nodeDescription) {
            items = [reference.$nodeDescription];
        } else if (isMultiReference(reference)) {
            items = reference.items.map(e => e.$nodeDescription).filter((e): e is AstNodeDescription => e !== undefined);
        }
        if (items.length === 0) return [];
        const sourceUri = AstUtils.getDocument(refInfo.container).uri;
        const locator = this.nodeLocator;
        const refNode = reference.$refNode;
        let sourcePath: string | undefined;
        let segment: DocumentSegment | undefined;
        return items.map(item => {
            let targetPath: string | undefined;
            return {
                sourceUri,
                get sourcePath() {
                    return sourcePath ??= locator.getAstNodePath(refInfo.container);
                },
                targetUri: item.documentUri,
                get targetPath() {
                    return targetPath ??= item.path;
                },
                get segment() {
                    return segment ??= CstUtils.toDocumentSegment(refNode);
                },
                local: UriUtils.equals(item.documentUri, sourceUri)
            };
        });
    }
}
