/**
 * Syntax error messages a person can read. Chevrotain's defaults list every token
 * sequence the parser could accept (often sixty of them); these name what was expected
 * in a few words: "a name", "an expression", or a short list of keywords.
 */
import { GrammarAST, LangiumParserErrorMessageProvider, type LangiumCoreServices } from 'langium';
import type { IToken, TokenType } from 'chevrotain';

const MAX_LISTED = 8;

/** Tokens that can start an expression besides names: when all are expected, say "an expression". */
const EXPRESSION_STARTS = ['NUMBER', 'STRING', '(', '[', '-', 'not', 'true', 'false', 'infer', 'decide'];

export class AiMatrixParserErrorMessageProvider extends LangiumParserErrorMessageProvider {
    private readonly softKeywords: ReadonlySet<string>;

    constructor(services: LangiumCoreServices) {
        super();
        const nameRule = services.Grammar.rules.find(r => r.name === 'Name');
        const keywords = new Set<string>();
        if (nameRule && GrammarAST.isParserRule(nameRule)) {
            collectKeywords(nameRule.definition, keywords);
        }
        this.softKeywords = keywords;
    }

    override buildMismatchTokenMessage(options: { expected: TokenType; actual: IToken; previous: IToken; ruleName: string }): string {
        return `Expected ${this.describe([options.expected])} but found ${found(options.actual)}.`;
    }

    override buildNoViableAltMessage(options: { expectedPathsPerAlt: TokenType[][][]; actual: IToken[]; ruleName: string }): string {
        const first = options.expectedPathsPerAlt.flatMap(alt => alt.map(path => path[0])).filter((t): t is TokenType => t !== undefined);
        return `Expected ${this.describe(first)} but found ${found(options.actual[0])}.`;
    }

    override buildEarlyExitMessage(options: { expectedIterationPaths: TokenType[][]; actual: IToken[]; ruleName: string }): string {
        const first = options.expectedIterationPaths.map(path => path[0]).filter((t): t is TokenType => t !== undefined);
        return `Expected at least one ${this.describe(first)} but found ${found(options.actual[0])}.`;
    }

    override buildNotAllInputParsedMessage(options: { firstRedundant: IToken; ruleName: string }): string {
        return `Unexpected ${found(options.firstRedundant)}: expected the end of the file or a new declaration.`;
    }

    /** "a name", "an expression", "'param', 'resource' or '}'". */
    describe(tokens: readonly TokenType[]): string {
        const names = new Set(tokens.map(t => tokenName(t)));
        const parts: string[] = [];
        const hasName = names.has('ID');
        const isExpression = hasName && EXPRESSION_STARTS.every(t => names.has(t));
        if (isExpression) {
            parts.push('an expression');
            for (const t of EXPRESSION_STARTS) names.delete(t);
        }
        if (hasName) {
            if (!isExpression) parts.push('a name');
            names.delete('ID');
            for (const k of this.softKeywords) names.delete(k);
        }
        for (const n of names) {
            parts.push(n === 'NUMBER' ? 'a number' : n === 'STRING' ? 'a string' : `'${n}'`);
        }
        if (parts.length === 0) return 'something else';
        const listed = parts.length > MAX_LISTED ? [...parts.slice(0, MAX_LISTED), `${parts.length - MAX_LISTED} more`] : parts;
        return listed.length === 1 ? listed[0] : `${listed.slice(0, -1).join(', ')} or ${listed[listed.length - 1]}`;
    }
}

function tokenName(t: TokenType): string {
    return t.name.endsWith(':KW') ? t.name.slice(0, -3) : t.name;
}

function found(token: IToken | undefined): string {
    if (!token || token.tokenType?.name === 'EOF' || token.image === undefined || token.image === '') return 'the end of the file';
    const image = token.image.length > 30 ? token.image.slice(0, 30) + '…' : token.image;
    return `'${image}'`;
}

function collectKeywords(element: GrammarAST.AbstractElement | undefined, into: Set<string>): void {
    if (!element) return;
    if (GrammarAST.isKeyword(element)) into.add(element.value);
    else if (GrammarAST.isAlternatives(element) || GrammarAST.isGroup(element) || GrammarAST.isUnorderedGroup(element)) {
        for (const e of element.elements) collectKeywords(e, into);
    }
}
