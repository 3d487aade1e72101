/**
 * The cached scopes: the constant-time scope keeps `StreamScope`'s semantics, and the
 * caches follow edits (of the file itself and of the files it imports).
 */
import fc from 'fast-check';
import { AstUtils, EmptyFileSystem, StreamScope, URI, stream, type AstNodeDescription } from 'langium';
import { describe, expect, test } from 'vitest';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { createAiMatrixServices } from '../../language-server/src/aimatrix-module.js';
import { FirstWinsMapScope } from '../../language-server/src/aimatrix-scope-provider.js';

function description(name: string, i: number): AstNodeDescription {
    return { name, type: 'Param', documentUri: URI.parse('file:///x.twin'), path: `/${i}` };
}

describe('FirstWinsMapScope', () => {
    test('answers as a StreamScope over the same elements and outer scope', () => {
        const names = fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 8 });
        fc.assert(fc.property(names, names, fc.constantFrom('a', 'b', 'c', 'd', 'e'), (inner, outer, name) => {
            const innerD = inner.map(description);
            const outerD = outer.map((n, i) => description(n, 100 + i));
            const expected = new StreamScope(stream(innerD), new StreamScope(stream(outerD)));
            const actual = new FirstWinsMapScope(innerD, new FirstWinsMapScope(outerD));
            expect(actual.getElement(name)).toBe(expected.getElement(name));
            expect(actual.getElements(name).toArray()).toEqual(expected.getElements(name).toArray());
            expect(actual.getAllElements().toArray()).toEqual(expected.getAllElements().toArray());
        }));
    });
});

describe('scope caches follow edits', () => {
    const services = createAiMatrixServices(EmptyFileSystem);
    const shared = services.shared;
    let version = 0;

    /** Opens or changes a file the way the server does: the text in TextDocuments, then an update. */
    async function put(uri: string, text: string): Promise<void> {
        shared.workspace.TextDocuments!.set(TextDocument.create(uri, 'twin', ++version, text));
        await shared.workspace.DocumentBuilder.update([URI.parse(uri)], [], undefined);
        // Ask for every scope after the build (as completion and hover do), so that the caches are filled in between.
        for (const doc of shared.workspace.LangiumDocuments.all) {
            for (const node of AstUtils.streamAst(doc.parseResult.value)) {
                for (const ref of AstUtils.streamReferences(node)) {
                    services.twin.references.ScopeProvider.getScope(ref).getAllElements().toArray();
                }
            }
        }
    }

    function errors(uri: string): string {
        const doc = shared.workspace.LangiumDocuments.getDocument(URI.parse(uri));
        return (doc?.diagnostics ?? []).filter(d => d.severity === 1).map(d => d.message).join('\n');
    }

    test('names follow the imported file as it changes, and the file itself', async () => {
        const a = 'file:///scopes/a.twin';
        const b = 'file:///scopes/b.twin';
        await put(b, 'twin Base { param p = 1 }\n');
        await put(a, 'import "b.twin"\nexperiment E for Base { horizon 1 h  set p = 2 }\nexperiment F for Other { horizon 1 h }\n');
        expect(errors(a)).toMatch(/Other/);
        expect(errors(a)).not.toMatch(/Base|\bp\b/);

        // b.twin now also declares Other, and Base loses p.
        await put(b, 'twin Base { param q = 1 }\ntwin Other { }\n');
        expect(errors(a)).not.toMatch(/Other/);
        expect(errors(a)).toMatch(/\bp\b/);

        // a.twin itself: set q instead.
        await put(a, 'import "b.twin"\nexperiment E for Base { horizon 1 h  set q = 2 }\n');
        expect(errors(a)).toBe('');

        // A local name shadows the observed twin's member, which shadows nothing else.
        await put(b, 'twin Base { param q = 1 entity E { attr q = 2 } process P for E { assign q = 3 } }\n');
        const root = shared.workspace.LangiumDocuments.getDocument(URI.parse(b))!.parseResult.value;
        const assign = [...AstUtils.streamAst(root)].find(n => n.$type === 'AssignStep') as unknown as { target?: { ref?: { $type: string } } } | undefined;
        expect(errors(b)).toBe('');
        expect(assign?.target?.ref?.$type).toBe('Attribute');
    });
});
