/**
 * What each file exports to the workspace index: its twins, experiments and agent
 * systems, and the members of each system (agents, channels, models, decisions,
 * swarms) so that a twin can populate itself with agents from an `.agent` file.
 * Twin members stay local: other files reach them through `observes` and `for`.
 */
import { AstUtils, DefaultScopeComputation, type AstNodeDescription, type LangiumDocument } from 'langium';
import type { CancellationToken } from 'vscode-languageserver';
import * as ast from '../generated/ast.js';

export class AiMatrixScopeComputation extends DefaultScopeComputation {
    override async collectExportedSymbols(document: LangiumDocument, _cancelToken?: CancellationToken): Promise<AstNodeDescription[]> {
        const exports: AstNodeDescription[] = [];
        for (const node of AstUtils.streamContents(document.parseResult.value)) {
            this.addExportedSymbol(node, exports, document);
            if (ast.isSystem(node)) {
                for (const member of node.members) this.addExportedSymbol(member, exports, document);
            }
        }
        return exports;
    }
}
