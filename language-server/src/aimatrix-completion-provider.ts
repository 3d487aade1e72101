/**
 * Completion for both languages. Langium proposes keywords and the names in scope;
 * this adds what the grammar cannot know: built-in functions and distributions as
 * snippets wherever an expression can start, the named arguments of a built-in
 * inside its call, and time units (with their meaning) after a number.
 */
import {
    AstUtils, CstUtils, EMPTY_STREAM, GrammarAST, isRootCstNode, type AstNodeDescription, type LangiumDocument, type MaybePromise,
    type ReferenceInfo, type Stream
} from 'langium';
import {
    DefaultCompletionProvider, type CompletionAcceptor, type CompletionContext, type CompletionProviderOptions,
    type LangiumServices, type NextFeature
} from 'langium/lsp';
import { CompletionItemKind, InsertTextFormat, type Position } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { BUILTINS, builtinSignatures, builtinSnippet, findBuiltin, type Builtin } from './builtins.js';
import { findCallContext } from './call-context.js';
import { keywordDoc } from './keyword-docs.js';
import { SECONDS_PER, TIME_UNIT_NAMES, TIME_UNITS, type TimeUnitName } from './units.js';

/** The grammar rule a grammar element belongs to. */
function ruleOf(element: GrammarAST.AbstractElement): string | undefined {
    return AstUtils.getContainerOfType(element, GrammarAST.isParserRule)?.name;
}

/** Where a top-level element (twin, experiment, system) starts and ends, and where its first token ends. */
interface Block { start: number; firstTokenEnd: number; end: number }

/**
 * The top-level elements of a document whose text is `text`, when they can stand in for
 * the whole text before them: the document was parsed from exactly this text and has no
 * syntax error before the element. Imports are left out (what may follow an import
 * differs from what may follow a twin).
 */
function blocksOf(document: LangiumDocument, text: string): Block[] {
    const root = document.parseResult.value;
    const cst = root.$cstNode;
    if (!cst || !isRootCstNode(cst) || cst.fullText !== text) return [];
    let firstError = Infinity;
    for (const e of document.parseResult.lexerErrors) firstError = Math.min(firstError, e.offset);
    for (const e of document.parseResult.parserErrors) {
        if (Number.isFinite(e.token.startOffset)) firstError = Math.min(firstError, e.token.startOffset);
    }
    const blocks: Block[] = [];
    for (const child of AstUtils.streamContents(root)) {
        const cst = child.$cstNode;
        if (!cst || child.$containerProperty === 'imports' || cst.offset >= firstError) continue;
        const first = CstUtils.flattenCst(cst).find(leaf => !leaf.hidden);
        if (first) blocks.push({ start: cst.offset, firstTokenEnd: first.end, end: cst.end });
    }
    return blocks;
}


export class AiMatrixCompletionProvider extends DefaultCompletionProvider {

    override readonly completionOptions: CompletionProviderOptions = {
        triggerCharacters: ['(', ',']
    };

    /** The blocks of the documents whose completion contexts are being built, by their text. */
    private readonly building = new Map<string, { blocks: Block[]; users: number }>();

    constructor(services: LangiumServices) {
        super(services);
    }

    /**
     * Langium re-parses (and re-lexes) the text from the start of the file to the cursor
     * for every completion context. Each top-level element is a valid file on its own and
     * the parser is in the same state at the start of each one, so, when nothing before
     * the element failed to parse, parsing from the start of the element that encloses
     * the cursor yields the same features at a cost that does not grow with the file.
     */
    protected override *buildContexts(document: LangiumDocument, position: Position): IterableIterator<CompletionContext> {
        const text = document.textDocument.getText();
        const entry = this.building.get(text) ?? { blocks: blocksOf(document, text), users: 0 };
        entry.users++;
        this.building.set(text, entry);
        try {
            yield* super.buildContexts(document, position);
        } finally {
            if (--entry.users === 0) this.building.delete(text);
        }
    }

    /** The block that can stand in for the text before `offset`: it starts, and its first token ends, at or before it. */
    protected blockAt(text: string, offset: number): { block: Block; next?: Block } | undefined {
        const blocks = this.building.get(text)?.blocks ?? [];
        let lo = 0;
        let hi = blocks.length - 1;
        let found = -1;
        while (lo <= hi) {
            const mid = (lo + hi) >> 1;
            if (blocks[mid].start <= offset) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        if (found < 0 || blocks[found].firstTokenEnd > offset) return undefined;
        return { block: blocks[found], next: blocks[found + 1] };
    }

    protected override findFeaturesAt(document: TextDocument, offset: number): NextFeature[] {
        const text = document.getText();
        const at = this.blockAt(text, offset);
        if (!at) return super.findFeaturesAt(document, offset);
        const start = at.block.start;
        // Only `getText` is read; positions are those of the slice.
        const slice = text.substring(start, offset);
        const sliced: Pick<TextDocument, 'getText' | 'positionAt'> = {
            getText: () => slice,
            positionAt: (o: number) => document.positionAt(o + start)
        };
        return super.findFeaturesAt(sliced as TextDocument, offset - start);
    }

    protected override backtrackToAnyToken(text: string, offset: number): ReturnType<DefaultCompletionProvider['backtrackToAnyToken']> {
        const at = this.blockAt(text, offset);
        if (!at) return super.backtrackToAnyToken(text, offset);
        // Lex from the block to the end of the next one (or of the file): token boundaries there are those of the whole text.
        const start = at.block.start;
        const end = at.next ? at.next.end : text.length;
        const r = super.backtrackToAnyToken(text.substring(start, end), offset - start);
        const shift = (o: number | undefined): number | undefined => o === undefined ? undefined : o + start;
        return {
            nextTokenStart: r.nextTokenStart + start,
            nextTokenEnd: r.nextTokenEnd + start,
            previousTokenStart: shift(r.previousTokenStart),
            previousTokenEnd: shift(r.previousTokenEnd)
        };
    }

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
