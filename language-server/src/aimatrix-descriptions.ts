/**
 * Descriptions of named nodes (what scopes and the index hold) that compute their
 * document segments and their path only when asked. Langium computes the node's full
 * range (`selectionSegment`) and its path for every description it creates, and most
 * descriptions (every local name of every block, on every change) are never asked for
 * either: linking reads `node` and `name`.
 */
import { AstUtils, CstUtils, DefaultAstNodeDescriptionProvider, type AstNode, type AstNodeDescription, type DocumentSegment, type LangiumDocument } from 'langium';

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
