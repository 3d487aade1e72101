/**
 * Completion for both languages. Langium proposes keywords and the names in scope;
 * this adds what the grammar cannot know: built-in functions and distributions as
 * snippets wherever an expression can start, the named arguments of a built-in
 * inside its call, and time units (with their meaning) after a number.
 */
import {
    AstUtils, EMPTY_STREAM, GrammarAST, type AstNodeDescription, type MaybePromise, type ReferenceInfo, type Stream
} from 'langium';
import {
    DefaultCompletionProvider, type CompletionAcceptor, type CompletionContext, type CompletionProviderOptions,
    type NextFeature
} from 'langium/lsp';
import { CompletionItemKind, InsertTextFormat } from 'vscode-languageserver';
import { BUILTINS, builtinSignatures, builtinSnippet, findBuiltin, type Builtin } from './builtins.js';
import { findCallContext } from './call-context.js';
import { keywordDoc } from './keyword-docs.js';
import { SECONDS_PER, TIME_UNIT_NAMES, TIME_UNITS, type TimeUnitName } from './units.js';

/** The grammar rule a grammar element belongs to. */
function ruleOf(element: GrammarAST.AbstractElement): string | undefined {
    return AstUtils.getContainerOfType(element, GrammarAST.isParserRule)?.name;
}

export class AiMatrixCompletionProvider extends DefaultCompletionProvider {

    override readonly completionOptions: CompletionProviderOptions = {
        triggerCharacters: ['(', ',']
    };

    protected override completionFor(context: CompletionContext, next: NextFeature, acceptor: CompletionAcceptor): MaybePromise<void> {
        const rule = ruleOf(next.feature);
        // A name is a data type rule: its completion features are the `ID` terminal (once)
        // and the keywords that may serve as names, tagged with the property being assigned.
        // The same `ID` feature serves every property, and Langium completes each feature
        // once per context, so look at all the properties a name may start here.
        if (GrammarAST.isRuleCall(next.feature) && rule === 'Name') {
            const properties = new Set(context.features.filter(f => f.feature === next.feature).map(f => f.property));
            if (properties.has('name')) this.completeArgumentNames(context, acceptor);
            if (properties.has('func')) this.completeBuiltins(context, acceptor);
            return;
        }
        if (GrammarAST.isKeyword(next.feature) && rule === 'TimeUnit') {
            this.completeUnit(context, next.feature.value as TimeUnitName, acceptor);
            return;
        }
        if (GrammarAST.isKeyword(next.feature) && next.feature.value === 'per' && rule === 'UnitSpec') {
            for (const unit of TIME_UNITS) {
                acceptor(context, {
                    label: `per ${unit}`,
                    kind: CompletionItemKind.Unit,
                    detail: `rate: a count per ${TIME_UNIT_NAMES[unit].replace(/s$/, '')}`,
                    sortText: `0u${SECONDS_PER[unit].toString().padStart(8, '0')}`
                });
            }
        }
        return super.completionFor(context, next, acceptor);
    }

    protected override getReferenceCandidates(refInfo: ReferenceInfo, context: CompletionContext): Stream<AstNodeDescription> {
        try {
            return super.getReferenceCandidates(refInfo, context);
        } catch {
            // A reference on a node the completion parser made up: nothing to propose.
            return EMPTY_STREAM;
        }
    }

    protected override filterKeyword(context: CompletionContext, keyword: GrammarAST.Keyword): boolean {
        // Words that are keywords only so that they can also serve as names (`min`, `count`)
        // are proposed where they are keywords, not wherever a name may be typed.
        return ruleOf(keyword) !== 'Name' && super.filterKeyword(context, keyword);
    }

    protected override completionForKeyword(context: CompletionContext, keyword: GrammarAST.Keyword, acceptor: CompletionAcceptor): MaybePromise<void> {
        if (!this.filterKeyword(context, keyword)) return;
        const doc = keywordDoc(keyword.value);
        acceptor(context, {
            label: keyword.value,
            kind: this.getKeywordCompletionItemKind(keyword),
            detail: 'Keyword',
            documentation: doc ? { kind: 'markdown', value: doc } : undefined,
            sortText: '1'
        });
    }

    private completeUnit(context: CompletionContext, unit: TimeUnitName, acceptor: CompletionAcceptor): void {
        if (!(unit in SECONDS_PER)) return;
        acceptor(context, {
            label: unit,
            kind: CompletionItemKind.Unit,
            detail: TIME_UNIT_NAMES[unit],
            documentation: keywordDoc(unit),
            // Shortest unit first: ms, s, min, h, d.
            sortText: `0${SECONDS_PER[unit].toString().padStart(8, '0')}`
        });
    }

    private completeBuiltins(context: CompletionContext, acceptor: CompletionAcceptor): void {
        for (const builtin of BUILTINS) {
            builtin.overloads.forEach((_params, overload) => {
                acceptor(context, {
                    label: builtin.name,
                    kind: CompletionItemKind.Function,
                    detail: builtinSignatures(builtin)[overload],
                    labelDetails: { description: builtin.category },
                    documentation: { kind: 'markdown', value: builtin.doc },
                    insertText: builtinSnippet(builtin, overload),
                    insertTextFormat: InsertTextFormat.Snippet,
                    filterText: builtin.name,
                    sortText: builtin.category === 'distribution' ? '0d' : '0f'
                });
            });
        }
    }

    private completeArgumentNames(context: CompletionContext, acceptor: CompletionAcceptor): void {
        const call = findCallContext(context.textDocument.getText(), context.tokenOffset);
        const builtin: Builtin | undefined = call ? findBuiltin(call.func) : undefined;
        if (!call || !builtin) return;
        const used = new Set(call.argNames.filter((n, i): n is string => n !== undefined && i !== call.argIndex));
        const seen = new Set<string>();
        for (const params of builtin.overloads) {
            if (![...used].every(n => params.some(p => p.name === n))) continue;
            params.forEach((param, i) => {
                if (used.has(param.name) || seen.has(param.name)) return;
                seen.add(param.name);
                acceptor(context, {
                    label: `${param.name}:`,
                    kind: CompletionItemKind.Property,
                    detail: `${builtin.name} parameter${param.optional ? ' (optional)' : ''}`,
                    documentation: param.doc,
                    insertText: `${param.name}: `,
                    filterText: param.name,
                    sortText: `00${i}`
                });
            });
        }
    }
}
