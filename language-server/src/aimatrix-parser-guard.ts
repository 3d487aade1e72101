/**
 * The parser must answer for any text. Langium's recursive-descent parser overflows the
 * stack on pathologically deep nesting (about 150 nested parentheses, thousands of
 * chained unary minuses). Before parsing, brackets nested deeper than MAX_NESTING are
 * replaced by a `0` and spaces (so every offset and line stays where it was and the
 * expression around them stays whole) and reported as syntax errors; if the parser still
 * overflows, the right-hand side of the longest line is replaced the same way, one line
 * at a time. The rest of the file parses, links and validates.
 */
import { createLangiumParser, type LangiumCoreServices, type LangiumParser, type ParseResult } from 'langium';
import type { IRecognitionException, IToken } from 'chevrotain';

export const MAX_NESTING = 64;
const MAX_RETRIES = 8;

interface Blanked {
    start: number;
    end: number;
    reason: string;
}

export function createGuardedParser(services: LangiumCoreServices): LangiumParser {
    const parser = createLangiumParser(services);
    // A parser that overflowed mid-parse keeps half-built state: retries use a fresh one.
    let current = parser;
    const originalParse = parser.parse;
    const parse = (text: string, options?: Parameters<LangiumParser['parse']>[1]) => originalParse.call(current, text, options);
    parser.parse = ((input: string, options?: Parameters<LangiumParser['parse']>[1]): ParseResult => {
        const blanked: Blanked[] = [];
        let text = blankDeepNesting(input, blanked);
        for (let attempt = 0; ; attempt++) {
            try {
                const result = parse(text, options);
                for (const b of blanked) result.parserErrors.push(syntaxError(input, b));
                return result;
            } catch (error) {
                current = createLangiumParser(services);
                if (!(error instanceof RangeError) || attempt >= MAX_RETRIES) throw error;
                const line = longestLine(text);
                if (!line) throw error;
                blanked.push({ ...line, reason: 'This line is nested too deeply to parse; split it into smaller expressions.' });
                // Keep `name =` and put a 0 where the expression was, so the declaration survives.
                const equals = text.indexOf('=', line.start);
                const from = equals >= 0 && equals < line.end - 2 ? equals + 2 : line.start;
                text = blank(text, from, line.end);
                if (from > line.start) text = text.slice(0, from) + '0' + text.slice(from + 1);
            }
        }
    }) as LangiumParser['parse'];
    return parser;
}

/** Blanks every bracketed region that opens deeper than MAX_NESTING (strings and comments are skipped). */
export function blankDeepNesting(text: string, blanked: Blanked[]): string {
    let depth = 0;
    let deepStart = -1;
    let chars: string[] | undefined;
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (c === '"') {
            i = skipString(text, i);
            continue;
        }
        if (c === '/' && text[i + 1] === '/') {
            while (i < text.length && text[i] !== '\n') i++;
            continue;
        }
        if (c === '/' && text[i + 1] === '*') {
            const end = text.indexOf('*/', i + 2);
            i = end < 0 ? text.length : end + 1;
            continue;
        }
        if (c === '(' || c === '[' || c === '{') {
            depth++;
            if (depth === MAX_NESTING + 1) deepStart = i;
        } else if (c === ')' || c === ']' || c === '}') {
            if (depth === MAX_NESTING + 1 && deepStart >= 0) {
                blanked.push({ start: deepStart, end: i + 1, reason: `Brackets are nested more than ${MAX_NESTING} levels deep; this part was not parsed.` });
                chars ??= [...text];
                for (let j = deepStart; j <= i; j++) if (chars[j] !== '\n' && chars[j] !== '\r') chars[j] = ' ';
                chars[deepStart] = '0';
                deepStart = -1;
            }
            depth = Math.max(0, depth - 1);
        }
    }
    if (deepStart >= 0) {
        blanked.push({ start: deepStart, end: text.length, reason: `Brackets are nested more than ${MAX_NESTING} levels deep and never closed; this part was not parsed.` });
        chars ??= [...text];
        for (let j = deepStart; j < chars.length; j++) if (chars[j] !== '\n' && chars[j] !== '\r') chars[j] = ' ';
    }
    return chars ? chars.join('') : text;
}

function skipString(text: string, start: number): number {
    for (let i = start + 1; i < text.length; i++) {
        if (text[i] === '\\') i++;
        else if (text[i] === '"' || text[i] === '\n') return i;
    }
    return text.length;
}

function longestLine(text: string): { start: number; end: number } | undefined {
    let best: { start: number; end: number } | undefined;
    let start = 0;
    for (let i = 0; i <= text.length; i++) {
        if (i === text.length || text[i] === '\n') {
            const trimmed = text.slice(start, i).trim();
            if (trimmed.length > 0 && (!best || i - start > best.end - best.start)) best = { start, end: i };
            start = i + 1;
        }
    }
    return best;
}

function blank(text: string, start: number, end: number): string {
    return text.slice(0, start) + text.slice(start, end).replace(/[^\r\n]/g, ' ') + text.slice(end);
}

/** A parser error in the shape Langium's document validator reads (chevrotain's, 1-based lines and columns). */
function syntaxError(text: string, b: Blanked): IRecognitionException {
    const startPos = position(text, b.start);
    const endPos = position(text, Math.max(b.start, b.end - 1));
    const token = {
        image: text.slice(b.start, b.end),
        startOffset: b.start,
        endOffset: b.end - 1,
        startLine: startPos.line,
        startColumn: startPos.column,
        endLine: endPos.line,
        endColumn: endPos.column,
        tokenTypeIdx: 0,
        tokenType: { name: 'TOO_DEEP' }
    } as unknown as IToken;
    return { name: 'NestingTooDeep', message: b.reason, token, resyncedTokens: [], context: { ruleStack: [], ruleOccurrenceStack: [] } };
}

function position(text: string, offset: number): { line: number; column: number } {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < offset && i < text.length; i++) {
        if (text[i] === '\n') {
            line++;
            lineStart = i + 1;
        }
    }
    return { line, column: offset - lineStart + 1 };
}
