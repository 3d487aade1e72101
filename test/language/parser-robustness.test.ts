/**
 * The parser answers for any text: pathological nesting becomes a located syntax error
 * and the rest of the file still parses, links and validates; syntax errors read in a
 * few words instead of listing every token sequence the parser could accept.
 */
import { describe, expect, it } from 'vitest';
import { MAX_NESTING } from '../../language-server/src/aimatrix-parser-guard.js';
import { validateFiles } from './helpers/validate.js';

function nested(depth: number): string {
    return '('.repeat(depth) + '1' + ')'.repeat(depth);
}

describe('deep nesting', () => {
    it('parses nesting up to the limit (the brace of the twin included) without a diagnostic', async () => {
        const v = await validateFiles({ 'a.twin': `twin A {\n  param x = ${nested(MAX_NESTING - 1)}\n}\n` });
        expect(v.codes('a.twin')).toEqual([]);
    });

    it('reports brackets nested past the limit at their position, and keeps the rest of the file', async () => {
        const text = `twin A {\n  param y = 2\n  param x = ${nested(1000)}\n  param z = y + q\n}\n`;
        const v = await validateFiles({ 'a.twin': text });
        const deep = v.diagnostics('a.twin').find(d => d.message.includes('nested more than'));
        expect(deep?.code).toBe('syntax-error');
        // The twin's brace is level 1: the parenthesis that opens level MAX_NESTING + 1 is the first one blanked.
        expect(deep?.range.start).toEqual({ line: 2, character: 12 + MAX_NESTING - 1 });
        // The line after the deep one was parsed and linked: its unknown name is reported.
        expect(v.withCode('unresolved-reference', 'a.twin').map(d => d.range.start.line)).toEqual([3]);
    });

    it('reports unclosed deep nesting instead of overflowing', async () => {
        const v = await validateFiles({ 'a.agent': `system S {\n  agent A {\n    state x = ${'('.repeat(5000)}\n  }\n}\n` });
        expect(v.diagnostics('a.agent').some(d => d.code === 'syntax-error' && d.message.includes('never closed'))).toBe(true);
    });

    it('blanks a line the parser cannot take (thousands of chained unary minuses) and goes on', async () => {
        const text = `twin A {\n  param x = ${'- '.repeat(5000)}1\n  param w = 1\n  param z = q\n}\n`;
        const v = await validateFiles({ 'a.twin': text });
        const line = v.diagnostics('a.twin').find(d => d.message.includes('nested too deeply'));
        expect(line?.range.start.line).toBe(1);
        expect(v.withCode('unresolved-reference', 'a.twin').map(d => d.range.start.line)).toEqual([3]);
    });

    it('leaves brackets inside strings and comments alone', async () => {
        const text = `twin A {\n  // ${'('.repeat(200)}\n  /* ${'['.repeat(200)} */\n  param s = "${'{'.repeat(200)}"\n}\n`;
        const v = await validateFiles({ 'a.twin': text });
        expect(v.codes('a.twin')).toEqual([]);
    });
});

describe('syntax error messages', () => {
    it('say what was expected in a few words', async () => {
        const text = 'twin A {\n  param x = \n  resource R capacity\n  process P for { }\n}\nexperiment E for A { horizon }\n';
        const v = await validateFiles({ 'a.twin': text });
        const messages = v.withCode('syntax-error', 'a.twin').map(d => d.message);
        expect(messages.length).toBeGreaterThan(0);
        for (const m of messages) {
            expect(m).not.toContain('possible Token sequences');
            expect(m.length).toBeLessThan(160);
        }
        expect(messages).toContain("Expected a name but found '{'.");
        expect(messages).toContain("Expected an expression but found '}'.");
    });
});
