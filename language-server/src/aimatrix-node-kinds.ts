/**
 * Symbol and completion kinds of the declarations of both languages, used by the
 * outline, workspace symbols and completion.
 */
import type { AstNode, AstNodeDescription } from 'langium';
import { DefaultNodeKindProvider } from 'langium/lsp';
import { CompletionItemKind, SymbolKind } from 'vscode-languageserver';

const SYMBOL_KINDS: Record<string, SymbolKind> = {
    Twin: SymbolKind.Namespace, System: SymbolKind.Namespace, Experiment: SymbolKind.Class,
    Param: SymbolKind.Constant, Entity: SymbolKind.Class, Agent: SymbolKind.Class, Attribute: SymbolKind.Property,
    StateVar: SymbolKind.Property, Resource: SymbolKind.Object, Source: SymbolKind.Event, Process: SymbolKind.Function,
    Stock: SymbolKind.Variable, Flow: SymbolKind.Variable, Aux: SymbolKind.Variable, Kpi: SymbolKind.Variable,
    Population: SymbolKind.Array, Swarm: SymbolKind.Array, Channel: SymbolKind.Event, Field: SymbolKind.Field,
    Coordinator: SymbolKind.Object, Model: SymbolKind.Module, Decision: SymbolKind.Enum, Criterion: SymbolKind.EnumMember,
    DecisionOption: SymbolKind.EnumMember, LetStmt: SymbolKind.Variable, MessageParam: SymbolKind.Variable
};

const COMPLETION_KINDS: Record<string, CompletionItemKind> = {
    Twin: CompletionItemKind.Module, System: CompletionItemKind.Module, Experiment: CompletionItemKind.Class,
    Param: CompletionItemKind.Constant, Entity: CompletionItemKind.Class, Agent: CompletionItemKind.Class,
    Attribute: CompletionItemKind.Property, StateVar: CompletionItemKind.Property, Resource: CompletionItemKind.Variable,
    Source: CompletionItemKind.Event, Process: CompletionItemKind.Function, Stock: CompletionItemKind.Variable,
    Flow: CompletionItemKind.Variable, Aux: CompletionItemKind.Variable, Kpi: CompletionItemKind.Variable,
    Population: CompletionItemKind.Variable, Swarm: CompletionItemKind.Variable, Channel: CompletionItemKind.Event,
    Field: CompletionItemKind.Field, Coordinator: CompletionItemKind.Variable, Model: CompletionItemKind.Module,
    Decision: CompletionItemKind.Enum, Criterion: CompletionItemKind.EnumMember, DecisionOption: CompletionItemKind.EnumMember,
    LetStmt: CompletionItemKind.Variable, MessageParam: CompletionItemKind.Variable
};

function typeOf(node: AstNode | AstNodeDescription): string {
    return 'type' in node && typeof node.type === 'string' ? node.type : (node as AstNode).$type;
}

export class AiMatrixNodeKindProvider extends DefaultNodeKindProvider {
    override getSymbolKind(node: AstNode | AstNodeDescription): SymbolKind {
        return SYMBOL_KINDS[typeOf(node)] ?? super.getSymbolKind(node);
    }

    override getCompletionItemKind(node: AstNode | AstNodeDescription): CompletionItemKind {
        return COMPLETION_KINDS[typeOf(node)] ?? super.getCompletionItemKind(node);
    }
}
