/**
 * Editor features of the language server through Langium's test helpers: completion,
 * hover, signature help, navigation and rename across files, symbols, semantic tokens
 * and inlay hints.
 */
import { AstUtils, EmptyFileSystem, GrammarAST, URI, type LangiumDocument } from 'langium';
import {
    expectCompletion, expectFindReferences, expectGoToDefinition, expectHover, expectSymbols, expectSemanticToken,
    highlightHelper, parseHelper
} from 'langium/test';
import { describe, expect, test } from 'vitest';
import { CompletionItemKind, InsertTextFormat, SemanticTokenTypes, type CompletionList } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import * as ast from '../../language-server/generated/ast.js';
import { createAiMatrixServices, type AiMatrixLanguages } from '../../language-server/src/aimatrix-module.js';
import { findCallContext } from '../../language-server/src/call-context.js';
import { KEYWORD_DOCS } from '../../language-server/src/keyword-docs.js';

const services = createAiMatrixServices(EmptyFileSystem);
const twin = services.twin;
const agent = services.agent;

const BANK = `twin Bank {
  param tellers = 3
  param serviceMean = 2.7 min
  resource Teller capacity tellers
  entity Customer
  source Arrivals creates Customer every exponential(mean: 1 min) into Serve
  process Serve for Customer {
    seize Teller
    delay exponential(mean: serviceMean)
    release Teller
  }
  kpi wait = mean(waitTime(Serve)) in min
}
`;

function labels(list: CompletionList): string[] {
    return list.items.map(i => i.label);
}

describe('completion', () => {
    const completion = expectCompletion(twin);

    test('units after a number, shortest first, with their meaning', async () => {
        await completion({
            text: 'twin T { param x = 3 <|> }',
            index: 0,
            disposeAfterCheck: true,
            assert: list => {
                const units = list.items.filter(i => i.kind === CompletionItemKind.Unit)
                    .sort((a, b) => (a.sortText ?? '').localeCompare(b.sortText ?? ''));
                expect(units.map(u => u.label)).toEqual(['ms', 's', 'min', 'h', 'd', 'per ms', 'per s', 'per min', 'per h', 'per d']);
                expect(units.find(u => u.label === 'min')?.detail).toBe('minutes');
                expect(labels(list)).toContain('per h');
            }
        });
    });

    test('a unit prefix narrows the units', async () => {
        await completion({
            text: 'twin T { param x = 3 m<|> }',
            index: 0,
            disposeAfterCheck: true,
            assert: list => expect(labels(list).sort()).toEqual(['min', 'ms'])
        });
    });

    test('built-ins as snippets with placeholders where an expression starts', async () => {
        await completion({
            text: 'twin T { entity E process P for E { delay <|> } }',
            index: 0,
            disposeAfterCheck: true,
            assert: list => {
                const exp = list.items.filter(i => i.label === 'exponential');
                expect(exp.map(i => i.textEdit?.newText).sort()).toEqual(['exponential(mean: ${1})', 'exponential(rate: ${1})']);
                expect(exp.every(i => i.insertTextFormat === InsertTextFormat.Snippet)).toBe(true);
                const uniform = list.items.find(i => i.label === 'uniform');
                expect(uniform?.textEdit?.newText).toBe('uniform(min: ${1}, max: ${2})');
                expect(uniform?.kind).toBe(CompletionItemKind.Function);
                // names in scope are still proposed
                expect(labels(list)).toEqual(expect.arrayContaining(['P', 'E', 'not', 'true']));
            }
        });
    });

    test('no built-ins where a name is declared', async () => {
        await completion({
            text: 'twin T { param <|> }',
            index: 0,
            disposeAfterCheck: true,
            assert: list => {
                expect(labels(list)).not.toContain('exponential');
                // words that are keywords only to be usable as names are not proposed as keywords here
                expect(labels(list)).not.toContain('min');
            }
        });
    });

    test('named arguments inside a call of a built-in', async () => {
        await completion({
            text: 'twin T { param x = exponential(<|> }',
            index: 0,
            disposeAfterCheck: true,
            assert: list => {
                const args = list.items.filter(i => i.kind === CompletionItemKind.Property);
                expect(args.map(a => a.label)).toEqual(['mean:', 'rate:']);
                expect(args[0].textEdit?.newText).toBe('mean: ');
            }
        });
        await completion({
            text: 'twin T { param x = triangular(min: 1, <|> }',
            index: 0,
            disposeAfterCheck: true,
            assert: list => expect(list.items.filter(i => i.kind === CompletionItemKind.Property).map(a => a.label)).toEqual(['mode:', 'max:'])
        });
    });

    test('no argument names in a call of something that is not a built-in', async () => {
        await completion({
            text: 'twin T { param x = frobnicate(<|> }',
            index: 0,
            disposeAfterCheck: true,
            assert: list => expect(list.items.filter(i => i.kind === CompletionItemKind.Property)).toEqual([])
        });
    });

    test('keywords carry their documentation', async () => {
        await completion({
            text: 'twin T { <|> }',
            index: 0,
            disposeAfterCheck: true,
            assert: list => {
                const resource = list.items.find(i => i.label === 'resource');
                expect(resource?.kind).toBe(CompletionItemKind.Keyword);
                expect(JSON.stringify(resource?.documentation)).toContain('capacity');
            }
        });
    });

    test('completion on a large file answers and stays linear', async () => {
        const lines = ['twin Big {'];
        for (let i = 0; i < 3000; i++) lines.push(`  param p${i} = ${i} min`);
        lines.push('  param last = <|>', '}');
        await completion({
            text: lines.join('\n'),
            index: 0,
            disposeAfterCheck: true,
            assert: list => {
                expect(labels(list)).toContain('p2999');
                expect(labels(list)).toContain('exponential');
            }
        });
    });
});

describe('call context', () => {
    test('finds the call, the argument index and the names typed', () => {
        const text = 'x = triangular(min: 1, mode: f(2, 3), ';
        const call = findCallContext(text, text.length);
        expect(call).toMatchObject({ func: 'triangular', argIndex: 2, argNames: ['min', 'mode', undefined] });
    });

    test('no call outside parentheses or across a block', () => {
        expect(findCallContext('param x = 3', 11)).toBeUndefined();
        expect(findCallContext('f( { x', 6)).toBeUndefined();
    });
});

describe('hover', () => {
    const hover = expectHover(twin);

    test('a parameter: its dimension, its value and the value in base units', async () => {
        await hover({ text: BANK.replace('param serviceMean', 'param <|>serviceMean'), index: 0, hover: '**param** serviceMean: a time = 2.7 min (162 s)', disposeAfterCheck: true });
        // on a reference too
        await hover({ text: BANK.replace('mean: serviceMean', 'mean: service<|>Mean'), index: 0, hover: '**param** serviceMean: a time = 2.7 min (162 s)', disposeAfterCheck: true });
        await hover({ text: BANK.replace('capacity tellers', 'capacity <|>tellers'), index: 0, hover: '**param** tellers: a count = 3', disposeAfterCheck: true });
    });

    test('a computed parameter shows the computed value', async () => {
        await hover({ text: 'twin T { param a = 2 min  param <|>b = a * 3 }', index: 0, hover: '**param** b: a time = a * 3 (360 s)', disposeAfterCheck: true });
    });

    test('a KPI and a resource', async () => {
        await hover({ text: BANK.replace('kpi wait', 'kpi <|>wait'), index: 0, hover: '**kpi** wait: a time, reported in min = mean(waitTime(Serve))', disposeAfterCheck: true });
        await hover({ text: BANK.replace('resource Teller', 'resource <|>Teller'), index: 0, hover: '**resource** Teller capacity tellers, queue fifo', disposeAfterCheck: true });
    });

    test('a stock and a flow: their dimension', async () => {
        const text = 'twin S { stock <|>infected = 10  flow <|>recovery from infected rate infected / 14 }';
        await hover({ text, index: 0, hover: '**stock** infected: a count = 10', disposeAfterCheck: true });
        await hover({ text, index: 1, hover: '**flow** recovery from infected: a rate (count per time) = infected / 14', disposeAfterCheck: true });
    });

    test('built-ins: signatures and documentation', async () => {
        await hover({
            text: BANK.replace('delay exponential', 'delay expo<|>nential'),
            index: 0,
            hover: /^```\nexponential\(mean\)\nexponential\(rate\)\n```[\s\S]*Exponential distribution[\s\S]*`rate`: events per time/,
            disposeAfterCheck: true
        });
    });

    test('keywords and units', async () => {
        await hover({ text: BANK.replace('seize Teller', 'se<|>ize Teller'), index: 0, hover: /^\*\*seize\*\* — Takes units of a resource/, disposeAfterCheck: true });
        await hover({ text: BANK.replace('2.7 min', '2.7 m<|>in'), index: 0, hover: /^\*\*min\*\* — Time unit: minutes \(1 min = 60 s\)/, disposeAfterCheck: true });
    });

    test('a word that is a keyword elsewhere but a name here is hovered as the name', async () => {
        await hover({ text: 'twin T { param <|>count = 4 }', index: 0, hover: '**param** count: a count = 4', disposeAfterCheck: true });
    });

    test('nothing on punctuation, whitespace or an unresolved name', async () => {
        await hover({ text: 'twin T <|>{ param x = 1 }', index: 0, hover: undefined, disposeAfterCheck: true });
        await hover({ text: 'twin T { param x = nope<|>thing }', index: 0, hover: undefined, disposeAfterCheck: true });
    });

    test('every keyword of the grammar has documentation', () => {
        const keywords = new Set<string>();
        for (const grammar of [twin.Grammar, agent.Grammar]) {
            for (const node of AstUtils.streamAllContents(grammar)) {
                if (GrammarAST.isKeyword(node) && /^[a-z]/.test(node.value)) keywords.add(node.value);
            }
        }
        expect(keywords.size).toBeGreaterThan(50);
        expect([...keywords].filter(k => !(k in KEYWORD_DOCS))).toEqual([]);
    });
});

describe('model hover (agent language)', () => {
    test('a model: its file, tensors and providers', async () => {
        const hover = expectHover(agent);
        await hover({
            text: `system S {
  model <|>Demand {
    file "models/demand.onnx"
    input features: float32[1, 4]
    output y: float32[1, 1]
    batch 8
  }
}`,
            index: 0,
            hover: '**model** Demand\n- file: `models/demand.onnx`\n- input `features`: float32[1, 4]\n- output `y`: float32[1, 1]\n- providers: cpu (default)\n- batch 8',
            disposeAfterCheck: true
        });
    });
});

describe('signature help', () => {
    async function signature(text: string) {
        const offset = text.indexOf('<|>');
        const document = await parseHelper(twin)(text.replace('<|>', ''));
        const help = await twin.lsp.SignatureHelp!.provideSignatureHelp(document, {
            textDocument: { uri: document.uri.toString() }, position: document.textDocument.positionAt(offset)
        });
        return help;
    }

    test('is triggered on ( and ,', () => {
        expect(twin.lsp.SignatureHelp!.signatureHelpOptions.triggerCharacters).toEqual(['(', ',']);
    });

    test('the active parameter by position', async () => {
        const help = await signature('twin T { param x = triangular(1 min, <|> }');
        expect(help?.signatures.map(s => s.label)).toEqual(['triangular(min, mode, max)']);
        expect(help?.activeParameter).toBe(1);
    });

    test('the overload and the parameter by the name typed', async () => {
        const help = await signature('twin T { param x = exponential(rate: <|> }');
        expect(help?.signatures.map(s => s.label)).toEqual(['exponential(mean)', 'exponential(rate)']);
        expect(help?.activeSignature).toBe(1);
        expect(help?.activeParameter).toBe(0);
        const named = await signature('twin T { param x = triangular(max: 3, min: <|> }');
        expect(named?.activeParameter).toBe(0);
    });

    test('nothing outside a call, or in a call of an unknown function', async () => {
        expect(await signature('twin T { param x = 3<|> }')).toBeUndefined();
        expect(await signature('twin T { param x = foo(<|> }')).toBeUndefined();
    });
});

/** A workspace of several files, built together as the language server builds them. */
async function workspace(files: Record<string, string>): Promise<{ languages: AiMatrixLanguages; docs: Record<string, LangiumDocument> }> {
    const languages = createAiMatrixServices(EmptyFileSystem);
    const docs: Record<string, LangiumDocument> = {};
    for (const [name, text] of Object.entries(files)) {
        const document = languages.shared.workspace.LangiumDocumentFactory.fromString(text, URI.parse(`file:///ws/${name}`));
        languages.shared.workspace.LangiumDocuments.addDocument(document);
        docs[name] = document;
    }
    await languages.shared.workspace.DocumentBuilder.build(Object.values(docs), { validation: true });
    return { languages, docs };
}

const FLOCK = `import "birds.agent"
twin Flock {
  param speed = 2
  population Birds of Bird count 10
}
`;
const BIRDS = `import "flock.twin"
system Sky observes Flock {
  agent Bird {
    state energy = speed * 2
  }
}
`;
const STUDY = `import "flock.twin"
experiment Fast for Flock {
  set speed = 3
}
`;

function at(document: LangiumDocument, needle: string, delta = 0) {
    const offset = document.textDocument.getText().indexOf(needle);
    expect(offset).toBeGreaterThanOrEqual(0);
    return { textDocument: { uri: document.uri.toString() }, position: document.textDocument.positionAt(offset + delta) };
}

describe('navigation across files', () => {
    test('go to definition: an agent of another file, a twin observed, a parameter of an observed twin', async () => {
        const { languages, docs } = await workspace({ 'flock.twin': FLOCK, 'birds.agent': BIRDS, 'study.twin': STUDY });
        const def = async (file: string, needle: string, delta: number) => {
            const services = file.endsWith('.agent') ? languages.agent : languages.twin;
            const links = await services.lsp.DefinitionProvider!.getDefinition(docs[file], at(docs[file], needle, delta)) ?? [];
            return links.map(l => `${l.targetUri.split('/').pop()}:${l.targetSelectionRange.start.line}:${l.targetSelectionRange.start.character}`);
        };
        expect(await def('flock.twin', 'of Bird', 4)).toEqual(['birds.agent:2:8']);
        expect(await def('birds.agent', 'observes Flock', 10)).toEqual(['flock.twin:1:5']);
        expect(await def('birds.agent', 'speed * 2', 1)).toEqual(['flock.twin:2:8']);
        expect(await def('study.twin', 'for Flock', 5)).toEqual(['flock.twin:1:5']);
        expect(await def('study.twin', 'set speed', 5)).toEqual(['flock.twin:2:8']);
        // no definition on a keyword
        expect(await def('study.twin', 'experiment', 1)).toEqual([]);
    });

    test('find references across files', async () => {
        const { languages, docs } = await workspace({ 'flock.twin': FLOCK, 'birds.agent': BIRDS, 'study.twin': STUDY });
        const refs = await languages.twin.lsp.ReferencesProvider!.findReferences(docs['flock.twin'],
            { ...at(docs['flock.twin'], 'speed'), context: { includeDeclaration: true } });
        expect(refs.map(r => `${r.uri.split('/').pop()}:${r.range.start.line}:${r.range.start.character}`).sort())
            .toEqual(['birds.agent:3:19', 'flock.twin:2:8', 'study.twin:2:6']);
        const withoutDeclaration = await languages.twin.lsp.ReferencesProvider!.findReferences(docs['flock.twin'],
            { ...at(docs['flock.twin'], 'speed'), context: { includeDeclaration: false } });
        expect(withoutDeclaration).toHaveLength(2);
    });

    test('rename changes the declaration and every reference in every file', async () => {
        const { languages, docs } = await workspace({ 'flock.twin': FLOCK, 'birds.agent': BIRDS, 'study.twin': STUDY });
        const edit = await languages.agent.lsp.RenameProvider!.rename(docs['birds.agent'], { ...at(docs['birds.agent'], 'speed * 2'), newName: 'velocity' });
        const changes = edit?.changes ?? {};
        const apply = (name: string) => TextDocument.applyEdits(docs[name].textDocument, changes[docs[name].uri.toString()] ?? []);
        expect(apply('flock.twin')).toBe(FLOCK.replace('speed', 'velocity'));
        expect(apply('birds.agent')).toBe(BIRDS.replace('speed', 'velocity'));
        expect(apply('study.twin')).toBe(STUDY.replace('speed', 'velocity'));

        const agentRename = await languages.twin.lsp.RenameProvider!.rename(docs['flock.twin'], { ...at(docs['flock.twin'], 'of Bird', 4), newName: 'Starling' });
        const agentChanges = agentRename?.changes ?? {};
        expect(Object.keys(agentChanges).map(u => u.split('/').pop()).sort()).toEqual(['birds.agent', 'flock.twin']);
    });

    test('go to definition and references inside one file', async () => {
        await expectGoToDefinition(twin)({
            text: 'twin T { entity <|E|> process P for <|>E { } }',
            index: 0,
            rangeIndex: 0,
            disposeAfterCheck: true
        });
        await expectFindReferences(twin)({
            text: 'twin T { param <|x|> = 1  param y = <|x|> + <|x|> }',
            includeDeclaration: true,
            disposeAfterCheck: true
        });
    });
});

describe('symbols', () => {
    test('document symbols include nested members', async () => {
        await expectSymbols(twin)({
            text: BANK,
            disposeAfterCheck: true,
            assert: symbols => {
                expect(symbols.map(s => s.name)).toEqual(['Bank']);
                expect(symbols[0].children?.map(c => c.name)).toEqual(['tellers', 'serviceMean', 'Teller', 'Customer', 'Arrivals', 'Serve', 'wait']);
            }
        });
    });

    test('workspace symbols: nested members with their container', async () => {
        const { languages } = await workspace({ 'flock.twin': FLOCK, 'birds.agent': BIRDS, 'study.twin': STUDY });
        const provider = languages.shared.lsp.WorkspaceSymbolProvider!;
        const all = await provider.getSymbols({ query: '' });
        const summary = all.map(s => `${s.name}@${s.containerName ?? ''}`).sort();
        expect(summary).toEqual(['Bird@Sky', 'Birds@Flock', 'Fast@', 'Flock@', 'Sky@', 'energy@Bird', 'speed@Flock']);
        const speed = await provider.getSymbols({ query: 'spe' });
        expect(speed.map(s => s.name)).toEqual(['speed']);
        expect(await provider.getSymbols({ query: 'zzz' })).toEqual([]);
    });
});

describe('semantic tokens', () => {
    test('declarations and references by kind, built-ins, units and keywords', async () => {
        const tokens = await highlightHelper(twin)(`twin T {
  param <|n|> = <|exponential|>(mean: 3 <|min|>)
  entity <|E|> { attr <|w|> = 1 }
  <|process|> P for <|E|> { assign <|w|> = <|n|> }
}`);
        expectSemanticToken(tokens, { rangeIndex: 0, tokenType: SemanticTokenTypes.parameter });
        expectSemanticToken(tokens, { rangeIndex: 1, tokenType: SemanticTokenTypes.function });
        expectSemanticToken(tokens, { rangeIndex: 2, tokenType: SemanticTokenTypes.enumMember });
        expectSemanticToken(tokens, { rangeIndex: 3, tokenType: SemanticTokenTypes.type });
        expectSemanticToken(tokens, { rangeIndex: 4, tokenType: SemanticTokenTypes.property });
        expectSemanticToken(tokens, { rangeIndex: 5, tokenType: SemanticTokenTypes.keyword });
        expectSemanticToken(tokens, { rangeIndex: 6, tokenType: SemanticTokenTypes.type });
        expectSemanticToken(tokens, { rangeIndex: 7, tokenType: SemanticTokenTypes.property });
        expectSemanticToken(tokens, { rangeIndex: 8, tokenType: SemanticTokenTypes.parameter });
    });

    test('an unknown function and an unresolved name get no semantic colour', async () => {
        const tokens = await highlightHelper(twin)('twin T { param a = <|frob|>(<|nope|>) }');
        const texts = tokens.tokens.map(t => t.text);
        expect(texts).not.toContain('frob');
        expect(texts).not.toContain('nope');
    });
});

describe('inlay hints', () => {
    async function hints(services: typeof twin, text: string) {
        const document = await parseHelper(services)(text);
        const result = await services.lsp.InlayHintProvider!.getInlayHints(document, {
            textDocument: { uri: document.uri.toString() },
            range: { start: { line: 0, character: 0 }, end: document.textDocument.positionAt(text.length) }
        }) ?? [];
        return result.map(h => `${h.position.line}:${h.position.character} ${typeof h.label === 'string' ? h.label : h.label.map(p => p.value).join('')}`);
    }

    test('implicit defaults and units', async () => {
        expect(await hints(twin, `twin S {
  stock a = 10
  flow f from a rate a / 4
  flow g from a rate 2 per d
  integrate euler step 0.5 d
  resource R capacity 2
  resource Q capacity 2 queue lifo
  param x = uniform(1, 2)
  param y = exponential(mean: 2)
}`)).toEqual(['2:26 per d', '5:23 queue fifo', '7:20 min:', '7:23 max:']);
    });

    test('a model without providers', async () => {
        expect(await hints(agent, 'system S {\n  model M {\n    file "m.onnx"\n  }\n  model N { providers cuda }\n}')).toEqual(['2:17 providers cpu']);
    });

    test('a positional argument that already names its parameter gets no hint', async () => {
        expect(await hints(twin, 'twin T { param mean = 2 min  param y = exponential(mean) }')).toEqual([]);
    });
});

describe('robustness', () => {
    test('no service throws on broken input', async () => {
        const broken = ['twin', 'twin T {', 'twin T { param x = exponential(', 'twin T { process P for { seize  }', 'experiment E for { set = }',
            'twin T { flow f from rate }', 'twin T { kpi k = mean(waitTime( }'];
        for (const text of broken) {
            const document = await parseHelper(twin)(text);
            const end = document.textDocument.positionAt(text.length);
            const id = { uri: document.uri.toString() };
            for (let offset = 0; offset <= text.length; offset++) {
                const position = document.textDocument.positionAt(offset);
                await twin.lsp.CompletionProvider!.getCompletion(document, { textDocument: id, position });
                await twin.lsp.HoverProvider!.getHoverContent(document, { textDocument: id, position });
                await twin.lsp.SignatureHelp!.provideSignatureHelp(document, { textDocument: id, position, context: undefined as never });
            }
            await twin.lsp.InlayHintProvider!.getInlayHints(document, { textDocument: id, range: { start: { line: 0, character: 0 }, end } });
            await twin.lsp.SemanticTokenProvider!.semanticHighlight(document, { textDocument: id });
            expect(await twin.lsp.Formatter!.formatDocument(document, { textDocument: id, options: { tabSize: 2, insertSpaces: true } })).toEqual(
                document.parseResult.parserErrors.length > 0 ? [] : expect.anything());
        }
    });

    test('the grammar types used by the services exist', () => {
        expect(ast.Param.$type).toBe('Param');
    });
});
