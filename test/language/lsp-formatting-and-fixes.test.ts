/**
 * Formatting (layout rules and idempotence on every example file) and quick fixes
 * (diagnostics made by hand, so the tests do not depend on the validator, and one
 * end to end through validation).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EmptyFileSystem, URI, type LangiumDocument } from 'langium';
import { expectFormatting, parseHelper } from 'langium/test';
import { describe, expect, test } from 'vitest';
import { DiagnosticSeverity, type CodeAction, type Diagnostic, type Range } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { createAiMatrixServices } from '../../language-server/src/aimatrix-module.js';
import { IssueCodes, type IssueData } from '../../language-server/src/issue-codes.js';

const services = createAiMatrixServices(EmptyFileSystem);
const twin = services.twin;

async function format(text: string, uri?: string): Promise<string> {
    const language = uri?.endsWith('.agent') ? services.agent : twin;
    const document = await parseHelper(language)(text, uri ? { documentUri: uri } : undefined);
    const edits = await language.lsp.Formatter!.formatDocument(document, { textDocument: { uri: document.uri.toString() }, options: { tabSize: 4, insertSpaces: true } });
    return TextDocument.applyEdits(document.textDocument, edits);
}

describe('formatting', () => {
    test('one member per line, two-space indentation, spaces around operators and after commas', async () => {
        await expectFormatting(twin)({
            before: 'twin   T{param x=-3*(2+1)\n\n\n\n  param y = max( x ,  2 )   // trailing\n entity E { attr a=1 } process P for E { seize R delay exponential( mean:3 min ) release R }\n resource R capacity 2 kpi k = mean(waitTime(P)) in min\n}\nexperiment X for T { horizon 8 h warmup 1 h sweep x in [1,2]\n}',
            after: `twin T {
  param x = -3 * (2 + 1)

  param y = max(x, 2) // trailing
  entity E {
    attr a = 1
  }
  process P for E {
    seize R
    delay exponential(mean: 3 min)
    release R
  }
  resource R capacity 2
  kpi k = mean(waitTime(P)) in min
}
experiment X for T {
  horizon 8 h
  warmup 1 h
  sweep x in [1, 2]
}
`,
            disposeAfterCheck: true
        });
    });

    test('agent language: inline braces stay inline, blocks nest', async () => {
        const before = 'system S {\nchannel Alert {level:int,reason:string}\nagent A { state n=0 every 1 s { set n+=1 if n>3 { send Alert { level: n , reason: "x" } } } }\n model M { file "m.onnx" input x:float32[1,4] providers cuda,cpu }\n}';
        expect(await format(before, 'file:///fmt/a.agent')).toBe(`system S {
  channel Alert { level: int, reason: string }
  agent A {
    state n = 0
    every 1 s {
      set n += 1
      if n > 3 {
        send Alert { level: n, reason: "x" }
      }
    }
  }
  model M {
    file "m.onnx"
    input x: float32[1, 4]
    providers cuda, cpu
  }
}
`);
    });

    test('comments keep their place; blank lines are kept, at most one', async () => {
        const before = '// head\n\n\n\ntwin T {\n  // about x\n  param x = 1 // one\n\n\n  /* block */\n  param y = 2\n}\n';
        expect(await format(before)).toBe('// head\n\ntwin T {\n  // about x\n  param x = 1 // one\n\n  /* block */\n  param y = 2\n}\n');
    });

    test('a file with syntax errors is left alone', async () => {
        expect(await format('twin T {  param x = = 3 }')).toBe('twin T {  param x = = 3 }');
    });

    test('idempotent on every example file', async () => {
        const files: string[] = [];
        const walk = (dir: string) => {
            for (const name of readdirSync(dir)) {
                const path = join(dir, name);
                if (statSync(path).isDirectory()) walk(path);
                else if (/\.(twin|agent)$/.test(name)) files.push(path);
            }
        };
        walk('examples');
        expect(files.length).toBeGreaterThan(0);
        for (const file of files) {
            const uri = `file:///fmt/${file.replace(/[\\/]/g, '_')}`;
            const once = await format(readFileSync(file, 'utf8'), uri);
            const twice = await format(once, uri.replace('/fmt/', '/fmt2/'));
            expect(twice, file).toBe(once);
            // formatting keeps every token: only whitespace changes
            expect(once.replace(/\s+/g, ''), file).toBe(readFileSync(file, 'utf8').replace(/\s+/g, ''));
        }
    });

    test('idempotent on the strings of these tests', async () => {
        for (const text of ['twin   T{param x=-3*(2+1)\n  param y = max( x ,  2 )   // c\n}', 'twin T { stock s = 1 flow f from s rate s/2 integrate rk4 step 0.1 d }']) {
            const once = await format(text);
            expect(await format(once)).toBe(once);
        }
    });
});

/** Applies the edits of a code action to its document. */
function applyAction(document: LangiumDocument, action: CodeAction | undefined): string {
    const edits = action?.edit?.changes?.[document.uri.toString()] ?? [];
    return TextDocument.applyEdits(document.textDocument, edits);
}

function rangeOf(document: LangiumDocument, needle: string, occurrence = 0): Range {
    let offset = -1;
    for (let i = 0; i <= occurrence; i++) offset = document.textDocument.getText().indexOf(needle, offset + 1);
    expect(offset).toBeGreaterThanOrEqual(0);
    return { start: document.textDocument.positionAt(offset), end: document.textDocument.positionAt(offset + needle.length) };
}

async function fixes(text: string, needle: string, code: string, data: Partial<IssueData> = {}, occurrence = 0, uri?: string) {
    const document = await parseHelper(twin)(text, uri ? { documentUri: uri } : undefined);
    const diagnostic: Diagnostic = { range: rangeOf(document, needle, occurrence), message: 'test', severity: DiagnosticSeverity.Error, code, data: { code, ...data } };
    const actions = (await twin.lsp.CodeActionProvider!.getCodeActions(document, {
        textDocument: { uri: document.uri.toString() }, range: diagnostic.range, context: { diagnostics: [diagnostic] }
    }) ?? []) as CodeAction[];
    return { document, actions, apply: (i = 0) => applyAction(document, actions[i]) };
}

describe('quick fixes', () => {
    test('unresolved reference: did you mean, from the data', async () => {
        const { actions, apply } = await fixes('twin T { param tellers = 3  resource R capacity tellrs }', 'tellrs', IssueCodes.UnresolvedReference, { suggestion: 'tellers' });
        expect(actions[0].title).toBe("Did you mean 'tellers'?");
        expect(actions[0].isPreferred).toBe(true);
        expect(apply()).toBe('twin T { param tellers = 3  resource R capacity tellers }');
    });

    test('unresolved reference: the nearest name in scope when the data has none', async () => {
        const { apply } = await fixes('twin T { param serviceMean = 3 min  entity E  process P for E { delay serviceMaen } }', 'serviceMaen', IssueCodes.UnresolvedReference);
        expect(apply()).toBe('twin T { param serviceMean = 3 min  entity E  process P for E { delay serviceMean } }');
    });

    test('unresolved reference: add the import of the file that declares it', async () => {
        const { actions, apply } = await fixes('twin T { param x = 1 }', 'x', IssueCodes.UnresolvedReference, { importPath: 'other.twin', suggestion: 'x' });
        expect(actions.map(a => a.title)).toEqual(['Add import "other.twin"']);
        expect(apply()).toBe('import "other.twin"\n\ntwin T { param x = 1 }');
        const after = await fixes('import "a.twin"\ntwin T { param x = 1 }', 'x', IssueCodes.UnresolvedReference, { importPath: 'b.twin', suggestion: 'x' });
        expect(after.apply()).toBe('import "a.twin"\nimport "b.twin"\ntwin T { param x = 1 }');
    });

    test('unresolved reference far from any name: no fix', async () => {
        const { actions } = await fixes('twin T { param x = 1  param y = qqqqqqqq }', 'qqqqqqqq', IssueCodes.UnresolvedReference);
        expect(actions).toEqual([]);
    });

    test('expected time: add each time unit, the suggested one first', async () => {
        const { actions, apply } = await fixes('twin T { entity E  process P for E { delay 3 } }', '3', IssueCodes.ExpectedTime);
        expect(actions.map(a => a.title)).toEqual(["Add unit 'min'", "Add unit 'ms'", "Add unit 's'", "Add unit 'h'", "Add unit 'd'"]);
        expect(apply()).toBe('twin T { entity E  process P for E { delay 3 min } }');
        const whole = await fixes('twin T { entity E  process P for E { delay 3 } }', '3', IssueCodes.ExpectedTime, { suggestion: '3 h' });
        expect(whole.actions[0].title).toBe("Add unit 'h'");
        const rate = await fixes('twin T { param r = 3 }', '3', IssueCodes.UnitMismatch, { suggestion: 'per h' });
        expect(rate.actions[0].title).toBe("Add unit 'per h'");
        expect(rate.apply()).toBe('twin T { param r = 3 per h }');
    });

    test('unit mismatch on an expression that is not a number: no unit to add', async () => {
        const { actions } = await fixes('twin T { param a = 1 min  param b = a + 2 }', 'a + 2', IssueCodes.UnitMismatch);
        expect(actions).toEqual([]);
    });

    test('probability out of range: clamp', async () => {
        const high = await fixes('twin T { entity E  process P for E { branch { prob 1.4 { dispose } otherwise { dispose } } } }', '1.4', IssueCodes.ProbabilityOutOfRange);
        expect(high.actions[0].title).toBe('Clamp to 1');
        expect(high.apply()).toContain('prob 1 {');
        const low = await fixes('twin T { param p = bernoulli(p: -0.2) }', '-0.2', IssueCodes.ProbabilityOutOfRange);
        expect(low.apply()).toBe('twin T { param p = bernoulli(p: 0) }');
    });

    test('invalid capacity: a positive whole number', async () => {
        expect((await fixes('twin T { resource R capacity 2.6 }', '2.6', IssueCodes.InvalidCapacity)).apply()).toBe('twin T { resource R capacity 3 }');
        expect((await fixes('twin T { resource R capacity -4 }', '-4', IssueCodes.InvalidCapacity)).apply()).toBe('twin T { resource R capacity 1 }');
        expect((await fixes('twin T { param c = 2  resource R capacity c }', 'c', IssueCodes.InvalidCapacity, {}, 2)).actions).toEqual([]);
    });

    test('unreleased resource: release it at the end of the process', async () => {
        const text = 'twin T {\n  resource R capacity 1\n  resource Q capacity 1\n  entity E\n  process P for E {\n    seize R\n    seize Q\n    delay 1 min\n    release Q\n  }\n}\n';
        const { actions, apply } = await fixes(text, 'seize R', IssueCodes.UnreleasedResource);
        expect(actions.map(a => a.title)).toEqual(["Release 'R' at the end of process 'P'"]);
        expect(apply()).toBe(text.replace('    release Q\n', '    release Q\n    release R\n'));
        // on the process rather than the seize: what is seized and never released
        const onProcess = await fixes(text, 'P', IssueCodes.UnreleasedResource, {}, 0);
        expect(onProcess.apply()).toBe(apply());
        // the validator's suggestion, written as the step to add
        const suggested = await fixes(text, 'R', IssueCodes.UnreleasedResource, { suggestion: 'release R' }, 1);
        expect(suggested.actions.map(a => a.title)).toEqual(["Release 'R' at the end of process 'P'"]);
    });

    test('duplicate name: rename to a free name', async () => {
        const { actions, apply } = await fixes('twin T { param x = 1  param x = 2  param x2 = 3 }', 'x', IssueCodes.DuplicateName, {}, 1);
        expect(actions[0].title).toBe("Rename to 'x3'");
        expect(apply()).toBe('twin T { param x = 1  param x3 = 2  param x2 = 3 }');
    });

    test('model tensor unknown: the suggested name', async () => {
        const document = await parseHelper(services.agent)('system S { model M { file "m.onnx" input inptu: float32 } }', { documentUri: 'file:///fix/m.agent' });
        const diagnostic: Diagnostic = { range: rangeOf(document, 'inptu'), message: 'no input inptu', code: IssueCodes.ModelTensorUnknown, data: { code: IssueCodes.ModelTensorUnknown, suggestion: 'input' } };
        const actions = (await services.agent.lsp.CodeActionProvider!.getCodeActions(document, {
            textDocument: { uri: document.uri.toString() }, range: diagnostic.range, context: { diagnostics: [diagnostic] }
        }) ?? []) as CodeAction[];
        expect(actions[0].title).toBe("Replace with 'input'");
        expect(applyAction(document, actions[0])).toBe('system S { model M { file "m.onnx" input input: float32 } }');
    });

    test('unused import: remove its line', async () => {
        const { apply } = await fixes('import "a.twin"\nimport "b.twin"\ntwin T { }\n', '"b.twin"', IssueCodes.ImportNotNeeded);
        expect(apply()).toBe('import "a.twin"\ntwin T { }\n');
    });

    test('a diagnostic with a code no fix knows and no suggestion: nothing, and no error', async () => {
        const { actions } = await fixes('twin T { param x = 1 }', 'x', 'branch-probability-sum');
        expect(actions).toEqual([]);
    });

    test('end to end: the linking error of a misspelt name, fixed through validation', async () => {
        const languages = createAiMatrixServices(EmptyFileSystem);
        const document = languages.shared.workspace.LangiumDocumentFactory.fromString(
            'twin T {\n  param tellers = 3\n  resource R capacity tellrs\n}\n', URI.parse('file:///e2e/t.twin'));
        languages.shared.workspace.LangiumDocuments.addDocument(document);
        await languages.shared.workspace.DocumentBuilder.build([document], { validation: true });
        const diagnostic = (document.diagnostics ?? []).find(d => d.code === IssueCodes.UnresolvedReference);
        expect(diagnostic).toBeDefined();
        const actions = (await languages.twin.lsp.CodeActionProvider!.getCodeActions(document, {
            textDocument: { uri: document.uri.toString() }, range: diagnostic!.range, context: { diagnostics: [diagnostic!] }
        }) ?? []) as CodeAction[];
        expect(applyAction(document, actions[0])).toBe('twin T {\n  param tellers = 3\n  resource R capacity tellers\n}\n');
    });

    test('end to end: the validator\'s expected-time and unreleased-resource diagnostics are fixed', async () => {
        const languages = createAiMatrixServices(EmptyFileSystem);
        const text = 'twin T {\n  resource R capacity 1\n  entity E\n  source S creates E every 1 min into P\n  process P for E {\n    seize R\n    delay 3\n  }\n}\n';
        const document = languages.shared.workspace.LangiumDocumentFactory.fromString(text, URI.parse('file:///e2e/u.twin'));
        languages.shared.workspace.LangiumDocuments.addDocument(document);
        await languages.shared.workspace.DocumentBuilder.build([document], { validation: true });
        const fixed = async (code: string) => {
            const diagnostic = (document.diagnostics ?? []).find(d => d.code === code);
            expect(diagnostic, code).toBeDefined();
            const actions = (await languages.twin.lsp.CodeActionProvider!.getCodeActions(document, {
                textDocument: { uri: document.uri.toString() }, range: diagnostic!.range, context: { diagnostics: [diagnostic!] }
            }) ?? []) as CodeAction[];
            return applyAction(document, actions.find(a => a.isPreferred));
        };
        expect(await fixed(IssueCodes.ExpectedTime)).toBe(text.replace('delay 3', 'delay 3 min'));
        expect(await fixed(IssueCodes.UnreleasedResource)).toBe(text.replace('    delay 3\n', '    delay 3\n    release R\n'));
    });

    test('end to end: a name declared in another file gets an import fix', async () => {
        const languages = createAiMatrixServices(EmptyFileSystem);
        const birds = languages.shared.workspace.LangiumDocumentFactory.fromString('system Sky {\n  agent Bird { state e = 1 }\n}\n', URI.parse('file:///e2e/birds.agent'));
        const flock = languages.shared.workspace.LangiumDocumentFactory.fromString('twin Flock {\n  population B of Bird count 3\n}\n', URI.parse('file:///e2e/flock.twin'));
        languages.shared.workspace.LangiumDocuments.addDocument(birds);
        languages.shared.workspace.LangiumDocuments.addDocument(flock);
        await languages.shared.workspace.DocumentBuilder.build([birds, flock], { validation: true });
        const diagnostic = (flock.diagnostics ?? []).find(d => d.code === IssueCodes.UnresolvedReference);
        expect(diagnostic).toBeDefined();
        const actions = (await languages.twin.lsp.CodeActionProvider!.getCodeActions(flock, {
            textDocument: { uri: flock.uri.toString() }, range: diagnostic!.range, context: { diagnostics: [diagnostic!] }
        }) ?? []) as CodeAction[];
        const add = actions.find(a => a.title.startsWith('Add import'));
        // The path comes from the validator's data when it gives one, else from the index.
        const path = /^Add import "((?:\.\/)?birds\.agent)"$/.exec(add?.title ?? '')?.[1];
        expect(path).toBeDefined();
        expect(applyAction(flock, add)).toBe(`import "${path}"\n\ntwin Flock {\n  population B of Bird count 3\n}\n`);
    });
});
