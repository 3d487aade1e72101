/**
 * Semantic tokens: declarations and references coloured by what they name
 * (parameters, types for entities and agents, functions for built-ins, properties for
 * attributes and state, enum members for units), and keywords that are not names.
 */
import { AstUtils, CstUtils, GrammarAST, GrammarUtils, type AstNode } from 'langium';
import { AbstractSemanticTokenProvider, type SemanticTokenAcceptor } from 'langium/lsp';
import { SemanticTokenModifiers, SemanticTokenTypes } from 'vscode-languageserver';
import * as ast from '../generated/ast.js';
import { findBuiltin } from './builtins.js';

/** The token type of a declaration of the given AST type. */
export function tokenTypeOf(type: string): string {
    switch (type) {
        case 'Param': return SemanticTokenTypes.parameter;
        case 'Entity': case 'Agent': return SemanticTokenTypes.type;
        case 'Twin': case 'System': return SemanticTokenTypes.namespace;
        case 'Experiment': case 'Model': return SemanticTokenTypes.class;
        case 'Attribute': case 'StateVar': case 'Field': return SemanticTokenTypes.property;
        case 'Process': return SemanticTokenTypes.method;
        case 'Source': case 'Channel': return SemanticTokenTypes.event;
        case 'Decision': return SemanticTokenTypes.enum;
        case 'DecisionOption': case 'Criterion': return SemanticTokenTypes.enumMember;
        case 'Resource': case 'Population': case 'Swarm': case 'Coordinator': return SemanticTokenTypes.variable;
        case 'Stock': case 'Flow': case 'Aux': case 'Kpi': case 'LetStmt': case 'MessageParam': return SemanticTokenTypes.variable;
        default: return SemanticTokenTypes.variable;
    }
}

const NAMED = new Set(['Param', 'Entity', 'Agent', 'Twin', 'System', 'Experiment', 'Model', 'Attribute', 'StateVar', 'Field',
    'Process', 'Source', 'Channel', 'Decision', 'DecisionOption', 'Criterion', 'Resource', 'Population', 'Swarm', 'Coordinator',
    'Stock', 'Flow', 'Aux', 'Kpi', 'LetStmt', 'MessageParam']);

export class AiMatrixSemanticTokenProvider extends AbstractSemanticTokenProvider {

    protected highlightElement(node: AstNode, acceptor: SemanticTokenAcceptor): void {
        try {
            this.highlight(node, acceptor);
        } catch {
            // nothing to colour on a half-built node
        }
    }

    private highlight(node: AstNode, acceptor: SemanticTokenAcceptor): void {
        if (!node.$container) this.highlightLeaves(node, acceptor);
        if (NAMED.has(node.$type)) {
            const nameNode = GrammarUtils.findNodeForProperty(node.$cstNode, 'name');
            if (nameNode) acceptor({ cst: nameNode, type: tokenTypeOf(node.$type), modifier: SemanticTokenModifiers.declaration });
        }
        if (ast.isCallExpr(node) && findBuiltin(node.func)) {
            const func = GrammarUtils.findNodeForProperty(node.$cstNode, 'func');
            if (func) acceptor({ cst: func, type: SemanticTokenTypes.function, modifier: SemanticTokenModifiers.defaultLibrary });
        }
        if (ast.isArgument(node) && node.name !== undefined) {
            const name = GrammarUtils.findNodeForProperty(node.$cstNode, 'name');
            if (name) acceptor({ cst: name, type: SemanticTokenTypes.parameter });
        }
        for (const reference of AstUtils.streamReferences(node)) {
            const ref = reference.reference;
            const refNode = ref.$refNode;
            const target = 'ref' in ref ? ref.ref : undefined;
            if (refNode && target) acceptor({ cst: refNode, type: tokenTypeOf(target.$type) });
        }
    }

    /** Units, keywords, numbers and strings: one pass over the leaves of the file. */
    private highlightLeaves(root: AstNode, acceptor: SemanticTokenAcceptor): void {
        if (!root.$cstNode) return;
        for (const leaf of CstUtils.flattenCst(root.$cstNode)) {
            if (leaf.hidden) continue;
            const source = leaf.grammarSource;
            if (GrammarAST.isKeyword(source)) {
                const rule = AstUtils.getContainerOfType(source, GrammarAST.isParserRule)?.name;
                if (rule === 'Name') continue; // a word used as a name: coloured as what it names
                if (rule === 'TimeUnit') acceptor({ cst: leaf, type: SemanticTokenTypes.enumMember });
                else if (/^[a-z]/.test(source.value)) acceptor({ cst: leaf, type: SemanticTokenTypes.keyword });
            } else if (leaf.tokenType.name === 'NUMBER') {
                acceptor({ cst: leaf, type: SemanticTokenTypes.number });
            } else if (leaf.tokenType.name === 'STRING') {
                acceptor({ cst: leaf, type: SemanticTokenTypes.string });
            }
        }
    }
}
