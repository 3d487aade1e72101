/**
 * Completion parses only the top-level element around the cursor. These tests hold it
 * to giving exactly what parsing the whole text before the cursor gives (the way
 * Langium does it), deep in a file of many twins, with and without a half-typed line.
 */
import { EmptyFileSystem, URI, type LangiumDocument } from 'langium';
import { describe, expect, test } from 'vitest';
import type { CompletionList } from 'vscode-languageserver';
import { twinFile } from '../../bench/generate.js';
import { createAiMatrixServices } from '../../language-server/src/aimatrix-module.js';
import { AiMatrixCompletionProvider } from '../../language-server/src/aimatrix-completion-provider.js';

const services = createAiMatrixServices(EmptyFileSystem);
const twin = services.twin;

/** The provider as Langium runs it: every context parsed from the start of the file. */
class WholeTextCompletionProvider extends AiMatrixCompletionProvider {
    protected override blockAt(): undefined {
        return undefined;
    }
}
const whole = new WholeTextCompletionProvider(twin);
const sliced = twin.lsp.CompletionProvider as AiMatrixCompletionProvider;

let counter = 0;
async function open(text: string): Promise<LangiumDocument> {
    const doc = services.shared.workspace.LangiumDocumentFactory.fromString(text, URI.parse(`file:///completion-blocks/${counter++}.twin`));
    services.shared.workspace.LangiumDocuments.addDocument(doc);
    await services.shared.workspace.DocumentBuilder.build([doc], { validation: false });
    return doc;
}

async function close(doc: LangiumDocument): Promise<void> {
    await services.shared.workspace.DocumentBuilder.update([], [doc.uri]);
}

function summary(list: CompletionList | undefined): string[] {
    return (list?.items ?? []).map(i => JSON.stringify([i.label, i.kind, i.detail, i.sortText, i.textEdit, i.insertText]));
}

async function complete(provider: AiMatrixCompletionProvider, doc: LangiumDocument, offset: number): Promise<string[]> {
    const position = doc.textDocument.positionAt(offset);
    return summary(await provider.getCompletion(doc, { textDocument: { uri: doc.uri.toString() }, position }));
}

/** Cursor offsets through `[from, to)`, every `every` characters (so at, inside and after words, and in spaces). */
function offsets(from: number, to: number, every: number): number[] {
    const out: number[] = [];
    for (let o = from; o < to; o += every) out.push(o);
    return out;
}

describe('completion parses only the enclosing block', () => {
    const text = twinFile(400, 2);
    const lastTwin = text.lastIndexOf('\ntwin ') + 1;

    test('the file has several blocks and the sliced path is taken deep in it', async () => {
        class Watching extends AiMatrixCompletionProvider {
            hits = 0;
            protected override blockAt(text: string, offset: number): ReturnType<AiMatrixCompletionProvider['blockAt']> {
                const at = super.blockAt(text, offset);
                if (at) this.hits++;
                return at;
            }
        }
        const watching = new Watching(twin);
        const doc = await open(text);
        expect((doc.parseResult.value as unknown as { elements: unknown[] }).elements.length).toBeGreaterThan(6);
        const at = text.indexOf('    seize Machine0', lastTwin);
        expect(at).toBeGreaterThan(lastTwin);
        await complete(watching, doc, at + 10);
        expect(watching.hits).toBeGreaterThan(0);
        await close(doc);
    });

    test('same items as parsing from the start of the file, at every 7th offset of the last twin', async () => {
        const doc = await open(text);
        const end = text.indexOf('\n}', lastTwin) + 2;
        for (const offset of offsets(lastTwin, end, 7)) {
            expect(await complete(sliced, doc, offset), `at offset ${offset}`).toEqual(await complete(whole, doc, offset));
        }
        await close(doc);
    }, 120_000);

    test('same items with a half-typed line deep in the file', async () => {
        const at = text.indexOf('    seize Machine0', lastTwin);
        expect(at).toBeGreaterThan(lastTwin);
        for (const typed of ['    seize ', '    delay exponential(', '    delay uniform(min: 1 ', '  param q = 3 ', '  process Z for ', '    rel']) {
            const edited = text.slice(0, at) + typed + '\n' + text.slice(at);
            const doc = await open(edited);
            for (const offset of [at + typed.length, at + typed.length - 1, at + 2]) {
                expect(await complete(sliced, doc, offset), `${JSON.stringify(typed)} at ${offset}`).toEqual(await complete(whole, doc, offset));
            }
            await close(doc);
        }
    }, 120_000);

    test('deep in a large file: the same items as in the block alone', async () => {
        const block = text.slice(lastTwin, text.indexOf('\n}', lastTwin) + 2);
        const big = await open(text);
        const alone = await open(block);
        const names = [...block.matchAll(/^ {4}seize (Machine\d+)$/gm)];
        expect(names.length).toBeGreaterThan(0);
        for (const m of names) {
            const inBlock = m.index + m[0].indexOf(m[1]);
            const items = await complete(sliced, big, lastTwin + inBlock);
            expect(items.some(i => i.startsWith(JSON.stringify([m[1]]).slice(0, -1)))).toBe(true);
            // The same items; only the lines of their edit ranges differ.
            const withoutLines = (list: string[]): string[] => list.map(i => i.replace(/"line":\d+/g, '"line":L'));
            expect(withoutLines(items)).toEqual(withoutLines(await complete(sliced, alone, inBlock)));
        }
        await close(big);
        await close(alone);
    });

    test('a syntax error before the block: falls back to the whole text, same items', async () => {
        const broken = text.replace('  param arrivalMean0', '  param = = arrivalMean0');
        const doc = await open(broken);
        expect(doc.parseResult.parserErrors.length).toBeGreaterThan(0);
        const at = broken.indexOf('    seize Machine0', broken.lastIndexOf('\ntwin ')) + 10;
        expect(at).toBeGreaterThan(broken.lastIndexOf('\ntwin '));
        expect(await complete(sliced, doc, at)).toEqual(await complete(whole, doc, at));
        await close(doc);
    });
});
